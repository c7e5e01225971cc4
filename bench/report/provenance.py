"""``run.json``: how a run folder's numbers were made.

One entry per run that wrote cells into the store (a resumed grid has several): the exact
command, the grid, the device, the package versions, the machine, when it started and
finished, its wall time and its cells. A run killed before its end has ``finished`` empty and
its wall time counted up to its last stored cell.
"""

from __future__ import annotations

import json
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from bench.store import Store

__all__ = ["provenance", "write_provenance"]


def _iso(seconds: float | None) -> str | None:
    if seconds is None or pd.isna(seconds):
        return None
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc).isoformat(timespec="seconds")


def _json(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) and text else None


def _run_entry(run: pd.Series, cells: pd.DataFrame) -> dict[str, Any]:
    mine = cells[cells["run_id"] == run["run_id"]]
    last = run["finished"] if pd.notna(run["finished"]) else mine["finished"].max()
    argv = _json(run["argv"]) or []
    return {
        "run_id": int(run["run_id"]),
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "grid": run["grid"],
        "device": run["device"],
        "started": _iso(run["started"]),
        "finished": _iso(run["finished"]),
        "wall_seconds": None if pd.isna(last) else round(float(last - run["started"]), 1),
        "cells_ok": int((mine["status"] == "ok").sum()),
        "cells_failed": int((mine["status"] != "ok").sum()),
        "versions": _json(run["versions"]),
        "machine": _json(run.get("machine")),
    }


def provenance(store: Store) -> dict[str, Any]:
    """The ``run.json`` document of a store (module docstring)."""
    cells = store.run_cells()
    runs = [_run_entry(run, cells) for _, run in store.runs().iterrows()]
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
    path = run_dir / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(provenance(store), indent=2) + "\n")
    os.replace(tmp, path)
    return path
