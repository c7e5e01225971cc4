"""report.html: one self-contained page per run folder, rebuilt from its store.

Everything the page needs is inline: CSS, a few lines of JavaScript (sorting, the metric switch
and the picker that shows one cell's images at a time), and every image
as a PNG ``data:`` URI, so the file opens from disk with no network. Jinja2 autoescapes
every value, so a denoiser named ``<script>`` is shown as text. Tables come from
:mod:`bench.report.tables`, image strips from :mod:`bench.report.images`, figures from
:mod:`bench.report.plots`; this module puts them on the page with its summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.data import display_name
from bench.execution.store import Store
from bench.files import write_text_atomic
from bench.report import plots
from bench.report.images import IMAGE_BUDGET, image_grids
from bench.report.provenance import run_seconds
from bench.report.published import literature_frame
from bench.report.seed_page import is_seed_report, seed_extras, seed_report_tables
from bench.report.tables import (
    accuracy_metrics,
    classifier_table,
    leaderboards,
    load_seed_frames,
    rows_table,
    seed_tables,
)

__all__ = ["render_report", "write_report", "summary", "run_time"]

TEMPLATES = Path(__file__).parent / "templates"
#: Bytes a page aims at (strips may overshoot by one group of images): under 10 MB.
PAGE_BUDGET = 9_000_000
_FAILURE_COLUMNS = [
    ("dataset", "dataset"),
    ("noise", "noise"),
    ("level", "level"),
    ("train_level", "train"),
    ("denoiser", "denoiser"),
    ("error", "error"),
]


def write_report(store: Store, run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` (beside it, then renamed: a reader never sees half a page)."""
    path = write_text_atomic(Path(run_dir) / "report.html", render_report(store, run_dir))
    return path


def render_report(store: Store, run_dir: str | Path | None = None) -> str:
    """The page as a string; ``run_dir`` is searched for seed tables (see :func:`load_seed_frames`)."""
    from jinja2 import Environment, FileSystemLoader

    cells, classifiers = store.cells(), store.classifier_results()
    accuracy = accuracy_metrics(classifiers)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["dataset"] = display_name  # "Kodak24 (crops)", a folder's label
    template = env.get_template("report.html.j2")
    context = {
        "summary": summary(cells, store.runs()),
        "metrics": [{"id": "psnr", "label": "PSNR"}, {"id": "ssim", "label": "SSIM"}, *accuracy],
        "leaderboards": leaderboards(cells, classifiers, accuracy, store.per_image()),
        "figures": plots.figures(cells, classifiers),
        "classifiers": classifier_table(classifiers),
        **_seed_context(cells, run_dir),
    }
    # Image strips get what the rest of the page leaves of PAGE_BUDGET: a large grid's tables
    # and figures grow with its cells, and the page must stay small enough to share.
    rest = len(template.render(image_grids={"grids": [], "left_out": 0}, **context).encode())
    budget = min(IMAGE_BUDGET, max(0, PAGE_BUDGET - rest))
    return template.render(image_grids=image_grids(store, cells, budget=budget), **context)


def _seed_context(cells: pd.DataFrame, run_dir: str | Path | None) -> dict[str, Any]:
    """The seed reports' tables and figures (shown first), and any other "published vs ours" tables."""
    frames = load_seed_frames(run_dir) if run_dir is not None else []
    reports = [f for f in frames if is_seed_report(f)]
    others = [f for f in frames if not is_seed_report(f)]
    return {
        "seed_reports": seed_report_tables(reports),
        "seed_extras": seed_extras(run_dir) if reports else [],
        "seeds": seed_tables(_published_frames(cells) + others),
    }


def _published_frames(cells: pd.DataFrame) -> list[pd.DataFrame]:
    frame = literature_frame(cells) if len(cells) else None
    return [] if frame is None else [frame]


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


def run_time(cells: pd.DataFrame, runs: pd.DataFrame) -> tuple[str, str]:
    """(total run time, note on how many runs it spans), as display strings.

    A run that never finished (killed, or the latest one still going) counts up to its last
    stored cell when its cells carry its ``run_id``, else not at all. The note reads e.g.
    ``over 3 runs (1 killed)``, ``over 2 runs (resumed)``, or ``''`` for one finished run.
    """
    seconds = [s for s in run_seconds(cells, runs).values() if s is not None]
    open_runs = [r for r, finished in zip(runs.get("run_id", []), runs.get("finished", [])) if pd.isna(finished)]
    total = _duration(sum(seconds)) if seconds else "unknown"
    latest_open = len(runs) > 0 and runs["run_id"].iloc[-1] in open_runs
    killed = len(open_runs) - latest_open  # every unfinished run before the latest was stopped
    parts = [f"{killed} killed"] * bool(killed) + ["the latest not finished"] * latest_open
    if len(runs) > 1:
        return total, f"over {len(runs)} runs ({'; '.join(parts) or 'resumed'})"
    return total, f"({parts[0]})" if parts else ""


def summary(cells: pd.DataFrame, runs: pd.DataFrame) -> dict[str, Any]:
    """Grid, data, devices, versions, seed, timing and ok/failed counts, as display strings."""
    specs = [_json(s) for s in runs.get("spec", [])]
    seeds = {str(s["seed"]) for s in specs if "seed" in s} or {str(s) for s in cells["base_seed"].dropna().unique()}
    devices = set(cells["device"].dropna()) | set(runs.get("device", pd.Series(dtype=str)).dropna())
    versions: dict[str, list[str]] = {}  # one entry per distinct set of versions, with the runs that used it
    for run_id, text in zip(runs.get("run_id", []), runs.get("versions", []), strict=True):
        label = ", ".join(f"{k} {v}" for k, v in _json(text).items()) or "not recorded"
        versions.setdefault(label, []).append(str(run_id))
    failed = cells[cells["status"] != "ok"]
    total, note = run_time(cells, runs)
    return {
        "grid": ", ".join(dict.fromkeys(runs.get("grid", pd.Series(dtype=str)).dropna())) or "unknown",
        "description": next((s["description"] for s in reversed(specs) if s.get("description")), ""),
        "datasets": ", ".join(display_name(d) for d in sorted(cells["dataset"].dropna().unique())) or "none",
        "devices": ", ".join(sorted(devices)) or "unknown",
        "versions": [{"text": text, "runs": ", ".join(ids)} for text, ids in versions.items()],
        "seed": ", ".join(sorted(seeds)) or "unknown",
        "started": _when(runs["started"].min()) if len(runs) else "unknown",
        "finished": _when(runs["finished"].iloc[-1]) if len(runs) else "unknown",  # the latest run's end
        "run_time": total,
        "run_note": note,
        "n_runs": len(runs),
        "ok": int((cells["status"] == "ok").sum()),
        "failed": len(failed),
        "failures": rows_table(failed, _FAILURE_COLUMNS),
    }
