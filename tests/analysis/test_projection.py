"""openTSNE maps, selection maps from the global layout, and the per-class maps of the build."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from transferviz.analysis.projection import class_maps, pca_features, selection_map, tsne_map


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


def test_class_maps_are_each_class_own_selection_map(global_map):
    x, y, emb = global_map
    feats = pca_features(x, 50, 0)
    maps = class_maps(feats, emb, y, seed=0, perplexity=20, n_iter=40)
    assert maps.shape == (len(y), 2) and maps.dtype == np.float32 and np.isfinite(maps).all()
    for c in (0, 3):
        rows = np.flatnonzero(y == c)
        np.testing.assert_array_equal(maps[rows], selection_map(feats[rows], emb[rows], 0, perplexity=20, n_iter=40))
    # each class's map is its own t-SNE, not the global positions: it spreads the class out
    rows = np.flatnonzero(y == 1)
    assert not np.allclose(maps[rows], emb[rows] - emb[rows].mean(axis=0))
    np.testing.assert_array_equal(maps, class_maps(feats, emb, y, seed=0, perplexity=20, n_iter=40))


def test_class_maps_reject_mismatched_inputs(global_map):
    x, y, emb = global_map
    with pytest.raises(ValueError, match="disagree in length"):
        class_maps(x, emb[:-1], y)
