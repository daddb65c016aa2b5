"""Views A and B and the URL state: callbacks called directly on the tiny cache.

The pure functions behind each callback are called with the cache, and a few requests go
through Dash's own ``/_dash-update-component`` endpoint to check the wiring.
"""

from __future__ import annotations

import json

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pytest
from dash import html

from callbacks import instances as cb_inst
from callbacks import page as cb_state
from callbacks import statistics as cb_stats
from dashboard import lookups
from dashboard.theme import is_empty_figure
from dashboard.urlstate import StateSpace, parse_state
from dashboard.views.instances import data as inst_data
from dashboard.views.instances import markup as inst_markup
from dashboard.views.statistics import data as stats_data
from layouts import ids
from layouts import instances as inst_layout
from layouts import statistics as stats_layout
from tests.components import find, of_type, texts, traces
from tests.conftest import dispatch

NO = dash.no_update


@pytest.fixture(scope="module")
def space(tiny_cache):
    return StateSpace.from_cache(tiny_cache)


# --- layouts ------------------------------------------------------------------------

def test_layouts_hold_the_views_components(tiny_app, tiny_cache, space):
    for id_ in (stats_layout.TABLE, stats_layout.ACCURACY, stats_layout.BADGE, inst_layout.CLASSES,
                inst_layout.SCATTER, inst_layout.TOOLTIP, inst_layout.SELECTION, ids.URL, ids.NOTICE):
        assert find(tiny_app.layout, id_) is not None, id_
    table = find(tiny_app.layout, stats_layout.TABLE)
    assert all(c["sortable"] for c in table.columnDefs)
    assert table.dashGridOptions["rowSelection"]["mode"] == "singleRow"
    assert [c["field"] for c in table.columnDefs] == [c for c, _ in stats_data.TABLE_COLUMNS]
    assert [r["id"] for r in table.rowData] == list(range(len(tiny_cache.classes)))  # row id = class index
    assert table.selectedRows == {"ids": [str(space.default_cls)]}
    # every graph exports from its mode bar
    for gid in (stats_layout.ACCURACY, inst_layout.SCATTER):
        cfg = find(tiny_app.layout, gid).config
        assert cfg["toImageButtonOptions"]["format"] in ("svg", "png")
    # the accuracy chart has the six series; the badge shows the signed score
    assert len(find(tiny_app.layout, stats_layout.ACCURACY).figure.data) == 6
    score = tiny_cache.json("analysis/summary.json")["transferability"]
    assert f"{score:+.2f}" in texts(find(tiny_app.layout, stats_layout.BADGE))


def test_class_options_list_counts_per_domain(tiny_cache):
    opts = inst_layout.class_options(tiny_cache)
    counts = lookups.class_counts(tiny_cache)
    assert [o["value"] for o in opts] == list(range(len(tiny_cache.classes)))
    text = texts(opts[0]["label"])
    assert str(counts.loc[0, "source"]) in text and str(counts.loc[0, "target"]) in text


def test_table_records_are_json_safe_and_sortable(tiny_cache):
    rows = stats_data.class_table_records(tiny_cache)
    json.dumps(rows, allow_nan=False)
    assert all(isinstance(r["source_acc"], (float, type(None))) for r in rows)
    table = tiny_cache.table("analysis/class_table.parquet")
    none = stats_data.NONE_MISTAKEN
    assert [r["mistaken_for"] for r in rows] == [(m or none) if n else "no target validation instances"
                                                 for m, n in zip(table.mistaken_for, table.n)]
    assert all(r["source_mistaken_for"] for r in rows if r["n"])


def test_confusion_table_shows_and_sorts_both_models_mistakes(tiny_app, tiny_cache):
    """Issue 16 item 5: the source model's confusions are a column of their own (not only a
    tooltip), sortable like the target model's, which keeps its id ``mistaken_for``."""
    table = find(tiny_app.layout, stats_layout.TABLE)
    cols = {c["field"]: c for c in table.columnDefs}
    assert "mistaken_for" in cols and "source_mistaken_for" in cols
    assert "target" in cols["mistaken_for"]["headerName"] and "source" in cols["source_mistaken_for"]["headerName"]
    assert cols["mistaken_for"]["sortable"] and cols["source_mistaken_for"]["sortable"]
    raw = tiny_cache.table("analysis/class_table.parquet").sort_values("class_index")
    none = stats_data.NONE_MISTAKEN
    for r, m, n in zip(table.rowData, raw.source_mistaken_for, raw.n):
        assert r["source_mistaken_for"] == ((m or none) if n else "")
    # each cell's full text is one hover away (an ellipsis cuts long lists): the tooltip is the cell's value
    for cid, model in stats_data.MISTAKE_COLUMNS.items():
        tip = cols[cid]["tooltipValueGetter"]["function"]
        assert f"'{model} model: '" in tip and "params.value" in tip


