"""End to end: the feature view's ranking list (a dash-ag-grid grid with row checkboxes), in headless Chromium.

On the tiny cache: the list opens with one page in the most-discriminative order and its top five checked;
every listed row's histogram and feature visualization load (from their routes: the grid's markdown cells
show no ``data:`` URIs); a tick adds the neuron to the URL's ``neurons`` and an axis to the biplot, an untick
removes it; "show more" appends the next page and keeps the ticks; reloading the link restores them; the
order switch lists the least discriminative first. The browser console must stay free of errors.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from selenium.webdriver.common.by import By

from tests.browser.grid_helpers import rows, selected_ids
from tests.browser.helpers import assert_no_console_errors, image_loaded, scroll_to, wait_until


def _url_neurons(d) -> list[str]:
    return parse_qs(urlparse(d.current_url).query).get("neurons", [""])[0].split(",")


def _axes(d) -> int:
    """Neuron axes drawn on the biplot (the texts of its axes-labels trace)."""
    from layouts import features as fl

    return d.execute_script(f"""
      const gd = document.querySelector('#{fl.BIPLOT} .js-plotly-plot');
      const t = gd && gd.data && gd.data.find(t => t.meta && t.meta.role === 'axes-labels');
      return t ? (t.text || []).length : 0;""")


def _tick(d, grid: str, row_id: str) -> None:
    box = d.find_element(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row[row-id='{row_id}'] "
                                          "input.ag-checkbox-input")
    scroll_to(d, box)
    d.execute_script("arguments[0].click();", box)  # AG Grid's input is transparent over its styled box


def _ids(d, grid: str) -> list[str]:
    return [r.get_attribute("row-id") for r in rows(d, grid)]


def test_ranking_grid_ticks_the_url_and_the_biplot(dash_duo, tiny_cache):
    from dashboard.app import create_app
    from dashboard.urlstate import default_state
    from dashboard.views.features import markup as fm
    from layouts import features as fl

    c = default_state(tiny_cache).cls
    full = [o["value"] for o in fm.ranking(tiny_cache, c, "target", "most", shown=10**6)[0]]
    assert len(full) > fm.MAX_ROWS, "the tiny cache ranks more than a page of neurons"
    grid = fl.RANKING
    dash_duo.start_server(create_app(tiny_cache.root))
    d = dash_duo.driver
    # one page in order, the top five ticked, five axes (the grid renders the rows in view: about eight)
    wait_until("the first rows", lambda: _ids(d, grid)[:5] == full[:5])
    wait_until("the top five ticked", lambda: sorted(selected_ids(d, grid)) == sorted(full[:5]))
    wait_until("five axes on the biplot", lambda: _axes(d) == 5)
    for img in d.find_elements(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container img"):
        wait_until(f"the image {img.get_attribute('src')}", lambda: image_loaded(d, img))
    hists = d.find_elements(By.CSS_SELECTOR, f"#{grid} img[alt^='conductance']")
    assert len(hists) >= 5 and all("/ranking-hist/target/" in h.get_attribute("src") for h in hists)

    # a tick: the neuron joins the URL and the biplot; an untick: it leaves both
    _tick(d, grid, full[6])
    wait_until("the tick in the URL", lambda: sorted(_url_neurons(d)) == sorted(full[:5] + [full[6]]))
    wait_until("six axes", lambda: _axes(d) == 6)
    _tick(d, grid, full[0])
    want = sorted(full[1:5] + [full[6]])
    wait_until("the untick in the URL", lambda: sorted(_url_neurons(d)) == want)
    wait_until("five axes again", lambda: _axes(d) == 5)

    # "show more": the next page is appended, the ticks stay
    more = d.find_element(By.ID, fl.MORE)
    assert more.text == f"show {len(full) - fm.MAX_ROWS} more ({fm.MAX_ROWS} of {len(full)} listed)"
    scroll_to(d, more)
    more.click()
    def at_the_end() -> bool:  # scrolled again each time: the appended page may arrive after a first scroll
        d.execute_script(f"document.querySelector('#{grid} .ag-body-viewport').scrollTop = 1e6;")
        return full[-1] in _ids(d, grid)

    wait_until("the last row", at_the_end)
    wait_until("the more button to hide", lambda: not d.find_element(By.ID, fl.MORE).is_displayed())
    assert sorted(_url_neurons(d)) == want

    # the link restores the ticks
    d.get(d.current_url)
    wait_until("the ticks of the link", lambda: sorted(selected_ids(d, grid)) == want)
    wait_until("their axes", lambda: _axes(d) == 5)

    # the order switch: the least discriminative first, its five ticked
    least = [o["value"] for o in fm.ranking(tiny_cache, c, "target", "least")[0]]
    d.execute_script("arguments[0].click();", d.find_element(By.CSS_SELECTOR, f"#{fl.ORDER} input[value=least]"))
    wait_until("the least discriminative first", lambda: _ids(d, grid)[:5] == least[:5])
    wait_until("its top five ticked", lambda: sorted(selected_ids(d, grid)) == sorted(least[:5]))
    assert_no_console_errors(dash_duo)
