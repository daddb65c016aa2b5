"""CSV downloads of instances: the instance table's filtered rows, the image pool, a lasso selection.

One place builds the rows (the instance table's columns, full precision, class names rather than
indices, both models' predictions) so that every download of the page reads the same way. Figures'
own data are exported in the browser (``assets/transferviz.js`` adds a CSV button to every plot's
mode bar) since it is what the figure shows that a user wants, whatever built it.

The instance CSVs travel by a plain route, not a Dash callback (issue 13): a view's CSV button runs
:func:`export_callback_js` in the browser, which POSTs the view's state (the grid's filters and sort,
the lasso's ids) to ``/export/<kind>.csv`` and saves the answer (``tvExport`` in the assets). Through
``dcc.Download`` the 100k rows of a scale cache were 8.5 MB of CSV escaped into JSON and compressed by
the callback endpoint: 0.3-0.4 s a click on the server, and the whole file held in the page's state.
The route answers the CSV itself, gzipped at level 1 when the browser accepts it, and the state it is
given is checked like any callback input: bad state is one 400 line, never a 500.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import dash
import pandas as pd
from flask import Response, request

from dashboard.pool import as_ids
from transferviz.cache import Cache
from transferviz.errors import TransferVizError

__all__ = ["CSV_COLUMNS", "ExportError", "Chooser", "csv_response", "export_callback_js", "export_path",
           "frame_csv", "instance_frame", "register_export"]

log = logging.getLogger(__name__)


class ExportError(ValueError):
    """What a view's chooser raises for state it cannot export: the message is the 400 answer's line."""


#: A view's export: the posted state -> (instance ids, in order; what they are, for the file name).
Chooser = Callable[[Cache, dict], tuple[Sequence[int], str]]

#: Columns of every instance CSV, in order.
CSV_COLUMNS = ("id", "domain", "split", "label", "source_pred", "source_conf", "source_loss", "target_pred",
               "target_conf", "target_loss", "pred_changed")


def instance_frame(cache: Cache, ids: Sequence[Any] | None) -> pd.DataFrame:
    """The instances ``ids`` (all of them for None), in that order, unknown ids skipped: the CSV's rows."""
    df = cache.instances
    if ids is not None:
        wanted = [i for i in as_ids(ids) if 0 <= i < len(df)]
        # instance ids are row numbers by construction (cache.instances is written in id order)
        df = df.iloc[wanted]
    names = pd.Series(list(cache.classes))

    def name(col: str) -> pd.Series:
        return names.reindex(df[col].to_numpy()).set_axis(df.index)

    out = pd.DataFrame({
        "id": df["id"].astype(int), "domain": df["domain"].astype(str), "split": df["split"].astype(str),
        "label": name("label"),
        "source_pred": name("source_pred"), "source_conf": df["source_conf"], "source_loss": df["source_loss"],
        "target_pred": name("target_pred"), "target_conf": df["target_conf"], "target_loss": df["target_loss"],
        "pred_changed": df["pred_changed"].astype(bool),
    })
    return out[list(CSV_COLUMNS)]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "export"


def frame_csv(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text, header first, floats at full (shortest round-trip) precision.

    Arrow's C++ writer, not ``DataFrame.to_csv``: pandas formats floats in Python, 0.74 s for the 100k
    instances of issue 13's scale cache against 0.07 s here, and a user waits on the download.
    Booleans come out as ``true``/``false``, which pandas, R and spreadsheets all read as booleans.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    out = pa.BufferOutputStream()
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), out,
                     write_options=pa_csv.WriteOptions(quoting_style="needed"))
    return out.getvalue().to_pybytes().decode()


def csv_response(cache: Cache, ids: Sequence[Any] | None, what: str, accept_encoding: str = "") -> Response:
    """The CSV of the instances ``ids`` as a download named ``<run>_<what>.csv`` (gzip level 1 when
    ``accept_encoding`` allows: a fifth of the bytes for ~50 ms at 100k rows)."""
    body = frame_csv(instance_frame(cache, ids)).encode()
    headers = {"Content-Disposition": f'attachment; filename="{_slug(cache.name)}_{_slug(what)}.csv"',
               "Cache-Control": "no-store"}
    if "gzip" in accept_encoding.lower():
        # by hand: the app's flask-compress fixes its mimetypes when Dash makes the server, without text/csv
        packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: the gzip container
        body = packer.compress(body) + packer.flush()
        headers.update({"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(body, mimetype="text/csv", headers=headers)


def export_path(kind: str) -> str:
    """The export route of ``kind`` below the app's root."""
    return f"/export/{kind}.csv"


def register_export(app: dash.Dash, cache: Cache, kind: str, choose: Chooser) -> str:
    """Adds ``POST /export/<kind>.csv`` to ``app``'s server (under its path prefix): the posted JSON
    object is handed to ``choose``, whose ids come back as the CSV; returns the route's URL."""
    prefix = (app.config.url_base_pathname or app.config.routes_pathname_prefix or "/").rstrip("/")
    url = prefix + export_path(kind)

    def _export() -> Response:
        state = request.get_json(silent=True)
        if not isinstance(state, dict):
            return Response("the export needs a JSON object of the view's state\n", status=400,
                            mimetype="text/plain")
        try:
            ids, what = choose(cache, state)
            return csv_response(cache, ids, what, request.headers.get("Accept-Encoding", ""))
        except (ExportError, TransferVizError) as err:
            return Response(f"{err}\n", status=400, mimetype="text/plain")
        except Exception as err:  # noqa: BLE001 - as the callbacks' guard: one line for the user, the trace logged
            log.error("export %s failed", kind, exc_info=err)
            return Response(f"the export could not use the view's state ({type(err).__name__})\n", status=400,
                            mimetype="text/plain")

    app.server.add_url_rule(url, endpoint=f"transferviz_export_{kind}", view_func=_export, methods=["POST"])
    return url


def export_callback_js(url: str, state_names: Sequence[str], kinds: dict[str, str] | None = None) -> str:
    """A clientside callback over (each CSV button's ``n_clicks``..., then the states ``state_names``)
    that posts ``{"what": ..., <state name>: value, ...}`` to ``url`` and saves the answer; ``kinds`` maps a
    button id to its ``what`` when a view has several buttons (default: ``"shown"``). Its output (a
    ``dcc.Store``) gets ``{"file", "bytes"}`` or ``{"error"}``."""
    return (
        "function() {\n"
        "    const args = Array.from(arguments);\n"
        f"    const names = {json.dumps(list(state_names))}, kinds = {json.dumps(kinds or {})};\n"
        "    const states = args.slice(args.length - names.length);\n"
        "    const trig = ((dash_clientside.callback_context.triggered || [])[0] || {}).prop_id || '';\n"
        "    if (!trig || args.slice(0, args.length - names.length).every(n => !n)) {\n"
        "        return dash_clientside.no_update;\n"
        "    }\n"
        "    const state = {what: kinds[trig.split('.')[0]] || 'shown'};\n"
        "    names.forEach((name, i) => { state[name] = states[i] === undefined ? null : states[i]; });\n"
        f"    return window.tvExport({json.dumps(url)}, state);\n"
        "}"
    )
