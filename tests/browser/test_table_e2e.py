"""End to end: the instance table (dash-ag-grid, rows from the server) with its filter box, column filters,
sort, image pool and focus, in headless Chromium.

On the demo cache: open the "Instance diagnosis" tab, apply a filter expression (the "k of N"
line and the visible rows follow, with counts recomputed from the cache with numpy), see a
code-injection string refused, refine the box's query with a column filter of the grid's filter
row (the two combine), sort by a column on the server (the first rows are numpy's), check that
the validator's rewritten queries (!( ), case flags, column-to-column, quoted text) count what
numpy counts, click a cell (the image query view takes the instance and its row is highlighted;
the same cell clicked again after the focus moved elsewhere takes it again), tick rows (their
images fill the pool), untick one (it leaves the pool), click a pool image (the image query
takes it), clear the pool (the ticks follow the pool). The browser console must stay free of
errors.

Set ``TRANSFERVIZ_TEST_DEMO_CACHE`` to a built cache to skip building the demo.
"""

from __future__ import annotations

import time

import numpy as np
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from layouts import image_query as query_layout
from layouts import instance_table as ly
from tests.browser.grid_helpers import cell_at, column, filter_input, loaded
from tests.browser.helpers import (
    assert_no_console_errors,
    image_loaded,
    open_tab,
    replace_text,
    scroll_to,
    thumb_id,
    wait_until,
)


def count_text(d) -> str:
    return d.find_element(By.ID, ly.COUNT).text.strip()


def box_text(d) -> str:
    return d.find_element(By.ID, ly.FILTER_INPUT).get_attribute("value") or ""


def visible(d, col: str) -> list[str]:
    return [v for v in column(d, ly.TABLE, col) if v is not None]


def row_is_highlighted(d, instance_id: str) -> bool:
    """Whether the rendered row of ``instance_id`` has the focused-row background."""
    want = "rgba({}, {}, {}, 1)".format(*(int(ly.FOCUS_ROW_COLOR[k:k + 2], 16) for k in (1, 3, 5)))
    rows = d.find_elements(By.CSS_SELECTOR, f"#{ly.TABLE} .ag-center-cols-container .ag-row[row-id='{instance_id}']")
    return bool(rows) and rows[0].value_of_css_property("background-color") == want


def type_filter(d, text: str) -> None:
    replace_text(d.find_element(By.ID, ly.FILTER_INPUT), text, enter=True)


