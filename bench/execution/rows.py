"""The rows a run produces, declared once: they are the store's schema and the CSVs' columns.

A worker returns a :class:`ScoredCell` per cell: its :class:`CellRow`, one :class:`ClassifierRow`
per classifier, and a few sample images. The store writes each field of a row to the column of
the same name (its SQL type follows the field's type; dicts and lists are kept as JSON), and
``leaderboard.csv`` and ``classifiers.csv`` take the fields marked ``csv``, in field order.
Rows are built by keyword, so a misspelled column fails where the row is made, not when it is
stored. They are plain dataclasses of builtins and numpy arrays: executors pickle them across
processes and cluster nodes.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

__all__ = ["CellRow", "ClassifierRow", "ScoredCell", "columns", "csv_columns", "sql_kind", "CELL_IDENTITY"]

_CSV = {"csv": True}  # a column of the run folder's CSV as well as of the store
_NOT_STORED = {"stored": False}  # carried to the store, kept elsewhere than in a column (per-image arrays)


@dataclass(frozen=True, kw_only=True)
class CellRow:
    """One cell's result: what it is (dataset ... denoiser_params, key), how it scored, how it ran.

    Scores are None in a failed row, whose ``error`` says why.
    """

    dataset: str = field(metadata=_CSV)
    noise: str = field(metadata=_CSV)
    level: float = field(metadata=_CSV)
    train_level: str = field(metadata=_CSV)
    denoiser: str = field(metadata=_CSV)
    psnr: float | None = field(default=None, metadata=_CSV)
    psnr_ci_low: float | None = field(default=None, metadata=_CSV)
    psnr_ci_high: float | None = field(default=None, metadata=_CSV)
    psnr_uint8: float | None = field(default=None, metadata=_CSV)  # of the output rounded to 8 bits
    ssim: float | None = field(default=None, metadata=_CSV)
    mse: float | None = field(default=None, metadata=_CSV)
    psnr_noisy: float | None = field(default=None, metadata=_CSV)
    ssim_noisy: float | None = field(default=None, metadata=_CSV)
    #: psnr < psnr_noisy: the output is worse than its input (a broken fit, not a result)
    below_noisy: bool | None = field(default=None, metadata=_CSV)
    fit_seconds: float | None = field(default=None, metadata=_CSV)
    images_per_second: float | None = field(default=None, metadata=_CSV)
    params: int | None = field(default=None, metadata=_CSV)  # the fitted model's parameter count
    device: str | None = field(default=None, metadata=_CSV)
    seed: int | None = field(default=None, metadata=_CSV)  # the seed of the cell's test noise
    status: str = field(metadata=_CSV)  # "ok" or "failed"
    error: str | None = field(default=None, metadata=_CSV)
    n_train: int | None = field(default=None, metadata=_CSV)
    n_test: int | None = field(default=None, metadata=_CSV)  # test images scored
    denoiser_params: dict[str, Any] = field(metadata=_CSV)
    ssim_ci_low: float | None = None
    ssim_ci_high: float | None = None
    base_seed: int | None = None
    versions: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None
    fit_state: dict[str, Any] | None = None
    key: str
    run_id: int | None = None  # the run that stored it (set by the driver)
    finished: float | None = None  # when it was stored (set by the store)
    #: float32 arrays by metric ("psnr", "ssim", "psnr_uint8"), one value per scored test image
    per_image: dict[str, np.ndarray] | None = field(default=None, metadata=_NOT_STORED)


@dataclass(frozen=True, kw_only=True)
class ClassifierRow:
    """One classifier's accuracies on a cell's clean, noisy and denoised test images.

    The store keeps it under its cell's identity (``CELL_IDENTITY``); a classifier that failed
    has only ``error``.
    """

    classifier: str = field(metadata=_CSV)
    accuracy_clean: float | None = field(default=None, metadata=_CSV)
    accuracy_noisy: float | None = field(default=None, metadata=_CSV)
    accuracy_denoised: float | None = field(default=None, metadata=_CSV)
    gap_recovered: float | None = field(default=None, metadata=_CSV)
    error: str | None = field(default=None, metadata=_CSV)
    confusion: list[list[int]] | None = None  # rows are true classes, columns predicted ones
    #: bool per scored test image, for paired tests between denoisers
    correct: np.ndarray | None = field(default=None, metadata=_NOT_STORED)


#: The cell's columns a classifier row is stored under (``key`` last, as the table's key).
CELL_IDENTITY = ("dataset", "noise", "level", "train_level", "denoiser")


@dataclass(frozen=True)
class ScoredCell:
    """What a worker returns for one cell: its row, its classifier rows and sample images
    (uint8 arrays ``clean``, ``noisy``, ``denoised``; None for a failed cell)."""

    row: CellRow
    classifiers: tuple[ClassifierRow, ...] = ()
    samples: dict[str, np.ndarray] | None = None


def columns(row_type: type) -> list[str]:
    """The stored columns of a row type, in field order."""
    return [f.name for f in fields(row_type) if f.metadata.get("stored", True)]


def csv_columns(row_type: type) -> list[str]:
    """The columns a row type gives its CSV, in field order."""
    return [f.name for f in fields(row_type) if f.metadata.get("csv", False)]


def sql_kind(row_type: type, column: str) -> str:
    """``TEXT``, ``INTEGER``, ``REAL`` or ``JSON`` (TEXT holding JSON) for a field, from its type."""
    hint = typing.get_type_hints(row_type)[column]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return {str: "TEXT", int: "INTEGER", float: "REAL"}.get(hint, "JSON")
