"""tools/inflate_cache.py: a valid cache of N instances made from a small one (issue 13's scale tests and
benchmarks read it), never touching its source."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferviz.cache import Cache
from transferviz.errors import TransferVizError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from inflate_cache import inflate, row_map  # noqa: E402

N = 2_000


def test_row_map_by_hand():
    dom = np.array(["source", "source", "source", "target"])
    orig, copy = row_map(dom, 8)
    # 8 x 3/4 = 6 source rows cycling 0,1,2 then 2 target rows repeating row 3
    assert orig.tolist() == [0, 1, 2, 0, 1, 2, 3, 3]
    assert copy.tolist() == [0, 0, 0, 1, 1, 1, 0, 1]
    with pytest.raises(TransferVizError, match="too few"):
        row_map(dom, 1)


@pytest.fixture(scope="module")
def pair(inflated_cache, tiny_cache):
    return tiny_cache, inflated_cache(N)


def test_inflated_cache_is_valid_and_sized(pair):
    src, big = pair
    big.verify()  # every artifact against its manifest record, what the page reads parsed
    df = big.instances
    assert len(df) == N and df["id"].tolist() == list(range(N))
    assert big.manifest["inflated"]["instances"] == N
    n0 = len(src.instances)
    assert big.manifest["inflated"]["source_instances"] == n0
    # source first, then target (ids are row numbers), in the source cache's proportions
    dom = df["domain"].astype(str).to_numpy()
    n_src = int((dom == "source").sum())
    assert (dom[:n_src] == "source").all() and (dom[n_src:] == "target").all()
    assert abs(n_src / N - (src.instances["domain"] == "source").mean()) < 1e-3
    for arr in (big.tsne(), big.pixel_tsne(), big.projection_features(), big.images, big.embedding("target"),
                big.conductance("source", big.layers[0])):
        assert len(arr) == N
    assert big.timeline_positions().shape[1] == N and big.timeline_pred().shape[1] == N
    assert len(list((big.root / "thumbs").glob("*.png"))) == N


def test_rows_repeat_the_source_cache_with_jittered_maps(pair):
    src, big = pair
    orig, copy = row_map(src.instances["domain"].astype(str).to_numpy(), N)
    cols = ["domain", "split", "label", "target_pred", "source_loss"]
    pd.testing.assert_frame_equal(big.instances[cols], src.instances[cols].iloc[orig].reset_index(drop=True))
    np.testing.assert_array_equal(big.embedding("target"), np.asarray(src.embedding("target"))[orig])
    np.testing.assert_array_equal(big.images[N - 1], src.images[orig[-1]])
    assert big.thumbnail(N - 1) == src.thumbnail(int(orig[-1]))
    first = copy == 0
    np.testing.assert_array_equal(big.tsne()[first], np.asarray(src.tsne())[orig[first]])
    moved = np.linalg.norm(big.tsne()[~first] - np.asarray(src.tsne())[orig[~first]], axis=1)
    # 2 % of the coordinates' spread per axis (the tool's default): repeats sit beside their original
    assert (moved > 0).all() and moved.max() < 0.15 * np.asarray(src.tsne()).std()
    # the timeline's final epoch is the final map: jittered alike
    np.testing.assert_allclose(big.timeline_positions()[-1][~first] - np.asarray(src.timeline_positions())[-1][
        orig[~first]], big.tsne()[~first] - np.asarray(src.tsne())[orig[~first]], atol=1e-5)


def test_what_is_counted_from_instances_is_recounted(pair):
    src, big = pair
    df = big.instances
    conf = big.confusion("target", "target")
    assert conf.sum() == int((df["domain"] == "target").sum())
    truth = pd.crosstab(df.loc[df.domain == "target", "label"], df.loc[df.domain == "target", "target_pred"])
    for (lab, pred), v in truth.stack().items():
        assert conf[lab, pred] == v
    val_t = df[(df.domain == "target") & (df.split == "val")]
    assert big.class_table["n"].sum() == len(val_t)
    counts = big.meta["counts"]
    assert sum(counts["source"].values()) + sum(counts["target"].values()) == N
    acc = big.timeline_accuracy()
    assert acc.loc[acc.epoch == acc.epoch.max(), "n"].sum() == N
    # per-class and per-neuron artifacts are the source's (hard links of the same files)
    assert (big.root / "analysis/similarity").exists()
    a, b = big.root / "models/target.safetensors", src.root / "models/target.safetensors"
    assert a.stat().st_ino == b.stat().st_ino


def test_the_source_cache_is_untouched_and_dst_is_not_overwritten(pair, tmp_path):
    src, big = pair
    Cache.open(src.root).verify()
    assert len(Cache.open(src.root).instances) == len(src.instances)
    with pytest.raises(TransferVizError, match="exists"):
        inflate(src.root, big.root, 500, progress=False)
