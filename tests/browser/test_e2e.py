"""End to end in a real headless Chromium against the demo cache (dash[testing]'s ``dash_duo``).

The page loads; choosing a class in the confusion table updates the instance view, the
network relation view and the feature view; a link carries the state and a bad link opens
the defaults with a notice; hovering a point shows its thumbnail card and a lasso lists the
chosen instances. The browser console must stay free of errors. Screenshots of the page and
of each view are saved to ``test-artifacts/`` at 1366 x 768 and at 1920 x 1080.

Set ``TRANSFERVIZ_TEST_DEMO_CACHE`` to a built cache to skip building the demo.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By

from layouts import ids
from layouts import instances as inst_layout
from layouts import statistics as stats_layout
from tests.browser.grid_helpers import selected_ids
from tests.browser.helpers import TIMEOUT, assert_no_console_errors, image_loaded, scroll_to, wait_until

NETWORK_GRAPH = "network-graph"  # layouts/network.py
FEATURE_BIPLOT = "feature-biplot"  # layouts/features.py
NETWORK_CLASS = "network-class"
LARGE = (1920, 1080)


# --- helpers --------------------------------------------------------------------------

def make_app(cache_root: Path):
    from dashboard.app import create_app

    return create_app(cache_root)


def graph_js(graph_id: str) -> str:
    return f"document.querySelector('#{graph_id} .js-plotly-plot')"


def figure_fingerprint(driver, graph_id: str) -> str | None:
    """A hash of a drawn figure's data and annotations (None while it is not drawn)."""
    js = (f"const gd = {graph_js(graph_id)}; if (!gd || !gd._fullLayout) return null;"
          "return JSON.stringify([gd.data, (gd.layout || {}).annotations || [], (gd.layout || {}).meta || null]);")
    text = driver.execute_script(js)
    return hashlib.sha1(text.encode()).hexdigest() if text else None


def is_loading(driver, graph_id: str) -> bool:
    js = (f"const gd = {graph_js(graph_id)}; if (!gd || !gd._fullLayout) return true;"
          "const m = (gd.layout || {}).meta; return !!(m && m.empty && String(m.message).startsWith('Loading'));")
    return bool(driver.execute_script(js))


def scatter_classes(driver) -> set[int]:
    js = (f"const gd = {graph_js(inst_layout.SCATTER)}; if (!gd || !gd.data) return null;"
          "return gd.data.filter(t => t.meta && t.meta.role === 'instances').map(t => t.meta.label);")
    return set(driver.execute_script(js) or [])


def checked_classes(driver) -> set[int]:
    return {int(e.get_attribute("value")) for e in
            driver.find_elements(By.CSS_SELECTOR, f"#{inst_layout.CLASSES} input[type=checkbox]")
            if e.is_selected()}


# Scrolling is always 'instant' (scroll_to): Bootstrap turns on smooth scrolling, and a test
# reading positions right after a smooth scroll sees the page mid-animation.

def select_class_in_table(driver, name: str) -> None:
    # the confusion grid's row id is the class index; a click on any cell selects the row
    cells = driver.find_elements(By.CSS_SELECTOR, f"#{stats_layout.TABLE} .ag-center-cols-container [col-id='class']")
    cell = next(c for c in cells if c.text.strip() == name)
    scroll_to(driver, cell)
    cell.click()


