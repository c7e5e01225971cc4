"""The report's tables: leaderboards, classifier results, failures and published-vs-ours.

Each table is plain data for the template: header labels and rows of ``{text, sort}`` cells
(display text, and the number the page sorts by; missing values sort last).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.execution.store import CORRECT_PREFIX
from bench.report.convergence import CONVERGED_BELOW, converged
from bench.report.select import BASELINE, below_identity, diagonal
from bench.report.significance import rank_and_test

__all__ = ["leaderboards", "classifier_table", "accuracy_metrics", "rows_table", "load_seed_frames", "seed_tables"]

_SEED_COLUMNS = {"published", "ours"}
_NOT_SEED_TABLES = {"leaderboard.csv", "classifiers.csv"}


def _format(value: Any, digits: int = 4) -> tuple[str, Any]:
    """(display text, sort key) of one value; missing values show as an en dash and sort last."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–", None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value)), int(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}", float(value)
    return str(value), None


def rows_table(frame: pd.DataFrame, columns: list[tuple[str, str]]) -> dict[str, Any]:
    """A generic sortable table: header labels and rows of {text, sort} cells."""
    present = [(c, label) for c, label in columns if c in frame]
    rows = [
        [dict(zip(("text", "sort"), _format(record[c]), strict=True)) for c, _ in present]
        for _, record in frame.iterrows()
    ]
    return {"columns": [label for _, label in present], "rows": rows}


def accuracy_metrics(classifiers: pd.DataFrame) -> list[dict[str, str]]:
    names = sorted(classifiers.dropna(subset=["accuracy_denoised"])["classifier"].unique())
    return [{"id": f"acc{i}", "label": f"accuracy: {name}", "classifier": name} for i, name in enumerate(names)]


def _fixed(value: Any, digits: int) -> str:
    return f"{float(value):.{digits}f}" if value is not None and pd.notna(value) else "–"


def _metric_values(cell: pd.Series, accuracy: dict[str, float], metrics: list[dict]) -> dict[str, dict]:
    """{metric id: {text, ci, sort, mark, title}} of one leaderboard cell (an empty Series: all missing)."""
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
            "mark": "",  # best | tie, set by _mark_best
            "title": "",
        }
    return out


def _mark_best(rows: list[dict], levels: list, verdicts: dict[tuple, dict]) -> None:
    """Mark each column's winner per metric (higher is better for every metric shown).

    With a paired test against the runner-up (``verdicts``, keyed by level and metric): the
    winner is ``best`` when distinguishable, else it and the runner-up are ``tie``. Without
    one (no per-image results), the top mean is ``best``, ties included.
    """
    for column, level in enumerate(levels):
        cells = [row["cells"][column] for row in rows]
        for metric_id in rows[0]["cells"][column]["values"]:
            entries = [(cell.get("key"), cell["values"][metric_id]) for cell in cells]
            verdict = verdicts.get((level, metric_id))
            if verdict is not None and pd.notna(verdict["distinguishable"]):
                _mark_tested(entries, verdict)
                continue
            top = max((e["sort"] for _, e in entries if e["sort"] is not None), default=None)
            for _, entry in entries:
                if entry["sort"] is not None and top is not None and math.isclose(entry["sort"], top, rel_tol=1e-12):
                    entry["mark"], entry["title"] = "best", "best in column (no per-image results to test it)"


def _mark_tested(entries: list[tuple[str | None, dict]], verdict: dict) -> None:
    test = (
        f"{verdict['delta']:+.3g} [{verdict['ci_low']:.3g}, {verdict['ci_high']:.3g}], "
        f"Wilcoxon p = {verdict['p']:.2g}, paired over the same test images"
    )
    for key, entry in entries:
        if verdict["distinguishable"] and key == verdict["winner"]:
            entry["mark"], entry["title"] = "best", f"best in column; ahead of the runner-up by {test}"
        elif not verdict["distinguishable"] and key in (verdict["winner"], verdict["runner_up"]):
            entry["mark"], entry["title"] = "tie", f"winner and runner-up not distinguishable: {test}"


