"""The fit cache checks what it loads: a damaged entry is named, set aside and refitted; NaN is never cached."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from bench.estimator import Denoiser
from bench.execution import fits as fit_cache
from bench.execution.classifier_pool import ClassifierPool

CPU = torch.device("cpu")


class Scaler(Denoiser):
    """One learned weight: the cheapest cacheable denoiser with tensors."""

    name = "scaler"

    def __init__(self, *, value: float = 0.5) -> None:
        self.value = value

    def fit(self, noisy, clean, *, seed=0, noise=None):
        self.weight_ = torch.full((4,), self.value)
        return self

    def denoise(self, noisy):
        return noisy * self.weight_[0]

    def fitted_tensors(self):
        return {"weight": self.weight_}

    def fitted_state(self):
        return {"value": self.value}

    def load_fitted(self, tensors, state, device):
        self.weight_ = tensors["weight"].to(device)
        return self


def fit_or_load(stem, value: float = 0.5) -> tuple[Scaler, int]:
    """The model through the cache at ``stem`` and how often it was fitted (0: loaded)."""
    model, fits = Scaler(value=value), []
    fit_cache.fit_or_load(model, stem, lambda: fits.append(model.fit(None, None)), device=CPU)
    return model, len(fits)


def _flip_weights(stem):
    raw = bytearray(stem.with_suffix(".safetensors").read_bytes())
    raw[-8:] = b"\xff" * 8
    stem.with_suffix(".safetensors").write_bytes(bytes(raw))


def _edit_sidecar(stem):
    record = json.loads(stem.with_suffix(".json").read_text())
    record["extra"]["fit_seconds"] = 0.001  # valid JSON, wrong content
    stem.with_suffix(".json").write_text(json.dumps(record))


def _drop_checksum_and_add(stem, key=None):
    record = json.loads(stem.with_suffix(".json").read_text())
    del record["checksum"]
    if key:
        record[key] = 1
    stem.with_suffix(".json").write_text(json.dumps(record))


DAMAGE = {
    "half-json": (lambda s: s.with_suffix(".json").write_text(s.with_suffix(".json").read_text()[:40]), "not JSON"),
    "zero-bytes": (lambda s: s.with_suffix(".json").write_bytes(b""), "not JSON"),
    "a-list": (lambda s: s.with_suffix(".json").write_text("[1, 2, 3]"), "a JSON list; expected an object"),
    "edited": (_edit_sidecar, "checksum mismatch: its content changed"),
    "weights-flipped": (_flip_weights, "checksum mismatch of its weights file"),
    "no-checksum-unknown-layout": (lambda s: _drop_checksum_and_add(s, "by_hand"), "no checksum"),
    "weights-gone": (lambda s: s.with_suffix(".safetensors").unlink(), "weights file fit.safetensors is missing"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_entry_is_named_once_set_aside_and_refitted(damage, tmp_path, caplog):
    damage_it, reason = damage
    stem = tmp_path / "fit"
    assert fit_or_load(stem)[1] == 1 and fit_or_load(stem)[1] == 0  # fitted once, then loaded
    damage_it(stem)
    with caplog.at_level(logging.WARNING, logger="bench.training"):
        model, fits = fit_or_load(stem)
    assert fits == 1 and torch.equal(model.weight_, torch.full((4,), 0.5))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert str(stem.with_suffix(".json")) in warnings[0] and reason in warnings[0] and "refitted" in warnings[0]
    assert (tmp_path / "fit.json.corrupt").is_file()
    assert fit_or_load(stem)[1] == 0  # the refit was cached whole


def test_cached_weights_get_the_mode_of_any_new_file(tmp_path):
    # A --cache-dir shared between users must not hold owner-only (0600) weights files.
    stem = tmp_path / "fit"
    fit_or_load(stem)
    (tmp_path / "plain").write_text("x")
    mode = (tmp_path / "plain").stat().st_mode & 0o777
    assert stem.with_suffix(".safetensors").stat().st_mode & 0o777 == mode
    assert stem.with_suffix(".json").stat().st_mode & 0o777 == mode


def test_an_entry_written_before_sidecar_checksums_still_loads(tmp_path, caplog):
    stem = tmp_path / "fit"
    fit_or_load(stem)
    _drop_checksum_and_add(stem)  # the sidecar layout older versions wrote: weights checksum only
    with caplog.at_level(logging.WARNING, logger="bench.training"):
        assert fit_or_load(stem)[1] == 0
    assert not caplog.records
    _flip_weights(stem)  # its weights are still checked
    assert fit_or_load(stem)[1] == 1


def test_nan_or_infinite_weights_are_never_cached_and_the_reason_names_the_entry(tmp_path):
    for value in (math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^scaler ended its fit with NaN or infinite weights \(weight\)"):
            fit_or_load(tmp_path / "fit", value)
        assert list(tmp_path.iterdir()) == []


def test_a_classifiers_damaged_sidecar_is_refitted_not_a_lost_dataset(tmp_path, caplog):
    images = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(40) % 2
    images[labels == 1] += 0.5

    def accuracy() -> float:
        model = ClassifierPool(tmp_path, CPU).model("toy", "svm_rbf", (), images, labels, seed=0)
        return float((model.predict(images) == labels).float().mean())

    first = accuracy()
    (sidecar,) = tmp_path.glob("classifier-*.json")
    sidecar.write_text(sidecar.read_text()[: len(sidecar.read_text()) // 2])
    with caplog.at_level(logging.WARNING, logger="bench.training"):
        assert accuracy() == first
    assert len(caplog.records) == 1 and sidecar.name in caplog.records[0].getMessage()
    assert sidecar.with_name(sidecar.name + ".corrupt").is_file() and fit_cache.read_sidecar(sidecar)
