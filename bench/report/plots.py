"""Figures for report.html, each returned as a PNG ``data:`` URI (drawing helpers: bench.report.canvas).

Each figure has a ``*_figure`` function returning the matplotlib Figure (or None when there
is nothing to draw), which tests inspect, and a function of the same name without the
suffix returning the page's data URI.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bench.report.canvas import (
    MAX_PANELS,
    colours,
    figure_uri,
    legend,
    level_ticks,
    panels,
    place_labels,
    plain,
    png_uri,
)
from bench.report.select import diagonal

__all__ = [
    "png_uri",
    "figure_uri",
    "diagonal",
    "metric_vs_level",
    "metric_vs_level_figure",
    "accuracy_vs_level",
    "cost_vs_quality",
    "cost_vs_quality_figure",
    "train_test_heatmaps",
    "learning_curves",
    "learning_curves_figure",
    "confusion_matrices",
    "figures",
]

#: Learning-curve panels per figure: one per model, so more than other figures allow.
MAX_CURVE_PANELS = 24


def _uri(fig: Figure | None) -> str | None:
    return None if fig is None else figure_uri(fig)


def _by_level(ax, panel: pd.DataFrame, column: str, palette: dict, label: str) -> None:
    """``column`` per entry against noise level: lines over several levels, bars at a single one
    (lines through one level collapse into a column of overlapping dots)."""
    means = panel.groupby(["entry", "level"])[column].mean()
    levels = sorted(panel["level"].unique())
    if len(levels) > 1:
        for name, series in means.groupby(level="entry"):
            series = series.droplevel("entry")
            ax.plot(series.index, series.values, marker="o", ms=3, lw=1.2, color=palette[name], label=plain(name))
        level_ticks(ax, panel["level"])
        ax.set(xlabel="noise level", ylabel=label)
        return
    ranked = means.droplevel("level").sort_values()  # best at the top
    for position, (name, value) in enumerate(ranked.items()):
        ax.barh(position, value, color=palette[name], label=plain(name))
    ax.set_yticks(range(len(ranked)), [plain(n) for n in ranked.index], fontsize=6)
    low, high = float(ranked.min()), float(ranked.max())
    ax.set_xlim(low - 0.1 * (high - low or abs(high) or 1.0), high + 0.05 * (high - low or abs(high) or 1.0))
    ax.set(xlabel=f"{label} at noise level {levels[0]:g}")


def metric_vs_level_figure(
    cells: pd.DataFrame, dataset: str, *, metric: str = "psnr", label: str = "PSNR (dB)"
) -> Figure | None:
    """One panel per noise kind: ``metric`` against test level per denoiser (bars at one level)."""
    rows = diagonal(cells)
    rows = rows[rows["dataset"] == dataset].dropna(subset=[metric])
    if rows.empty:
        return None
    kinds = sorted(rows["noise"].unique())[:MAX_PANELS]
    palette = colours(sorted(rows["entry"].unique()))
    fig, axes = panels(len(kinds), legend=list(palette))
    for ax, kind in zip(axes, kinds, strict=False):
        _by_level(ax, rows[rows["noise"] == kind], metric, palette, label)
        ax.set_title(plain(kind))
        ax.grid(alpha=0.3)
    legend(fig, axes)
    return fig


def metric_vs_level(cells: pd.DataFrame, dataset: str, *, metric: str = "psnr", label: str = "PSNR (dB)") -> str | None:
    """:func:`metric_vs_level_figure` as a data URI."""
    return _uri(metric_vs_level_figure(cells, dataset, metric=metric, label=label))


def accuracy_vs_level(cells: pd.DataFrame, classifiers: pd.DataFrame, dataset: str) -> str | None:
    """Accuracy on denoised images against level, a panel per noise kind, a line (or bar) per denoiser.

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
    palette = colours(sorted(rows["entry"].unique()))
    fig, axes = panels(len(kinds), legend=[*palette, "noisy input", "clean input"])
    for ax, kind in zip(axes, kinds, strict=False):
        panel = rows[rows["noise"] == kind]
        _by_level(ax, panel, "accuracy_denoised", palette, "accuracy")
        single = panel["level"].nunique() == 1
        for column, style, text in (("accuracy_noisy", "--", "noisy input"), ("accuracy_clean", ":", "clean input")):
            baseline = panel.groupby("level")[column].mean().dropna()
            if single and len(baseline):
                _mark(ax, float(baseline.iloc[0]), style, text)
            elif len(baseline):
                ax.plot(baseline.index, baseline.values, style, color="black", lw=1, label=text)
        which = names[0] if len(names) == 1 else f"mean of {len(names)} classifiers"
        ax.set_title(plain(f"{kind}: {which}"))
        ax.grid(alpha=0.3)
    legend(fig, axes)
    return figure_uri(fig)


