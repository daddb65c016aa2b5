"""Change through fine-tuning: colourfulness, gray detection, embedding similarity, most changed."""

from __future__ import annotations

import numpy as np
import pytest

from transferviz.featvis.compare import (
    GRAY_FLOOR,
    colourfulness,
    colourfulness_scores,
    compare_renders,
    detect_gray,
    embedding_similarity,
    gray_cutoff,
    image_embedding,
    most_changed,
)

SIDE = 28
_yy, _xx = np.mgrid[0:SIDE, 0:SIDE]


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _washed_out_gray(rng: np.random.Generator, sd: float) -> np.ndarray:
    """What a neuron with no gradient leaves: mid-gray plus faint, slightly tinted noise."""
    return _to_uint8(0.5 + sd * rng.standard_normal((SIDE, SIDE, 3)))


def _colourful(rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour pattern of random strength, like a successful render."""
    freq = rng.uniform(0.1, 0.5, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=3)
    amp = rng.uniform(0.25, 0.5)
    chans = [0.5 + amp * np.sin(freq[c, 0] * _xx + freq[c, 1] * _yy + phase[c]) for c in range(3)]
    return _to_uint8(np.stack(chans, axis=-1))


def _stripes(vertical: bool, shift: float = 0.0, colour=(1.0, 1.0, 1.0), period: float = 7.0) -> np.ndarray:
    v = 0.5 + 0.5 * np.sin(2 * np.pi * ((_xx if vertical else _yy) + shift) / period)
    return _to_uint8(np.stack([v * c for c in colour], axis=-1))


def test_colourfulness_separates_gray_from_colour_and_keeps_black_and_white_strokes() -> None:
    rng = np.random.default_rng(0)
    gray = colourfulness(_washed_out_gray(rng, 0.01))
    colourful = colourfulness(_colourful(rng))
    strokes = colourfulness(_stripes(vertical=True))  # no colour at all, full contrast
    flat_red = colourfulness(np.full((SIDE, SIDE, 3), (200, 30, 30), np.uint8))
    assert gray < 0.05
    assert colourful > 0.3
    assert strokes > 0.3  # contrast counts: a gray-digit model's render is not "gray"
    assert flat_red > 0.2  # colour counts without contrast
    assert colourfulness(np.full((SIDE, SIDE, 3), 128, np.uint8)) == pytest.approx(0.0)
    # float [0, 1] input is accepted and scores the same
    img = _colourful(rng)
    assert colourfulness(img.astype(np.float64) / 255.0) == pytest.approx(colourfulness(img))


def test_detect_gray_finds_exactly_the_washed_out_images() -> None:
    rng = np.random.default_rng(1)
    images, truth = [], []
    for i in range(40):
        gray = i % 4 == 0
        images.append(_washed_out_gray(rng, rng.uniform(0.002, 0.03)) if gray else _colourful(rng))
        truth.append(gray)
    scores = colourfulness_scores(np.stack(images))
    mask = detect_gray(scores)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, np.array(truth))


def test_no_gray_cluster_means_nothing_visible_is_flagged() -> None:
    rng = np.random.default_rng(2)
    scores = colourfulness_scores(np.stack([_colourful(rng) for _ in range(30)]))
    assert not detect_gray(scores).any()
    # a continuum of scores (no gap) is not split either
    continuum = np.exp(np.linspace(np.log(0.11), np.log(0.9), 50))
    assert gray_cutoff(continuum) == GRAY_FLOOR
    assert detect_gray(continuum).sum() == 0


def test_change_point_cutoff_is_a_float_between_two_clusters() -> None:
    # a dull cluster above the floor, well separated from the vivid one
    scores = np.concatenate([np.linspace(0.11, 0.13, 8), np.linspace(0.25, 0.7, 30)])
    rng = np.random.default_rng(3)
    rng.shuffle(scores)
    cut = gray_cutoff(scores)
    assert isinstance(cut, float)
    assert cut == pytest.approx(np.sqrt(0.13 * 0.25))  # geometric midpoint of the gap
    assert detect_gray(scores).sum() == 8
    # the cut-off never drops below the floor, whatever the data
    assert gray_cutoff(np.array([0.001, 0.002, 0.5, 0.6, 0.7])) == GRAY_FLOOR
    assert gray_cutoff(np.array([0.5])) == GRAY_FLOOR
    assert detect_gray(np.array([np.nan, 0.5]), cutoff=0.1).tolist() == [True, False]


def test_embedding_similarity_ranks_changes_sensibly() -> None:
    v = _stripes(vertical=True)
    pairs = {
        "same": (v, v),
        "shifted": (v, _stripes(vertical=True, shift=1.0)),
        "rotated": (v, _stripes(vertical=False)),
        "recoloured": (v, _stripes(vertical=True, colour=(1.0, 0.15, 0.15))),
    }
    sim = embedding_similarity(np.stack([a for a, _ in pairs.values()]), np.stack([b for _, b in pairs.values()]))
    s = dict(zip(pairs, sim))
    assert sim.dtype == np.float32 and sim.shape == (4,)
    assert s["same"] == pytest.approx(1.0, abs=1e-5)
    assert s["shifted"] > s["rotated"] + 0.2
    assert s["shifted"] > s["recoloured"] + 0.2
    assert (sim <= 1.0).all() and (sim >= -1.0).all()


def test_embedding_is_deterministic_unit_norm_and_size_independent() -> None:
    rng = np.random.default_rng(4)
    imgs = np.stack([_colourful(rng) for _ in range(5)])
    e1, e2 = image_embedding(imgs), image_embedding(imgs[::-1])
    np.testing.assert_allclose(e1, e2[::-1], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-5)
    big = np.repeat(np.repeat(imgs, 2, axis=1), 2, axis=2)  # the same images at 56 px
    assert (embedding_similarity(imgs, big) > 0.95).all()


def test_custom_embedding_and_zero_vectors() -> None:
    imgs = np.zeros((2, 4, 4, 3), np.uint8)
    sim = embedding_similarity(imgs, imgs, embed=lambda x: np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert sim.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError):
        embedding_similarity(imgs, imgs[:1])


def test_most_changed_per_layer_excludes_gray_and_nan() -> None:
    similarity = np.array([0.9, 0.1, 0.5, np.nan, 0.2, 0.3, 0.05, 0.3])
    layers = ["a", "a", "a", "a", "b", "b", "b", "b"]
    gray = np.array([False, False, False, False, False, False, True, False])
    out = most_changed(similarity, layers, gray, top=2)
    assert list(out) == ["a", "b"]
    assert out["a"].tolist() == [1, 2]
    assert out["b"].tolist() == [4, 5]  # 6 is gray; 5 and 7 tie -> input order
    assert most_changed(similarity, layers, None, top=10)["b"].tolist() == [6, 4, 5, 7]


def test_compare_renders_end_to_end() -> None:
    rng = np.random.default_rng(5)
    source = np.stack([_colourful(rng) for _ in range(6)])
    target = source.copy()
    target[1] = _stripes(vertical=False, colour=(0.2, 1.0, 0.2))  # changed
    target[4] = _washed_out_gray(rng, 0.005)  # died during fine-tuning
    result = compare_renders(source, target, ["l1", "l1", "l1", "l2", "l2", "l2"], top=5)
    assert result.gray_target.tolist() == [False, False, False, False, True, False]
    assert not result.gray_source.any()
    assert result.most_changed["l1"][0] == 1
    assert 4 not in result.most_changed["l2"].tolist()
    assert result.similarity[0] == pytest.approx(1.0, abs=1e-5)
