"""Figures for report.html, each returned as a PNG ``data:`` URI (thumbnails: bench.html_report).

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas, never pyplot: no
global backend is switched and nothing is left open in the caller's process. Sizes and
dpi are small on purpose: the quick grid's whole page stays under a few megabytes.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "png_uri", "figure_uri", "metric_vs_level", "accuracy_vs_level",
    "cost_vs_quality", "train_test_heatmaps", "learning_curves", "confusion_matrices", "diagonal",
    "figures",
]  # fmt: skip

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


def _plain(text: object) -> str:
    # A '$' in a name would switch matplotlib to mathtext and can fail to parse.
    return str(text).replace("$", r"\$")


def _panels(
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


def _colours(names: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _legend_columns(count: int, height: float) -> int:
    # A 7 pt legend row takes about 0.15 in: more entries than fit in the height get more columns
    # (a legend taller than its figure is cut off). Each column is about 0.6 in plus 0.06 in a character.
    return max(1, math.ceil(count / max(1, int(height / 0.15))))


def _legend(fig: Figure, axes: list) -> None:
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


def _level_ticks(ax, levels: pd.Series) -> None:
    # Ticks at the grid's levels only: automatic ones around a single level read as noise.
    values = sorted(levels.unique())
    ax.set_xticks(values, [f"{v:g}" for v in values])


def diagonal(cells: pd.DataFrame, *, ok_only: bool = True) -> pd.DataFrame:
    """Cells tested at their training level, or trained blind/mixed: the leaderboard's cells.

    Adds ``entry``, the row name: the denoiser, with ``(blind)`` or ``(mixed)`` appended
    for such models, which are other entries than those trained at the test level, and the
    parameters that tell its runs apart where a store holds it under several (``[key=value]``).
    """
    rows = cells[cells["status"] == "ok"] if ok_only else cells
    numeric = pd.to_numeric(rows["train_level"], errors="coerce")
    keep = (numeric.isna() | np.isclose(numeric.fillna(-1.0), rows["level"].astype(float))).to_numpy()
    rows = rows[keep].copy()
    other = pd.to_numeric(rows["train_level"], errors="coerce").isna().to_numpy()
    rows["entry"] = np.where(
        other, rows["denoiser"].astype(str) + " (" + rows["train_level"].astype(str) + ")", rows["denoiser"].astype(str)
    )
    if "denoiser_params" in rows:
        rows["entry"] = rows["entry"] + _variants(rows)
    return rows


def _variants(rows: pd.DataFrame) -> pd.Series:
    """`` [key=value, ...]`` of the parameters that differ between one denoiser's cells, else ''."""
    params = rows["denoiser_params"].map(lambda p: p if isinstance(p, dict) else {})
    suffix = pd.Series("", index=rows.index)
    for _, group in params.groupby(rows["denoiser"]):
        keys = sorted({key for p in group for key in p})
        differ = [key for key in keys if len({json.dumps(p.get(key), sort_keys=True) for p in group}) > 1]
        for index, p in group.items():
            named = [f"{key}={json.dumps(p[key])}" for key in differ if key in p]
            suffix[index] = f" [{', '.join(named)}]" if named else ""
    return suffix


def metric_vs_level(cells: pd.DataFrame, dataset: str, *, metric: str = "psnr", label: str = "PSNR (dB)") -> str | None:
    """One panel per noise kind: ``metric`` against test level, a line per denoiser."""
    rows = diagonal(cells)
    rows = rows[rows["dataset"] == dataset].dropna(subset=[metric])
    if rows.empty:
        return None
    kinds = sorted(rows["noise"].unique())[:MAX_PANELS]
    colours = _colours(sorted(rows["entry"].unique()))
    fig, axes = _panels(len(kinds), legend=list(colours))
    for ax, kind in zip(axes, kinds, strict=False):
        for name, group in rows[rows["noise"] == kind].groupby("entry"):
            group = group.groupby("level")[metric].mean()
            ax.plot(group.index, group.values, marker="o", ms=3, lw=1.2, color=colours[name], label=_plain(name))
        _level_ticks(ax, rows.loc[rows["noise"] == kind, "level"])
        ax.set(title=_plain(kind), xlabel="noise level", ylabel=label)
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    return figure_uri(fig)