def test_class_colours_are_stable_and_distinct(tiny_cache):
    colours = lookups.class_colors(tiny_cache)
    assert list(colours) == list(range(len(tiny_cache.classes)))
    assert len(set(colours.values())) == len(colours)
    lab = [lookups._lab(c) for c in colours.values()]
    closest = min(np.linalg.norm(a - b) for i, a in enumerate(lab) for b in lab[i + 1:])
    assert closest > 25  # the theme's first ten, in order, have a pair at 14 (orange / dark orange)
    assert lookups.distinct_class_palette(3) == list(colours.values())[:3]


# --- state ----------------------------------------------------------------------------

def test_initial_load_without_query_selects_the_default(space):
    out = cb_state.sync_state(space, None, "", [], [], None)
    search, cls, notice, rows, classes = out
    assert search is NO and notice is NO  # a plain link is not rewritten
    assert cls == space.default_cls and rows == [space.default_cls]
    assert classes == list(space.default_classes(space.default_cls))
    # nothing changes when everything already agrees (no redraw of the other views)
    again = cb_state.sync_state(space, ids.URL, "", [cls], classes, cls)
    assert all(v is NO for v in again)


def test_link_selects_its_class(space):
    name = space.classes[1]
    search, cls, notice, rows, classes = cb_state.sync_state(space, ids.URL, f"?class={name}", [0], [0], 0)
    assert search is NO and notice is NO
    assert cls == 1 and rows == [1] and classes == list(space.default_classes(1))


def test_bad_link_opens_defaults_with_a_notice(space):
    search, cls, notice, rows, classes = cb_state.sync_state(
        space, ids.URL, "?class=nope&layers=zzz&model=x&neurons=a:1&foo=1", [], [], None)
    assert cls == space.default_cls
    assert isinstance(notice, dbc.Alert)
    assert notice.dismissable and notice.is_open
    assert "nope" in texts(notice) and "zzz" in texts(notice) and "foo" in texts(notice)
    # the link is cleaned: what is left parses without notices
    assert parse_state(search, space)[1] == []


def test_link_with_a_non_important_neuron_names_it_in_a_notice(tiny_cache, space):
    """Issue 16 item 6: a valid neuron index that is not an important neuron of the link's class
    and model cannot be checked; it used to vanish silently, now a notice names it."""
    from dashboard.views.features import data as feat_data

    c, name = 4, space.classes[4]
    d = feat_data.discriminability(tiny_cache, "target", c)
    assert d.ok
    important = {(str(layer), int(n)) for layer, n in zip(d.neurons["layer"], d.neurons["neuron"])}
    good = sorted(important)[0]
    layer = good[0]
    bad = next((layer, i) for i in range(space.neuron_counts[layer]) if (layer, i) not in important)
    link = f"?class={name}&model=target&neurons={good[0]}:{good[1]},{bad[0]}:{bad[1]}"
    state, notices = parse_state(link, space)
    assert notices == [] and bad in state.neurons  # valid as far as the layer sizes go
    check = cb_state.neuron_check(tiny_cache, space)
    search, cls, notice, rows, classes = cb_state.sync_state(space, ids.URL, link, [c], [c], c, check)
    assert isinstance(notice, dbc.Alert)
    txt = texts(notice)
    assert f"{bad[0]}:{bad[1]}" in txt and f"#{bad[1]}" in txt and "not important" in txt
    assert f"{good[0]}:{good[1]}" not in txt
    # the link is cleaned to the neurons the list can check
    assert parse_state(search, space)[0].neurons == (good,)
    # only the bad one: the top five instead, said so
    only_bad = f"?class={name}&model=target&neurons={bad[0]}:{bad[1]}"
    search, _, notice, _, _ = cb_state.sync_state(space, ids.URL, only_bad, [c], [c], c, check)
    assert "top five" in texts(notice) and parse_state(search, space)[0].neurons == ()
    # important neurons only: no notice
    ok = f"?class={name}&model=target&neurons={good[0]}:{good[1]}"
    assert cb_state.sync_state(space, ids.URL, ok, [c], [c], c, check)[2] is NO


def test_table_row_selects_class_everywhere(space):
    old = f"?class={space.classes[0]}&model=source&order=least&layers={','.join(space.layers[1:3])}"
    search, cls, notice, rows, classes = cb_state.sync_state(space, stats_layout.TABLE, old, [2], [0], 0)
    assert cls == 2 and rows is NO and notice is NO
    assert classes == list(space.default_classes(2))
    state, notices = parse_state(search, space)
    assert notices == [] and state.cls == 2
    # the other views' keys pass through
    assert state.model == "source" and state.order == "least" and state.layers == tuple(space.layers[1:3])
    # deselecting (no row) changes nothing
    assert all(v is NO for v in cb_state.sync_state(space, stats_layout.TABLE, old, [], [0], 0))


