"""How many points a scatter map draws, and which, when a cache has more instances than a map can show.

A map is a few hundred pixels a side: ~420 x 300 px holds ~1.3 x 10^5 pixels, and markers of 5-9 px
(20-64 px^2 each) cover it entirely at a few thousand points. Past that, more points add no visible
information -- only overdraw, megabytes of JSON and WebGL set-up in the browser (100k points froze a tab
for seconds; issue 13). Measured on the 100k scale cache in headless Chromium (software WebGL, the same
two cores as the server): the first page load took 3.4-3.5 s at 12,000 points a map, 2.85 s at 6,000. So
above :data:`MAX_POINTS` a map draws a *stratified sample*: every stratum (class x domain) keeps its
share of the map, and a note on the map says "showing k of N".

The sample is chosen by a fixed random priority per instance (:func:`priorities`, seeded): within each
stratum the rows with the lowest priority are drawn. So the drawn points are stable: the same filters
give the same sample, a narrower filter keeps the points it still shows, and a point never jumps in and
out as the user toggles controls. ``must`` rows (e.g. the highest losses of the hard-example maps) are
always drawn and count towards ``k``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_POINTS", "class_domain_strata", "priorities", "sample_annotation", "sample_note", "stratified_sample"]

#: The most points one scatter map draws (see the module docstring); the demo's 4,797 instances are all drawn.
MAX_POINTS = 6_000


def priorities(n: int, seed: int = 0) -> np.ndarray:
    """A fixed random order of ``n`` rows: ``(n,)`` distinct float64 in [0, 1), lowest drawn first."""
    return np.random.default_rng(seed).random(n)


def class_domain_strata(labels: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """The maps' strata: one code per (class, domain) pair, from the labels and the "source"/"target" domains."""
    return np.asarray(labels, dtype=np.int64) * 2 + (np.asarray(domains) == "target")


def stratified_sample(rows: np.ndarray, strata: np.ndarray, priority: np.ndarray, k: int,
                      must: np.ndarray | None = None) -> np.ndarray:
    """At most ``k`` of ``rows`` (sorted, int64): all of them when there are at most ``k``.

    ``strata`` and ``priority`` are per row of the whole table (indexed by ``rows``' values); ``must``
    (a subset of ``rows``' values, or None) is always kept. The remaining places go to the strata in
    proportion to their sizes among ``rows`` (largest remainders; every stratum with rows gets at least
    one place while places remain), and within a stratum to its rows of lowest ``priority``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) <= k:
        return np.sort(rows)
    kept = np.zeros(0, np.int64) if must is None else np.intersect1d(rows, np.asarray(must, dtype=np.int64))
    kept = kept[:k]
    rest = np.setdiff1d(rows, kept, assume_unique=True)
    places = k - len(kept)
    if places <= 0 or not len(rest):
        return np.sort(kept)
    codes, counts = np.unique(np.asarray(strata)[rest], return_counts=True)
    quota = counts / counts.sum() * places
    alloc = np.floor(quota).astype(np.int64)
    # the places lost to rounding go to the largest remainders (ties: the larger stratum)
    left = places - int(alloc.sum())
    order = np.lexsort((-counts, -(quota - alloc)))
    alloc[order[:left]] += 1
    empty = np.flatnonzero(alloc == 0)  # a small stratum still shows while there is room (taken from the largest)
    for j in empty:
        donor = int(np.argmax(alloc))
        if alloc[donor] <= 1:
            break
        alloc[donor] -= 1
        alloc[j] = 1
    out = [kept]
    by_stratum = np.asarray(strata)[rest]
    for code, a in zip(codes, alloc):
        members = rest[by_stratum == code]
        if a >= len(members):
            out.append(members)
        elif a > 0:
            out.append(members[np.argpartition(priority[members], a - 1)[:a]])
    return np.sort(np.concatenate(out))


def sample_note(shown: int, total: int) -> str:
    """The map's note when it draws a sample ("" when it draws everything)."""
    if shown >= total:
        return ""
    return f"showing {shown:,} of {total:,} instances (stratified sample)"


def sample_annotation(note: str) -> dict:
    """The note as a map annotation: small grey text in the bottom-left corner, over a pale box so it
    reads over points."""
    return dict(text=note, x=0, y=0, xref="paper", yref="paper", xanchor="left", yanchor="bottom", showarrow=False,
                align="left", font=dict(size=10, color="#555555"), bgcolor="rgba(255,255,255,0.85)",
                name="sample-note")
