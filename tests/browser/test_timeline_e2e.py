"""End to end: the fine-tuning timeline tab in headless Chromium against the demo cache.

Opens the "Fine-tuning timeline" tab, clicks an instance on the map (its trail appears),
presses play and checks that the epoch slider advances and the points move, pauses and
checks that the epoch stays put, then plays on to the last epoch where playback stops, and
steps the slider back and on with the arrow keys.
Saves screenshots to ``test-artifacts/``.

Set ``TRANSFERVIZ_TEST_DEMO_CACHE`` to a built cache to skip building the demo.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from layouts import timeline as tl
from tests.browser.helpers import (
    assert_no_console_errors,
    click_at,
    open_tab,
    scroll_to,
    slider_value,
    wait_until,
)

GD = f"document.querySelector('#{tl.MAP} .js-plotly-plot')"


def map_state(driver) -> dict | None:
    """First instance trace's drawn coordinates (decoded), and the trail slots' point counts."""
    js = f"""
      const gd = {GD}; if (!gd || !gd._fullData) return null;
      const inst = gd._fullData.filter(t => t.meta && t.meta.role === 'instances');
      if (!inst.length) return null;
      const trails = gd._fullData.filter(t => t.meta && t.meta.role === 'trail').map(t => (t.x || []).length);
      return {{x: Array.from(inst[0].x).slice(0, 50), y: Array.from(inst[0].y).slice(0, 50), trails: trails}};
    """
    return driver.execute_script(js)


def point_on_screen(driver) -> tuple[int, int, int]:
    """Viewport pixel position and id of a target-domain instance on the map."""
    js = f"""
      const gd = {GD}; const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      const t = gd._fullData.find(t => t.meta && t.meta.role === 'instances' && t.meta.domain === 'target');
      const k = Math.floor(t.x.length / 2);
      const p = [r.left + fl._size.l + fl.xaxis.d2p(t.x[k]), r.top + fl._size.t + fl.yaxis.d2p(t.y[k]),
                 Number(t.customdata[k])];
      return p.every(Number.isFinite) ? p : null;
    """
    x, y, i = wait_until("the map's axes", lambda: driver.execute_script(js), timeout=15)
    return int(x), int(y), int(i)


def test_timeline_play_advances_the_map_pause_holds_and_play_stops_at_the_end(dash_duo, demo_cache, artifacts: Path):
    from dashboard.app import create_app

    epochs = [int(e) for e in demo_cache.timeline_epochs()]
    assert len(epochs) >= 3, "the demo keeps several fine-tuning epochs"
    dash_duo.start_server(create_app(demo_cache.root))
    d = dash_duo.driver
    open_tab(d, "Fine-tuning timeline")
    start = wait_until("the timeline map", lambda: map_state(d))
    assert slider_value(d) == epochs[0]
    assert f"Epoch {epochs[0]}" in d.find_element(By.ID, tl.SUMMARY).text

    # the drawn points sit where the cache puts them at epoch 0 (first trace = class 0, source domain)
    pos = np.asarray(demo_cache.timeline_positions()[0])
    df = demo_cache.instances
    rows = np.flatnonzero((df["label"].to_numpy() == 0) & (df["domain"].to_numpy() == "source"))[:50]
    np.testing.assert_allclose(start["x"], pos[rows, 0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(start["y"], pos[rows, 1], rtol=1e-5, atol=1e-4)

    # a click on an instance adds it to the pool: its trail (one point at epoch 0) appears
    scroll_to(d, d.find_element(By.ID, tl.MAP))
    time.sleep(0.1)
    x, y, _ = point_on_screen(d)
    click_at(d, x, y)
    wait_until("a trail", lambda: (map_state(d) or {}).get("trails", [0])[0] == 1, timeout=10)

    # play: the slider advances to later epochs and the points move (and the trail grows)
    play = d.find_element(By.ID, tl.PLAY)
    play.click()
    wait_until("the slider to advance", lambda: (slider_value(d) or 0) > epochs[0], timeout=15)
    play.click()  # pause at once (at the latest epoch reached), before playback could reach the end
    wait_until("the play label", lambda: "play" in play.text, timeout=10)
    paused_at = slider_value(d)
    assert epochs[0] < paused_at < epochs[-1]
    def moved() -> dict | None:
        state = map_state(d)
        return state if state and state["x"] != start["x"] else None

    later = wait_until("the map to move", moved, timeout=10)
    assert later["trails"][0] == epochs.index(paused_at) + 1
    time.sleep(2.0)  # two play intervals: paused, nothing moves
    assert slider_value(d) == paused_at
    wait_until("the summary to follow", lambda: f"Epoch {paused_at}" in d.find_element(By.ID, tl.SUMMARY).text,
               timeout=5)

    # play again: it runs on to the last epoch and stops there
    play.click()
    wait_until("the pause label", lambda: "pause" in play.text, timeout=10)
    d.find_element(By.ID, tl.CARD).screenshot(str(artifacts / "timeline_playing.png"))
    wait_until("the last epoch", lambda: slider_value(d) == epochs[-1], timeout=20)
    wait_until("playback to stop", lambda: "play" in play.text, timeout=10)
    time.sleep(1.5)
    assert slider_value(d) == epochs[-1]
    wait_until("the full trail", lambda: (map_state(d) or {}).get("trails", [0])[0] == len(epochs), timeout=10)

    # the slider answers the arrow keys (issue 16, item 6): one kept epoch per press
    handle = d.find_element(By.CSS_SELECTOR, f"#{tl.SLIDER} [role=slider]")
    handle.send_keys(Keys.ARROW_LEFT)
    wait_until("an arrow key to step back", lambda: slider_value(d) == epochs[-2], timeout=10)
    wait_until("the summary to follow the key",
               lambda: f"Epoch {epochs[-2]}" in d.find_element(By.ID, tl.SUMMARY).text, timeout=10)
    handle.send_keys(Keys.ARROW_RIGHT)
    wait_until("an arrow key to step on", lambda: slider_value(d) == epochs[-1], timeout=10)

    # the flip rings are a toggle (issue 16, item 6): off, the ring trace empties and the summary keeps the count
    rings_js = f"const gd = {GD}; const t = gd._fullData.find(t => t.meta && t.meta.role === 'flips'); " \
               "return t ? (t.x || []).length : null;"
    n_flips = int(np.asarray(demo_cache.timeline_flips())[-1].sum())
    wait_until("the last epoch's rings", lambda: d.execute_script(rings_js) == n_flips, timeout=10)
    toggle = d.find_element(By.CSS_SELECTOR, f"#{tl.RINGS} input")
    scroll_to(d, toggle)
    toggle.click()
    wait_until("no rings", lambda: d.execute_script(rings_js) == 0, timeout=10)
    wait_until("the summary to keep the count", lambda: "rings hidden" in d.find_element(By.ID, tl.SUMMARY).text
               and f"{n_flips} prediction" in d.find_element(By.ID, tl.SUMMARY).text, timeout=10)
    toggle.click()
    wait_until("the rings back", lambda: d.execute_script(rings_js) == n_flips, timeout=10)
    ActionChains(d).move_to_element(d.find_element(By.ID, tl.SUMMARY)).perform()
    d.save_screenshot(str(artifacts / "timeline_1366x768.png"))
    assert_no_console_errors(dash_duo)
