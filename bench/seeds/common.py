"""Plumbing shared by the seed-report protocols (``bench/seeds/s000.py`` ... ``s004.py``).

A protocol builds a :class:`Reproduction`, adds rows "published vs ours" inside timed
:meth:`Reproduction.experiment` blocks (one log line each), and calls
:meth:`Reproduction.write`, which writes ``OUT/seeds/SEED.csv`` and ``SEED.json`` atomically.
Its cells come from the grid runner (:mod:`bench.seeds.declared`); the helpers here turn
them into rows (budget settings and notes, accuracies, the PSNR a published MSE implies, a
bisection for calibrations).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from bench import metrics
from bench.data import find
from bench.files import write_text_atomic
from bench.noise import Noise, derive_seed
from bench.registry import Registry
from bench.seeds.verdicts import add_verdicts

__all__ = [
    "BUDGETS",
    "COLUMNS",
    "Reproduction",
    "Experiment",
    "settings",
    "check_budget",
    "has_dataset",
    "noisy",
    "model_params",
    "faithful_params",
    "percent",
    "bisect",
    "psnr_of_mse",
    "fit_note",
]

#: ``tiny`` is for tests (seconds), ``quick`` for a 2-core CPU (minutes), ``full`` for a GPU.
BUDGETS = ("tiny", "quick", "full")
#: Columns of ``SEED.csv``: the comparison first (see :mod:`bench.seeds.verdicts`), the long
#: texts last. ``best_of_bench`` / ``best_entry``: our best entry on the same data, beside (not
#: instead of) ours for the report's own model. ``reading``: which reading was chosen where the
#: report is silent or contradicts itself, and why; ``deviations``: every other departure from
#: the report's protocol, a budget's shrinking included ("; "-joined); ``not_comparable``: why
#: the published value and ours measure different things (empty when they do not).
COLUMNS = [
    "seed",
    "experiment",
    "metric",
    "published",
    "ours",
    "difference",
    "tolerance",
    "verdict",
    "best_of_bench",
    "best_entry",
    "n_test",
    "budget",
    "not_comparable",
    "reading",
    "deviations",
    "protocol_note",
]


_DERIVED = ("seed", "difference", "verdict", "budget")


def check_budget(budget: str) -> str:
    """``budget`` if it is one of :data:`BUDGETS`, else a one-line ValueError."""
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r} is unknown; expected one of: {', '.join(BUDGETS)}")
    return budget


def settings(table: dict[str, dict[str, Any]], budget: str) -> SimpleNamespace:
    """A protocol's settings for ``budget`` (``table`` maps each budget name to a dict)."""
    return SimpleNamespace(budget=check_budget(budget), **table[budget])


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, Tensor):
        return _finite_or_none(value.tolist())
    return value


