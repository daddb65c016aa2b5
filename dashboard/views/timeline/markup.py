"""Run-time markup of the timeline view: the line above the map that says what changed at the
shown epoch, and the notice of a cache without a timeline."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.theme import SOURCE_COLOR, TARGET_COLOR
from dashboard.views.timeline.data import TimelineData, domain_filter

__all__ = ["MISSING", "summary"]

MISSING = ("This cache has no fine-tuning timeline: it needs the target model's weights after every epoch "
           "(a cache built from given checkpoints without per-epoch weights has none). Rebuild it with "
           "'transferviz build CONFIG' to watch fine-tuning epoch by epoch.")


def summary(td: TimelineData, i: int, domain: str, show_flips: bool = True) -> list[Any]:
    """"Epoch e: k predictions flipped (s source, t target), ringed on the map · accuracy ..." for
    the shown domain; with the rings toggled off the count stays, "rings hidden"."""
    e = td.epochs[i]
    flipped = td.flips[i]
    n_s = int((flipped & td.in_domain["source"]).sum())
    n_t = int((flipped & td.in_domain["target"]).sum())
    dom = domain_filter(domain)
    k = {"both": n_s + n_t, "source": n_s, "target": n_t}[dom]
    acc = {d: float((~td.wrong[i][m]).mean()) if m.any() else None for d, m in td.in_domain.items()}
    what = "the source model" if i == 0 else f"after fine-tuning epoch {e}"
    head = [html.B(f"Epoch {e}"), f" ({what}): "]
    if i == 0:
        head.append("the starting point, no flips yet")
    else:
        head += [html.B(f"{k} prediction{'s' if k != 1 else ''} flipped at epoch {e}"),
                 f"{'' if dom == 'both' else ' among ' + dom + ' instances'} (",
                 html.Span(f"{n_s} source", style={"color": SOURCE_COLOR}), ", ",
                 html.Span(f"{n_t} target", style={"color": TARGET_COLOR}), ")"]
        if k:
            head.append(", ringed on the map" if show_flips else ", rings hidden")
    head.append(" \u00b7 accuracy ")
    for d, color in (("target", TARGET_COLOR), ("source", SOURCE_COLOR)):
        if acc[d] is not None:
            head += [html.Span(f"{d} {acc[d]:.1%}", style={"color": color}), " "]
    return head
