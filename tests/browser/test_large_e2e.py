"""End to end at the paper's scale (issue 16): a real cache of torchvision AlexNet at 64 px over 31
Office-31-shaped classes (``large_cache``: 4096-unit layers, ~938 ranked neurons a class). The analysis
tab settles, a class change completes, the feature view's switches answer, and the console stays clean.
Timings are the benchmarks' business (benchmarks/browser_timing.py); here each step only has to finish
in a generous time, so a regression back to minutes fails."""

from __future__ import annotations

import time

from selenium.webdriver.common.by import By

from layouts import features as fl
from layouts import statistics as sl
from tests.browser.helpers import assert_no_console_errors, scroll_to, wait_until

STEP_S = 60  # the issue measured 93-136 s a step before; the goal is under 1 s on a quiet machine


def _drawn(driver, graph_id: str) -> bool:
    return bool(driver.execute_script(
        f"const gd = document.querySelector('#{graph_id} .js-plotly-plot');"
        "return !!(gd && gd._fullLayout && !((gd.layout || {}).meta || {}).loading)"))


def _settled(driver) -> bool:
    return driver.execute_script(
        "return !document.querySelector('[data-dash-is-loading=\"true\"]') && "
        "Array.from(document.querySelectorAll('.dash-graph')).filter(g => g.offsetParent !== null)"
        ".every(g => g.querySelector('.main-svg'))")


def test_analysis_tab_at_paper_scale(dash_duo, large_cache, artifacts):
    from dashboard.app import create_app

    assert len(large_cache.classes) == 31 and max(large_cache.layer_sizes.values()) == 4096
    dash_duo.start_server(create_app(large_cache.root))
    d = dash_duo.driver
    wait_until("the analysis tab to settle", lambda: _settled(d) and _drawn(d, "network-graph"), timeout=STEP_S)
    # the ranking grid renders the rows in view, a page of them at most, never all ~938 neurons
    rows = d.find_elements(By.CSS_SELECTOR, f"#{fl.RANKING} .ag-center-cols-container input[type=checkbox]")
    assert 0 < len(rows) <= 50, len(rows)
    d.save_screenshot(str(artifacts / "large_analysis_1366x768.png"))

    # a class change completes: the ranking list is rebuilt for the new class
    before = d.find_element(By.ID, fl.RANKING).text
    # the confusion table is a dash-ag-grid grid (issue 13): a click on a class's row selects it
    row = d.find_element(By.CSS_SELECTOR, f"#{sl.TABLE} .ag-center-cols-container .ag-row[row-id='5'] .ag-cell")
    scroll_to(d, row)
    row.click()
    wait_until("the ranking list of the new class", lambda: d.find_element(By.ID, fl.RANKING).text != before,
               timeout=STEP_S)
    wait_until("the page to settle after the class change", lambda: _settled(d), timeout=STEP_S)

    # the feature view's model and order switches answer
    for css in (f"#{fl.MODEL} input[value=source]", f"#{fl.ORDER} input[value=least]"):
        before = d.find_element(By.ID, fl.RANKING).text
        el = d.find_element(By.CSS_SELECTOR, css)
        d.execute_script("arguments[0].click();", el)
        wait_until(f"the ranking list after {css}", lambda: d.find_element(By.ID, fl.RANKING).text != before,
                   timeout=STEP_S)
    time.sleep(0.5)
    wait_until("the page to settle", lambda: _settled(d), timeout=STEP_S)
    d.save_screenshot(str(artifacts / "large_analysis_switched_1366x768.png"))
    assert_no_console_errors(dash_duo)
