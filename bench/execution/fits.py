"""Fitted-model cache: safetensors weights plus a JSON sidecar, keyed by what the fit depends on.

A model takes part through the hooks ``bench.estimator.Estimator`` declares:
``fitted_tensors() -> dict[str, Tensor]``, ``fitted_state() -> dict`` (JSON-able) and
``load_fitted(tensors, state, device)``; a class that defines ``fitted_state`` and
``load_fitted`` is ``cacheable``. Loading never unpickles: weights come from safetensors,
everything else from JSON.

The sidecar carries a SHA-256 of its own content and one of the weights file, both checked on
load. An entry that fails either, or whose sidecar is not a JSON object, is named in one
warning line on ``bench.training``, moved aside (``*.corrupt``) and refitted. A fit whose
weights are NaN or infinite is never cached: ``save_fitted`` refuses it, naming the entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bench.cost import timing
from bench.errors import one_line
from bench.estimator import Estimator
from bench.files import write_atomic, write_text_atomic
from bench.params import stored_fit_params

__all__ = [
    "fit_key",
    "save_fitted",
    "load_fitted",
    "write_sidecar",
    "read_sidecar",
    "DamagedFit",
    "is_cacheable",
    "is_cached",
    "seconds_before",
    "fit_or_load",
]

log = logging.getLogger("bench.training")


class DamagedFit(ValueError):
    """A cached fit whose sidecar or weights fail their checksum or cannot be read."""


def fit_key(spec: dict[str, Any]) -> str:
    """A stable file stem for a fit spec (see ``Cell.fit_spec``)."""
    from bench.version import __version__

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


def _content_digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def write_sidecar(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON to ``path`` atomically, with the checksum ``read_sidecar`` checks."""
    plain = json.loads(json.dumps(record, default=str))  # what reading it back gives, checksummed
    plain.pop("checksum", None)
    text = json.dumps(plain | {"checksum": _content_digest(plain)}, sort_keys=True)
    write_text_atomic(path, text)


#: The keys of a sidecar written before sidecars carried their own checksum.
_UNCHECKED_LAYOUT = {"config", "state", "extra", "sha256"}


def read_sidecar(path: Path) -> dict[str, Any]:
    """The record ``write_sidecar`` wrote at ``path``; DamagedFit unless it parses and its checksum holds."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFit(f"not JSON ({one_line(err)})") from None
    if not isinstance(record, dict):
        raise DamagedFit(f"a JSON {type(record).__name__}; expected an object")
    checksum = record.pop("checksum", None)
    if checksum is None and set(record) == _UNCHECKED_LAYOUT:
        # Written before sidecars carried a checksum: its weights' checksum is still checked, and
        # keeping it keeps every older cache valid (refitting them all would cost hours).
        return record
    if checksum is None:
        raise DamagedFit("no checksum; written by hand or by an unknown version")
    if checksum != _content_digest(record):
        raise DamagedFit("checksum mismatch: its content changed after it was written")
    return record


def _check_finite(model: Any, tensors: dict[str, torch.Tensor], stem: Path) -> None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            label = getattr(model, "name", None) or type(model).__name__
            raise ValueError(
                f"{label} ended its fit with NaN or infinite weights ({name}); not cached as {stem.name}, "
                "expected finite weights (try a lower learning rate)"
            )


def save_fitted(model: Any, stem: Path, *, extra: dict[str, Any] | None = None) -> None:
    """Write ``stem.safetensors`` (if the model has tensors) and ``stem.json``; atomic per file.

    ValueError, and nothing written, if a weight is NaN or infinite.
    """
    from safetensors.torch import save

    tensors = model.fitted_tensors()
    _check_finite(model, tensors, stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {"config": model.get_params(), "state": model.fitted_state(), "extra": extra or {}, "sha256": None}
    if tensors:
        arrays = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
        # Bytes written by Python, not safetensors' save_file, which creates its file owner-only
        # (0600): a --cache-dir shared between users needs the mode any new file gets.
        weights = write_atomic(stem.with_suffix(".safetensors"), lambda tmp: tmp.write_bytes(save(arrays)))
        sidecar["sha256"] = _sha256(weights)
    write_sidecar(stem.with_suffix(".json"), sidecar)


def load_fitted(model: Any, stem: Path, device: torch.device) -> dict[str, Any] | None:
    """Load a cached fit into ``model``; returns the sidecar's ``extra``, or None if absent, stale
    or damaged (a damaged entry is named in one warning and moved aside: the caller refits)."""
    sidecar_path = stem.with_suffix(".json")
    if not sidecar_path.is_file():
        return None
    try:
        return _load_checked(model, stem, device)
    except DamagedFit as err:
        _set_aside(stem, err)
        return None


def _load_checked(model: Any, stem: Path, device: torch.device) -> dict[str, Any] | None:
    from safetensors.torch import load_file

    sidecar = read_sidecar(stem.with_suffix(".json"))
    # A parameter added since the fit was cached is recorded at its default: adding one keeps
    # the old behaviour at its default, so a fit made before it existed still matches.
    recorded = type(model).default_params() | (sidecar.get("config") or {})
    if stored_fit_params(model, recorded) != stored_fit_params(model, model.get_params()):
        return None
    tensors = {}
    if sidecar.get("sha256"):
        weights = stem.with_suffix(".safetensors")
        if not weights.is_file():
            raise DamagedFit(f"its weights file {weights.name} is missing")
        if _sha256(weights) != sidecar["sha256"]:
            raise DamagedFit(f"checksum mismatch of its weights file {weights.name}")
        tensors = load_file(str(weights), device=str(device))
    try:
        model.load_fitted(tensors, sidecar["state"], device)
    except Exception as err:  # checksums hold, yet the entry does not fit the model: refit it
        raise DamagedFit(f"it does not load into {type(model).__name__} ({one_line(err)})") from None
    return sidecar.get("extra", {})


def _set_aside(stem: Path, err: DamagedFit) -> None:
    """Name a damaged entry in one warning line and move its files to ``*.corrupt``."""
    for path in (stem.with_suffix(".json"), stem.with_suffix(".safetensors")):
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except OSError:  # absent, or a folder we cannot change: the refit overwrites it if it can
            pass
    sidecar = stem.with_suffix(".json")
    log.warning("fit cache entry %s is damaged (%s); moved aside as *.corrupt and refitted", sidecar, err)


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
    seconds = seconds_before(model) + timing.seconds(lambda: fit(*inputs), device)
    if cacheable:
        save_fitted(model, stem, extra={**(extra or {}), "fit_seconds": seconds})
    return seconds
