"""End to end across views: the diagnosis tab's views share the focused instance and the image
pool, and the timeline follows the pool.

On the demo cache, in headless Chromium:

1. a click on the confusion grid's largest error cell lists exactly that cell's instances;
2. a click on one of its thumbnails focuses that instance: the image query's box and the
   hard-examples card show it;
3. an id typed into the image query focuses that instance in the hard-examples card;
4. rows ticked in the instance table (after a filter expression) fill the image pool;
5. the timeline tab draws one trail per pooled instance; play advances the epoch;
6. "clear trails" there empties the pool shown on the diagnosis tab.

The per-view tests (``test_table_e2e.py``, ``test_timeline_e2e.py``) go deeper into each view;
this one checks the wiring between them. Set ``TRANSFERVIZ_TEST_DEMO_CACHE`` to a built cache
to skip building the demo.
"""

from __future__ import annotations

import numpy as np
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from layouts import confusion_grid as conf_ly
from layouts import hard_examples as hard_ly
from layouts import image_query as query_ly
from layouts import instance_table as table_ly
from layouts import timeline as tl_ly
from tests.browser.grid_helpers import cell_at, column, loaded
from tests.browser.helpers import (
    assert_no_console_errors,
    click_at,
    open_tab,
    replace_text,
    scroll_to,
    slider_value,
    thumb_id,
    wait_until,
)


def cell_on_screen(d, true: int, pred: int) -> list[float] | None:
    """Viewport position of the grid cell (true, pred); the heatmap's axes are class indices."""
    js = f"""
      const gd = document.querySelector('#{conf_ly.GRAPH} .js-plotly-plot');
      if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis) return null;
      const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      // square cells shrink an axis' domain: its own offset, not the margin, is where it starts
      const p = [r.left + fl.xaxis._offset + fl.xaxis.c2p({pred}), r.top + fl.yaxis._offset + fl.yaxis.c2p({true})];
      return p.every(Number.isFinite) ? p : null;
    """
    return d.execute_script(js)


def trail_lengths(d) -> list[int] | None:
    js = f"""
      const gd = document.querySelector('#{tl_ly.MAP} .js-plotly-plot');
      if (!gd || !gd._fullData) return null;
      return gd._fullData.filter(t => t.meta && t.meta.role === 'trail').map(t => (t.x || []).length);
    """
    return d.execute_script(js)


def pool_ids(d) -> list[int]:
    return [thumb_id(i) for i in d.find_elements(By.CSS_SELECTOR, f"#{table_ly.POOL_VIEW} img")]


def test_focus_and_pool_link_the_diagnosis_views_and_the_timeline(dash_duo, demo_cache, artifacts):
    from dashboard.app import create_app

    df = demo_cache.instances
    # the target model's largest error cell on target-domain data (the grid's default selection)
    conf = demo_cache.confusion("target", "target").copy()
    np.fill_diagonal(conf, 0)
    true, pred = (int(v) for v in np.unravel_index(conf.argmax(), conf.shape))
    cell = df[(df["domain"] == "target") & (df["label"] == true) & (df["target_pred"] == pred)]["id"].tolist()
    assert len(cell) == conf[true, pred] > 0

    dash_duo.start_server(create_app(demo_cache.root))
    d = dash_duo.driver
    open_tab(d, "Instance diagnosis")

    # 1. the grid's cell lists exactly its instances
    graph = wait_until("the confusion grid", lambda: d.find_element(By.ID, conf_ly.GRAPH))
    scroll_to(d, graph)
    x, y = wait_until("the grid's axes", lambda: cell_on_screen(d, true, pred))
    click_at(d, x, y)

    def thumbs() -> list:
        return d.find_elements(By.CSS_SELECTOR, f"#{conf_ly.LIST} img")

    wait_until("the cell's thumbnails", lambda: len(thumbs()) == min(len(cell), 60))
    listed = [thumb_id(t) for t in thumbs()]
    assert set(listed) <= set(cell)

    # 2. a thumbnail focuses its instance in the image query and the hard-examples card
    chosen = listed[0]
    thumbs()[0].click()
    wait_until("the query box to show the instance",
               lambda: d.find_element(By.ID, query_ly.INPUT).get_attribute("value") == str(chosen))
    wait_until("the hard-examples card", lambda: f"#{chosen}" in d.find_element(By.ID, hard_ly.DETAIL).text)
    wait_until("the query's title", lambda: f"#{chosen}" in d.find_element(By.ID, query_ly.QUERY_INFO).text)

    # 3. an id typed into the image query focuses it everywhere
    typed = int(df[df["domain"] == "source"]["id"].iloc[7])
    box = d.find_element(By.ID, query_ly.INPUT)
    scroll_to(d, box)
    replace_text(box, str(typed), enter=True)
    wait_until("the typed instance in the card", lambda: f"#{typed}" in d.find_element(By.ID, hard_ly.DETAIL).text)
    d.save_screenshot(str(artifacts / "diagnosis_1366x768.png"))

    # 4. filtered, ticked table rows fill the image pool
    fbox = d.find_element(By.ID, table_ly.FILTER_INPUT)
    scroll_to(d, fbox)
    fbox.send_keys("{target_loss} > 2", Keys.ENTER)
    n_hard = int((np.round(df["target_loss"].to_numpy(dtype=float), 4) > 2).sum())
    wait_until("the filtered count", lambda: d.find_element(By.ID, table_ly.COUNT).text.startswith(f"{n_hard:,} of"))
    wait_until("the hard rows", lambda: loaded(d, table_ly.TABLE) and all(
        float(v) > 2 for v in column(d, table_ly.TABLE, "target_loss") if v))
    for k in range(2):  # the tick cells of the first two rows (the grid's row-index order)
        tick = cell_at(d, table_ly.TABLE, k, table_ly.POOLED)
        scroll_to(d, tick)
        tick.click()
        wait_until(f"tick {k + 1}", lambda k=k: cell_at(d, table_ly.TABLE, k, table_ly.POOLED).text == "\u2611")
    pooled = wait_until("two pooled images", lambda: (lambda p: p if len(p) == 2 else None)(pool_ids(d)))
    assert all(float(df.loc[df["id"] == i, "target_loss"].iloc[0]) > 2 - 1e-4 for i in pooled)

    # 5. the timeline draws a trail for each pooled instance and plays
    open_tab(d, "Fine-tuning timeline")
    wait_until("two trails", lambda: (lambda t: t is not None and len([n for n in t if n > 0]) == 2)(trail_lengths(d)))
    play = d.find_element(By.ID, tl_ly.PLAY)
    first = slider_value(d)
    play.click()
    wait_until("the epoch to advance", lambda: (slider_value(d) or 0) > (first or 0), timeout=15)
    wait_until("the trails to grow", lambda: min(n for n in trail_lengths(d) if n > 0) > 1, timeout=10)
    if "pause" in play.text:
        play.click()

    # 6. clearing the trails empties the pool the table shows
    d.find_element(By.ID, tl_ly.CLEAR).click()
    wait_until("no trails", lambda: not any(n > 0 for n in (trail_lengths(d) or [1])))
    open_tab(d, "Instance diagnosis")
    wait_until("an empty pool", lambda: pool_ids(d) == [])

    assert_no_console_errors(dash_duo)
