"""End to end at 100k instances (issue 13, item 4): the instance table scrolls through 100,000 rows that
stay on the server, sorted on the server, with a clean console.

The cache is the tiny test cache inflated to 100,000 instances by ``tools/inflate_cache.py`` (the
session's ``inflated_cache`` fixture: ids 0..N-1 in the frame's order). The grid's viewport is
scrolled to the middle and to the end: the rows rendered there must be the right ones (row ``k``
of the unsorted table is instance ``k``), fetched a block at a time; a click on a header sorts
the 100k rows on the server and the end of the scroll shows the smallest losses. The browser
console must hold no error and no AG Grid warning.
"""

from __future__ import annotations

import time

import numpy as np
from selenium.webdriver.common.by import By

from layouts import instance_table as ly
from tests.browser.grid_helpers import column, loaded
from tests.browser.helpers import scroll_to, wait_until

N = 100_000


def _scroll(d, fraction: float) -> None:
    d.execute_script(f"""const v = document.querySelector('#{ly.TABLE} .ag-body-viewport');
                         v.scrollTop = (v.scrollHeight - v.clientHeight) * {fraction};""")


def _ids_at(d) -> list[int]:
    return [int(i) for i in column(d, ly.TABLE, "id") if i]


def _row_indices(d) -> list[int]:
    return d.execute_script(f"""return Array.from(document.querySelectorAll(
        '#{ly.TABLE} .ag-center-cols-container .ag-row')).map(r => +r.getAttribute('row-index'))
        .sort((a, b) => a - b);""")


def test_the_table_scrolls_100k_rows_with_a_clean_console(dash_duo, inflated_cache, artifacts):
    from dashboard.app import create_app

    cache = inflated_cache(N)
    frame_ids = cache.instances["id"].to_numpy()
    assert len(frame_ids) == N
    tloss = np.round(cache.instances["target_loss"].to_numpy(dtype=float), 4)

    t0 = time.time()
    dash_duo.start_server(create_app(cache.root))
    print(f"app up {time.time() - t0:.1f} s")
    d = dash_duo.driver
    # straight to the tab (a link carries it): the analysis tab's 100k-point maps are not drawn first
    d.get(dash_duo.server_url + "/?tab=diagnosis")
    wait_until("the table's card", lambda: d.find_element(By.ID, ly.CARD))
    scroll_to(d, d.find_element(By.ID, ly.CARD))
    wait_until("the first block", lambda: d.find_element(By.ID, ly.COUNT).text == f"{N:,} of {N:,} instances match"
               and loaded(d, ly.TABLE))
    print(f"first block {time.time() - t0:.1f} s")
    # only the rows in view are in the page, never the 100k
    assert len(_ids_at(d)) <= 2 * 20

    for fraction in (0.5, 0.9, 1.0):
        _scroll(d, fraction)
        wait_until(f"the rows at {fraction:.0%}", lambda f=fraction: loaded(d, ly.TABLE)
                   and min(_row_indices(d)) >= int(f * N) - 100)
        idx = _row_indices(d)
        assert _ids_at(d) == [int(frame_ids[i]) for i in idx]
    assert max(_row_indices(d)) == N - 1  # the end of the scroll is the last instance
    print(f"scrolled {time.time() - t0:.1f} s")

    # a sort on the server: the end of the descending sort holds the smallest losses
    header = d.find_element(By.CSS_SELECTOR, f"#{ly.TABLE} .ag-header-cell[col-id='target_loss'] "
                                             ".ag-header-cell-label")
    header.click()
    header.click()  # descending; the grid drops its blocks and starts again from the top
    largest = f"{np.sort(tloss)[-1]:.3f}"
    wait_until("the largest loss first", lambda: loaded(d, ly.TABLE) and min(_row_indices(d)) == 0
               and column(d, ly.TABLE, "target_loss")[0] == largest)
    _scroll(d, 1.0)
    smallest = f"{np.sort(tloss)[0]:.3f}"
    wait_until("the smallest loss at the end", lambda: loaded(d, ly.TABLE) and max(_row_indices(d)) == N - 1
               and column(d, ly.TABLE, "target_loss")[-1] == smallest)
    print(f"sorted {time.time() - t0:.1f} s")
    d.save_screenshot(str(artifacts / "table_100k_sorted_end_1366x768.png"))

    logs = d.get_log("browser")
    bad = [e["message"][:300] for e in logs if e["level"] == "SEVERE" or "AG Grid" in e["message"]]
    assert bad == [], "\n".join(bad)