def _mark(ax, value: float, style: str, text: str) -> None:
    """A vertical reference line across a bar panel, its x range widened to show it."""
    low, high = ax.get_xlim()
    pad = 0.03 * (high - low)
    ax.set_xlim(min(low, value - pad), max(high, value + pad))
    ax.axvline(value, ls=style, color="black", lw=1, label=text)


def cost_vs_quality_figure(cells: pd.DataFrame, dataset: str) -> Figure | None:
    """Mean PSNR against median images/s (log x) per denoiser; marker area grows with parameters.

    Names are placed beside their points where they overlap no other name (see
    :func:`bench.report.canvas.place_labels`), so clustered methods stay legible.
    """
    rows = diagonal(cells)
    rows = rows[(rows["dataset"] == dataset) & (rows["images_per_second"] > 0)]
    if rows.empty:
        return None
    points = rows.groupby("entry").agg(
        psnr=("psnr", "mean"), speed=("images_per_second", "median"), params=("params", "max")
    )
    params = points["params"].astype("float64").fillna(0.0)
    sizes = 20 + 180 * np.sqrt(params / max(float(params.max()), 1.0))
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    palette = colours(list(points.index))
    ax.scatter(
        points["speed"],
        points["psnr"],
        s=sizes,
        c=[palette[n] for n in points.index],
        alpha=0.75,
        edgecolors="black",
        linewidths=0.5,
    )
    ax.set_xscale("log")
    ax.margins(0.2)  # room for the names beside the outermost points
    ax.set(
        xlabel="images / s (log scale)",
        ylabel="mean PSNR (dB)",
        title=plain(f"{dataset}: cost vs quality (marker area ~ parameters)"),
    )
    ax.grid(alpha=0.3, which="both")
    place_labels(
        ax,
        list(zip(points["speed"], points["psnr"], strict=True)),
        [plain(n) for n in points.index],
        radii=list(np.sqrt(sizes) / 2),
    )
    return fig


def cost_vs_quality(cells: pd.DataFrame, dataset: str) -> str | None:
    """:func:`cost_vs_quality_figure` as a data URI."""
    return _uri(cost_vs_quality_figure(cells, dataset))


def train_test_heatmaps(cells: pd.DataFrame, dataset: str, noise: str) -> str | None:
    """PSNR over training level x test level, a panel per denoiser with several training levels."""
    rows = cells[(cells["status"] == "ok") & (cells["dataset"] == dataset) & (cells["noise"] == noise)].copy()
    rows["train"] = pd.to_numeric(rows["train_level"], errors="coerce")
    rows = rows.dropna(subset=["train", "psnr"])
    several = rows.groupby(["denoiser", "level"])["train"].nunique().groupby("denoiser").max()
    names = sorted(several[several > 1].index)[:MAX_PANELS]
    if not names:
        return None
    fig, axes = panels(len(names), width=3.0, height=2.8)
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
        ax.set(title=plain(name), xlabel="test level", ylabel="training level")
        fig.colorbar(image, ax=ax, shrink=0.8, label="PSNR (dB)")
    return figure_uri(fig)


def _history_frame(history: object) -> pd.DataFrame | None:
    """The epochs of a stored history that make the learning curve, or None.

    Multi-stage fits (stacked_dae pretrains layer by layer, rows marked ``stage``) keep the
    final, unmarked stage: the pretraining losses are of other targets and scales.
    """
    if not isinstance(history, list) or not history:
        return None
    frame = pd.DataFrame([h for h in history if isinstance(h, dict)])
    if "epoch" not in frame:
        return None
    if "stage" in frame and frame["stage"].isna().any():
        frame = frame[frame["stage"].isna()]
    return frame.assign(x=frame["epoch"] if "stage" not in frame else np.arange(1, len(frame) + 1))


