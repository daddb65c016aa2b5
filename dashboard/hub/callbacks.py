"""The hub's callbacks: the page the URL names (the table of runs, or a comparison) and the compare button
that follows the ticked runs. What they draw comes from :mod:`dashboard.hub.compare`,
:mod:`dashboard.hub.figures` and :mod:`dashboard.hub.markup`."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

import dash
from dash import Input, Output, html

from dashboard.hub import compare, figures, markup
from dashboard.hub.runs import Run, RunIndex, run_href, run_row
from transferviz.cache import Cache

__all__ = ["compare_figures", "compare_href", "compare_view", "register", "runs_view"]


def compare_href(prefix: str, names: list[str]) -> str:
    """The comparison page's URL for ``names`` (the run names are URL-safe: :func:`runs.valid_run_name`)."""
    return f"{prefix.rstrip('/')}/compare?runs={quote(','.join(names), safe=',')}"


def runs_view(index: RunIndex, prefix: str) -> html.Div:
    """The table of runs, rescanned (a run built since the last page load appears)."""
    runs = index.scan()
    return markup.runs_page([run_row(r, run_href(prefix, r.name)) for r in runs], index.root,
                            compare_href(prefix, []))


def compare_figures(caches: dict[str, Cache]) -> dict[str, Any]:
    """The comparison page's figures of ``caches`` (run name -> cache, 2-6), keyed by ``markup.FIGURES``."""
    colors = figures.run_colors(list(caches))
    axis = compare.layer_axis(caches)
    return {
        "accuracy": figures.accuracy_overlay(compare.accuracy_frame(caches), colors),
        "scores": figures.score_bars(compare.scores_frame(caches), colors),
        "cka": figures.cka_diagonal_lines(compare.cka_diagonals(caches), {n: c.layers for n, c in caches.items()},
                                          axis, colors),
        "correspondence": figures.correspondence_lines(compare.correspondence_by_pair(caches), axis, colors),
        "gains": figures.class_gain_heatmap(compare.class_gains(caches)),
    }


def compare_view(index: RunIndex, prefix: str, search: str | None) -> html.Div:
    """The comparison the URL's ``runs`` names, or its one-line problem (unknown runs, too few or many, a run
    that does not open)."""
    runs: dict[str, Run] = {r.name: r for r in index.runs()}
    query = parse_qs((search or "").lstrip("?"))
    names, problem = compare.parse_run_list((query.get("runs") or [""])[0], list(runs))
    if problem is None:
        broken = [f"{n} ({runs[n].error})" for n in names if runs[n].cache is None]
        if broken:
            problem = f"these runs do not open: {'; '.join(broken)}"
    if problem is not None:
        return markup.problem_page(problem, prefix)
    caches: dict[str, Cache] = {}
    for n in names:
        cache = runs[n].cache
        if cache is not None:  # every one here (checked above); the loop tells the type checker
            caches[n] = cache
    return markup.compare_page(names, {n: run_href(prefix, n) for n in names}, compare.differences(caches),
                               compare_figures(caches), prefix)


def register(app: dash.Dash, index: RunIndex, prefix: str) -> None:
    @app.callback(Output(markup.PAGE, "children"), Input(markup.URL, "pathname"), Input(markup.URL, "search"))
    def _page(pathname: Any, search: Any) -> Any:
        page = app.strip_relative_path(pathname if isinstance(pathname, str) else "/") or ""
        if page == "compare":
            return compare_view(index, prefix, search if isinstance(search, str) else "")
        if page == "":
            return runs_view(index, prefix)
        return markup.problem_page(f"no page '{page}' in the hub; runs open under {prefix}run/<name>/", prefix)

    @app.callback(Output(markup.COMPARE_LINK, "href"), Output(markup.COMPARE_LINK, "className"),
                  Output(markup.COMPARE_HINT, "children"), Input(markup.GRID, "selectedRows"))
    def _compare_button(selected: Any) -> tuple[str, str, str]:
        names = [str(r.get("run")) for r in (selected or []) if isinstance(r, dict) and r.get("run")]
        ok = compare.MIN_RUNS <= len(names) <= compare.MAX_RUNS
        hint = (f"{len(names)} ticked: " + ", ".join(names) if names else
                f"tick {compare.MIN_RUNS} to {compare.MAX_RUNS} runs to compare them; a run's name opens its analysis")
        if len(names) > compare.MAX_RUNS:
            hint = f"{len(names)} ticked: at most {compare.MAX_RUNS} compare at once"
        return compare_href(prefix, names), "btn btn-sm btn-primary me-2" + ("" if ok else " disabled"), hint
