"""End to end: the run hub over two demo-sized runs, in headless Chromium (issue 14, items 1 and 2).

The hub's folder holds two runs as the build leaves them (``<root>/<run>`` -> ``.builds/<run>-...``): the demo
cache's build and a hard-linked copy of it under another name (two demo-sized runs without a second build;
the copy is its own build folder, opened by its own app). The test opens the hub (both runs in the table),
opens one run from its name (its URL carries the name; the run's page draws, and its CKA heatmap switches to the
source data when the demo has the cka stage), goes back, ticks both runs,
opens their comparison (every figure drawn) and checks that the browser console stayed clean.

Set ``TRANSFERVIZ_TEST_DEMO_CACHE`` to a built cache to skip building the demo.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium.webdriver.common.by import By

from dashboard.hub import markup as hub
from tests.browser.helpers import assert_no_console_errors, scroll_to, wait_until


def _hub_folder(demo_root: Path, dest: Path) -> Path:
    """A cache folder with the runs ``digits`` (the demo's build) and ``digits_copy`` (a hard-linked copy)."""
    builds = dest / ".builds"
    builds.mkdir(parents=True)
    (dest / "digits").symlink_to(demo_root)
    copy = builds / "digits_copy-20261206-120000-1-abcdef"
    # hard links: seconds and no space for ~70 MB; the readers never write, so the two stay as built
    shutil.copytree(demo_root, copy, copy_function=os.link, ignore=shutil.ignore_patterns(".lock"))
    (dest / "digits_copy").symlink_to(Path(".builds") / copy.name)
    return dest


def _grid_runs(d) -> list[str]:
    """The run names the grid shows (the name cells; the header cell has no ``ag-cell`` class)."""
    return [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, f"#{hub.GRID} .ag-cell[col-id='name']")
            if e.text.strip()]


def _drawn(d, graph_id: str) -> bool:
    """Whether plotly drew data in the graph (a trace's group or a heatmap's image)."""
    return bool(d.find_elements(By.CSS_SELECTOR, f"#{graph_id} .main-svg .trace, #{graph_id} .main-svg .hm"))


def test_hub_opens_a_run_goes_back_and_compares_both(dash_duo, demo_cache, artifacts, tmp_path):
    from dashboard.hub.app import create_hub

    root = _hub_folder(demo_cache.root, tmp_path / "cache")
    dash_duo.start_server(create_hub(root))
    d = dash_duo.driver

    wait_until("both runs in the hub's table", lambda: sorted(set(_grid_runs(d))) == ["digits", "digits_copy"])
    d.save_screenshot(str(artifacts / "hub_runs.png"))

    # a run's name opens its analysis, under a URL that carries the name
    link = wait_until("the link to run digits_copy", lambda: d.find_element(
        By.CSS_SELECTOR, f"#{hub.GRID} a[href='/run/digits_copy/']"))
    link.click()
    wait_until("the run's URL", lambda: d.current_url.endswith("/run/digits_copy/"))
    wait_until("the run's page with its link back to the hub", lambda: d.find_element(By.ID, "hub-home"))
    wait_until("the run's network view drawn", lambda: _drawn(d, "network-graph"), timeout=90)
    wait_until("the run's CKA box", lambda: d.find_element(By.ID, "network-cka"))
    if demo_cache.cka("source") is not None:  # a demo built with the cka stage (CI builds it fresh): the toggle
        radios = d.find_elements(By.CSS_SELECTOR, "#network-cka-domain input")
        scroll_to(d, radios[1])
        radios[1].click()
        wait_until("the CKA heatmap on the source data", lambda: d.execute_script(
            "var p = document.querySelector('#network-cka .js-plotly-plot');"
            "return p && p.layout.meta && p.layout.meta.domain === 'source';"))
        want = float(demo_cache.cka("source")[0][0])
        got = d.execute_script("return document.querySelector('#network-cka .js-plotly-plot')._fullData[0].z[0][0];")
        assert abs(got - want) < 1e-9
    wait_until("the run's title", lambda: d.title == "transferviz: digits")  # "Updating..." while callbacks run

    d.back()
    wait_until("the hub again", lambda: sorted(set(_grid_runs(d))) == ["digits", "digits_copy"])

    # tick both runs: the compare button becomes a link to their comparison
    boxes = wait_until("two selection checkboxes", lambda: (lambda b: b if len(b) == 2 else None)(
        d.find_elements(By.CSS_SELECTOR, f"#{hub.GRID} .ag-pinned-left-cols-container input.ag-checkbox-input")))
    for box in boxes:
        scroll_to(d, box)
        box.click()
    button = d.find_element(By.ID, hub.COMPARE_LINK)
    wait_until("the compare button enabled", lambda: "disabled" not in (button.get_attribute("class") or ""))
    assert (button.get_attribute("href") or "").endswith("/compare?runs=digits,digits_copy") or \
        (button.get_attribute("href") or "").endswith("/compare?runs=digits_copy,digits")
    button.click()

    wait_until("the comparison's URL", lambda: "/compare?runs=" in d.current_url)
    for key in hub.FIGURES:
        wait_until(f"the comparison's {key} figure", lambda key=key: d.find_element(By.ID, f"hub-fig-{key}"))
    wait_until("the accuracy overlay drawn", lambda: _drawn(d, "hub-fig-accuracy"))
    wait_until("the gain heatmap drawn", lambda: _drawn(d, "hub-fig-gains"))
    runs_named = [e.text for e in d.find_elements(By.CSS_SELECTOR, ".tv-hub-run")]
    assert sorted(runs_named) == ["digits", "digits_copy"]
    d.save_screenshot(str(artifacts / "hub_compare.png"))
    assert_no_console_errors(dash_duo)
