"""Plumbing shared by the seed-report protocols (``bench/seeds/s000.py`` ... ``s004.py``).

A protocol builds a :class:`Reproduction`, adds rows "published vs ours" inside timed
:meth:`Reproduction.experiment` blocks (one log line each), and calls
:meth:`Reproduction.write`, which writes ``OUT/seeds/SEED.csv`` and ``SEED.json`` atomically.
Data, noise and metrics come from the harness (``bench.data``, ``bench.noise``,
``bench.metrics``) so that a seed's numbers are measured exactly as the grids' are.
"""

from __future__ import annotations

import json
import math
import os
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
from bench.data import DataError, find, load
from bench.estimator import as_float_images
from bench.noise import Noise, derive_seed
from bench.registry import CLASSIFIERS, DENOISERS, Registry

__all__ = [
    "BUDGETS", "COLUMNS", "Reproduction", "Experiment", "settings", "check_budget", "load_dataset", "has_dataset",
    "split", "noisy", "model_params", "fit_denoiser", "fit_classifier", "image_scores", "percent",
    "bisect", "psnr_of_mse", "missing_models", "fit_note", "train_and_score", "Scored",
]  # fmt: skip

#: ``tiny`` is for tests (seconds), ``quick`` for a 2-core CPU (minutes), ``full`` for a GPU.
BUDGETS = ("tiny", "quick", "full")
COLUMNS = ["seed", "experiment", "metric", "published", "ours", "n_test", "protocol_note"]


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


def _write_text_atomic(path: Path, text: str) -> None:
    # Written beside the target and renamed, so a reader never sees half a file.
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class Experiment:
    """Rows of one experiment; created by :meth:`Reproduction.experiment`."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, metric: str, published: float | None, ours: float | None, *, n_test: int | None, note: str = ""
    ) -> None:
        """One "published vs ours" row; None is written as an empty cell."""
        nan = float("nan")
        self.rows.append({
            "experiment": self.name, "metric": metric, "published": nan if published is None else float(published),
            "ours": nan if ours is None else float(ours), "n_test": n_test, "protocol_note": note,
        })  # fmt: skip


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

    def skip(self, name: str, published: dict[str, float | None], reason: str, *, n_test: int | None = None) -> None:
        """Rows with an empty 'ours' and ``reason`` as the note, for an experiment that cannot run here."""
        with self.experiment(name) as exp:
            for metric, value in published.items():
                exp.add(metric, value, None, n_test=n_test, note=f"not run: {reason}")

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=COLUMNS[1:])
        frame.insert(0, "seed", self.report)
        frame["n_test"] = frame["n_test"].astype("Int64")
        frame.attrs["name"] = f"seed {self.report}"
        return frame

    def write(self) -> pd.DataFrame:
        """Write ``SEED.csv`` and ``SEED.json`` under ``out_dir/seeds``; returns the table."""
        folder = Path(self.out_dir) / "seeds"
        folder.mkdir(parents=True, exist_ok=True)
        frame = self.frame()
        _write_text_atomic(folder / f"{self.report}.csv", frame.to_csv(index=False, float_format="%.6g"))
        detail = {
            "seed": self.report,
            "budget": self.budget,
            "device": str(self.device),
            "base_seed": self.seed,
            **self.extra,
        }
        _write_text_atomic(
            folder / f"{self.report}.json", json.dumps(_finite_or_none(detail), indent=1, default=str, allow_nan=False)
        )
        return frame


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}"


def has_dataset(name: str, data_dir: Any) -> bool:
    """Whether ``name``'s files are on the data search path (no loading)."""
    return find(name, data_dir) is not None


def load_dataset(name: str, repro: Reproduction):
    """``bench.data.load(name)``; a missing dataset is a one-line DataError naming the seed and the fix."""
    try:
        return load(name, data_dir=repro.data_dir)
    except DataError as err:
        raise DataError(f"seed {repro.report} needs {name}: {err}") from None


def split(
    ds, *, n_train: int | None, n_test: int | None, device: torch.device, seed: int | None = None
) -> tuple[Tensor, ...]:
    """(train images, train labels, test images, test labels) as float [0, 1] on ``device``.

    Training images are the first ``n_train`` (``seed`` None) or a subset seeded by name as in
    the grid runner; test images are always the first ``n_test``, so every number on them is
    on the same images.
    """
    n_train = len(ds.train_images) if n_train is None else min(n_train, len(ds.train_images))
    if seed is None:
        index = torch.arange(n_train)
    else:
        index = torch.randperm(
            len(ds.train_images), generator=torch.Generator().manual_seed(derive_seed(seed, ds.name, "train-subset"))
        )[:n_train]
    n_test = len(ds.test_images) if n_test is None else min(n_test, len(ds.test_images))
    put = lambda t: as_float_images(t).to(device)  # noqa: E731
    return (
        put(ds.train_images[index]),
        ds.train_labels[index].to(device),
        put(ds.test_images[:n_test]),
        ds.test_labels[:n_test].to(device),
    )


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