def shoot(driver, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def shoot_views(driver, artifacts: Path, suffix: str) -> None:
    """One screenshot per view (the card around each view's main component)."""
    for view, anchor in (("statistics", stats_layout.CARD), ("instances", inst_layout.CARD),
                         ("network", NETWORK_GRAPH), ("features", FEATURE_BIPLOT)):
        el = driver.find_element(By.ID, anchor)
        if "tv-card" not in (el.get_attribute("class") or ""):
            el = el.find_element(By.XPATH, "./ancestor::div[contains(concat(' ', @class, ' '), ' tv-card ')][1]")
        scroll_to(driver, el, block="start")
        el.screenshot(str(artifacts / f"view_{view}_{suffix}.png"))
    driver.execute_script("window.scrollTo({top: 0, left: 0, behavior: 'instant'});")


def full_page(driver, artifacts: Path, name: str, width: int) -> None:
    """The whole page at ``width``: the window grows to the page height for one shot."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, max(height + 120, 600))
    time.sleep(1.0)
    shoot(driver, artifacts, name)


def wait_page_ready(dash_duo) -> None:
    d = dash_duo.driver
    dash_duo.wait_for_element(f"#{stats_layout.TABLE}", timeout=TIMEOUT)
    wait_until("the instance scatter", lambda: scatter_classes(d))
    for gid in (NETWORK_GRAPH, FEATURE_BIPLOT):
        wait_until(f"{gid} to be drawn", lambda gid=gid: not is_loading(d, gid))


# --- tests ----------------------------------------------------------------------------

def test_page_loads_and_a_class_selection_updates_every_view(dash_duo, demo_cache, artifacts):
    from dashboard.urlstate import StateSpace

    space = StateSpace.from_cache(demo_cache)
    dash_duo.start_server(make_app(demo_cache.root))
    d = dash_duo.driver
    wait_page_ready(dash_duo)

    # the default class is selected everywhere
    assert scatter_classes(d) == set(space.default_classes(space.default_cls))
    assert checked_classes(d) == set(space.default_classes(space.default_cls))
    before = {g: figure_fingerprint(d, g) for g in (NETWORK_GRAPH, FEATURE_BIPLOT)}
    shoot(d, artifacts, "page_1366x768_top")
    shoot_views(d, artifacts, "1366")

    # choose another class in the confusion table
    target = next(c for c in range(len(space.classes)) if c not in space.default_classes(space.default_cls))
    name = space.classes[target]
    select_class_in_table(d, name)

    wait_until("the URL to record the class", lambda: f"class={name}" in d.current_url)
    expected = set(space.default_classes(target))
    wait_until("the checklist to follow", lambda: checked_classes(d) == expected)
    wait_until("the scatter to show the class", lambda: scatter_classes(d) == expected)
    wait_until("the table's selected row", lambda: selected_ids(d, stats_layout.TABLE) == [str(target)])
    wait_until("the network view's class selector", lambda: d.find_element(
        By.CSS_SELECTOR, f"#{NETWORK_CLASS}").text.strip().startswith(name))
    for gid in (NETWORK_GRAPH, FEATURE_BIPLOT):
        wait_until(f"{gid} to redraw for class {name}",
                   lambda gid=gid: not is_loading(d, gid) and figure_fingerprint(d, gid) not in (None, before[gid]))
    time.sleep(0.5)
    shoot(d, artifacts, f"page_1366x768_class_{target}")
    full_page(d, artifacts, "page_full_1366", 1366)

    d.set_window_size(*LARGE)
    time.sleep(1.0)
    shoot(d, artifacts, "page_1920x1080_top")
    shoot_views(d, artifacts, "1920")
    full_page(d, artifacts, "page_full_1920", LARGE[0])

    # nothing on the page overflows the window horizontally at either size
    for width in (1366, LARGE[0]):
        d.set_window_size(width, 768)
        time.sleep(0.8)
        scroll_w = d.execute_script("return document.documentElement.scrollWidth")
        assert scroll_w <= width, f"page is {scroll_w}px wide in a {width}px window"
    assert_no_console_errors(dash_duo)


def test_links_carry_the_state_and_bad_links_open_defaults_with_a_notice(dash_duo, demo_cache, artifacts):
    from dashboard.urlstate import StateSpace

    space = StateSpace.from_cache(demo_cache)
    dash_duo.start_server(make_app(demo_cache.root))
    d = dash_duo.driver
    base = dash_duo.server_url.rstrip("/")

    c = (space.default_cls + 1) % len(space.classes)
    classes = sorted({c, (c + 2) % len(space.classes)})
    d.get(f"{base}/?class={space.classes[c]}&classes={','.join(space.classes[i] for i in classes)}")
    wait_page_ready(dash_duo)
    wait_until("the linked classes in the scatter", lambda: scatter_classes(d) == set(classes))
    wait_until("the linked class selected in the table", lambda: selected_ids(d, stats_layout.TABLE) == [str(c)])
    assert not d.find_elements(By.CSS_SELECTOR, f"#{ids.NOTICE} .alert")

    d.get(f"{base}/?class=no-such-class&layers=conv99&model=teacher&neurons=x:1")
    wait_page_ready(dash_duo)
    alert = wait_until("the notice", lambda: d.find_element(By.CSS_SELECTOR, f"#{ids.NOTICE} .alert"))
    for word in ("no-such-class", "conv99", "teacher"):
        assert word in alert.text
    wait_until("the default class", lambda: scatter_classes(d) == set(space.default_classes(space.default_cls)))
    wait_until("the cleaned link", lambda: "no-such-class" not in d.current_url)
    shoot(d, artifacts, "page_notice_1366x768")
    alert.find_element(By.CSS_SELECTOR, "button.btn-close").click()
    wait_until("the notice to close", lambda: not d.find_elements(By.CSS_SELECTOR, f"#{ids.NOTICE} .alert.show"))
    assert_no_console_errors(dash_duo)


def _point_on_screen(driver) -> tuple[float, float, int]:
    """Viewport coordinates of the first point of an instance trace, and its instance id."""
    js = f"""
      const gd = {graph_js(inst_layout.SCATTER)};
      const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      // _fullData holds the decoded arrays (gd.data may keep numpy's base64 typed-array form)
      const full = gd._fullData.filter(t => t.meta && t.meta.role === 'instances');
      const t = full.find(t => t.meta.domain === 'target') || full[0];
      const p = [r.left + fl._size.l + fl.xaxis.d2p(t.x[0]), r.top + fl._size.t + fl.yaxis.d2p(t.y[0]),
                 Number(t.customdata[0])];
      return p.every(Number.isFinite) ? p : null;  // axes not laid out yet: ask again
    """
    x, y, i = wait_until("the scatter's axes", lambda: driver.execute_script(js), timeout=15)
    return float(x), float(y), int(i)


def _plot_box(driver) -> tuple[float, float, float, float]:
    js = f"""
      const gd = {graph_js(inst_layout.SCATTER)};
      const fl = gd._fullLayout, r = gd.getBoundingClientRect();
      return [r.left + fl._size.l, r.top + fl._size.t, fl._size.w, fl._size.h];
    """
    return tuple(float(v) for v in driver.execute_script(js))  # type: ignore[return-value]


def test_hover_shows_the_instance_card_and_a_lasso_lists_instances(dash_duo, demo_cache, artifacts):
    dash_duo.start_server(make_app(demo_cache.root))
    d = dash_duo.driver
    wait_page_ready(dash_duo)
    scatter = d.find_element(By.ID, inst_layout.SCATTER)
    scroll_to(d, scatter)
    time.sleep(0.2)

    x, y, inst_id = _point_on_screen(d)
    actions = ActionBuilder(d)
    actions.pointer_action.move_to_location(int(x) - 30, int(y) - 30)
    actions.pointer_action.move_to_location(int(x), int(y))
    actions.perform()
    img = wait_until("the hover card", lambda: d.find_element(
        By.CSS_SELECTOR, f"#{inst_layout.TOOLTIP} img"), timeout=15)
    assert "/thumb/" in img.get_attribute("src")
    wait_until("the thumbnail to load", lambda: image_loaded(d, img), timeout=10)
    card = d.find_element(By.ID, inst_layout.TOOLTIP).text
    assert "true label" in card and "target model" in card
    shoot(d, artifacts, "instances_hover_1366x768")

    # a lasso around the whole plot area selects every point
    left, top, w, h = _plot_box(d)
    path = [(left + 3, top + 3), (left + w - 3, top + 3), (left + w - 3, top + h - 3), (left + 3, top + h - 3),
            (left + 3, top + 6)]
    actions = ActionBuilder(d)
    actions.pointer_action.move_to_location(int(path[0][0]), int(path[0][1]))
    actions.pointer_action.pointer_down()
    for px, py in path[1:]:
        actions.pointer_action.move_to_location(int(px), int(py))
    actions.pointer_action.pointer_up()
    actions.perform()
    wait_until("the selection list", lambda: len(d.find_elements(
        By.CSS_SELECTOR, f"#{inst_layout.SELECTION} img")) > 0, timeout=15)
    assert "selected" in d.find_element(By.ID, inst_layout.SELECTION).text
    ActionChains(d).move_to_element(d.find_element(By.ID, inst_layout.SELECTION)).perform()
    time.sleep(0.8)
    shoot(d, artifacts, "instances_lasso_1366x768")
    d.find_element(By.ID, inst_layout.CARD).screenshot(str(artifacts / "view_instances_lasso.png"))
    assert_no_console_errors(dash_duo)


def test_network_figure_fits_its_box_and_the_layer_slider_names_the_paths(dash_duo, demo_cache, artifacts):
    """Issue 16 item 2 (replacing issue 11's scrolling box): the network figure fits its card at 1366 x 768,
    no horizontal scroll, its cells as large as the box allows (zoom and pan for more); the layer slider
    shows short tags and names the full module paths on hover (the box's title, each handle's tooltip)."""
    from layouts import network as net_layout

    dash_duo.start_server(make_app(demo_cache.root))
    d = dash_duo.driver
    wait_page_ready(dash_duo)
    box = d.find_element(By.ID, net_layout.SCROLL)
    scroll_to(d, box, block="start")
    js = f"""
      const gd = {graph_js(NETWORK_GRAPH)}, fl = gd._fullLayout, box = document.getElementById('{net_layout.SCROLL}');
      return {{width: gd.getBoundingClientRect().width, layout_width: fl.width, box_client: box.clientWidth,
               box_scroll: box.scrollWidth, dragmode: fl.dragmode}};
    """
    m = wait_until("the network figure's geometry", lambda: d.execute_script(js))
    assert m["width"] <= m["box_client"] + 1, m  # the figure fits the card
    assert m["box_scroll"] <= m["box_client"] + 1, m  # nothing to scroll sideways
    assert m["dragmode"] in ("zoom", "pan"), m  # a drag zooms or pans for more

    marks = [e.text for e in d.find_elements(By.CSS_SELECTOR, f"#{net_layout.LAYERS} .dash-slider-mark")]
    assert marks[:len(demo_cache.layers)] == [f"L{i + 1}" for i in range(len(demo_cache.layers))]
    holder = d.find_element(By.CSS_SELECTOR, "[data-layer-names]")
    assert holder.get_attribute("title").split("\n")[0].startswith(f"L1 = {demo_cache.layers[0]}")
    thumb = d.find_element(By.CSS_SELECTOR, f"#{net_layout.LAYERS} .dash-slider-thumb-1")
    scroll_to(d, thumb)
    ActionChains(d).move_to_element(thumb).perform()
    tip = wait_until("the handle's tooltip", lambda: next(
        (e for e in d.find_elements(By.CSS_SELECTOR, f"#{net_layout.LAYERS} .dash-slider-tooltip")
         if e.is_displayed()), None), timeout=10)
    assert tip.text.strip() == f"L1 {demo_cache.layers[0]}"
    shoot(d, artifacts, "network_slider_tooltip_1366x768")
    assert_no_console_errors(dash_duo)


def test_a_click_on_a_red_dot_opens_its_weight(dash_duo, demo_cache, artifacts):
    """Issue 16 item 6: the red dot on a target weight square (a source correspondence) takes the
    click; it must open the weight's details, as a click on a square without a dot does."""
    import dash

    from callbacks import network as net_callbacks
    from layouts import network as net_layout

    # the network view alone (its store and its callbacks): what it does not depend on stays out
    app = dash.Dash(__name__, assets_folder=str(Path(__file__).resolve().parents[2] / "dashboard" / "assets"))
    app.layout = dash.html.Div([dash.dcc.Location(id=ids.URL, refresh=False),
                                dash.dcc.Store(id=ids.SELECTED_CLASS, data=0), net_layout.layout(demo_cache)])
    net_callbacks.register(app, demo_cache)
    dash_duo.start_server(app)
    d = dash_duo.driver
    js = f"""
      const gd = {graph_js(NETWORK_GRAPH)}, fl = gd && gd._fullLayout;
      if (!fl || !fl.xaxis) return null;
      const t = (gd.data || []).find(t => t.meta && t.meta.role === 'correspondence' && t.x && t.x.length);
      if (!t) return null;
      const r = gd.getBoundingClientRect();
      return {{x: r.left + fl.xaxis._offset + fl.xaxis.l2p(t.x[0]),
               y: r.top + fl.yaxis._offset + fl.yaxis.l2p(t.y[0])}};
    """
    p = wait_until("a red dot", lambda: d.execute_script(js))
    box = d.find_element(By.ID, net_layout.SCROLL)
    # bring the first dot into the window: scroll the page to the box, then the box to the dot
    scroll_to(d, box, block="start")
    b = d.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top];", box)
    p = d.execute_script(js)
    d.execute_script("arguments[0].scrollLeft += arguments[1]; arguments[0].scrollTop += arguments[2];",
                     box, max(0, p["x"] - b[0] - 100), max(0, p["y"] - b[1] - 100))
    time.sleep(0.3)
    p = d.execute_script(js)
    # hover first (plotly clicks the point it hovers), then click, at the dot's centre in the window
    actions = ActionBuilder(d)
    actions.pointer_action.move_to_location(int(p["x"]), int(p["y"]))
    actions.pointer_action.pause(0.4)
    actions.pointer_action.click()
    actions.perform()
    panel = wait_until("the weight's details", lambda: d.find_elements(
        By.CSS_SELECTOR, f"#{net_layout.DETAIL} [data-kind='weight']"), timeout=15)
    txt = panel[0].text.lower()
    assert txt.startswith("target weight") and "correspondence" in txt, txt
    shoot(d, artifacts, "network_red_dot_click_1366x768")
    assert_no_console_errors(dash_duo)
