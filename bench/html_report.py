"""report.html: one self-contained page per run folder, rebuilt from its store.

Everything the page needs is inline: CSS, a few lines of sorting JavaScript, and every image
as a PNG ``data:`` URI, so the file opens from disk with no network. Jinja2 autoescapes
every value, so a denoiser named ``<script>`` is shown as text. Figures come from
:mod:`bench.plots`.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import plots
from bench.store import Store

__all__ = ["render_report", "write_report", "load_seed_frames", "seed_tables", "leaderboards", "summary", "image_grids"]

TEMPLATES = Path(__file__).parent / "templates"
_SEED_COLUMNS = {"published", "ours"}
_NOT_SEED_TABLES = {"leaderboard.csv", "classifiers.csv"}
_FAILURE_COLUMNS = [
    ("dataset", "dataset"), ("noise", "noise"), ("level", "level"), ("train_level", "train"),
    ("denoiser", "denoiser"), ("error", "error"),
]  # fmt: skip


def write_report(store: Store, run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (beside it, then renamed: a reader never sees half a page)."""
    path = Path(run_dir) / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_report(store, run_dir), encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_report(store: Store, run_dir: str | Path | None = None) -> str:
    """The page as a string; ``run_dir`` is searched for seed tables (see :func:`load_seed_frames`)."""
    from jinja2 import Environment, FileSystemLoader

    cells, classifiers = store.cells(), store.classifier_results()
    accuracy = _accuracy_metrics(classifiers)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2").render(
        summary=summary(cells, store.runs()),
        metrics=[{"id": "psnr", "label": "PSNR"}, {"id": "ssim", "label": "SSIM"}, *accuracy],
        leaderboards=leaderboards(cells, classifiers, accuracy),
        image_grids=image_grids(store, cells),
        figures=plots.figures(cells, classifiers),
        classifiers=classifier_table(classifiers),
        seeds=seed_tables(load_seed_frames(run_dir)) if run_dir is not None else [],
    )


# --- summary -------------------------------------------------------------------------------


def _when(stamp: Any) -> str:
    if stamp is None or pd.isna(stamp):
        return "not finished (still running, or stopped before its end)"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(stamp)))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _json(text: Any) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def summary(cells: pd.DataFrame, runs: pd.DataFrame) -> dict[str, Any]:
    """Grid, data, devices, versions, seed, timing and ok/failed counts, as display strings."""
    specs = [_json(s) for s in runs.get("spec", [])]
    seeds = {str(s["seed"]) for s in specs if "seed" in s} or {str(s) for s in cells["base_seed"].dropna().unique()}
    devices = set(cells["device"].dropna()) | set(runs.get("device", pd.Series(dtype=str)).dropna())
    versions: dict[str, list[str]] = {}  # one entry per distinct set of versions, with the runs that used it
    for run_id, text in zip(runs.get("run_id", []), runs.get("versions", []), strict=True):
        label = ", ".join(f"{k} {v}" for k, v in _json(text).items()) or "not recorded"
        versions.setdefault(label, []).append(str(run_id))
    durations = [
        f - s
        for s, f in zip(runs.get("started", []), runs.get("finished", []), strict=True)
        if pd.notna(s) and pd.notna(f)
    ]
    failed = cells[cells["status"] != "ok"]
    return {
        "grid": ", ".join(dict.fromkeys(runs.get("grid", pd.Series(dtype=str)).dropna())) or "unknown",
        "description": next((s["description"] for s in reversed(specs) if s.get("description")), ""),
        "datasets": ", ".join(sorted(cells["dataset"].dropna().unique())) or "none",
        "devices": ", ".join(sorted(devices)) or "unknown",
        "versions": [{"text": text, "runs": ", ".join(ids)} for text, ids in versions.items()],
        "seed": ", ".join(sorted(seeds)) or "unknown",
        "started": _when(runs["started"].min()) if len(runs) else "unknown",
        "finished": _when(runs["finished"].iloc[-1]) if len(runs) else "unknown",  # the latest run's end
        "run_time": _duration(sum(durations)) if durations else "unknown",
        "n_runs": len(runs),
        "ok": int((cells["status"] == "ok").sum()),
        "failed": len(failed),
        "failures": _rows(failed, _FAILURE_COLUMNS),
    }


# --- tables --------------------------------------------------------------------------------


