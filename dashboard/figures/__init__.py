"""Pure figure builders: plain numpy/pandas in, ``plotly.graph_objects.Figure`` out.

No cache access and no Dash here; callbacks slice the cache and call these. Empty inputs
give a figure with a centred annotation (see :func:`theme.empty_figure`), never an error.
"""

from dashboard.figures.features import discriminability_biplot, mirrored_histogram, ranking_rows
from dashboard.figures.instances import class_color_map, tsne_scatter
from dashboard.figures.network import (
    Histogram,
    LayerBlock,
    ModelWeights,
    NeuronBoxes,
    PairBlock,
    kernel_heatmap,
    parse_click,
    relation_matrices,
)
from dashboard.figures.statistics import accuracy_chart, transferability_badge, transferability_score
from dashboard.figures.theme import (
    DOMAIN_COLORS,
    DOMAIN_SYMBOLS,
    GRAPH_CONFIG,
    GRAPH_CONFIG_PNG,
    NETWORK_CONFIG,
    SCATTER_CONFIG,
    SOURCE_COLOR,
    SPARK_CONFIG,
    TARGET_COLOR,
    class_palette,
    empty_figure,
    graph_config,
    is_empty_figure,
)

__all__ = [
    "DOMAIN_COLORS",
    "DOMAIN_SYMBOLS",
    "GRAPH_CONFIG",
    "GRAPH_CONFIG_PNG",
    "NETWORK_CONFIG",
    "SCATTER_CONFIG",
    "SOURCE_COLOR",
    "SPARK_CONFIG",
    "TARGET_COLOR",
    "Histogram",
    "LayerBlock",
    "ModelWeights",
    "NeuronBoxes",
    "PairBlock",
    "accuracy_chart",
    "class_color_map",
    "class_palette",
    "discriminability_biplot",
    "empty_figure",
    "graph_config",
    "is_empty_figure",
    "kernel_heatmap",
    "mirrored_histogram",
    "parse_click",
    "ranking_rows",
    "relation_matrices",
    "transferability_badge",
    "transferability_score",
    "tsne_scatter",
]
