"""The seed reports on a run's page: "published vs ours" first, then what the tables cannot hold.

A seed report's table (``seed-SEED.csv`` in its run folder, or ``seeds/SEED.csv``) is shown
with the columns of :mod:`bench.seeds.presentation`: published, ours, difference, tolerance,
verdict, our best entry on the same data, budget, and last the long texts; a row that departs
from the report's protocol is marked. Its detail (``seed-SEED.json`` / ``seeds/SEED.json``,
written by :class:`bench.seeds.common.Reproduction`) gives the figures: the cross-validation
folds, the calibration curve, the cost sweeps and the latent interpolation image.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.canvas import figure_uri, panels, png_uri
from bench.seeds.presentation import PAGE_COLUMNS, display_rows
from bench.seeds.verdicts import add_verdicts

__all__ = ["is_seed_report", "seed_report_tables", "load_seed_details", "seed_extras"]

_REPORT_COLUMNS = {"experiment", "metric", "published", "ours", "protocol_note"}
_SORTED = {"published", "ours", "difference"}  # display columns sorted by their number
_LONG = ("why", "reading", "note")  # the texts after the numbers


def is_seed_report(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` is a seed report's table (experiment, metric, published, ours, protocol_note)."""
    return _REPORT_COLUMNS <= set(frame.columns)


def _seed_label(frame: pd.DataFrame) -> str:
    """'000' ... for the frame's seed column (an old CSV read as numbers loses the zeros)."""
    seeds = frame["seed"].dropna().unique() if "seed" in frame else []
    labels = [f"{int(s):03d}" if str(s).isdigit() else str(s) for s in seeds]
    return ", ".join(labels) or str(frame.attrs.get("name", ""))


def _with_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """A table written before verdicts existed gets them (default tolerances) on the fly."""
    if "verdict" in frame:
        return frame
    frame = frame.copy()
    for column in ("tolerance", "not_comparable"):
        if column not in frame:
            frame[column] = math.nan if column == "tolerance" else ""
    return add_verdicts(frame)


def _number(text: str) -> float | None:
    try:
        return float(text.split()[0])
    except (ValueError, IndexError):
        return None


def _cell_class(key: str, text: str, sort: float | None) -> str:
    """The cell's CSS classes: a verdict's own colour, the long texts' style, numbers aligned right."""
    classes = []
    if key == "verdict" and text != "-":
        classes += ["verdict", text.replace(" ", "-")]
    if key in _LONG:
        classes.append("long")
    if sort is not None:
        classes.append("num")
    return " ".join(classes)


#: A long text over this many characters folds: its start shows, the rest opens on a click, so
#: a row stays a line or two high and the numbers of a whole report fit a screen or two.
FOLD_AFTER = 90


def _folded(text: str) -> str | None:
    """The visible start of a long text that folds (cut at a word), or None when it shows whole."""
    if len(text) <= FOLD_AFTER:
        return None
    return text[:FOLD_AFTER].rsplit(" ", 1)[0].rstrip(" ,;:(") + " …"


def seed_report_table(frame: pd.DataFrame) -> dict[str, Any]:
    """One seed report's table for the template: title, columns, rows of {text, sort, cls, short},
    row marks, and ``reading``: the reading every row shares, said once above the table (a
    reading that differs between rows stays in its column)."""
    frame = _with_verdicts(frame)
    rows = display_rows(frame)
    readings = {r["reading"] for r in rows}
    shared = readings.pop() if len(readings) == 1 and len(rows) > 1 else ""
    optional = {"best", "reading", "note"}  # shown when some row has one
    keys = [(k, h) for k, h in PAGE_COLUMNS if k not in optional or any(r[k] for r in rows)]
    keys = [(k, h) for k, h in keys if not (shared and k == "reading")]
    body, marks = [], []
    for row in rows:
        cells = []
        for key, _ in keys:
            sort = _number(row[key]) if key in _SORTED else None
            short = _folded(row[key]) if key in _LONG else None
            cells.append({"text": row[key], "sort": sort, "cls": _cell_class(key, row[key], sort), "short": short})
        body.append(cells)
        marks.append("departs" if row["departs"] else "")
    return {
        "title": f"Seed {_seed_label(frame)}",
        "columns": [h for _, h in keys],
        "rows": body,
        "marks": marks,
        "reading": shared,
    }


def seed_report_tables(frames: list[pd.DataFrame]) -> list[dict[str, Any]]:
    """The template tables of the seed-report frames among ``frames`` (one per seed), by seed."""
    seen, tables = set(), []
    for frame in frames:
        label = _seed_label(frame)
        if is_seed_report(frame) and label not in seen:
            seen.add(label)
            tables.append(seed_report_table(frame))
    return sorted(tables, key=lambda t: t["title"])


def load_seed_details(run_dir: str | Path) -> list[tuple[dict[str, Any], Path]]:
    """(detail, its path) of every seed detail JSON of a run folder (``seed-*.json``, ``seeds/*.json``,
    else ``../seeds/SEED.json`` beside the results of a ``seed-SEED.csv``)."""
    run_dir, found = Path(run_dir), []
    # A run folder written before its detail was copied beside its table: OUT/seeds/SEED.json.
    siblings = [run_dir.parent / "seeds" / f"{p.stem[len('seed-') :]}.json" for p in run_dir.glob("seed-*.csv")]
    paths = [*run_dir.glob("seed-*.json"), *run_dir.glob("seeds/*.json"), *(p for p in siblings if p.is_file())]
    for path in sorted(paths):
        try:
            detail = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # not a detail this page can show; the file stays the record
        if isinstance(detail, dict) and "seed" in detail:
            found.append((detail, path))
    return found