def missing_models(registry: Registry, *names: str) -> list[str]:
    """The names among ``names`` not (yet) registered."""
    return [name for name in names if name not in registry]


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


def fit_denoiser(repro: Reproduction, name: str, noisy_train: Tensor, clean_train: Tensor, *, noise: Any = None,
                 tag: str = "", **overrides: Any) -> tuple[Any, float, list[str]]:  # fmt: skip
    """A fitted ``DENOISERS`` entry, its fit seconds and the overrides it does not take.

    The fit seed derives from the report, the name and ``tag``, never from run order.
    """
    params, dropped = model_params(DENOISERS, name, repro.budget, **overrides)
    model = DENOISERS.create(name, **params)
    start = time.perf_counter()
    model.fit(
        noisy_train, clean_train, seed=derive_seed(repro.seed, "seed", repro.report, "fit", name, tag), noise=noise
    )
    return model, time.perf_counter() - start, dropped


@dataclass
class Scored:
    """A fitted denoiser, its denoised test images and their scores."""

    model: Any
    denoised: Tensor
    scores: dict[str, float]
    fit_seconds: float
    dropped: list[str]

    @property
    def warning(self) -> str:
        """'; training collapsed: ...' when the training loop says the kept model is collapsed, else ''."""
        training = getattr(self.model, "training_", None) or {}
        if not training.get("collapsed"):
            return ""
        reasons = [c.get("reason", "") for c in training.get("collapse", [])]
        return f"; training collapsed: {reasons[-1] if reasons else 'constant output'}"


def train_and_score(repro: Reproduction, name: str, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *,
                    noise: Any = None, tag: str = "", **overrides: Any) -> Scored:  # fmt: skip
    """Fit ``name`` on (noisy, clean) ``train`` pairs, denoise ``test``'s noisy images, score them.

    The learning curve and training summary (neural models) and the tuned parameters
    (classical ones) go to the reproduction's JSON under ``models``.
    """
    model, seconds, dropped = fit_denoiser(repro, name, *train, noise=noise, tag=tag, **overrides)
    denoised = model.denoise(test[0])
    scores = image_scores(denoised, test[1])
    record = {
        "params": model.get_params(),
        "fit_seconds": round(seconds, 2),
        "n_train": len(train[0]),
        "test": scores,
        "not_taken": dropped,
    }
    for key in ("history_", "training_", "best_params_"):
        if hasattr(model, key):
            record[key.rstrip("_")] = getattr(model, key)
    repro.extra.setdefault("models", {})[f"{name} {tag}".strip()] = record
    return Scored(model, denoised, scores, seconds, dropped)


def fit_classifier(
    repro: Reproduction, name: str, images: Tensor, labels: Tensor, *, tag: str = "", **overrides: Any
) -> Any:
    """A ``CLASSIFIERS`` entry fitted on ``images`` with the budget's parameters and ``overrides``."""
    params, _ = model_params(CLASSIFIERS, name, repro.budget, **overrides)
    return CLASSIFIERS.create(name, **params).fit(
        images, labels, seed=derive_seed(repro.seed, "seed", repro.report, "classifier", name, tag)
    )


def percent(model: Any, images: Tensor, labels: Tensor) -> float:
    """Accuracy of ``model`` on ``images`` in percent (bench.metrics.accuracy x 100)."""
    return 100.0 * metrics.accuracy(model.predict(images), labels)


def psnr_of_mse(mse: float) -> float:
    """10 log10(1 / MSE): the PSNR that a published mean MSE implies (data range 1).

    >>> round(psnr_of_mse(0.01255), 2)
    19.01
    """
    return -10.0 * math.log10(max(mse, 1e-10))


def image_scores(pred: Tensor, clean: Tensor) -> dict[str, float]:
    """Mean per-image MSE, PSNR and SSIM (bench.metrics), and the PSNR of the mean MSE."""
    mse = float(metrics.mse(pred, clean).mean())
    return {
        "mse": mse, "psnr": float(metrics.psnr(pred, clean).mean()), "ssim": float(metrics.ssim(pred, clean).mean()),
        "psnr_of_mean_mse": psnr_of_mse(mse),
    }  # fmt: skip


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
