"""The scatter maps at 100k instances in a browser (issue 13, item 4): the hard-example loss maps draw a
stratified sample, say "showing k of N" on the map, and the page stays error-free.

Reuses the session's inflated 100k cache (``inflated_cache``, shared with test_grid_scale_e2e.py).
"""

from __future__ import annotations

from selenium.webdriver.common.by import By

from dashboard.sampling import MAX_POINTS
from layouts import hard_examples as ly
from tests.browser.helpers import assert_no_console_errors, scroll_to, wait_until

N = 100_000

#: Points plotly.js holds in each instance trace of a graph (its own parsed data, typed arrays decoded).
_POINTS = """const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  return gd._fullData.filter(t => t.meta && t.meta.role === 'instances').map(t => (t.x || []).length);"""


def test_loss_maps_draw_a_sample_at_100k_with_its_note(dash_duo, inflated_cache):
    from dashboard.app import create_app

    cache = inflated_cache(N)
    dash_duo.start_server(create_app(cache.root))
    d = dash_duo.driver
    d.get(dash_duo.server_url + "/?tab=diagnosis")
    card = wait_until("the hard-example maps", lambda: d.find_element(By.ID, ly.HIDDEN_MAP))
    scroll_to(d, card)
    # a sample, not the 100k, in both maps (waited for: a map may still hold its placeholder or a first draw)
    for graph in (ly.HIDDEN_MAP, ly.PIXEL_MAP):
        wait_until(f"{graph}'s {MAX_POINTS:,} points",
                   lambda graph=graph: sum(d.execute_script(_POINTS, graph) or [0]) == MAX_POINTS)
    note = f"showing {MAX_POINTS:,} of {N:,} instances"
    wait_until("the note on the map", lambda: any(note in e.text for e in d.find_elements(
        By.CSS_SELECTOR, f"#{ly.HIDDEN_MAP} .annotation-text")))
    assert_no_console_errors(dash_duo)


def test_a_find_patches_the_instance_maps_rings_in_the_browser(dash_duo, tiny_cache):
    """The find box's rings on the instance view's map arrive as a dash.Patch of its last trace (negative
    index): the renderer must apply it to the drawn map, ringing the found instance."""
    from dashboard.app import create_app
    from dashboard.urlstate import default_state
    from layouts import ids
    from layouts import instances as inst_layout
    from tests.browser.helpers import replace_text

    shown = list(default_state(tiny_cache).classes)
    df = tiny_cache.instances
    target = int(df.loc[df.label.isin(shown), "id"].iloc[-1])
    dash_duo.start_server(create_app(tiny_cache.root))
    d = dash_duo.driver
    rings = f"""const gd = document.querySelector('#{inst_layout.SCATTER} .js-plotly-plot');
      if (!gd || !gd._fullData || !gd._fullData.length) return null;
      const t = gd._fullData[gd._fullData.length - 1];
      return t.meta && t.meta.role === 'highlight' ? Array.from(t.customdata || []).map(Number) : null;"""
    assert wait_until("the map's empty ring trace", lambda: d.execute_script(rings) == [] or None)
    n_traces = d.execute_script(f"return document.querySelector('#{inst_layout.SCATTER} .js-plotly-plot').data.length")
    replace_text(d.find_element(By.ID, ids.FIND), str(target), enter=True)
    wait_until("the ring on the instance map", lambda: d.execute_script(rings) == [target])
    # patched, not redrawn with more traces
    assert d.execute_script(f"return document.querySelector('#{inst_layout.SCATTER} .js-plotly-plot')"
                            ".data.length") == n_traces
    assert_no_console_errors(dash_duo)