@dataclass
class Experiment:
    """Rows of one experiment; created by :meth:`Reproduction.experiment`."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        metric: str,
        published: float | None,
        ours: float | None,
        *,
        n_test: int | None,
        note: str = "",
        reading: str = "",
        deviations: tuple[str, ...] = (),
        tolerance: float | None = None,
        not_comparable: str = "",
        best: tuple[str, float | None] | None = None,
    ) -> None:
        """One "published vs ours" row; None is written as an empty cell.

        ``reading``: where the report is silent or contradicts itself, which reading was chosen
        and why. ``deviations``: every other departure from the report's protocol, including
        what a budget shrank (one string each). ``tolerance``: how far ours may be from the
        published value, in the metric's units (None: the default of the metric's kind, see
        :mod:`bench.seeds.verdicts`). ``not_comparable``: why the published value and ours are
        not the same quantity under the same protocol (the verdict is then "not comparable").
        ``best``: (entry, value) of our best entry on the same data, for its own column.
        """
        nan = float("nan")
        if isinstance(deviations, str):  # one departure given as a bare string, not its letters
            deviations = (deviations,)
        best_entry, best_value = best if best is not None else ("", None)
        self.rows.append(
            {
                "experiment": self.name,
                "metric": metric,
                "published": nan if published is None else float(published),
                "ours": nan if ours is None else float(ours),
                "tolerance": nan if tolerance is None else float(tolerance),
                "best_of_bench": nan if best_value is None else float(best_value),
                "best_entry": best_entry,
                "n_test": n_test,
                "not_comparable": not_comparable,
                "reading": reading,
                "deviations": "; ".join(d for d in deviations if d),
                "protocol_note": note,
            }
        )


@dataclass
class Reproduction:
    """Rows and extra detail of one seed report's reproduction, and where they go.

    Parameters
    ----------
    report : str
        The seed report's id, "000" ... "004".
    budget : {'tiny', 'quick', 'full'}
    device : torch.device
    seed : int
        Base seed: every noise draw and fit seed derives from it and names (bench.noise.derive_seed).
    out_dir : Path
        Results root; the tables go to ``out_dir / "seeds"``.
    log : callable
        Receives one plain line per finished experiment.
    data_dir : path or None
        Passed to ``bench.data.load``.
    """

    report: str
    budget: str
    device: torch.device
    seed: int
    out_dir: Path
    log: Callable[[str], None]
    data_dir: Any = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def experiment(self, name: str) -> Iterator[Experiment]:
        """Time a block that adds rows; log one line and rewrite the outputs when it finishes."""
        exp, start = Experiment(name), time.perf_counter()
        yield exp
        seconds = time.perf_counter() - start
        self.rows.extend(exp.rows)
        self.extra.setdefault("seconds", {})[name] = round(seconds, 2)
        parts = [
            f"{r['metric']} {_fmt(r['ours'])}"
            + (f" (published {_fmt(r['published'])})" if not math.isnan(r["published"]) else "")
            for r in exp.rows
        ]
        self.log(f"[{self.report}] {name}: {'; '.join(parts) or 'no rows'} ({seconds:.1f} s)")
        self.write()  # after every experiment: a run that dies later keeps what it measured

    def skip(
        self,
        name: str,
        published: dict[str, float | None],
        reason: str,
        *,
        n_test: int | None = None,
        reading: str = "",
        deviations: tuple[str, ...] = (),
    ) -> None:
        """Rows with an empty 'ours' and ``reason`` as the note, for an experiment that cannot run here."""
        with self.experiment(name) as exp:
            for metric, value in published.items():
                exp.add(
                    metric,
                    value,
                    None,
                    n_test=n_test,
                    note=f"not run: {reason}",
                    reading=reading,
                    deviations=deviations,
                )

    def frame(self) -> pd.DataFrame:
        """The rows so far, with their difference, tolerance and verdict (``COLUMNS``)."""
        frame = pd.DataFrame(self.rows, columns=[c for c in COLUMNS if c not in _DERIVED])
        frame.insert(0, "seed", self.report)
        frame["budget"] = self.budget
        frame["n_test"] = frame["n_test"].astype("Int64")
        frame = add_verdicts(frame)[COLUMNS]
        frame.attrs["name"] = f"seed {self.report}"
        return frame

    def write(self) -> pd.DataFrame:
        """Write ``SEED.csv`` and ``SEED.json`` under ``out_dir/seeds``; returns the table."""
        folder = Path(self.out_dir) / "seeds"
        folder.mkdir(parents=True, exist_ok=True)
        frame = self.frame()
        write_text_atomic(folder / f"{self.report}.csv", frame.to_csv(index=False, float_format="%.6g"))
        write_text_atomic(folder / f"{self.report}.json", self.detail_json())
        return frame

    def detail_json(self) -> str:
        """``SEED.json``: budget, device, base seed and the protocol's extra detail (folds, curves...)."""
        detail = {
            "seed": self.report,
            "budget": self.budget,
            "device": str(self.device),
            "base_seed": self.seed,
            **self.extra,
        }
        return json.dumps(_finite_or_none(detail), indent=1, default=str, allow_nan=False)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def has_dataset(name: str, data_dir: Any) -> bool:
    """Whether ``name``'s files are on the data search path (no loading)."""
    return find(name, data_dir) is not None


def noisy(clean: Tensor, kind: str, level: float, *, seed: int, dataset: str, split: str) -> Tensor:
    """``Noise(kind, level)`` applied with the grid runner's seed for (dataset, split, kind, level)."""
    return Noise(kind, level).apply(clean, seed=derive_seed(seed, dataset, split, kind, float(level)))