def accuracy_vs_level(cells: pd.DataFrame, classifiers: pd.DataFrame, dataset: str) -> str | None:
    """Accuracy on denoised images against level, a panel per noise kind, a line per denoiser.

    With several classifiers each point is their mean: one panel per classifier would not
    stay readable, and the leaderboard's accuracy switch and the classifiers table have each.
    """
    entries = diagonal(cells).set_index("key")["entry"]
    rows = classifiers[(classifiers["dataset"] == dataset) & classifiers["key"].isin(entries.index)].dropna(
        subset=["accuracy_denoised"]
    )
    rows = rows.assign(entry=rows["key"].map(entries))
    if rows.empty:
        return None
    kinds = sorted(rows["noise"].unique())[:MAX_PANELS]
    names = sorted(rows["classifier"].unique())
    colours = _colours(sorted(rows["entry"].unique()))
    fig, axes = _panels(len(kinds), legend=[*colours, "noisy input", "clean input"])
    for ax, kind in zip(axes, kinds, strict=False):
        panel = rows[rows["noise"] == kind]
        for name, group in panel.groupby("entry"):
            group = group.groupby("level")["accuracy_denoised"].mean()
            ax.plot(group.index, group.values, marker="o", ms=3, lw=1.2, color=colours[name], label=_plain(name))
        for column, style, text in (("accuracy_noisy", "--", "noisy input"), ("accuracy_clean", ":", "clean input")):
            baseline = panel.groupby("level")[column].mean().dropna()
            ax.plot(baseline.index, baseline.values, style, color="black", lw=1, label=text)
        _level_ticks(ax, panel["level"])
        which = names[0] if len(names) == 1 else f"mean of {len(names)} classifiers"
        ax.set(title=_plain(f"{kind}: {which}"), xlabel="noise level", ylabel="accuracy")
        ax.grid(alpha=0.3)
    _legend(fig, axes)
    return figure_uri(fig)


def cost_vs_quality(cells: pd.DataFrame, dataset: str) -> str | None:
    """Mean PSNR against median images/s (log x) per denoiser; marker area grows with parameters."""
    rows = diagonal(cells)
    rows = rows[(rows["dataset"] == dataset) & (rows["images_per_second"] > 0)]
    if rows.empty:
        return None
    points = rows.groupby("entry").agg(
        psnr=("psnr", "mean"), speed=("images_per_second", "median"), params=("params", "max")
    )
    params = points["params"].astype("float64").fillna(0.0)
    sizes = 20 + 180 * np.sqrt(params / max(float(params.max()), 1.0))
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    colours = _colours(list(points.index))
    ax.scatter(
        points["speed"],
        points["psnr"],
        s=sizes,
        c=[colours[n] for n in points.index],
        alpha=0.75,
        edgecolors="black",
        linewidths=0.5,
    )
    for name, point in points.iterrows():
        ax.annotate(
            _plain(name), (point["speed"], point["psnr"]), fontsize=7, xytext=(4, 3), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.margins(0.15)  # room for the names beside the outermost points
    ax.set(
        xlabel="images / s (log scale)",
        ylabel="mean PSNR (dB)",
        title=_plain(f"{dataset}: cost vs quality (marker area ~ parameters)"),
    )
    ax.grid(alpha=0.3, which="both")
    return figure_uri(fig)


def train_test_heatmaps(cells: pd.DataFrame, dataset: str, noise: str) -> str | None:
    """PSNR over training level x test level, a panel per denoiser with several training levels."""
    rows = cells[(cells["status"] == "ok") & (cells["dataset"] == dataset) & (cells["noise"] == noise)].copy()
    rows["train"] = pd.to_numeric(rows["train_level"], errors="coerce")
    rows = rows.dropna(subset=["train", "psnr"])
    several = rows.groupby(["denoiser", "level"])["train"].nunique().groupby("denoiser").max()
    names = sorted(several[several > 1].index)[:MAX_PANELS]
    if not names:
        return None
    fig, axes = _panels(len(names), width=3.0, height=2.8)
    for ax, name in zip(axes, names, strict=False):
        table = rows[rows["denoiser"] == name].pivot_table(
            index="train", columns="level", values="psnr", aggfunc="mean"
        )
        values = table.to_numpy()
        image = ax.imshow(values, cmap="viridis", origin="lower", aspect="auto")
        ax.set_xticks(range(table.shape[1]), [f"{v:g}" for v in table.columns], fontsize=7)
        ax.set_yticks(range(table.shape[0]), [f"{v:g}" for v in table.index], fontsize=7)
        middle = np.nanmean([np.nanmin(values), np.nanmax(values)])
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):  # dark text on viridis' bright upper half, white on its dark lower half
                ax.text(
                    j,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if value > middle else "white",
                )
        ax.set(title=_plain(name), xlabel="test level", ylabel="training level")
        fig.colorbar(image, ax=ax, shrink=0.8, label="PSNR (dB)")
    return figure_uri(fig)


def _history_frame(history: object) -> pd.DataFrame | None:
    if not isinstance(history, list) or not history:
        return None
    frame = pd.DataFrame([h for h in history if isinstance(h, dict)])
    return frame if "epoch" in frame else None


