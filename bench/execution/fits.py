"""Fitted-model cache: safetensors weights plus a JSON sidecar, keyed by what the fit depends on.

A model takes part through the hooks ``bench.estimator.Estimator`` declares:
``fitted_tensors() -> dict[str, Tensor]``, ``fitted_state() -> dict`` (JSON-able) and
``load_fitted(tensors, state, device)``; a class that defines ``fitted_state`` and
``load_fitted`` is ``cacheable``. Loading never unpickles: weights come from safetensors,
everything else from JSON.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.device import sync
from bench.estimator import Estimator, fit_params
from bench.files import write_atomic, write_text_atomic

__all__ = ["fit_key", "save_fitted", "load_fitted", "is_cacheable", "is_cached", "seconds_before", "fit_or_load"]


def fit_key(spec: dict[str, Any]) -> str:
    """A stable file stem for a fit spec (see ``Cell.fit_spec``)."""
    from bench import __version__

    text = json.dumps({"fit": spec, "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_cacheable(model: Any) -> bool:
    """Whether ``model`` can be saved and restored (an Estimator whose class defines the hooks)."""
    return isinstance(model, Estimator) and model.cacheable


def is_cached(stem: Path) -> bool:
    """Whether a fit is cached at ``stem`` (its sidecar exists; loading still checks it)."""
    return stem.with_suffix(".json").is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_fitted(model: Any, stem: Path, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``stem.safetensors`` (if the model has tensors) and ``stem.json``; atomic per file."""
    from safetensors.torch import save_file

    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = model.fitted_tensors()
    sidecar = {"config": model.get_params(), "state": model.fitted_state(), "extra": extra or {}, "sha256": None}
    if tensors:
        arrays = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        weights = write_atomic(stem.with_suffix(".safetensors"), lambda tmp: save_file(arrays, str(tmp)))
        sidecar["sha256"] = _sha256(weights)
    write_text_atomic(stem.with_suffix(".json"), json.dumps(sidecar, sort_keys=True, default=str))


def _fit_params(model: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the model's inference-only ones, as JSON would give them back."""
    return json.loads(json.dumps(fit_params(model, params), default=str))


def load_fitted(model: Any, stem: Path, device: torch.device) -> dict[str, Any] | None:
    """Load a cached fit into ``model``; returns the sidecar's ``extra`` or None if absent/stale."""
    from safetensors.torch import load_file

    sidecar_path = stem.with_suffix(".json")
    if not sidecar_path.is_file():
        return None
    sidecar = json.loads(sidecar_path.read_text())
    # A parameter added since the fit was cached is recorded at its default: adding one keeps
    # the old behaviour at its default, so a fit made before it existed still matches.
    recorded = type(model).default_params() | (sidecar.get("config") or {})
    if _fit_params(model, recorded) != _fit_params(model, model.get_params()):
        return None
    tensors = {}
    if sidecar.get("sha256"):
        weights = stem.with_suffix(".safetensors")
        if not weights.is_file() or _sha256(weights) != sidecar["sha256"]:
            return None
        tensors = load_file(str(weights), device=str(device))
    model.load_fitted(tensors, sidecar["state"], device)
    return sidecar.get("extra", {})


def seconds_before(model: Any) -> float:
    """Training seconds that a fit resuming from ``model.checkpoint_path`` has already run (0
    without checkpoints): added to the resumed process's own time, a fit's seconds are its whole."""
    return model.seconds_trained() if isinstance(model, Estimator) else 0.0


def fit_or_load(
    model: Any,
    stem: Path,
    fit: Callable[..., Any],
    *,
    device: torch.device,
    prepare: Callable[[], tuple] = tuple,
    checkpoint_every: float | None = None,
    extra: dict[str, Any] | None = None,
) -> float:
    """Load ``model``'s fit cached at ``stem``, or run ``fit(*prepare())`` and cache it; returns
    the fit's seconds, which leave out ``prepare`` (making the training data is not fitting).

    A fresh fit checkpoints beside the cache (``stem.ckpt``), so a killed one resumes there, and
    its seconds include those its checkpoints had already trained. ``extra`` is kept in the
    sidecar beside the seconds.
    """
    cacheable = is_cacheable(model)
    extra = load_fitted(model, stem, device) if cacheable else None
    if extra is not None:
        return float(extra.get("fit_seconds", 0.0))
    model.checkpoint_path = stem.with_suffix(".ckpt")
    if checkpoint_every is not None:
        model.checkpoint_every = checkpoint_every
    inputs = prepare()
    sync(device)
    start = time.perf_counter() - seconds_before(model)
    fit(*inputs)
    sync(device)
    seconds = time.perf_counter() - start
    if cacheable:
        save_fitted(model, stem, extra={**(extra or {}), "fit_seconds": seconds})
    return seconds