def _format(value: Any, digits: int = 4) -> tuple[str, Any]:
    """(display text, sort key) of one value; missing values show as an en dash and sort last."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–", None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value)), int(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}", float(value)
    return str(value), None


def _rows(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """A generic sortable table: header labels and rows of {text, sort} cells."""
    present = [(c, label) for c, label in columns if c in frame]
    rows = [
        [dict(zip(("text", "sort"), _format(record[c]), strict=True)) for c, _ in present]
        for _, record in frame.iterrows()
    ]
    return {"columns": [label for _, label in present], "rows": rows}


def _accuracy_metrics(classifiers: pd.DataFrame) -> list[dict[str, str]]:
    names = sorted(classifiers.dropna(subset=["accuracy_denoised"])["classifier"].unique())
    return [{"id": f"acc{i}", "label": f"accuracy: {name}", "classifier": name} for i, name in enumerate(names)]


def _fixed(value: Any, digits: int) -> str:
    return f"{float(value):.{digits}f}" if value is not None and pd.notna(value) else "–"


def _metric_values(cell: pd.Series, accuracy: dict[str, float], metrics: list[dict]) -> dict[str, dict]:
    """{metric id: {text, ci, sort, best}} of one leaderboard cell (an empty Series: all missing)."""
    values = {
        "psnr": (cell.get("psnr"), cell.get("psnr_ci_low"), cell.get("psnr_ci_high"), 2),
        "ssim": (cell.get("ssim"), cell.get("ssim_ci_low"), cell.get("ssim_ci_high"), 3),
    }
    for metric in metrics:
        values[metric["id"]] = (accuracy.get(metric["classifier"]), None, None, 3)
    out = {}
    for metric_id, (value, low, high, digits) in values.items():
        ok = value is not None and pd.notna(value)
        interval = f"[{_fixed(low, digits)}, {_fixed(high, digits)}]" if ok and pd.notna(low) and pd.notna(high) else ""
        out[metric_id] = {
            "text": _fixed(value, digits),
            "ci": interval,
            "sort": float(value) if ok else None,
            "best": False,
        }
    return out


def _mark_best(rows: list[dict], n_levels: int) -> None:
    # Best per column and metric, ties included; higher is better for every metric shown.
    for column in range(n_levels):
        for metric_id in rows[0]["cells"][column]["values"]:
            entries = [row["cells"][column]["values"][metric_id] for row in rows]
            top = max((e["sort"] for e in entries if e["sort"] is not None), default=None)
            for entry in entries:
                entry["best"] = (
                    top is not None and entry["sort"] is not None and math.isclose(entry["sort"], top, rel_tol=1e-12)
                )


def leaderboards(cells: pd.DataFrame, classifiers: pd.DataFrame, metrics: list[dict]) -> list[dict[str, Any]]:
    """One table per (dataset, noise): rows = denoisers, columns = test levels, every metric per cell.

    Cells trained at another level than they are tested at appear in the heatmaps, not here.
    ``metrics`` are the accuracy metrics (see ``render_report``); PSNR and SSIM are always in.
    """
    board = plots.diagonal(cells, ok_only=False)
    accuracy = classifiers.groupby(["key", "classifier"])["accuracy_denoised"].mean().to_dict()
    tables = []
    for (dataset, noise), group in board.groupby(["dataset", "noise"], sort=True):
        levels = sorted(group["level"].unique())
        rows = []
        for label, entries in group.groupby("entry", sort=True):
            by_level = {entry["level"]: entry for _, entry in entries.iterrows()}
            rows.append(
                {"name": label, "cells": [_board_cell(by_level.get(level), accuracy, metrics) for level in levels]}
            )
        rows.sort(key=_by_mean_psnr)
        _mark_best(rows, len(levels))
        tables.append({
            "dataset": dataset, "noise": noise, "levels": [f"{v:g}" for v in levels], "rows": rows,
            "noisy": _noisy_row(group, levels, classifiers, metrics),
        })  # fmt: skip
    return tables


def _by_mean_psnr(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Sort key: best mean PSNR over the levels first, rows without any value last."""
    values = [cell["values"]["psnr"]["sort"] for cell in row["cells"] if cell["values"]["psnr"]["sort"] is not None]
    return (not values, -sum(values) / len(values) if values else 0.0, row["name"])


def _board_cell(cell: pd.Series | None, accuracy: dict, metrics: list[dict]) -> dict[str, Any]:
    if cell is None or cell["status"] != "ok":
        error = "" if cell is None else cell["error"] or "failed"
        return {
            "status": "missing" if cell is None else "failed",
            "error": error,
            "values": _metric_values(pd.Series(dtype=object), {}, metrics),
        }
    scores = {m["classifier"]: accuracy.get((cell["key"], m["classifier"])) for m in metrics}
    return {"status": "ok", "error": "", "values": _metric_values(cell, scores, metrics)}


def _noisy_row(
    group: pd.DataFrame, levels: list, classifiers: pd.DataFrame, metrics: list[dict]
) -> list[dict[str, str]]:
    """The table's footer: scores of the noisy input itself, for scale."""
    ok = group[group["status"] == "ok"]
    accuracy = (
        classifiers[classifiers["key"].isin(set(ok["key"]))].groupby(["level", "classifier"])["accuracy_noisy"].mean()
    )
    out = []
    for level in levels:
        at = ok[ok["level"] == level]
        values = {"psnr": _fixed(at["psnr_noisy"].mean(), 2), "ssim": _fixed(at["ssim_noisy"].mean(), 3)}
        values |= {m["id"]: _fixed(accuracy.get((level, m["classifier"])), 3) for m in metrics}
        out.append(values)
    return out


