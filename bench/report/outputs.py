"""The files of a run folder, rebuilt from its store.

- ``leaderboard.csv``: one row per cell (``LEADERBOARD_COLUMNS``), then ``rank`` (by mean
  PSNR among the cells of the same dataset, noise, level and training level) and, on each
  rank-1 row, its paired test against the rank-2 row on the same test images:
  ``vs_runner_up`` (that row's denoiser), ``vs_runner_up_delta`` (mean per-image PSNR
  difference, dB), ``vs_runner_up_ci_low/high`` (its 95% bootstrap interval),
  ``vs_runner_up_p`` (Wilcoxon signed-rank) and ``distinguishable`` (see
  :mod:`bench.report.significance`). Empty where there is no runner-up or no per-image data.
  Then ``below_identity``: the cell's mean PSNR is below ``identity``'s on the same test set (empty
  without an ``identity`` cell there); with the row's ``below_noisy``, it marks a broken output.
  ``converged``: the fit's validation curve flattened by its end (:mod:`bench.report.convergence`);
  empty for entries without one.
  Where a dataset is shown under another name than the one the CLI takes (``kodak24`` is
  "Kodak24 (crops)", ``bsd68`` "BSD68", a folder its label), ``dataset_label`` follows ``dataset``
  with the name tables show; a run of thumbnail sets keeps its columns.
- ``classifiers.csv``: one row per cell and classifier.
- ``per_image.csv.gz``: one row per cell and scored test image: ``PER_IMAGE_ID_COLUMNS``,
  ``image`` (index in the test set), ``psnr``, ``ssim`` and one ``correct_<classifier>``
  column per classifier (True/False, empty where that classifier has no result).
- ``run.json``: the commands, versions, machine and wall time of the runs (:mod:`bench.report.provenance`).
- ``report.html``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.data import display_name
from bench.execution.rows import CELL_IDENTITY, ClassifierRow, csv_columns
from bench.execution.store import CORRECT_PREFIX, LEADERBOARD_COLUMNS, PER_IMAGE_METRICS, Store, open_run
from bench.files import write_atomic
from bench.report.convergence import converged
from bench.report.page import write_report
from bench.report.provenance import write_provenance
from bench.report.published import beside
from bench.report.select import below_identity
from bench.report.significance import rank_and_test

__all__ = ["write_outputs", "rebuild", "open_run", "leaderboard", "per_image_frame", "PER_IMAGE_ID_COLUMNS"]

PER_IMAGE_ID_COLUMNS = ["dataset", "noise", "level", "train_level", "denoiser", "denoiser_params"]
#: classifiers.csv, in this order: a classifier row's ``csv`` fields under its cell's identity.
CLASSIFIER_CSV_COLUMNS = [*CELL_IDENTITY, *csv_columns(ClassifierRow), "denoiser_params"]
#: Cells compared for the leaderboard's rank and winner test.
RANK_GROUP = ["dataset", "noise", "level", "train_level"]


def _write_csv(frame: pd.DataFrame, path: Path, **options) -> None:
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.6g", **options))


def _params_text(params) -> str:
    return json.dumps(params if isinstance(params, dict) else {}, sort_keys=True)


def leaderboard(cells: pd.DataFrame, per_image: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """The leaderboard.csv frame: the cells, their rank and the winners' tests (module docstring)."""
    board = cells.reindex(columns=[*LEADERBOARD_COLUMNS, "key", "base_seed"])
    psnr = {key: arrays["psnr"] for key, arrays in per_image.items() if "psnr" in arrays}
    tests = rank_and_test(board, psnr, by=RANK_GROUP, value="psnr")
    tests["vs_runner_up"] = tests["vs_runner_up"].map(board.set_index("key")["denoiser"])
    board = pd.concat([board, tests], axis=1)
    board["below_identity"] = below_identity(cells)
    board["converged"] = pd.array([converged(h) for h in cells.get("history", [None] * len(cells))], dtype="boolean")
    board["denoiser_params"] = board["denoiser_params"].map(_params_text)
    labels = board["dataset"].map(display_name)
    if (labels != board["dataset"]).any():
        board.insert(board.columns.get_loc("dataset") + 1, "dataset_label", labels)
    return beside(board)  # published figures for the same method, set and sigma, where there are any


def per_image_frame(cells: pd.DataFrame, per_image: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per (cell, scored test image) of the cells with per-image results."""
    names = sorted(
        {n.removeprefix(CORRECT_PREFIX) for a in per_image.values() for n in a if n.startswith(CORRECT_PREFIX)}
    )
    # Metrics beyond the standard two (psnr_uint8 on natural images) are exported where some cell has them.
    extra = sorted(
        {n for a in per_image.values() for n in a if not n.startswith(CORRECT_PREFIX)} - set(PER_IMAGE_METRICS)
    )
    metrics = [*PER_IMAGE_METRICS, *extra]
    columns = [*PER_IMAGE_ID_COLUMNS, "image", *metrics, *(f"correct_{n}" for n in names)]
    frames = []
    for _, cell in cells[cells["key"].isin(per_image.keys())].iterrows():
        arrays = per_image[cell["key"]]
        n = len(next(iter(arrays.values())))
        part = {c: cell[c] for c in PER_IMAGE_ID_COLUMNS} | {"image": np.arange(n)}
        part["denoiser_params"] = _params_text(cell["denoiser_params"])  # a dict would read as columns
        part |= {m: arrays.get(m, np.full(n, np.nan, np.float32)) for m in metrics}
        for name in names:
            correct = arrays.get(CORRECT_PREFIX + name)
            part[f"correct_{name}"] = pd.array(correct if correct is not None else [pd.NA] * n, dtype="boolean")
        frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def write_outputs(store: Store, run_dir: Path) -> list[Path]:
    """Write every output of a run folder from its store; returns the paths written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    names = ("leaderboard.csv", "classifiers.csv", "per_image.csv.gz")
    written = [run_dir / name for name in names]
    cells, per_image = store.cells(), store.per_image()
    board = leaderboard(cells, per_image)
    _write_csv(board.drop(columns=["key", "base_seed"]), written[0])
    classifiers = store.classifier_results()
    classifiers["denoiser_params"] = classifiers["key"].map(board.set_index("key")["denoiser_params"])
    _write_csv(classifiers.reindex(columns=CLASSIFIER_CSV_COLUMNS), written[1])
    # mtime 0: the same store gives the same bytes
    gzip = {"method": "gzip", "compresslevel": 6, "mtime": 0}
    _write_csv(per_image_frame(cells[cells["status"] == "ok"], per_image), written[2], compression=gzip)
    written.append(write_provenance(store, run_dir))
    written.append(write_report(store, run_dir))  # after the CSVs: the page reads seed tables beside them
    return written


def rebuild(run_dir: str | Path) -> list[Path]:
    """``python -m bench report RUN_DIR``: the outputs again, from ``RUN_DIR/store.sqlite``."""
    with open_run(run_dir) as store:
        return write_outputs(store, Path(run_dir))
