"""View A callbacks: the confusion table's selection, converted for the selected-class state.

The score and the accuracy chart are static (built in ``layouts/statistics.py``). The table
is a dash-ag-grid ``AgGrid``: a click on any cell selects its row (``enableClickSelection``)
and the selected row is highlighted by the grid itself, so no callback of its own is needed
here; ``callbacks/page.py`` keeps the selection in step with the URL and the other views,
through the two conversions below (the state logic speaks class indices, the grid speaks
row data and row ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash

from layouts import statistics as stats_layout
from transferviz.cache import Cache

NO = dash.no_update


def classes_of_selection(selected: Any) -> list[int]:
    """Class indices of the grid's ``selectedRows``: the rows' data the grid reports after a click
    (``[{"class_index": 3, ...}]``) or the ``{"ids": ["3"]}`` the server last set. Junk gives []."""
    if isinstance(selected, Mapping):
        raw = selected.get("ids")
        items = raw if isinstance(raw, list) else []
    elif isinstance(selected, list):
        items = [r.get("class_index") if isinstance(r, Mapping) else None for r in selected]
    else:
        return []
    out = []
    for v in items:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


def selection_for(rows: Any) -> Any:
    """The grid's ``selectedRows`` for the state callback's ``[class index]`` answer (or no_update)."""
    if rows is NO:
        return NO
    classes = classes_of_selection({"ids": rows}) if isinstance(rows, list) else []
    return stats_layout.selection(classes[0] if classes else None)


def register(app: dash.Dash, cache: Cache) -> None:
    """Nothing to register: the grid selects and highlights on its own (see the module's docstring)."""
