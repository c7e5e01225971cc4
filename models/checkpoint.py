"""Fitted-model files: ``PATH.safetensors`` (weights) plus ``PATH.json`` (config, history, sha256).

Loading reads only safetensors and JSON, so it never unpickles anything; the sha256 in the
sidecar is checked before the weights are used.

>>> import tempfile, pathlib
>>> from bench.registry import DENOISERS
>>> model = DENOISERS.create("dense_dae", hidden=8, epochs=1)
>>> model = model.fit(torch.rand(16, 1, 8, 8), torch.rand(16, 1, 8, 8))
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = save_fitted(model, pathlib.Path(tmp) / "m")
...     again = load_fitted(path)
>>> bool(torch.equal(again.denoise(torch.ones(1, 1, 8, 8)), model.denoise(torch.ones(1, 1, 8, 8))))
True
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = ["save_fitted", "load_fitted", "checkpoint_paths"]

FORMAT = 1


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """(weights, sidecar) paths for ``path`` with or without a ``.safetensors`` suffix."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_fitted(model: Any, path: str | Path) -> Path:
    """Write a fitted model's weights and JSON sidecar; returns the weights path."""
    weights, sidecar = checkpoint_paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file(model.fitted_tensors(), str(weights))
    record = {
        "format": FORMAT,
        "name": model.name,
        "params": model.get_params(),
        "state": model.fitted_state(),
        "sha256": _sha256(weights),
    }
    sidecar.write_text(json.dumps(record, indent=1, allow_nan=False))
    return weights


def load_fitted(path: str | Path, *, device: Any = "cpu", model: Any = None) -> Any:
    """Load a model saved by ``save_fitted`` (a fresh registry instance unless ``model`` is given)."""
    weights, sidecar = checkpoint_paths(path)
    for file in (weights, sidecar):
        if not file.is_file():
            raise FileNotFoundError(f"checkpoint file {file} is missing; expected the pair written by save_fitted")
    record = json.loads(sidecar.read_text())
    if record.get("format") != FORMAT:
        raise ValueError(f"checkpoint {sidecar} has format {record.get('format')!r}; expected {FORMAT}")
    if _sha256(weights) != record["sha256"]:
        raise ValueError(f"checkpoint {weights} does not match the sha256 in {sidecar}; the file changed or is corrupt")
    if model is None:
        from bench.registry import DENOISERS

        model = DENOISERS.create(record["name"], **record["params"])
    tensors = load_file(str(weights), device=str(torch.device(device)))
    return model.load_fitted(tensors, record["state"], device)
