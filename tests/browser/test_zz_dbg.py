import time, sys, os
sys.path.insert(0, os.path.dirname(__file__))
from selenium.webdriver.common.by import By
from test_e2e import make_app, wait_page_ready, shoot_views
def test_dbg(dash_duo, demo_cache, artifacts):
    dash_duo.start_server(make_app(demo_cache.root))
    d = dash_duo.driver
    wait_page_ready(dash_duo)
    shoot_views(d, artifacts, "dbg")
    cells = d.find_elements(By.CSS_SELECTOR, "#stats-table .cell-1-1 td[data-dash-column='class']")
    c = cells[0]
    print(d.execute_script("const r=arguments[0].getBoundingClientRect(); return [r.x,r.y,window.scrollY, document.documentElement.scrollTop, document.body.scrollTop, window.innerHeight]", c))
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", c)
    print(d.execute_script("const r=arguments[0].getBoundingClientRect(); return [r.x,r.y,window.scrollY]", c))
    d.save_screenshot(str(artifacts / "dbg.png"))
