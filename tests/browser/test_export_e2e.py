"""End to end: the instance CSVs (issue 13: a route, not a callback) land as files in headless Chromium.

On the tiny cache: open the "Instance diagnosis" tab, filter the table with the box, click its CSV
button: a file named after the run arrives in the browser's download folder with exactly the rows the
filter keeps (recomputed with pandas); tick two rows and export the pool; export the hard-example view
(no lasso: every instance its filters show). The console stays clean.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from selenium.webdriver.common.by import By

from layouts import hard_examples as hard_ly
from layouts import instance_table as ly
from tests.browser.grid_helpers import cell_at, loaded
from tests.browser.helpers import assert_no_console_errors, open_tab, replace_text, scroll_to, wait_until


def _downloaded(folder: Path, name: str) -> pd.DataFrame:
    """The CSV ``name`` once Chromium has finished writing it (no ``.crdownload`` left)."""
    path = folder / name
    wait_until(f"{name} to download", lambda: path.is_file() and not list(folder.glob("*.crdownload")))
    time.sleep(0.2)
    return pd.read_csv(path, keep_default_na=False)


def _click(d, element_id: str) -> None:
    button = d.find_element(By.ID, element_id)
    scroll_to(d, button)
    button.click()


def test_csv_buttons_download_what_the_views_show(dash_duo, tiny_cache, tmp_path, artifacts):
    from dashboard.app import create_app

    df = tiny_cache.instances
    dash_duo.start_server(create_app(tiny_cache.root))
    d = dash_duo.driver
    d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    open_tab(d, "Instance diagnosis")
    n = len(df)
    wait_until("the rows", lambda: loaded(d, ly.TABLE) and f"of {n:,} instances match" in
               d.find_element(By.ID, ly.COUNT).text)

    # the rows the box keeps, in the grid's order (by id: no sort)
    loss = df["target_loss"].astype(float).round(4)
    cut = round(float(loss.median()), 4)  # about half the rows
    replace_text(d.find_element(By.ID, ly.FILTER_INPUT), f"{{target_loss}} > {cut}", enter=True)
    want = df[loss > cut]["id"].tolist()
    assert 0 < len(want) < n
    wait_until("the filtered count", lambda: d.find_element(By.ID, ly.COUNT).text.startswith(f"{len(want):,} of"))
    _click(d, ly.EXPORT)
    got = _downloaded(tmp_path, f"{tiny_cache.name}_instances.csv")
    assert got["id"].tolist() == want
    assert list(got.columns)[:4] == ["id", "domain", "split", "label"]

    # the image pool: two ticked rows
    wait_until("the filtered rows", lambda: loaded(d, ly.TABLE))
    ticked = []
    for row in (0, 1):
        tick = cell_at(d, ly.TABLE, row, ly.POOLED)
        ticked.append(int(cell_at(d, ly.TABLE, row, "id").text))
        scroll_to(d, tick)
        tick.click()
        wait_until("the tick", lambda row=row: cell_at(d, ly.TABLE, row, ly.POOLED).text == "\u2611")
    _click(d, ly.POOL_EXPORT)
    pool = _downloaded(tmp_path, f"{tiny_cache.name}_pool.csv")
    assert sorted(pool["id"].tolist()) == sorted(ticked)

    # the hard-example view without a lasso: every instance its default filters show
    _click(d, hard_ly.EXPORT)
    hard = _downloaded(tmp_path, f"{tiny_cache.name}_hard_examples_shown.csv")
    assert len(hard) > 0 and set(hard["id"]) <= set(df["id"])
    d.save_screenshot(str(artifacts / "export_buttons.png"))
    assert_no_console_errors(dash_duo)
