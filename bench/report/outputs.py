"""The files of a run folder, rebuilt from its store: leaderboard.csv, classifiers.csv, report.html."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from bench.report.page import write_report
from bench.store import CLASSIFIER_COLUMNS, LEADERBOARD_COLUMNS, Store

__all__ = ["write_outputs", "rebuild"]


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    # Written beside the target and renamed, so a reader never sees half a file.
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)


def write_outputs(store: Store, run_dir: Path) -> list[Path]:
    """Write every output of a run folder from its store; returns the paths written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    written = [run_dir / "leaderboard.csv", run_dir / "classifiers.csv"]
    board = store.cells().reindex(columns=[*LEADERBOARD_COLUMNS, "key"])
    board["denoiser_params"] = board["denoiser_params"].map(lambda p: json.dumps(p, sort_keys=True))
    _write_atomic(board.drop(columns="key"), written[0])
    classifiers = store.classifier_results()
    classifiers["denoiser_params"] = classifiers["key"].map(board.set_index("key")["denoiser_params"])
    columns = [c for c in CLASSIFIER_COLUMNS if c not in ("confusion", "key")] + ["denoiser_params"]
    _write_atomic(classifiers.reindex(columns=columns), written[1])
    written.append(write_report(store, run_dir))  # after the CSVs: the page reads seed tables beside them
    return written


def rebuild(run_dir: str | Path) -> list[Path]:
    """``python -m bench report RUN_DIR``: the outputs again, from ``RUN_DIR/store.sqlite``."""
    run_dir = Path(run_dir)
    path = run_dir / "store.sqlite"
    if not path.is_file():
        raise ValueError(f"no run store at {path}; expected a folder written by 'python -m bench run'")
    with Store(path) as store:
        return write_outputs(store, run_dir)