def test_checklist_records_instance_classes(space):
    search, cls, notice, rows, classes = cb_state.sync_state(space, inst_layout.CLASSES, "", [0], [3, 1], 0)
    assert cls is NO and rows is NO and classes is NO
    assert parse_state(search, space)[0].classes == (1, 3)
    # an emptied checklist is a state too (the scatter shows its empty message)
    search, *_ = cb_state.sync_state(space, inst_layout.CLASSES, "", [0], [], 0)
    assert parse_state(search, space)[0].classes == ()


def test_class_chosen_in_another_view_reaches_url_and_table(space):
    search, cls, notice, rows, classes = cb_state.sync_state(space, ids.SELECTED_CLASS, "", [0], [0], 3)
    assert cls is NO and rows == [3] and parse_state(search, space)[0].cls == 3


def test_confusion_grid_selection_conversions():
    # what the grid reports after a click (the row's data), and what the server set (row ids)
    assert cb_stats.classes_of_selection([{"class_index": 7, "class": "7", "id": 7}]) == [7]
    assert cb_stats.classes_of_selection({"ids": ["4"]}) == [4]
    for junk in (None, [], "3", 3, {"ids": "3"}, [{"class_index": "x"}], [5], {"function": "x"}):
        assert cb_stats.classes_of_selection(junk) == []
    assert cb_stats.selection_for([2]) == {"ids": ["2"]}
    assert cb_stats.selection_for([]) == {"ids": []}
    assert cb_stats.selection_for(NO) is NO


# --- instances ------------------------------------------------------------------------

def test_scatter_of_selected_classes(tiny_cache):
    fig, selected, summary, key, title = cb_inst.update_scatter(tiny_cache, [1, 3])
    assert selected is None  # the previous selection belonged to another map
    pts = traces(fig, "instances")
    assert {t.meta["label"] for t in pts} == {1, 3}
    assert all(t.type == "scattergl" and t.hoverinfo == "none" for t in pts)  # the tooltip replaces hover labels
    # plain-list ids: dcc.Graph drops a base64 typed-array customdata from hoverData/selectedData
    assert all(isinstance(t["customdata"], (list, tuple)) for t in traces(fig.to_plotly_json(), "instances"))
    df = tiny_cache.instances
    assert sum(len(t.x) for t in pts) == int(df.label.isin([1, 3]).sum())
    # several classes: the global map's coordinates of their instances
    glob = np.asarray(tiny_cache.tsne())
    for t in pts:
        assert np.allclose(np.column_stack([t.x, t.y]), glob[list(t.customdata)])
    again = cb_inst.update_scatter(tiny_cache, [3, 1])[0]
    assert np.allclose(np.concatenate([t.x for t in traces(again, "instances")]),
                       np.concatenate([t.x for t in pts]))
    assert "mispredicted" in texts(summary)
    assert title == "class colours (2)" and len(key) == 2


def test_scatter_of_every_class_is_the_global_map(tiny_cache):
    fig = cb_inst.update_scatter(tiny_cache, list(range(len(tiny_cache.classes))))[0]
    frame = inst_data.projection_frame(tiny_cache, range(len(tiny_cache.classes)))
    glob = np.asarray(tiny_cache.tsne())
    assert frame.attrs["map"] == "global"
    assert np.allclose(frame[["x", "y"]].to_numpy(), glob[frame["id"].to_numpy()])
    assert len(traces(fig, "instances")) >= 2 * len(tiny_cache.classes) - 2


def test_scatter_highlight_keeps_the_lasso_selection(tiny_cache):
    df = tiny_cache.instances
    found = [int(v) for v in df.loc[df.label == 1, "id"][:3]]
    patch, selected, *rest = cb_inst.update_scatter(tiny_cache, [1, 3], found, ids.HIGHLIGHT)
    assert selected is NO and all(r is NO for r in rest)  # only the rings changed: the lasso still points here
    # one dash.Patch of the map's last trace, its ring trace (issue 13: never the points again)
    (op,) = patch.to_plotly_json()["operations"]
    assert op["operation"] == "Assign" and op["location"] == ["data", -1]
    assert op["params"]["value"]["meta"]["role"] == "highlight"
    assert sorted(op["params"]["value"]["customdata"]) == sorted(found)
    full = cb_inst.update_scatter(tiny_cache, [1, 3], found)[0]
    assert full.data[-1].meta["role"] == "highlight" and sorted(full.data[-1].customdata) == sorted(found)
    # nothing found on the map: the ring trace is patched empty (a map without points is left alone)
    (op,) = cb_inst.update_scatter(tiny_cache, [3], found, ids.HIGHLIGHT)[0].to_plotly_json()["operations"]
    assert op["params"]["value"]["customdata"] == []
    assert cb_inst.update_scatter(tiny_cache, [], found, ids.HIGHLIGHT)[0] is NO


