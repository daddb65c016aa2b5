"""openTSNE maps, selection maps from the global layout, and the cross-process memo."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from transferviz.analysis.projection import memoized_selection_map, pca_features, selection_key, selection_map, tsne_map


def blobs(n_classes=4, per=60, dim=20, spread=6.0, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * spread
    x = np.vstack([c + rng.normal(size=(per, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(n_classes), per)


def knn_accuracy(y2d, labels, k=5):
    # Leave-one-out style: fit on even rows, score on odd rows (cheap and deterministic).
    clf = KNeighborsClassifier(k).fit(y2d[::2], labels[::2])
    return clf.score(y2d[1::2], labels[1::2])


@pytest.fixture(scope="module")
def global_map():
    x, y = blobs()
    return x, y, tsne_map(x, seed=0, perplexity=20)


def test_tsne_map_shape_determinism_and_separation(global_map):
    x, y, emb = global_map
    assert emb.shape == (240, 2) and emb.dtype == np.float32 and np.isfinite(emb).all()
    np.testing.assert_array_equal(emb, tsne_map(x, seed=0, perplexity=20))
    assert knn_accuracy(emb, y) >= 0.95


def test_selection_map_keeps_classes_apart_and_is_deterministic(global_map):
    x, y, emb = global_map
    sel = np.isin(y, [1, 3])
    feats = pca_features(x)
    out = selection_map(feats[sel], emb[sel], seed=0, n_iter=60)
    assert out.shape == (sel.sum(), 2) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, selection_map(feats[sel], emb[sel], seed=0, n_iter=60))
    assert knn_accuracy(out, y[sel]) >= 0.95
    # It refines the global layout rather than replacing it: the class centroids keep their side.
    d_glob = emb[sel][y[sel] == 3].mean(0) - emb[sel][y[sel] == 1].mean(0)
    d_sel = out[y[sel] == 3].mean(0) - out[y[sel] == 1].mean(0)
    assert d_glob @ d_sel > 0


def test_small_inputs():
    rng = np.random.default_rng(1)
    assert tsne_map(np.zeros((0, 3))).shape == (0, 2)
    np.testing.assert_array_equal(tsne_map(np.ones((1, 3))), np.zeros((1, 2)))
    assert tsne_map(rng.normal(size=(3, 4))).shape == (3, 2)            # PCA layout below 5 points
    assert np.isfinite(tsne_map(rng.normal(size=(8, 4)))).all()         # perplexity lowered
    small = selection_map(rng.normal(size=(7, 4)), rng.normal(size=(7, 2)), n_iter=20)
    assert small.shape == (7, 2) and np.isfinite(small).all()
    with pytest.raises(ValueError):
        selection_map(rng.normal(size=(7, 4)), rng.normal(size=(6, 2)))


def test_pca_features():
    x, _ = blobs(dim=80)
    f = pca_features(x, pca_dims=50)
    assert f.shape == (240, 50) and f.dtype == np.float32
    np.testing.assert_array_equal(f, pca_features(x, pca_dims=50))
    assert pca_features(x[:, :10]).shape == (240, 10)


def test_selection_key():
    assert selection_key("cache-a", [3, 1, 2]) == selection_key("cache-a", (2, 3, 1, 1))
    assert selection_key("cache-a", [1, 2]) != selection_key("cache-b", [1, 2])
    assert selection_key("cache-a", [1, 2]) != selection_key("cache-a", [1, 2], extra="seed=1")
    assert selection_key("cache-a", [12]) != selection_key("cache-a", [1, 2])


def test_memo_round_trip_and_corruption(tmp_path):
    calls = []
    value = np.arange(10, dtype=np.float32).reshape(5, 2)

    def compute():
        calls.append(1)
        return value

    key = selection_key("c", [0, 1])
    memo = tmp_path / "memo"
    np.testing.assert_array_equal(memoized_selection_map(memo, key, compute), value)
    np.testing.assert_array_equal(memoized_selection_map(memo, key, compute), value)
    assert len(calls) == 1
    assert [p.name for p in memo.iterdir()] == [f"{key}.npy"]          # no temporary files left
    (memo / f"{key}.npy").write_bytes(b"\x93NUMPY garbage")             # corrupted
    np.testing.assert_array_equal(memoized_selection_map(memo, key, compute), value)
    assert len(calls) == 2
    np.save(memo / f"{key}.npy", np.zeros((3, 2), np.float32))          # wrong row count
    np.testing.assert_array_equal(memoized_selection_map(memo, key, compute, expected_rows=5), value)
    assert len(calls) == 3
    np.testing.assert_array_equal(np.load(memo / f"{key}.npy"), value)  # repaired on disk
    with pytest.raises(ValueError):
        memoized_selection_map(memo, "../escape", compute)


def test_memo_concurrent_writers_leave_one_valid_file(tmp_path):
    # Writers race on one key (as gunicorn workers would): unique temporary names plus
    # os.replace mean every caller gets the right map and exactly one whole file remains.
    from concurrent.futures import ThreadPoolExecutor

    value = np.random.default_rng(0).normal(size=(2000, 2)).astype(np.float32)
    key = selection_key("c", [4, 2])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: memoized_selection_map(tmp_path, key, lambda: value), range(32)))
    for r in results:
        np.testing.assert_array_equal(r, value)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.npy"]
    np.testing.assert_array_equal(np.load(tmp_path / f"{key}.npy"), value)
