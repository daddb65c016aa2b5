"""End to end (issue 16, item 7): the find box rings what it finds in every map, the tab and the focus live
in the link, every plot's mode bar exports its data as CSV, and hovering a class's accuracy line brings it
forward. Headless Chromium against the tiny cache; screenshots in ``test-artifacts/``."""

from __future__ import annotations

from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By

from layouts import hard_examples as hard_ly
from layouts import ids
from layouts import timeline as tl
from tests.browser.helpers import assert_no_console_errors, open_tab, replace_text, scroll_to, wait_until


def _rings(driver, graph_id: str) -> list[int] | None:
    return driver.execute_script(f"""
      const gd = document.querySelector('#{graph_id} .js-plotly-plot');
      if (!gd || !gd._fullData) return null;
      const t = gd._fullData.find(t => t.meta && t.meta.role === 'highlight');
      return t ? Array.from(t.customdata || []).map(Number) : null;""")


def test_find_box_links_csv_buttons_and_hover(dash_duo, tiny_cache, artifacts):
    from dashboard.app import create_app

    df = tiny_cache.instances
    dash_duo.start_server(create_app(tiny_cache.root))
    d = dash_duo.driver
    box = wait_until("the find box", lambda: d.find_element(By.ID, ids.FIND))

    # an id: focused (in the link) and ringed in the hard-example maps once their tab opens
    replace_text(box, "5", enter=True)
    wait_until("the find message", lambda: d.find_element(By.ID, ids.FIND_MESSAGE).text.startswith("#5: "))
    wait_until("the focus in the link", lambda: "focus=5" in d.current_url)
    open_tab(d, "Instance diagnosis")
    wait_until("the tab in the link", lambda: "tab=diagnosis" in d.current_url)
    wait_until("the ring on the hidden-layer map", lambda: _rings(d, hard_ly.HIDDEN_MAP) == [5])

    # a class name: every instance of the class ringed, in both maps, without redrawing them
    name = tiny_cache.classes[2]
    want = sorted(df.loc[df.label == 2, "id"].tolist())
    replace_text(box, f"class:{name}", enter=True)
    wait_until("the class's rings", lambda: _rings(d, hard_ly.PIXEL_MAP) == want)
    assert f"class {name!r}" in d.find_element(By.ID, ids.FIND_MESSAGE).text
    d.save_screenshot(str(artifacts / "find_class_1366x768.png"))

    # every plot's mode bar has the CSV button, and the CSV holds what the map draws
    wait_until("CSV buttons", lambda: len(d.find_elements(By.CSS_SELECTOR, f"#{hard_ly.HIDDEN_MAP} .tv-csv-btn")))
    csv = d.execute_script(f"return tvFigureCsv(document.querySelector('#{hard_ly.HIDDEN_MAP} .js-plotly-plot'))")
    lines = csv.strip().splitlines()
    assert lines[0] == "trace,name,x,y,z,text,customdata,color"
    ids_in_csv = {int(line.split(",")[-2]) for line in lines[1:] if line.split(",")[-2]}
    assert set(df["id"]) <= ids_in_csv

    # the link opens the tab it names (and the focus it names)
    dash_duo.driver.get(dash_duo.server_url + "/?tab=timeline&focus=7")
    wait_until("the timeline tab from the link", lambda: d.find_element(
        By.CSS_SELECTOR, ".tab--selected").text.strip() == "Fine-tuning timeline")

    # hovering a class's accuracy line brings it forward, leaving it restores the figure's look
    gd = f"document.querySelector('#{tl.ACCURACY} .js-plotly-plot')"
    wait_until("the accuracy chart", lambda: d.execute_script(
        f"const gd = {gd}; return gd && gd.data && gd.data.some(t => t.meta && t.meta.role === 'class')"))
    # the mouse over a point of the first class's line (a real hover: plotly emits plotly_hover)
    scroll_to(d, d.find_element(By.ID, tl.ACCURACY), block="start")
    x, y = d.execute_script(f"""
      const gd = {gd}; const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      const k = gd.data.findIndex(t => t.meta && t.meta.role === 'class'); const t = gd._fullData[k];
      const i = t.y.findIndex(v => v !== null);
      return [r.left + fl._size.l + fl.xaxis.d2p(t.x[i]), r.top + fl._size.t + fl.yaxis.d2p(t.y[i])];""")
    ab = ActionBuilder(d)
    ab.pointer_action.move_to_location(int(x), int(y))
    ab.perform()

    def opacities() -> list:
        return d.execute_script(f"return {gd}.data.filter(t => t.meta && t.meta.role === 'class').map(t => t.opacity)")

    hovered = wait_until("a hovered line in front", lambda: (o := opacities()).count(0.15) == len(o) - 1 and o)
    assert len(hovered) == len(tiny_cache.classes)
    ab = ActionBuilder(d)
    ab.pointer_action.move_to_location(5, 5)  # away: the figure's own look comes back
    ab.perform()
    wait_until("the lines restored", lambda: 0.15 not in opacities())
    assert_no_console_errors(dash_duo)
