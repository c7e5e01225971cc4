"""Verdicts of a seed table: each published value beside ours, its difference, tolerance and verdict.

A row's tolerance is the one its protocol gave (``Experiment.add(..., tolerance=)``, in the
metric's own units), else the default of the metric's kind, read from its name:

======================  ===================  ==========================================
kind                    metric names         default tolerance
======================  ===================  ==========================================
PSNR (dB)               ``*psnr*``, ``*_db`` +-0.5 dB
MSE                     ``*mse*``            +-10% of the published value (relative)
accuracy (points)       ``*_pct``, accuracy  +-1 point
SSIM                    ``*ssim*``           +-0.01
a choice (lr, width...) anything else        exact
======================  ===================  ==========================================

Verdicts: ``within`` / ``outside`` the tolerance; ``not comparable`` when the row says the
published value and ours measure different things (another model, another protocol);
``not run`` when ours is missing (the note says why); empty when nothing was published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = [
    "WITHIN",
    "OUTSIDE",
    "NOT_COMPARABLE",
    "NOT_RUN",
    "VERDICTS",
    "Kind",
    "metric_kind",
    "default_tolerance",
    "verdict",
    "add_verdicts",
    "format_value",
    "format_difference",
    "format_tolerance",
]

WITHIN, OUTSIDE, NOT_COMPARABLE, NOT_RUN = "within", "outside", "not comparable", "not run"
VERDICTS = (WITHIN, OUTSIDE, NOT_COMPARABLE, NOT_RUN)


@dataclass(frozen=True)
class Kind:
    """A metric kind: its unit, and its default tolerance (absolute, or relative to the published value)."""

    name: str
    unit: str
    default: float
    relative: bool = False


PSNR = Kind("psnr", "dB", 0.5)
MSE = Kind("mse", "", 0.10, relative=True)
ACCURACY = Kind("accuracy", "pt", 1.0)
SSIM = Kind("ssim", "", 0.01)
CHOICE = Kind("choice", "", 0.0)


def metric_kind(metric: str) -> Kind:
    """The kind of ``metric``, from its name (PSNR before MSE: ``psnr_of_mean_mse`` is a PSNR).

    >>> [metric_kind(m).name for m in ("val_psnr_of_mean_mse_db", "val_mse", "cv_mean_pct", "test_ssim", "best_lr")]
    ['psnr', 'mse', 'accuracy', 'ssim', 'choice']
    """
    name = metric.lower()
    if "psnr" in name or name.endswith("_db"):
        return PSNR
    if "mse" in name:
        return MSE
    if name.endswith("_pct") or "accuracy" in name:
        return ACCURACY
    if "ssim" in name:
        return SSIM
    return CHOICE


def default_tolerance(metric: str, published: float) -> float:
    """The default tolerance of ``metric`` around ``published``, in the metric's units.

    >>> default_tolerance("val_mse", 0.01255), default_tolerance("test_psnr_db", 19.0)
    (0.001255, 0.5)
    """
    kind = metric_kind(metric)
    return kind.default * abs(published) if kind.relative else kind.default


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))


def verdict(published: float | None, ours: float | None, tolerance: float | None, not_comparable: str = "") -> str:
    """``within`` / ``outside`` / ``not comparable`` / ``not run``, or '' when nothing was published.

    >>> verdict(19.01, 19.4, 0.5), verdict(19.01, 18.4, 0.5), verdict(19.01, None, 0.5), verdict(None, 3.0, None)
    ('within', 'outside', 'not run', '')
    """
    if _missing(published):
        return ""
    if not_comparable:
        return NOT_COMPARABLE
    if _missing(ours):
        return NOT_RUN
    # A hair of slack: a value printed to the tolerance's own precision counts as on the edge.
    return WITHIN if abs(float(ours) - float(published)) <= float(tolerance) * (1 + 1e-9) + 1e-12 else OUTSIDE


def add_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``difference`` (ours - published), ``tolerance`` (the default where empty)
    and ``verdict`` filled in; needs ``metric``, ``published``, ``ours``, ``tolerance`` and
    ``not_comparable`` columns."""
    frame = frame.copy()
    published, ours = (pd.to_numeric(frame[c], errors="coerce") for c in ("published", "ours"))
    given = pd.to_numeric(frame["tolerance"], errors="coerce")
    defaults = [
        math.nan if pd.isna(p) else default_tolerance(m, p) for m, p in zip(frame["metric"], published, strict=True)
    ]
    frame["tolerance"] = given.where(given.notna(), pd.Series(defaults, index=frame.index, dtype=float))
    frame["difference"] = ours - published
    reasons = frame["not_comparable"].fillna("").astype(str)
    frame["verdict"] = [
        verdict(p, o, t, r) for p, o, t, r in zip(published, ours, frame["tolerance"], reasons, strict=True)
    ]
    # A difference between unlike things is not a result: blank it so nobody reads it as one.
    frame.loc[frame["verdict"] == NOT_COMPARABLE, "difference"] = math.nan
    return frame


def format_value(value: float | None) -> str:
    """A table cell: 4 significant digits, '-' for none.

    >>> format_value(0.0125512), format_value(96.1), format_value(float("nan"))
    ('0.01255', '96.1', '-')
    """
    return "-" if _missing(value) else f"{float(value):.4g}"


def format_difference(metric: str, difference: float | None, published: float | None) -> str:
    """ours - published with a sign (and, for an MSE, relative to the published value).

    >>> format_difference("val_mse", 0.00055, 0.01255), format_difference("acc_pct", -1.234, 98.25)
    ('+0.00055 (+4.4%)', '-1.23')
    """
    if _missing(difference):
        return "-"
    kind = metric_kind(metric)
    if kind.relative and not _missing(published) and published:
        return f"{difference:+.2g} ({100 * difference / abs(published):+.1f}%)"
    return f"{difference:+.2f}" if kind in (PSNR, ACCURACY) else f"{difference:+.3g}"


def format_tolerance(metric: str, tolerance: float | None, published: float | None) -> str:
    """The tolerance as a reader wants it: '+-0.5 dB', '+-1 pt', '+-10%', 'exact'.

    >>> format_tolerance("val_mse", 0.001255, 0.01255), format_tolerance("acc_pct", 5.0, 90.0)
    ('±10%', '±5 pt')
    """
    if _missing(tolerance):
        return "-"
    kind = metric_kind(metric)
    if tolerance == 0:
        return "exact"
    if kind.relative and not _missing(published) and published:
        return f"±{100 * tolerance / abs(published):.3g}%"
    return f"±{tolerance:.3g}" + (f" {kind.unit}" if kind.unit else "")