def learning_curves(cells: pd.DataFrame, dataset: str) -> str | None:
    """Validation (solid) and training (dashed) loss per epoch, a panel per neural denoiser."""
    rows = cells[(cells["dataset"] == dataset) & cells["history"].map(lambda h: _history_frame(h) is not None)]
    # Cells tested at several levels share one fit and so one history: draw each fit once.
    rows = rows.drop_duplicates(subset=["denoiser", "noise", "train_level"])
    names = sorted(rows["denoiser"].unique())[:MAX_PANELS]
    if not names:
        return None
    fits = sorted({f"{n} {t}" for n, t in zip(rows["noise"], rows["train_level"], strict=True)})
    colours = _colours(fits)  # one colour per training noise, the same in every panel
    fig, axes = _panels(len(names), legend=[*fits, "training (dashed)"])
    for ax, name in zip(axes, names, strict=False):
        for _, fit in rows[rows["denoiser"] == name].iterrows():
            history, label = _history_frame(fit["history"]), f"{fit['noise']} {fit['train_level']}"
            for column, style in (("val_loss", "-"), ("train_loss", "--")):
                if column in history:
                    ax.plot(
                        history["epoch"],
                        history[column],
                        style,
                        color=colours[label],
                        lw=1.2,
                        label=_plain(label) if style == "-" else None,
                    )
        ax.set(title=_plain(name), xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].plot([], [], "--", color="grey", label="training (dashed)")
    _legend(fig, axes)
    return figure_uri(fig)


def confusion_matrices(classifiers: pd.DataFrame, dataset: str) -> str | None:
    """Row-normalised confusion on denoised images, a panel per classifier.

    Each shows its hardest condition (the level where noisy accuracy is lowest) with the
    denoiser that did best there: where a confusion matrix says most.
    """
    rows = classifiers[
        (classifiers["dataset"] == dataset) & classifiers["confusion"].map(lambda c: isinstance(c, list) and len(c) > 0)
    ]
    if rows.empty:
        return None
    picks = []
    for _, group in rows.groupby("classifier"):
        hardest = group.groupby(["noise", "level"])["accuracy_noisy"].mean().fillna(1.0).idxmin()
        there = group[(group["noise"] == hardest[0]) & (group["level"] == hardest[1])]
        picks.append(there.loc[there["accuracy_denoised"].fillna(-1).idxmax()])
    picks = picks[:MAX_PANELS]
    fig, axes = _panels(len(picks), width=2.6, height=2.7)
    for ax, row in zip(axes, picks, strict=False):
        matrix = np.asarray(row["confusion"], dtype=float)
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        ticks = range(matrix.shape[0]) if matrix.shape[0] <= 10 else []
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=6)
        ax.set_yticks(ticks, [str(t) for t in ticks], fontsize=6)
        ax.set_title(_plain(f"{row['classifier']}: {row['noise']} {row['level']:g}\n{row['denoiser']}"), fontsize=8)
        ax.set(xlabel="predicted", ylabel="true")
    return figure_uri(fig)


MAX_FIGURES = 20  # in all: past this the page gets heavy and nobody scrolls that far


def figures(cells: pd.DataFrame, classifiers: pd.DataFrame) -> list[dict]:
    """Figure sections, one per dataset: ``[{title, figures: [{title, uri}]}]``; empty ones left out."""
    sections, count = [], 0
    for dataset in sorted(cells["dataset"].dropna().unique()):
        planned = _planned_figures(cells, classifiers, dataset)
        made = []
        for title, draw in planned:
            uri = draw() if count < MAX_FIGURES else None
            if uri:
                made.append({"title": title, "uri": uri})
                count += 1
        if made:
            sections.append({"title": dataset, "figures": made})
    return sections


def _planned_figures(
    cells: pd.DataFrame, classifiers: pd.DataFrame, dataset: str
) -> list[tuple[str, Callable[[], str | None]]]:
    # Drawn lazily, in page order, so the figure cap skips the work as well as the bytes.
    noises = sorted(cells.loc[cells["dataset"] == dataset, "noise"].dropna().unique())
    return [
        ("PSNR against noise level", lambda: metric_vs_level(cells, dataset)),
        ("Accuracy on denoised images against noise level", lambda: accuracy_vs_level(cells, classifiers, dataset)),
        ("Cost vs quality", lambda: cost_vs_quality(cells, dataset)),
        *[
            (f"PSNR by training level x test level: {n}", lambda n=n: train_test_heatmaps(cells, dataset, n))
            for n in noises
        ],
        ("Learning curves of neural denoisers", lambda: learning_curves(cells, dataset)),
        ("Confusion matrices (denoised test images)", lambda: confusion_matrices(classifiers, dataset)),
    ]
