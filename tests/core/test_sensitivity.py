"""`transferviz sensitivity`: the choices the paper leaves open, rerun from a built cache (issue 12, item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from transferviz.cli import main
from transferviz.config import parse_config
from transferviz.sensitivity import COLUMNS, Variant, default_grid, sensitivity_table


@pytest.fixture(scope="module")
def table(tiny_cache) -> pd.DataFrame:
    """One variant of each kind (the weight variants rerun the important-weight search: seconds each)."""
    a = parse_config(tiny_cache.config, "tiny").analysis
    kinds = ("similarity", "matching", "active_receivers", "weight_reduction")
    grid = [v for v in default_grid(a) if v.choice in kinds]
    grid += [Variant("neuron_fraction", a.neuron_fraction / 2), Variant("weight_k", 0.5)]
    return sensitivity_table(tiny_cache, grid, progress=False)


def test_the_grid_changes_one_choice_at_a_time(tiny_cache):
    a = parse_config(tiny_cache.config, "tiny").analysis
    grid = default_grid(a)
    assert {v.choice for v in grid} == {"neuron_fraction", "weight_k", "active_receivers", "weight_reduction",
                                        "similarity", "matching"}
    assert Variant("neuron_fraction", a.neuron_fraction) not in grid and Variant("matching", a.matching) not in grid
    assert {v.value for v in grid if v.choice == "matching"} == {"best", "one_to_one", "same_index"} - {a.matching}


def test_the_built_shares_are_the_cached_ones(tiny_cache, table):
    """The table's 'built' column recomputes the compare stage's shares from the cached weights and conductance:
    equal to what the build stored, so every variant is compared against the real baseline."""
    stored = tiny_cache.table("analysis/correspondence.parquet")
    per_pair = stored.dropna(subset=["share"]).groupby(["layer_i", "layer_j"])["share"].mean()
    shares = table[table.measure == "correspondence share"]
    assert len(shares)
    for (li, lj), value in per_pair.items():
        built = shares.loc[shares.scope == f"{li}->{lj}", "built"].to_numpy()
        np.testing.assert_allclose(built, value, atol=1e-9)


def test_jaccards_and_changes(tiny_cache, table):
    assert list(table.columns) == COLUMNS
    jac = table[table.measure.isin(["important neurons", "important weights"])]
    assert jac.variant.between(0, 1).all() and (jac.built == 1).all() and jac.overlap.between(0, 1).all()
    assert (jac.overlap >= jac.variant - 1e-12).all()
    assert table[table.measure == "correspondence share"].overlap.isna().all()
    # a smaller fraction keeps a subset of the built neurons: Jaccard = k_small / k_built, never 1 where k drops
    half = table[(table.choice == "neuron_fraction") & (table.measure == "important neurons")]
    sizes = tiny_cache.layer_sizes
    assert len(half) == len(tiny_cache.layers)
    for r in half.itertuples():
        k_built = len(tiny_cache.important_neurons("target", r.scope, 0))
        k_half = int(np.ceil(float(r.value) * sizes[r.scope]))
        assert (r.variant < 1) == (k_half < k_built)
        assert r.overlap == 1.0  # the ranking is the same: a smaller k keeps a subset
    # k halved: the kept weights are a subset of the built ones (the same search, fewer kept)
    halved = table[(table.choice == "weight_k") & (table.measure == "important weights")]
    assert len(halved) and (halved.variant <= 0.75).all() and (halved.variant > 0).all()
    # choices that leave the important weights alone have no Jaccard row; similarity and matching change shares
    assert not len(table[(table.choice.isin(["similarity", "matching"])) & (table.measure != "correspondence share")])
    np.testing.assert_allclose(table.change, table.variant - table.built)


def test_the_command_writes_the_csv(tiny_cache, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["sensitivity", str(tiny_cache.root), "--out", str(out), "--quiet", "--device", "cpu",
                 "--only", "matching"]) == 0
    printed = capsys.readouterr().out
    assert "correspondence share" in printed and f"wrote {out}" in printed
    written = pd.read_csv(out)
    assert list(written.columns) == COLUMNS and set(written.choice) == {"matching"}
    assert main(["sensitivity", str(tiny_cache.root), "--only", "colour"]) == 2
    assert "unknown choice 'colour'" in capsys.readouterr().err
