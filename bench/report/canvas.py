"""Drawing helpers shared by the report's figures: PNG data URIs, panel grids, colours, legends.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot: no
global backend is switched and nothing is left open in the caller's process. Sizes and
dpi are small on purpose: the quick grid's whole page stays under a few megabytes.
"""

from __future__ import annotations

import base64
import io
import math

import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "MAX_PANELS",
    "png_uri",
    "figure_uri",
    "plain",
    "panels",
    "colours",
    "legend",
    "level_ticks",
    "place_labels",
]

DPI = 80
MAX_PANELS = 8  # panels per figure: past this a figure is unreadable and heavy


def png_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig: Figure) -> str:
    """The figure as a PNG data URI (no Software tag: it would only add bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return png_uri(buffer.getvalue())


def plain(text: object) -> str:
    # A '$' in a name would switch matplotlib to mathtext and can fail to parse.
    return str(text).replace("$", r"\$")


def panels(
    n: int, *, width: float = 3.4, height: float = 2.6, columns: int = 4, legend: list | None = None
) -> tuple[Figure, list]:
    """A figure of ``n`` panels, widened on the right for a shared legend of the ``legend`` labels."""
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    extra = 0.0
    if legend:
        extra = _legend_columns(len(legend), height * rows) * (0.6 + 0.06 * max(len(str(n)) for n in legend))
    fig = Figure(figsize=(width * columns + extra, height * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def colours(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _legend_columns(count: int, height: float) -> int:
    # A 7 pt legend row takes about 0.15 in: more entries than fit in the height get more columns
    # (a legend taller than its figure is cut off). Each column is about 0.6 in plus 0.06 in a character.
    return max(1, math.ceil(count / max(1, int(height / 0.15))))


def legend(fig: Figure, axes: list) -> None:
    handles, labels = {}, {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
            labels.setdefault(label, label)
    if handles:
        ncols = _legend_columns(len(handles), fig.get_figheight())
        fig.legend(
            list(handles.values()), list(labels), loc="outside right upper", fontsize=7, frameon=False, ncols=ncols
        )


def level_ticks(ax, levels: pd.Series) -> None:
    # Ticks at the grid's levels only: automatic ones around a single level read as noise.
    values = sorted(levels.unique())
    ax.set_xticks(values, [f"{v:g}" for v in values])


# Label offsets in points beyond the marker's radius: rings of eight directions, nearest first.
_DIRECTIONS = ((1, 0.3), (1, -1), (-1, 0.3), (-1, -1), (0, 1), (0, -1.6), (1, 1.2), (-1, 1.2))
_RINGS = (1, 2, 3.5, 5)


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _marker_boxes(ax, points: list[tuple[float, float]], radii: list[float]) -> list:
    from matplotlib.transforms import Bbox

    scale = ax.figure.dpi / 72.0  # points to pixels
    centres = ax.transData.transform(points) if points else []
    return [
        Bbox.from_extents(x - r * scale, y - r * scale, x + r * scale, y + r * scale)
        for (x, y), r in zip(centres, radii, strict=True)
    ]


def place_labels(
    ax, points: list[tuple[float, float]], labels: list[str], *, radii: list[float] | None = None, fontsize: float = 7
) -> list:
    """Name each point (data coordinates) so that no label covers another label or a marker.

    ``radii`` are the markers' radii in points (default 3). Each label takes the nearest of
    a few offsets where it overlaps nothing placed before, no marker, and stays inside the
    axes (else the least overlap); labels moved past the first ring get a leader line. Call
    it last: the axes must have their final limits, size and legend. Returns the texts.
    """
    fig = ax.figure
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.draw_without_rendering()  # settles the layout, so display coordinates are final
    radii = list(radii) if radii is not None else [3.0] * len(points)
    renderer, frame = fig.canvas.get_renderer(), ax.get_window_extent()
    obstacles, texts = _marker_boxes(ax, points, radii), []
    for (x, y), label, radius in zip(points, labels, radii, strict=True):
        best = None
        for ring, (dx, dy) in ((r, d) for r in _RINGS for d in _DIRECTIONS):
            reach = 6 * ring + radius
            text = ax.annotate(
                label,
                (x, y),
                xytext=(dx * reach, dy * reach),
                textcoords="offset points",
                fontsize=fontsize,
                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                va="bottom" if dy >= 0 else "top",
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "grey"} if ring > 1 else None,
            )
            text.set_in_layout(False)  # labels must not move the axes they were placed in
            box = text.get_window_extent(renderer)
            outside = box.width * box.height - _overlap(box, frame)
            cost = sum(_overlap(box, other) for other in obstacles) + outside
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        obstacles.append(best[2])
        texts.append(best[1])
    return texts
