"""Shared visual vocabulary of every dashboard figure.

Red stands for the source domain and model, blue for the target, everywhere; crosses for
source instances or series, circles for target ones (paper, section 5 and 5.1). Every
builder in ``dashboard/views/<view>/figures.py`` takes its colours, symbols, layout template and
mode-bar configuration from here, so the views read as one interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import plotly.graph_objects as go
from dash import dcc

if TYPE_CHECKING:  # typing.Unpack is Python 3.11+; only the type checker reads it (annotations are strings)
    from typing_extensions import Unpack

Domain = Literal["source", "target"]

# ---------------------------------------------------------------------------------------
# Colours and symbols
# ---------------------------------------------------------------------------------------
SOURCE_COLOR = "#d62728"  #: source domain / source model (red)
TARGET_COLOR = "#1f77b4"  #: target domain / target model (blue)
SOURCE_LIGHT = "#f4c7c7"  #: pale red, for fills behind source elements
TARGET_LIGHT = "#c6dbef"  #: pale blue, for fills behind target elements
SOURCE_TINT = "rgba(214,39,40,0.06)"  #: background tint of a source-model region
TARGET_TINT = "rgba(31,119,180,0.06)"  #: background tint of a target-model region

DOMAIN_COLORS: dict[str, str] = {"source": SOURCE_COLOR, "target": TARGET_COLOR}
DOMAIN_LIGHT: dict[str, str] = {"source": SOURCE_LIGHT, "target": TARGET_LIGHT}
DOMAIN_TINT: dict[str, str] = {"source": SOURCE_TINT, "target": TARGET_TINT}

SOURCE_SYMBOL = "x"  #: source instances / source-model series
TARGET_SYMBOL = "circle"  #: target instances / target-model series
DOMAIN_SYMBOLS: dict[str, str] = {"source": SOURCE_SYMBOL, "target": TARGET_SYMBOL}

DOMAIN_LETTER: dict[str, str] = {"source": "S", "target": "T"}

#: Dataset colours of the accuracy chart: the colour is the domain the data comes from.
DATASET_COLORS: dict[str, str] = {
    "source_train": SOURCE_COLOR,
    "source_val": SOURCE_COLOR,
    "target_train": TARGET_COLOR,
    "target_val": TARGET_COLOR,
}
#: Dash style of the accuracy chart: training data solid, validation data dashed.
DATASET_DASH: dict[str, str] = {
    "source_train": "solid",
    "target_train": "solid",
    "source_val": "dash",
    "target_val": "dash",
}

MISPREDICTED_COLOR = "#3a3a3a"  #: dark grey border of instances the target model mispredicts
NEUTRAL_COLOR = "#7f7f7f"  #: histograms and other domain-free marks
GRID_COLOR = "#e6e6e6"
TEXT_COLOR = "#2a2a2a"
CORRECT_COLOR = "#1b7837"  #: green: right predictions, the confusion diagonal (not red/blue, which mean source/target)
ERROR_COLOR = "#762a83"    #: purple: errors (green and purple stay apart for colour-blind readers)
POSITIVE_COLOR = "#2ca02c"  #: transferability gain
NEGATIVE_COLOR = "#d62728"  #: transferability loss

FONT_FAMILY = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

#: Greys from white (0) to black (1): the similarity brightness scale of the paper
#: ("zero is represented by the highest brightness and one the lowest").
SIMILARITY_COLORSCALE: list[list[Any]] = [[0.0, "#ffffff"], [1.0, "#000000"]]
#: Weight brightness: light grey (smallest) to black (largest); never pure white, so that a
#: weak weight still shows against an empty cell.
WEIGHT_COLORSCALE: list[list[Any]] = [[0.0, "#d9d9d9"], [1.0, "#000000"]]
#: Diverging scale for signed kernels (purple negative, green positive; red/blue are taken).
KERNEL_COLORSCALE = "PRGn"

# Class palette: categorical colours that avoid the two domain colours.
_BASE_CLASS_COLORS: tuple[str, ...] = (
    "#ff7f0e",  # orange
    "#2ca02c",  # green
    "#9467bd",  # purple
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#17becf",  # cyan
    "#bcbd22",  # olive
    "#7f7f7f",  # grey
    "#1b9e77",  # teal
    "#d95f02",  # dark orange
    "#7570b3",  # slate purple
    "#e7298a",  # magenta
    "#66a61e",  # leaf green
    "#e6ab02",  # mustard
    "#a6761d",  # ochre
    "#666666",  # dark grey
)


def class_palette(n: int) -> list[str]:
    """Return ``n`` distinct categorical colours for class labels.

    The first 16 come from a fixed list that leaves out the source red and target blue;
    more are generated on a golden-angle hue wheel (HSL, fixed saturation and lightness)
    so any class count gets stable, distinct colours. ``n <= 0`` gives an empty list.
    """
    n = int(n)
    if n <= 0:
        return []
    colors = list(_BASE_CLASS_COLORS[:n])
    i = 0
    while len(colors) < n:
        hue = (i * 137.508 + 20.0) % 360.0
        i += 1
        # skip hues too close to the domain red (~0/360) and blue (~205)
        if hue < 15 or hue > 345 or 195 < hue < 215:
            continue
        colors.append(f"hsl({hue:.0f},55%,{45 + 10 * (i % 2)}%)")
    return colors


# ---------------------------------------------------------------------------------------
# Layout template and mode-bar configuration
# ---------------------------------------------------------------------------------------
#: Both axes of the template: light grid, no zero line, grey ticks outside.
_AXIS = dict(showgrid=True, gridcolor=GRID_COLOR, zeroline=False, linecolor="#bdbdbd", ticks="outside",
             tickcolor="#bdbdbd")

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family=FONT_FAMILY, size=12, color=TEXT_COLOR),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=48, r=16, t=36, b=40),
        hoverlabel=dict(font=dict(family=FONT_FAMILY, size=12), bgcolor="white"),
        legend=dict(font=dict(size=11), bgcolor="rgba(255,255,255,0.8)"),
        xaxis=_AXIS,
        yaxis=_AXIS,
        colorway=list(_BASE_CLASS_COLORS),
        title=dict(font=dict(size=13), x=0.01, xanchor="left"),
    )
)


#: What ``dcc.Graph(config=...)`` accepts: Dash's TypedDict of Plotly's config options (quoted: only the
#: type checker reads it).
GraphConfig: TypeAlias = "dcc.Graph.Config"
#: The formats of the mode bar's download button.
ImageFormat = Literal["svg", "png", "jpeg", "webp"]


def graph_config(filename: str = "transferviz", image_format: ImageFormat = "svg",
                 **extra: Unpack[GraphConfig]) -> GraphConfig:
    """Return a ``dcc.Graph(config=...)`` dict whose mode-bar camera exports the figure.

    ``image_format`` is ``"svg"`` (default) or ``"png"``; Plotly's mode bar has a single
    download button, so the dashboard picks the format (for instance from a switch) by
    passing a different config. ``extra`` entries override the defaults.
    """
    if image_format not in ("svg", "png", "jpeg", "webp"):
        raise ValueError(f"unsupported image format {image_format!r}")
    cfg: GraphConfig = {
        "displaylogo": False,
        "responsive": True,
        "toImageButtonOptions": {
            "format": image_format,
            "filename": filename,
            "scale": 2 if image_format == "png" else 1,
        },
        "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"],
    }
    cfg.update(extra)
    return cfg


#: Default mode-bar configuration: SVG export.
GRAPH_CONFIG: GraphConfig = graph_config()
#: The same, exporting PNG (2x scale).
GRAPH_CONFIG_PNG: GraphConfig = graph_config(image_format="png")
#: Instance view: keeps lasso and box selection for listing the chosen instances.
SCATTER_CONFIG: GraphConfig = graph_config(
    "instances", modeBarButtonsToRemove=["autoScale2d"], scrollZoom=True
)
#: Network relation view: large figure inside a scrolling container; the wheel scrolls the
#: page, the mode bar zooms/pans.
NETWORK_CONFIG: GraphConfig = graph_config("network_relation", scrollZoom=False, responsive=False)
#: Tiny inline charts (table rows): static, no mode bar.
SPARK_CONFIG: GraphConfig = {"displayModeBar": False, "staticPlot": True, "responsive": False}


def apply_theme(fig: go.Figure, **layout: Any) -> go.Figure:
    """Apply :data:`TEMPLATE` (and any extra layout keywords) to ``fig`` in place; return it."""
    fig.update_layout(template=TEMPLATE, **layout)
    return fig


def empty_figure(message: str, *, height: int | None = None, width: int | None = None) -> go.Figure:
    """A blank figure that states an empty state in a centred annotation.

    Axes are hidden; ``layout.meta == {"empty": True, "message": message}`` lets callers
    and tests recognise it.
    """
    fig = go.Figure()
    apply_theme(
        fig,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        margin=dict(l=8, r=8, t=8, b=8),
        meta={"empty": True, "message": message},
        annotations=[
            dict(
                text=message,
                x=0.5,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                font=dict(size=13, color="#666666"),
                xanchor="center",
                yanchor="middle",
            )
        ],
    )
    if height is not None:
        fig.update_layout(height=height)
    if width is not None:
        fig.update_layout(width=width)
    return fig


def is_empty_figure(fig: go.Figure) -> bool:
    """True when ``fig`` was made by :func:`empty_figure`."""
    meta = fig.layout.meta
    return isinstance(meta, dict) and bool(meta.get("empty"))


def fast_figure(traces: list[dict], layout: dict) -> go.Figure:
    """A themed figure built without plotly's per-property validation: it costs tens of ms per
    figure, a callback's whole budget, and the tests check the structure. Same result as
    :func:`apply_theme`."""
    fig = go.Figure(data=traces, layout=layout, _validate=False)
    fig.update_layout(template=TEMPLATE)
    return fig