def _folds(detail: dict[str, Any]) -> dict[str, Any] | None:
    cv = detail.get("vgg16_cv") or {}
    folds = cv.get("folds_pct")
    if not folds:
        return None
    published = cv.get("published_folds_pct") or []
    columns = ["fold", "ours %"] + (["published %"] if published else [])
    rows = []
    for index, value in enumerate(folds):
        row = [{"text": str(index + 1), "sort": index + 1}, {"text": f"{value:.2f}", "sort": value}]
        if published:
            theirs = published[index] if index < len(published) else None
            row.append({"text": "–" if theirs is None else f"{theirs:.2f}", "sort": theirs})
        rows.append(row)
    mean = sum(folds) / len(folds)
    spread = math.sqrt(sum((f - mean) ** 2 for f in folds) / len(folds))
    title = f"Cross-validation folds (vgg16, {len(folds)} folds over {cv.get('n_images', '?')} images): mean {mean:.2f}%, spread {spread:.2f}"
    return {"title": title, "columns": columns, "rows": rows}


def calibration_curves(detail: dict[str, Any]) -> dict[str, tuple[list[tuple[float, float]], float | None]]:
    """Reading -> (sorted (sigma, accuracy) points, target) of each calibration in a seed's detail
    (``calibration``, ``calibration_unclipped``, ...), sigma on the 0-1 scale: awgn's 0-255 sigma
    is divided by its ``sigma_scale``, so that both readings share one axis."""
    curves = {}
    for key, calibration in sorted(detail.items()):
        if not (key == "calibration" or key.startswith("calibration_")) or not isinstance(calibration, dict):
            continue
        scale = float(calibration.get("sigma_scale") or 1.0)
        points = sorted(
            (e["x"] / scale, e["f"])
            for e in calibration.get("evaluations") or []
            if e.get("x") is not None and e.get("f") is not None
        )
        if len(points) >= 2:
            name = calibration.get("reading") or key.removeprefix("calibration").strip("_") or "calibrated"
            curves[name] = (points, calibration.get("target"))
    return curves


def _calibration(detail: dict[str, Any]) -> dict[str, str] | None:
    curves = calibration_curves(detail)
    if not curves:
        return None
    fig, (ax,) = panels(1, width=4.6, height=3.0, columns=1)
    for name, (points, _) in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", markersize=3, label=name)
    target = next((t for _, t in curves.values() if t is not None), None)
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label="target")
    ax.legend(fontsize=8)
    ax.set_xlabel("noise sigma (0-1 scale)")
    ax.set_ylabel("noisy accuracy (%)")
    count = sum(len(points) for points, _ in curves.values())
    return {
        "title": f"Calibration: accuracy on noisy images against sigma, {' and '.join(curves)} ({count} evaluations)",
        "uri": figure_uri(fig),
    }


def _sweeps(detail: dict[str, Any]) -> dict[str, str] | None:
    sweeps = {
        name: sorted(
            (float(x), c["cost"]) for x, c in series.items() if isinstance(c, dict) and c.get("cost") is not None
        )
        for name, series in (detail.get("dae_cost_sweeps") or {}).items()
        if isinstance(series, dict)
    }
    sweeps = {name: points for name, points in sweeps.items() if points}
    if not sweeps:
        return None
    fig, axes = panels(len(sweeps), width=3.4, height=2.6, columns=min(len(sweeps), 3))
    for ax, (name, points) in zip(axes, sweeps.items(), strict=False):
        xs = [p[0] for p in points]
        ax.plot(xs, [p[1] for p in points], "o-", markersize=3)
        ax.set_xscale("log")
        ax.minorticks_off()  # the swept values themselves as ticks: log minor labels overlap
        ax.set_xticks(xs, [f"{x:g}" for x in xs], fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("learning rate" if name.startswith("hidden") else "hidden units")
        ax.set_ylabel("training cost")
    return {"title": "Cost sweeps: training cost against the learning rate and the hidden size", "uri": figure_uri(fig)}


def _interpolation(detail: dict[str, Any], where: Path) -> dict[str, str] | None:
    stored = detail.get("interpolation_png")
    if not stored:
        return None
    # The stored path may be relative to where the run started: also look beside the detail.
    name = Path(stored).name
    candidates = [
        Path(stored),
        where.parent / name,
        where.parent / "seeds" / name,
        where.parent.parent / "seeds" / name,
    ]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return {"title": f"Latent interpolation: {stored} is missing", "uri": ""}
    return {"title": "Latent interpolation: decoded codes between two test images", "uri": png_uri(found.read_bytes())}


def seed_extras(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per seed with any: {title, tables, figures} of its folds, calibration, sweeps, interpolation."""
    out, seen = [], set()
    for detail, path in load_seed_details(run_dir):
        seed = str(detail["seed"])
        if seed in seen:
            continue
        seen.add(seed)
        tables = [t for t in (_folds(detail),) if t]
        figures = [f for f in (_calibration(detail), _sweeps(detail), _interpolation(detail, path)) if f]
        if tables or figures:
            out.append({"title": f"Seed {seed}", "tables": tables, "figures": figures})
    return out
