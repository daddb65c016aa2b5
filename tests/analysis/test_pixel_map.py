"""The raw-pixel t-SNE map (issue 6, item 6): pooling, determinism, neighbourhoods, the stage and accessor."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.neighbors import NearestNeighbors

from transferviz.analysis.projection import _pooled_pixels, pixel_map
from transferviz.cache import Cache


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(d.target), size=600, replace=False))
    images = (d.images[rows] * 16).clip(0, 255).astype(np.uint8)  # (600, 8, 8) grayscale, like a cache's uint8
    return images, d.target[rows]


@pytest.fixture(scope="module")
def digits_map(digits):
    images, _ = digits
    return pixel_map(images, seed=0, perplexity=30)


def test_shape_dtype_finite_and_deterministic(digits, digits_map):
    images, _ = digits
    assert digits_map.shape == (len(images), 2) and digits_map.dtype == np.float32
    assert np.isfinite(digits_map).all()
    np.testing.assert_array_equal(digits_map, pixel_map(images, seed=0, perplexity=30))
    assert not np.array_equal(digits_map, pixel_map(images, seed=1, perplexity=30))


def test_map_neighbours_share_the_label(digits, digits_map):
    """Handwritten digits are separable by their pixels: a point's nearest map neighbours mostly
    carry its label (a shuffled or broken map scores ~0.1)."""
    _, labels = digits
    nn = NearestNeighbors(n_neighbors=6).fit(digits_map).kneighbors(digits_map, return_distance=False)[:, 1:]
    same = (labels[nn] == labels[:, None]).mean()
    assert same >= 0.85, same


def test_identical_pixels_land_together(digits):
    images, _ = digits
    dup = np.concatenate([images, images[:20]])  # rows 600..619 copy rows 0..19
    xy = pixel_map(dup, seed=0, perplexity=30)
    gap = np.linalg.norm(xy[600:] - xy[:20], axis=1)
    # "nearly the same position": far closer than typical neighbours in the map
    nn_dist = NearestNeighbors(n_neighbors=2).fit(xy[:600]).kneighbors(xy[:600])[0][:, 1]
    spread = np.ptp(xy, axis=0).max()
    assert gap.max() < 0.02 * spread, (gap.max(), spread)
    assert np.median(gap) <= np.median(nn_dist)


def test_pooling_block_averages_large_images():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, size=(5, 64, 64, 3), dtype=np.uint8)
    out = _pooled_pixels(imgs, max_side=32, chunk=2)  # chunks of 2: 3 chunks
    expected = imgs.astype(np.float32).reshape(5, 32, 2, 32, 2, 3).mean(axis=(2, 4)).reshape(5, -1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    small = rng.integers(0, 256, size=(4, 28, 28, 3), dtype=np.uint8)
    np.testing.assert_array_equal(_pooled_pixels(small, max_side=32), small.reshape(4, -1).astype(np.float32))
    assert _pooled_pixels(imgs[:, :50, :50], max_side=32).shape == (5, 25 * 25 * 3)  # factor 2, cropped to 50


def test_degenerate_inputs():
    assert pixel_map(np.zeros((0, 8, 8), np.uint8)).shape == (0, 2)
    assert pixel_map(np.zeros((3, 8, 8), np.uint8)).shape == (3, 2)  # below 5 points: PCA layout
    const = pixel_map(np.full((12, 8, 8), 7, np.uint8))  # every pixel constant: no NaN from std 0
    assert const.shape == (12, 2) and np.isfinite(const).all()


def test_stage_writes_the_map_and_accessor(tiny_cache, tmp_path):
    xy = tiny_cache.pixel_tsne()
    assert xy is not None and xy.shape == (len(tiny_cache.instances), 2) and xy.dtype == np.float32
    assert np.isfinite(xy).all()
    st = tiny_cache.manifest["stages"]["pixels"]
    assert "analysis/pixel_tsne.npy" in st["artifacts"]
    assert tiny_cache.manifest["artifacts"]["analysis/pixel_tsne.npy"]["meaning"]
    # the stage is the library function on the cache's images with the config's seed and perplexity
    cfg = tiny_cache.config
    np.testing.assert_array_equal(xy, pixel_map(tiny_cache.images, seed=cfg["seed"],
                                                perplexity=cfg["analysis"]["tsne_perplexity"]))
    # an older cache without the stage: None, not an error
    assert Cache(tmp_path, {"artifacts": {}}).pixel_tsne() is None
