"""Which neurons the featvis stage renders (issue 13, item 3): every neuron a view can show a feature
visualization for, read through the views' own selection code, and on a larger model not every neuron."""

from __future__ import annotations

import numpy as np

from dashboard.views.features import data as fd
from dashboard.views.network import data as nd
from transferviz.build.analysis import FEATVIS_ALL_MAX, featvis_neurons

MODELS = ("source", "target")


def _shown_by_views(cache) -> set[tuple[str, int]]:
    """(layer, neuron) of every feature-visualization slot of the network and features views, over every
    class and model: the network view's neurons (rows, columns, weight ends and similarity cells are the
    class's important neurons), the neuron panel's five most similar neurons of the other model, and the
    features view's ranking list."""
    shown: set[tuple[str, int]] = set()
    for c in range(len(cache.classes)):
        for m in MODELS:
            for layer in cache.layers:
                imp = nd.class_important(cache, m, layer, c)
                for n in imp[imp >= 0]:
                    shown.add((layer, int(n)))
                    detail = nd.neuron_detail(cache, c, m, layer, int(n))
                    shown |= {(layer, int(s["neuron"])) for s in detail.similar}
            d = fd.discriminability(cache, m, c)
            if d.ok:
                shown |= {(str(layer), int(n)) for layer, n in zip(d.neurons["layer"], d.neurons["neuron"])}
    return shown


def test_the_rendered_set_covers_every_neuron_the_views_show(tiny_cache):
    # the tiny model (336 neurons) is small enough for all: force the selective rule a larger one gets
    picked = featvis_neurons(tiny_cache, fraction_all_max=0)
    assert len(picked) == len(set(picked)) and picked == sorted(picked, key=lambda p: (
        tiny_cache.layers.index(p[0]), p[1]))
    shown = _shown_by_views(tiny_cache)
    assert shown <= set(picked), sorted(shown - set(picked))[:10]
    assert set(picked) == shown  # nothing the views never show
    total = sum(tiny_cache.layer_sizes.values())
    assert len(picked) < total  # and the rule leaves neurons out (216 of 336 on the tiny cache)


def test_a_small_model_gets_every_neuron(tiny_cache):
    total = sum(tiny_cache.layer_sizes.values())
    assert total <= FEATVIS_ALL_MAX
    picked = featvis_neurons(tiny_cache)
    assert len(picked) == total
    assert {(layer, n) for layer in tiny_cache.layers for n in range(tiny_cache.layer_sizes[layer])} == set(picked)
    # and the tiny build rendered exactly that set, in both models
    for m in MODELS:
        assert {(layer, n) for layer in tiny_cache.layers for n in tiny_cache.featvis_neurons(m, layer)} == set(picked)
    notes = tiny_cache.manifest["stages"]["featvis"]["notes"]
    if "rendered" in notes:  # a cache built since the stage records its count
        assert (notes["rendered"], notes["neurons_total"]) == (total, total)


def test_similar_neurons_come_from_the_compare_stage(tiny_cache):
    """The neuron panel's similar neurons are the compare stage's top five of each important neuron."""
    layer, c = tiny_cache.layers[1], 2
    imp = np.asarray(tiny_cache.array(f"analysis/neurons/target/{layer}.npy"))[c]
    n = int(imp[0])
    idx = np.asarray(tiny_cache.array(f"analysis/similarity/{layer}_t2s_idx.npy"))[c, n]
    picked = set(featvis_neurons(tiny_cache, fraction_all_max=0))
    assert {(layer, int(j)) for j in idx} <= picked
