"""The build: every stage that turns a config into a cache, in the order they run.

data         both domains loaded, aligned and split; images, labels, thumbnails
models       the source model trained and the target model fine-tuned from it (or both loaded)
forward      predictions, losses, embeddings, confusion counts, class table, transferability
architecture the analysed layers (analysis.layers), which cut the graph, which consecutive pairs one weight
             matrix joins; every leaf module's output shape, parameters and weight change
transfer     LogME, LEEP, NCE and H-score of the source model alone on the target training data (before fine-tuning)
cka          linear CKA (unbiased HSIC, minibatched) of every source layer vs every target layer, on both domains
attribute    Layer Conductance of every neuron of every analysed layer, all instances, both models
abstract     per class: important neurons, and important weights of the linked pairs (paper 5.3.1)
compare      per class: source x target neuron similarity, and weight correspondence of the linked pairs (5.3.2)
discriminate per class and model: domain discriminability, Algorithm 1 and its biplot (5.4)
project      the openTSNE map of the target model's embeddings (5.2)
classmaps    one openTSNE map per class, refined from the global map, for the instance view
pixels       the same instances mapped by their raw pixels
featvis      feature visualizations of neurons of both models and their change
timeline     the fine-tuning timeline: embeddings, predictions and weight drift by epoch

Each stage writes artifacts documented in ``docs/cache.md``. The modules:
:mod:`~transferviz.build.framework` (keys, reuse, manifest, atomic publish),
:mod:`~transferviz.build.inputs` (the first four stages),
:mod:`~transferviz.build.estimates` (transfer and cka) and
:mod:`~transferviz.build.analysis` (the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from transferviz.analysis.timeline import K_NEIGHBOURS
from transferviz.build import analysis, estimates, inputs
from transferviz.build.framework import BuildOptions, BuildReport, Stage, run_build
from transferviz.config import Config

__all__ = ["STAGES", "build", "check_layers"]

# A stage's params are the config values it reads, hashed (with its version and its dependencies'
# output keys) into the key that decides whether a later build may reuse its artifacts.
STAGES: list[Stage] = [
    Stage("data", inputs.stage_data,
          lambda c: {"source": c.source, "target": c.target, "val_fraction": c.val_fraction, "seed": c.seed,
                     "input_size": c.model.input_size},
          always_run=True, doc="loading both domains, splitting, thumbnails"),
    Stage("models", inputs.stage_models,
          lambda c: {"model": c.model, "training": c.training, "checkpoints": c.checkpoints, "seed": c.seed},
          deps=("data",), fingerprint=inputs.checkpoint_fingerprint, version=2,
          doc="training source, fine-tuning target"),
    Stage("forward", inputs.stage_forward, lambda c: {"embedding_layer": c.analysis.embedding_layer},
          deps=("data", "models"), sharded=True, doc="predictions, losses, embeddings, confusion table"),
    # the analysed layers (models/layers.json) and their cuts and weight links (models/graph.json) are chosen here
    Stage("architecture", inputs.stage_architecture,
          lambda c: {"model": c.model, "layers": c.analysis.layers, "embedding_layer": c.analysis.embedding_layer},
          deps=("data", "models"), version=2,
          doc="the analysed layers, their cuts and weight links; every module's shape, parameters and change"),
    Stage("transfer", estimates.stage_transfer, lambda c: {"embedding_layer": c.analysis.embedding_layer},
          deps=("data", "models", "forward"),
          doc="transferability estimates of the source model (LogME, LEEP, NCE, H-score)"),
    Stage("cka", estimates.stage_cka, lambda c: {"layers": c.analysis.layers, "seed": c.seed},
          deps=("data", "models", "architecture"), doc="linear CKA between the source and target layers"),
    Stage("attribute", analysis.stage_attribute,
          lambda c: {"n_steps": c.analysis.n_steps, "method": c.analysis.method, "baseline": c.analysis.baseline,
                     "layers": c.analysis.layers},
          deps=("data", "models", "architecture"), sharded=True,
          doc="Layer Conductance of every neuron, every instance, both models"),
    Stage("abstract", analysis.stage_abstract,
          lambda c: {"neuron_fraction": c.analysis.neuron_fraction, "weight_top_k": c.analysis.weight_top_k,
                     "layers": c.analysis.layers, "active_receivers": c.analysis.active_receivers,
                     "weight_reduction": c.analysis.weight_reduction},
          deps=("data", "models", "architecture", "attribute"), version=3, sharded=True,
          doc="important neurons per class, important weights of the linked layer pairs"),
    Stage("compare", analysis.stage_compare,
          lambda c: {"layers": c.analysis.layers, "similarity": c.analysis.similarity, "matching": c.analysis.matching,
                     "correspondence_permutations": c.analysis.correspondence_permutations, "seed": c.seed},
          deps=("architecture", "abstract"), version=3,
          doc="neuron similarity and weight correspondence"),
    Stage("discriminate", analysis.stage_discriminate,
          lambda c: {"discriminability_folds": c.analysis.discriminability_folds,
                     "discriminability_permutations": c.analysis.discriminability_permutations,
                     "discriminability_bootstrap": c.analysis.discriminability_bootstrap,
                     "discriminability_stability_null": c.analysis.discriminability_stability_null, "seed": c.seed,
                     "discriminability_cv_max_rows": c.analysis.discriminability_cv_max_rows},
          deps=("data", "abstract"), version=4,
          doc="domain discriminability (Algorithm 1), its bootstrap stability, the trivial-feature baseline"),
    Stage("project", analysis.stage_project, lambda c: {"tsne_perplexity": c.analysis.tsne_perplexity, "seed": c.seed},
          deps=("forward",), version=2, doc="t-SNE maps"),
    Stage("classmaps", analysis.stage_classmaps,
          lambda c: {"tsne_perplexity": c.analysis.tsne_perplexity, "seed": c.seed},
          deps=("project",), version=2, doc="one t-SNE map per class"),
    Stage("pixels", analysis.stage_pixels, lambda c: {"tsne_perplexity": c.analysis.tsne_perplexity, "seed": c.seed},
          deps=("data",), doc="t-SNE map of the raw pixels"),
    # which neurons it renders reads the important neurons, the most similar ones and the ranking
    Stage("featvis", analysis.stage_featvis, lambda c: {"featvis": c.featvis},
          deps=("abstract", "compare", "discriminate"), version=2, sharded=True,
          enabled=lambda c, opts: c.featvis.enabled and opts.featvis,
          doc="feature visualizations of neurons and their change through fine-tuning"),
    Stage("timeline", analysis.stage_timeline, lambda c: {"seed": c.seed, "neighbours": K_NEIGHBOURS},
          deps=("forward", "project", "models", "architecture"), sharded=True,
          doc="fine-tuning timeline: embeddings, predictions and weight drift by epoch"),
]


def build(config: Config, cache_root: Path, device: torch.device, force: bool = False, featvis: bool = True,
          progress: bool = True, log: Callable[[str], None] = print) -> BuildReport:
    """Builds (or updates) ``cache_root/<config.name>`` from ``config``."""
    opts = BuildOptions(cache_root=Path(cache_root), device=device, force=force, featvis=featvis, progress=progress)
    inputs.preflight(config, opts.cache_root, device)
    check_layers(config)
    return run_build(config, STAGES, opts, log=log)


def check_layers(config: Config) -> None:
    """A listed ``analysis.layers`` or ``analysis.embedding_layer`` checked against an untrained model of the
    architecture now, so that a typo is a one-line error before any training rather than after it."""
    a = config.analysis
    if isinstance(a.layers, str) and a.embedding_layer is None:
        return  # presets always resolve
    from transferviz.models import build_model

    cfg_model = config.model
    graph = inputs.model_graph(config, build_model(cfg_model.arch, 2, cfg_model.input_size))
    inputs.choose_layers(config, graph)
    inputs.choose_embedding_layer(config, graph)
