"""``run.json``: how a run folder's numbers were made.

One entry per run that wrote cells into the store (a resumed grid has several): the exact
command, the grid, the device, the package versions, the machine, when it started and
finished, its wall time and its cells. A run killed before its end has ``finished`` empty and
its wall time counted up to its last stored cell.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bench.execution.store import Store
from bench.files import write_text_atomic

__all__ = ["provenance", "write_provenance", "run_seconds"]


def _iso(seconds: float | None) -> str | None:
    if seconds is None or pd.isna(seconds):
        return None
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).isoformat(timespec="seconds")


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) and text else None


def run_seconds(cells: pd.DataFrame, runs: pd.DataFrame) -> dict[Any, float | None]:
    """{run id: wall seconds}: to its end, or for a run that never finished (killed, or still
    going) to its last stored cell; None when neither is known."""
    has_ids = "run_id" in cells and len(cells)
    last_cell = cells.groupby("run_id")["finished"].max() if has_ids else pd.Series(dtype=float)
    seconds = {}
    for run_id, started, finished in zip(runs.get("run_id", []), runs.get("started", []), runs.get("finished", [])):
        end = finished if pd.notna(finished) else last_cell.get(run_id)
        known = pd.notna(started) and end is not None and pd.notna(end)
        seconds[run_id] = float(end) - float(started) if known else None
    return seconds


def _run_entry(run: pd.Series, cells: pd.DataFrame, seconds: float | None) -> dict[str, Any]:
    mine = cells[cells["run_id"] == run["run_id"]]
    argv = _json(run["argv"]) or []
    return {
        "run_id": int(run["run_id"]),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "grid": run["grid"],
        "device": run["device"],
        "started": _iso(run["started"]),
        "finished": _iso(run["finished"]),
        "wall_seconds": None if seconds is None else round(seconds, 1),
        "cells_ok": int((mine["status"] == "ok").sum()),
        "cells_failed": int((mine["status"] != "ok").sum()),
        "versions": _json(run["versions"]),
        "machine": _json(run.get("machine")),
    }


def provenance(store: Store) -> dict[str, Any]:
    """The ``run.json`` document of a store (module docstring)."""
    cells, table = store.run_cells(), store.runs()
    seconds = run_seconds(cells, table)
    runs = [_run_entry(run, cells, seconds[run["run_id"]]) for _, run in table.iterrows()]
    runs = [r for r in runs if r["cells_ok"] or r["cells_failed"]]
    walls = [r["wall_seconds"] for r in runs if r["wall_seconds"] is not None]
    return {
        "runs": runs,
        "wall_seconds": round(sum(walls), 1),
        "cells_ok": int((cells["status"] == "ok").sum()),
        "cells_failed": int((cells["status"] != "ok").sum()),
    }


def write_provenance(store: Store, run_dir: Path) -> Path:
    """Write ``run_dir/run.json`` (atomically) and return its path."""
    return write_text_atomic(run_dir / "run.json", json.dumps(provenance(store), indent=2) + "\n")