def _verdicts(board: pd.DataFrame, classifiers: pd.DataFrame, metrics: list[dict], per_image: dict) -> dict:
    """{(dataset, noise, level, metric id): the column winner's test} (see bench.report.significance)."""
    accuracy = classifiers.groupby(["key", "classifier"])["accuracy_denoised"].mean()
    columns = {"psnr": ("psnr", "psnr"), "ssim": ("ssim", "ssim")}
    for metric in metrics:
        name = metric["classifier"]
        board[metric["id"]] = board["key"].map(lambda k, n=name: accuracy.get((k, n)))
        columns[metric["id"]] = (metric["id"], CORRECT_PREFIX + name)
    ok = board[board["status"] == "ok"]
    out = {}
    for metric_id, (column, stored) in columns.items():
        arrays = {key: a[stored] for key, a in per_image.items() if stored in a}
        tests = rank_and_test(ok, arrays, by=["dataset", "noise", "level"], value=column)
        for index, test in tests[tests["rank"] == 1].iterrows():
            row = ok.loc[index]
            out[(row["dataset"], row["noise"], row["level"], metric_id)] = {
                "winner": row["key"],
                "runner_up": test["vs_runner_up"],
                "distinguishable": test["distinguishable"],
                "delta": test["vs_runner_up_delta"],
                "ci_low": test["vs_runner_up_ci_low"],
                "ci_high": test["vs_runner_up_ci_high"],
                "p": test["vs_runner_up_p"],
            }
    return out


def leaderboards(
    cells: pd.DataFrame, classifiers: pd.DataFrame, metrics: list[dict], per_image: dict | None = None
) -> list[dict[str, Any]]:
    """One table per (dataset, noise): rows = denoisers, columns = test levels, every metric per cell.

    Cells trained at another level than they are tested at appear in the heatmaps, not here.
    ``metrics`` are the accuracy metrics (see ``render_report``); PSNR and SSIM are always in.
    ``per_image`` (``Store.per_image()``) lets each column's winner be tested against its
    runner-up; without it the top mean is marked.
    """
    board = diagonal(cells.assign(below_identity=below_identity(cells)), ok_only=False)
    verdicts = _verdicts(board.copy(), classifiers, metrics, per_image or {})
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
        _mark_best(rows, levels, {k[2:]: v for k, v in verdicts.items() if k[:2] == (dataset, noise)})
        tables.append(
            {
                "dataset": dataset,
                "noise": noise,
                "levels": [f"{v:g}" for v in levels],
                "rows": rows,
                "noisy": _noisy_row(group, levels, classifiers, metrics),
            }
        )
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
    values = _metric_values(cell, scores, metrics)
    fit_converged = converged(cell.get("history"))
    return {
        "status": "ok",
        "error": "",
        "key": cell["key"],
        "values": values,
        "broken": broken_output(cell),
        "unconverged": "" if fit_converged is not False else _UNCONVERGED,
    }


_UNCONVERGED = f"the last fifth of training still lowered the best validation loss by {CONVERGED_BELOW:.0%} or more"


def _is_true(flag: Any) -> bool:
    """A stored flag that is set (None, NA and NaN, as in cells stored before the flag existed, are not)."""
    return flag is not None and not pd.isna(flag) and bool(flag)


def broken_output(cell: pd.Series) -> str:
    """Why a cell's output reads as broken (PSNR below its noisy input or below identity's), else ''."""
    reasons = []
    if _is_true(cell.get("below_noisy")):
        reasons.append(f"PSNR {cell['psnr']:.2f} dB below its noisy input's {cell['psnr_noisy']:.2f} dB")
    if _is_true(cell.get("below_identity")):
        reasons.append(f"PSNR below {BASELINE}'s on the same test images")
    return "; ".join(reasons)


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
        ("dataset", "dataset"),
        ("noise", "noise"),
        ("level", "level"),
        ("train_level", "train"),
        ("denoiser", "denoiser"),
        ("classifier", "classifier"),
        ("accuracy_clean", "clean"),
        ("accuracy_noisy", "noisy"),
        ("accuracy_denoised", "denoised"),
        ("gap_recovered", "gap recovered"),
    ]
    if "error" in classifiers and classifiers["error"].notna().any():  # a column of dashes otherwise
        columns.append(("error", "error"))
    return rows_table(classifiers, columns)


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
            frame = pd.read_csv(path, dtype={"seed": str})  # seeds are spelled 000 ... 004
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
        tables.append({"title": str(title), **rows_table(frame, [(c, str(c)) for c in frame.columns])})
    return tables
