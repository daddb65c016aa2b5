"""Feature visualization of neurons and how each neuron's visualization changed through fine-tuning.

* :mod:`~transferviz.featvis.param` -- lucid's Fourier image parameterisation (``torch.fft``).
* :mod:`~transferviz.featvis.render` -- :func:`render_neurons`: many neurons, one image each,
  optimised together as one batch; deterministic per ``(seed, layer, index)``.
* :mod:`~transferviz.featvis.compare` -- colourfulness, gray detection, embedding similarity
  and the most changed neurons per layer (:func:`compare_renders`).
* :mod:`~transferviz.featvis.extend` -- ``transferviz featvis``: neurons the build left out, rendered
  into a new build of the run and published like one (imported on its own: it uses the build package).

Typical use by the cache stage::

    src = render_neurons(source_model, neurons, size=28, mean=m, std=s, seed=cfg.seed)
    tgt = render_neurons(target_model, neurons, size=28, mean=m, std=s, seed=cfg.seed)
    change = compare_renders(src, tgt, [layer for layer, _ in neurons], top=5)

Use the same ``seed`` and the same normalisation for both models: each neuron then starts
from the same image and sees the same transforms in both, which is what makes the pair
comparable. :func:`visualize_neurons` is :func:`render_neurons` that also returns the
objective before, after and at every step. (No function here is called ``render``, so that
``transferviz.featvis.render`` always names the module.)
"""

from transferviz.featvis.compare import (
    ChangeResult,
    colourfulness,
    colourfulness_scores,
    compare_renders,
    detect_gray,
    embedding_similarity,
    gray_cutoff,
    image_embedding,
    most_changed,
)
from transferviz.featvis.param import FourierImage, image_to_spectrum, spectrum_to_image
from transferviz.featvis.render import RenderResult, TransformSpec, neuron_seed, render_neurons, visualize_neurons

__all__ = [
    "ChangeResult",
    "FourierImage",
    "RenderResult",
    "TransformSpec",
    "colourfulness",
    "colourfulness_scores",
    "compare_renders",
    "detect_gray",
    "embedding_similarity",
    "gray_cutoff",
    "image_embedding",
    "image_to_spectrum",
    "most_changed",
    "neuron_seed",
    "render_neurons",
    "spectrum_to_image",
    "visualize_neurons",
]