def _level_order(train_level: str) -> tuple[int, float, str]:
    # Numeric training levels in order, then named ones (blind, mixed).
    number = pd.to_numeric(train_level, errors="coerce")
    return (0, float(number), "") if pd.notna(number) else (1, 0.0, str(train_level))


def _shade(colour: tuple, share: float) -> tuple:
    # Towards white for a small share: a noise kind's lower training levels in lighter lines.
    return tuple(1.0 - (0.35 + 0.65 * share) * (1.0 - c) for c in colour[:3])


def learning_curves_figure(cells: pd.DataFrame, dataset: str) -> Figure | None:
    """A panel per model (denoiser entry, as in the leaderboard): validation (solid) and
    training (dashed) loss per epoch of each of its fits, coloured by noise kind, darker for
    higher training levels; a log loss axis where the losses span a decade or more."""
    rows = diagonal(cells)
    rows = rows[(rows["dataset"] == dataset) & rows["history"].map(lambda h: _history_frame(h) is not None)]
    # Cells tested at several levels share one fit and so one history: draw each fit once.
    rows = rows.drop_duplicates(subset=["entry", "noise", "train_level"])
    names = sorted(rows["entry"].unique())[:MAX_CURVE_PANELS]
    if not names:
        return None
    kinds = sorted(rows["noise"].unique())
    palette = colours(kinds)
    fig, axes = panels(len(names), legend=[*kinds, "validation", "training"])
    for ax, name in zip(axes, names, strict=False):
        fits = rows[rows["entry"] == name]
        for kind, group in fits.groupby("noise"):
            levels = sorted(group["train_level"].unique(), key=_level_order)
            for _, fit in group.iterrows():
                share = (levels.index(fit["train_level"]) + 1) / len(levels)
                _curve(ax, _history_frame(fit["history"]), _shade(palette[kind], share), plain(kind))
        _loss_axis(ax)
        last = max(float(line.get_xdata().max()) for line in ax.get_lines())
        ax.set(title=plain(name), xlabel="epoch", ylabel="loss", xlim=(0.5, last + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    axes[0].plot([], [], "-", color="grey", label="validation")
    axes[0].plot([], [], "--", color="grey", label="training")
    legend(fig, axes)
    return fig


def _curve(ax, history: pd.DataFrame, colour: tuple, label: str) -> None:
    marker = "o" if len(history) <= 12 else None  # a line through one or two epochs is barely there
    for column, style in (("val_loss", "-"), ("train_loss", "--")):
        if column in history and history[column].notna().any():
            ax.plot(
                history["x"],
                history[column],
                style,
                color=colour,
                lw=1.1,
                marker=marker,
                ms=3,
                label=label if style == "-" else None,
            )


def _loss_axis(ax) -> None:
    lines = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    values = np.concatenate(lines) if lines else np.array([])
    values = values[np.isfinite(values)]
    if len(values) and values.min() > 0 and values.max() >= 10 * values.min():
        ax.set_yscale("log")


def learning_curves(cells: pd.DataFrame, dataset: str) -> str | None:
    """:func:`learning_curves_figure` as a data URI."""
    return _uri(learning_curves_figure(cells, dataset))


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
    fig, axes = panels(len(picks), width=2.6, height=2.7)
    for ax, row in zip(axes, picks, strict=False):
        matrix = np.asarray(row["confusion"], dtype=float)
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)
        ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        ticks = range(matrix.shape[0]) if matrix.shape[0] <= 10 else []
        ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=6)
        ax.set_yticks(ticks, [str(t) for t in ticks], fontsize=6)
        ax.set_title(plain(f"{row['classifier']}: {row['noise']} {row['level']:g}\n{row['denoiser']}"), fontsize=8)
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
        # Before the heatmaps: one per noise kind, they would take the figure cap first.
        ("Learning curves of neural denoisers", lambda: learning_curves(cells, dataset)),
        *[
            (f"PSNR by training level x test level: {n}", lambda n=n: train_test_heatmaps(cells, dataset, n))
            for n in noises
        ],
        ("Confusion matrices (denoised test images)", lambda: confusion_matrices(classifiers, dataset)),
    ]