def fit_note(budget: str, n_train: int, fit: dict[str, Any], dropped: list[str] = ()) -> str:
    """What a reduced budget changed, for a row's note ('' for the full budget).

    ``dropped`` are the overrides the model does not take (see :func:`model_params`).

    >>> fit_note("quick", 8000, {"batch_size": 32, "max_seconds": 45})
    '; quick budget: 8000 training pairs, batch 32, fit capped at 45 s'
    """
    if budget == "full":
        return ""
    fit = {key: value for key, value in fit.items() if key not in dropped}
    parts = [f"{n_train} training pairs"]
    parts += [
        f"{'batch' if key == 'batch_size' else key} {value}" for key, value in fit.items() if key != "max_seconds"
    ]
    if fit.get("max_seconds"):
        parts.append(f"fit capped at {fit['max_seconds']} s")
    return f"; {budget} budget: " + ", ".join(parts)


def model_params(registry: Registry, name: str, budget: str, **overrides: Any) -> tuple[dict[str, Any], list[str]]:
    """Constructor parameters of ``name`` for ``budget`` plus ``overrides`` it accepts.

    ``tiny`` starts from the entry's ``test_params``, ``quick``/``full`` from the factory's
    ``budgets`` (when it has one). Overrides the model does not take are dropped and named
    in the second return value, so a protocol can say so in its note.
    """
    entry = registry.entry(name)
    base = dict(entry.test_params) if budget == "tiny" else dict(getattr(entry.factory, "budgets", {}).get(budget, {}))
    accepted = set(registry.create(name, **base).get_params())
    dropped = sorted(k for k in overrides if k not in accepted)
    base.update({k: v for k, v in overrides.items() if k in accepted})
    return base, dropped


def faithful_params(registry: Registry, name: str, budget: str, **overrides: Any) -> dict[str, Any]:
    """``name``'s parameters under its report's own recipe (``config='faithful'``) for ``budget``.

    The entry's generic budget caps (the quick grid's ``max_steps`` and ``batch_size``, the test
    batch at tiny) are dropped, so the report's batch size and epochs stand unless ``overrides``
    shrink them: a budget changes the report's protocol only where the protocol says so.
    """
    uncapped = {"max_steps": None, "batch_size": None, **overrides}
    params, _ = model_params(registry, name, budget, config="faithful", **uncapped)
    return {key: value for key, value in params.items() if value is not None}


def percent(model: Any, images: Tensor, labels: Tensor) -> float:
    """Accuracy of ``model`` on ``images`` in percent (bench.metrics.accuracy x 100)."""
    return 100.0 * metrics.accuracy(model.predict(images), labels)


def psnr_of_mse(mse: float) -> float:
    """10 log10(1 / MSE): the PSNR that a published mean MSE implies (data range 1).

    >>> round(psnr_of_mse(0.01255), 2)
    19.01
    """
    return -10.0 * math.log10(max(mse, 1e-10))


def bisect(
    f: Callable[[float], float], target: float, lo: float, hi: float, *, iterations: int, tol: float = 0.0
) -> tuple[float, list[dict[str, float]]]:
    """The x in [lo, hi] where the monotone ``f`` crosses ``target``, by bisection.

    ``f`` may increase or decrease (the direction is read from ``f(lo)`` and ``f(hi)``). Stops
    after ``iterations`` evaluations inside the bracket or once ``|f(x) - target| <= tol``.
    Returns the evaluated x closest to the target and every (x, f(x)) evaluated. If the
    target lies outside [f(lo), f(hi)] the nearer end is returned.

    >>> round(bisect(lambda x: x * x, 2.0, 0.0, 2.0, iterations=30)[0], 6)
    1.414214
    """
    if not lo < hi or iterations < 1:
        raise ValueError(f"bisect needs lo < hi and iterations >= 1; got [{lo}, {hi}] and {iterations}")
    history = [{"x": lo, "f": f(lo)}, {"x": hi, "f": f(hi)}]
    sign = 1.0 if history[1]["f"] >= history[0]["f"] else -1.0  # +1: f increases
    if sign * (target - history[0]["f"]) <= 0 or sign * (history[1]["f"] - target) <= 0:
        return min(history, key=lambda h: abs(h["f"] - target))["x"], history
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        value = f(mid)
        history.append({"x": mid, "f": value})
        if abs(value - target) <= tol:
            break
        if sign * (value - target) < 0:
            lo = mid
        else:
            hi = mid
    return min(history, key=lambda h: abs(h["f"] - target))["x"], history