def test_filter_box_grid_filters_sort_pool_and_focus(dash_duo, demo_cache, artifacts):
    from dashboard.app import create_app
    from dashboard.views.instance_table.data import column_specs
    from dashboard.views.instance_table.filterexpr import validate

    df = demo_cache.instances
    n = len(df)
    names = np.asarray(demo_cache.classes)
    tloss = np.round(df["target_loss"].to_numpy(dtype=float), 4)
    wrong = int((df["target_pred"].to_numpy() != df["label"].to_numpy()).sum())
    hard = int((tloss > 2).sum())
    assert 0 < wrong < n and 0 < hard < n

    dash_duo.start_server(create_app(demo_cache.root))
    d = dash_duo.driver
    open_tab(d, "Instance diagnosis")
    wait_until("the rows to load", lambda: count_text(d) == f"{n:,} of {n:,} instances match" and loaded(d, ly.TABLE))
    shown = len(visible(d, "id"))
    assert 10 <= shown <= ly.BLOCK_SIZE  # only the rows in view are rendered

    # 1. a filter expression: the count and the visible rows follow
    # a bare column name on the left is accepted and braced; on the right a column needs braces
    type_filter(d, "target_pred != label")
    wait_until("the ambiguity note", lambda: "is a column name" in d.find_element(By.ID, ly.FILTER_MSG).text)
    type_filter(d, "target_pred != {label}")
    wait_until("the filtered count", lambda: count_text(d) == f"{wrong:,} of {n:,} instances match")
    assert box_text(d) == "{target_pred} != {label}"
    wait_until("the filtered rows", lambda: loaded(d, ly.TABLE) and all(
        lab != pred for lab, pred in zip(visible(d, "label"), visible(d, "target_pred"))))
    assert "applied" in d.find_element(By.ID, ly.FILTER_MSG).text

    # 2. an injection string is refused and changes nothing
    type_filter(d, "__import__('os').system('x')")
    wait_until("the refusal", lambda: "Refused" in d.find_element(By.ID, ly.FILTER_MSG).text)
    assert "function call" in d.find_element(By.ID, ly.FILTER_MSG).text
    assert count_text(d) == f"{wrong:,} of {n:,} instances match"
    scroll_to(d, d.find_element(By.ID, ly.FILTER_INPUT))
    d.save_screenshot(str(artifacts / "table_refused_1366x768.png"))

    # 3. a chip, then a column filter of the grid's filter row: they combine (AND)
    chip = next(e for e in d.find_elements(By.CSS_SELECTOR, f"#{ly.CARD} button") if e.text == "target wrong")
    scroll_to(d, chip)
    chip.click()
    wait_until("the chip's query", lambda: box_text(d) == ly.CHIPS[0][1])
    cell = filter_input(d, ly.TABLE, "domain")
    scroll_to(d, cell)
    cell.click()
    cell.send_keys("target")
    wrong_target = int(((df["target_pred"] != df["label"]) & (df["domain"] == "target")).sum())
    wait_until("the combined count", lambda: count_text(d) == f"{wrong_target:,} of {n:,} instances match")
    wait_until("target rows only", lambda: loaded(d, ly.TABLE) and set(visible(d, "domain")) == {"target"})
    assert box_text(d) == ly.CHIPS[0][1]  # the box keeps its own query
    # the column filter cleared: the box's query alone again
    cell.send_keys(Keys.CONTROL, "a")
    cell.send_keys(Keys.DELETE)
    wait_until("the chip's count", lambda: count_text(d) == f"{wrong:,} of {n:,} instances match")

    # 4. a server-side sort: a click on the target model's loss header sorts the whole answer
    type_filter(d, "{target_loss} > 2")
    wait_until("the hard count", lambda: count_text(d) == f"{hard:,} of {n:,} instances match")
    header = d.find_element(By.CSS_SELECTOR, f"#{ly.TABLE} .ag-header-cell[col-id='target_loss'] .ag-header-cell-label")
    scroll_to(d, header)
    header.click()  # ascending
    header.click()  # descending
    want = [f"{v:.3f}" for v in np.sort(tloss[tloss > 2])[::-1][:5]]
    wait_until("the largest losses first", lambda: loaded(d, ly.TABLE) and visible(d, "target_loss")[:5] == want)
    header.click()  # no sort: the cache's order
    wait_until("the cache's order", lambda: loaded(d, ly.TABLE) and visible(d, "id")[:3] == [
        str(i) for i in df["id"].to_numpy()[tloss > 2][:3]])

    # a click on a cell focuses its instance (the image query view shows it)
    row_id = visible(d, "id")[1]
    split_cell = cell_at(d, ly.TABLE, 1, "split")
    scroll_to(d, split_cell)
    split_cell.click()
    wait_until("the focused instance in the image query", lambda: d.find_element(
        By.ID, query_layout.INPUT).get_attribute("value") == row_id)
    wait_until("the focused row highlighted", lambda: row_is_highlighted(d, row_id))
    # the focus moves elsewhere (an id typed in the image query), then the same cell is clicked again
    other = next(i for i in visible(d, "id") if i != row_id)
    qbox = d.find_element(By.ID, query_layout.INPUT)
    scroll_to(d, qbox)
    replace_text(qbox, other)
    wait_until("the highlight to follow the typed id", lambda: row_is_highlighted(d, other)
               and not row_is_highlighted(d, row_id))
    split_cell = cell_at(d, ly.TABLE, 1, "split")
    scroll_to(d, split_cell)
    split_cell.click()
    wait_until("the same cell to focus its instance again", lambda: d.find_element(
        By.ID, query_layout.INPUT).get_attribute("value") == row_id and row_is_highlighted(d, row_id))

    # the rewritten queries mean what they say (counts from the cache)
    ids_ = df["id"].to_numpy()
    for text, expected in (
        ("!({pred_changed} = yes)", int((~df["pred_changed"].to_numpy(dtype=bool)).sum())),
        ("{label} != 3", int((df["label"].to_numpy() != list(names).index("3")).sum())),
        ("{id} contains 12 || {id} is odd", int(sum("12" in str(i) or i % 2 == 1 for i in ids_))),
        ("{domain} ieq TARGET && {source_loss} > {target_loss}", int(((df["domain"] == "target") & (
            np.round(df["source_loss"].to_numpy(dtype=float), 4) > tloss)).sum())),
    ):
        type_filter(d, text)
        canonical = validate(text, column_specs(demo_cache)).query
        wait_until(f"the box to show {canonical}", lambda c=canonical: box_text(d) == c)
        wait_until(f"the count of {text}", lambda e=expected: count_text(d) == f"{e:,} of {n:,} instances match")

    # 5. tick three rows: their images fill the pool, newest first
    type_filter(d, "{target_loss} > 2")
    wait_until("the hard count again", lambda: count_text(d) == f"{hard:,} of {n:,} instances match")
    wait_until("the hard rows", lambda: loaded(d, ly.TABLE) and all(float(v) > 2 for v in visible(d, "target_loss")))
    ids = visible(d, "id")[:3]
    for k in range(3):
        tick = cell_at(d, ly.TABLE, k, ly.POOLED)
        scroll_to(d, tick)
        tick.click()
        wait_until(f"tick {k + 1}", lambda k=k: cell_at(d, ly.TABLE, k, ly.POOLED).text == "\u2611")

    def pool_imgs() -> list:
        return d.find_elements(By.CSS_SELECTOR, f"#{ly.POOL_VIEW} img")

    wait_until("three pool images", lambda: len(pool_imgs()) == 3)
    assert [thumb_id(i) for i in pool_imgs()] == [int(i) for i in reversed(ids)]
    assert d.find_element(By.ID, ly.POOL_TITLE).text.endswith("(3/15)")
    wait_until("the thumbnails to load", lambda: all(image_loaded(d, i) for i in pool_imgs()))
    first = int(ids[0])
    assert names[int(df.loc[df["id"] == first, "label"].iloc[0])] in d.find_element(By.ID, ly.POOL_VIEW).text

    card = d.find_element(By.ID, ly.CARD)
    scroll_to(d, card)
    time.sleep(0.3)
    d.save_screenshot(str(artifacts / "table_1366x768.png"))
    card.screenshot(str(artifacts / "view_table_1366.png"))

    # untick the second row: it leaves the pool (the ticks are the pool)
    tick = cell_at(d, ly.TABLE, 1, ly.POOLED)
    scroll_to(d, tick)
    tick.click()
    wait_until("two pool images", lambda: len(pool_imgs()) == 2)
    assert [thumb_id(i) for i in pool_imgs()] == [int(ids[2]), int(ids[0])]

    # a click on a pool image focuses its instance (issue 16, item 6): the image query shows it
    shown_id = d.find_element(By.ID, query_layout.INPUT).get_attribute("value")
    pooled = next(i for i in pool_imgs() if str(thumb_id(i)) != shown_id)  # one the query does not show yet
    want_id = str(thumb_id(pooled))
    scroll_to(d, pooled)
    pooled.click()
    wait_until("the pool image's instance in the image query", lambda: d.find_element(
        By.ID, query_layout.INPUT).get_attribute("value") == want_id)

    # 6. clear: the pool empties and the ticks go
    d.find_element(By.ID, ly.POOL_CLEAR).click()
    wait_until("an empty pool", lambda: not pool_imgs())
    wait_until("unticked rows", lambda: "\u2611" not in column(d, ly.TABLE, ly.POOLED))

    assert_no_console_errors(dash_duo)