def classifier_table(classifiers: pd.DataFrame) -> dict[str, Any] | None:
    """Accuracy on clean, noisy and denoised test images and the gap recovered, or None when empty."""
    if classifiers.empty:
        return None
    columns = [
        ("dataset", "dataset"), ("noise", "noise"), ("level", "level"), ("train_level", "train"),
        ("denoiser", "denoiser"), ("classifier", "classifier"), ("accuracy_clean", "clean"),
        ("accuracy_noisy", "noisy"), ("accuracy_denoised", "denoised"), ("gap_recovered", "gap recovered"),
    ]  # fmt: skip
    if "error" in classifiers and classifiers["error"].notna().any():  # a column of dashes otherwise
        columns.append(("error", "error"))
    return _rows(classifiers, columns)


# --- image grids ----------------------------------------------------------------------------


def image_strip(images: np.ndarray, *, gap: int = 2) -> str:
    """uint8 N x C x H x W images side by side, white gaps between, as one PNG data URI.

    >>> image_strip(np.zeros((2, 1, 4, 4), np.uint8)).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    n, channels, height, width = images.shape
    strip = np.full((height, n * width + (n - 1) * gap, channels), 255, np.uint8)
    for i, image in enumerate(images):
        strip[:, i * (width + gap) : i * (width + gap) + width] = image.transpose(1, 2, 0)
    picture = Image.fromarray(strip[..., 0] if channels == 1 else strip)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return plots.png_uri(buffer.getvalue())


IMAGE_BUDGET = 2_500_000  # bytes of image strips per page: keeps the quick grid's page under 5 MB


def image_grids(store, cells: pd.DataFrame, *, budget: int = IMAGE_BUDGET) -> dict[str, Any]:
    """Per (dataset, noise, level): strips of the stored test images, clean, noisy, then each entry.

    ``store`` is a :class:`bench.store.Store`; cells without samples are left out. Once the
    strips pass ``budget`` bytes the remaining groups are counted in ``left_out``, not drawn
    (a full grid would otherwise make a page of tens of megabytes).
    Returns ``{"grids": [{dataset, noise, level, height, strips: [{name, uri}]}], "left_out": n}``.
    """
    grids, used, left_out = [], 0, 0
    for (dataset, noise, level), group in plots.diagonal(cells).groupby(["dataset", "noise", "level"], sort=True):
        if used >= budget:
            left_out += 1
            continue
        strips, height = [], 0
        for _, cell in group.sort_values("entry").iterrows():
            samples = store.samples(cell["key"])
            if "denoised" not in samples:
                continue
            if not strips:  # every entry of a cell group sees the same clean and noisy images
                strips += [
                    {"name": "clean", "uri": image_strip(samples["clean"])},
                    {"name": "noisy", "uri": image_strip(samples["noisy"])},
                ]
                height = 2 * samples["clean"].shape[-2]
            strips.append({"name": cell["entry"], "uri": image_strip(samples["denoised"])})
        if strips:
            used += sum(len(strip["uri"]) for strip in strips)
            grids.append(
                {"dataset": dataset, "noise": noise, "level": f"{level:g}", "height": height, "strips": strips}
            )
    return {"grids": grids, "left_out": left_out}


# --- seed reports: published numbers beside ours -------------------------------------------


def load_seed_frames(run_dir: str | Path) -> list[pd.DataFrame]:
    """Every "published vs ours" CSV of a run folder (``*.csv`` or ``seeds/*.csv`` with both columns).

    Each frame's ``attrs["name"]`` is its file name without ``.csv``.
    """
    run_dir = Path(run_dir)
    frames = []
    for path in sorted([*run_dir.glob("*.csv"), *run_dir.glob("seeds/*.csv")]):
        if path.name in _NOT_SEED_TABLES:
            continue
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError):
            continue  # not a table this page can show; the CSV stays the record
        if _SEED_COLUMNS <= set(frame.columns):
            frame.attrs["name"] = path.stem
            frames.append(frame)
    return frames


def seed_tables(frames: list[pd.DataFrame]) -> list[dict[str, Any]]:
    """A table per frame: its own columns, plus ours − published where both are numbers.

    Frames need ``published`` and ``ours`` columns; the rest (seed, experiment, metric, note, ...)
    are shown as they are. The title is ``attrs["name"]``, else the frame's seed values.

    >>> seed_tables([pd.DataFrame({"metric": ["psnr"], "published": [30.0], "ours": [29.5]})])[0]["rows"][0][-1]
    {'text': '-0.5', 'sort': -0.5}
    """
    tables = []
    for index, frame in enumerate(frames):
        frame = frame.copy()
        published, ours = (pd.to_numeric(frame[c], errors="coerce") for c in ("published", "ours"))
        if (published.notna() & ours.notna()).any():
            frame["ours − published"] = ours - published
        seeds = ", ".join(str(s) for s in frame["seed"].dropna().unique()) if "seed" in frame else ""
        title = frame.attrs.get("name") or seeds or f"table {index + 1}"
        tables.append({"title": str(title), **_rows(frame, [(c, str(c)) for c in frame.columns])})
    return tables