def test_scatter_empty_state(tiny_cache):
    fig, _, summary, key, _ = cb_inst.update_scatter(tiny_cache, [])
    assert is_empty_figure(fig) and "Select" in fig.layout.meta["message"]
    assert summary == "No class selected." and key == []
    fig = cb_inst.update_scatter(tiny_cache, ["x", None])[0]  # garbage from a client
    assert is_empty_figure(fig)


def test_hover_card_shows_thumbnail_domain_label_prediction(tiny_cache):
    df = tiny_cache.instances
    i = int(df.index[(df.domain == "target")][0])
    hover = {"points": [{"customdata": i, "bbox": {"x0": 1, "x1": 2, "y0": 3, "y1": 4}, "curveNumber": 0}]}
    show, bbox, card = cb_inst.hover_card(tiny_cache, hover, "/")
    assert show is True and bbox == hover["points"][0]["bbox"]
    imgs = of_type(card, html.Img)
    assert imgs and imgs[0].src == f"/thumb/{i}.png"
    text = texts(card)
    rec = lookups.instance_records(tiny_cache, [i])[0]
    assert "target" in text and rec["label_name"] in text and rec["target_pred_name"] in text
    assert cb_inst.hover_card(tiny_cache, None, "/")[0] is False
    assert cb_inst.hover_card(tiny_cache, {"points": [{"curveNumber": 3}]}, "/")[0] is False  # legend key


def test_selection_lists_thumbnails(tiny_cache):
    sel = {"points": [{"customdata": 5}, {"customdata": 7}, {"customdata": 5}], "range": {"x": [0, 1]}}
    out = inst_markup.selection_list(tiny_cache, sel, "/app/")
    srcs = [c.src for c in of_type(out, html.Img)]
    assert srcs == ["/app/thumb/5.png", "/app/thumb/7.png"]
    assert "2 selected" in texts(out)
    assert "lasso" in texts(inst_markup.selection_list(tiny_cache, None, "/"))
    empty_lasso = {"points": [], "lassoPoints": {"x": [1]}}
    assert "No instances" in texts(inst_markup.selection_list(tiny_cache, empty_lasso, "/"))


# --- the wiring, through Dash's own endpoint --------------------------------------------

def test_state_callback_wiring(tiny_app, space):
    outputs = [{"id": ids.URL, "property": "search"}, {"id": ids.SELECTED_CLASS, "property": "data"},
               {"id": ids.NOTICE, "property": "children"}, {"id": stats_layout.TABLE, "property": "selectedRows"},
               {"id": inst_layout.CLASSES, "property": "value"}]
    output = "..url.search...sel-class.data...url-notice.children...stats-table.selectedRows...inst-classes.value.."
    inputs: list[dict] = [{"id": ids.URL, "property": "search", "value": "?class=bogus"},
                          {"id": stats_layout.TABLE, "property": "selectedRows", "value": []},
                          {"id": inst_layout.CLASSES, "property": "value", "value": []},
                          {"id": ids.SELECTED_CLASS, "property": "data", "value": None}]
    resp = dispatch(tiny_app, output, outputs, inputs, ["url.search"])["response"]
    assert resp[ids.SELECTED_CLASS]["data"] == space.default_cls
    assert "bogus" in json.dumps(resp[ids.NOTICE]["children"])
    assert resp[stats_layout.TABLE]["selectedRows"] == {"ids": [str(space.default_cls)]}


def test_scatter_callback_wiring(tiny_app):
    outputs = [{"id": inst_layout.SCATTER, "property": "figure"},
               {"id": inst_layout.SCATTER, "property": "selectedData"},
               {"id": inst_layout.SUMMARY, "property": "children"},
               {"id": inst_layout.KEY, "property": "children"},
               {"id": inst_layout.KEY_TITLE, "property": "children"}]
    output = ("..inst-scatter.figure...inst-scatter.selectedData...inst-summary.children..."
              "inst-class-key.children...inst-class-key-title.children..")
    inputs: list[dict] = [{"id": inst_layout.CLASSES, "property": "value", "value": [0, 1]},
                          {"id": ids.HIGHLIGHT, "property": "data", "value": None}]
    resp = dispatch(tiny_app, output, outputs, inputs, ["inst-classes.value"])["response"]
    assert {t["meta"]["label"] for t in traces(resp[inst_layout.SCATTER]["figure"], "instances")} == {0, 1}


def test_thumbnail_route(tiny_app):
    client = tiny_app.server.test_client()
    r = client.get("/thumb/0.png")
    assert r.status_code == 200 and r.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/thumb/999999.png").status_code == 404
