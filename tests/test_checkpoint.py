"""Mid-fit checkpoints: a fit interrupted anywhere and rerun gives the same weights and losses.

Interruptions are simulated in-process (an exception after the k-th optimizer step) for many
models and stopping rules, and for real with SIGKILL in subprocesses for a denoiser and a
classifier. Every comparison is exact (``torch.equal``): resume must be bit-identical.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_training
import torch
import torch.nn.functional as F

from bench.execution import fits as fit_cache
from bench.noise import TrainingNoise
from bench.registry import CLASSIFIERS, DENOISERS
from models.engine import training
from models.engine.checkpoint import Checkpoints, read_state, save_state
from models.engine.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]


def blobs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = F.avg_pool2d(torch.rand(n, 1, 32, 32, generator=generator), 5, 1)
    return (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


def photos(sizes) -> list[torch.Tensor]:
    """Smooth C x H x W images of several sizes."""
    return [F.avg_pool2d(torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(h)), 3, 1)[0] for h, w in sizes]


def squares(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise with a bright square in one of two places, the class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, 28, 28, generator=generator) * 0.2
    images[labels == 1, :, 8:20, 8:20] += 0.7
    return images, labels


class _Collapsing(test_training._Collapsing):
    """Collapses, so the fit restarts once after 100 steps; a cosine schedule that restarts with it."""

    recipes = {"ours": Recipe(epochs=12, batch_size=4, patience=None, schedule="cosine")}


#: name -> (model factory, fit arguments); small fits that still cover the state that must resume.
FITS = {
    # cosine schedule, per-batch training noise, held-out validation (120 pairs), step budget mid-epoch
    "conv_ae_noise": (
        lambda: DENOISERS.create("conv_ae_fmnist", epochs=4, batch_size=16, max_steps=26),
        lambda: (*blobs(120), {"noise": TrainingNoise("gaussian", mode="blind")}),
    ),
    # dropout (global generator) and batch norm, patience that stops early
    "cnn_denoiser_patience": (
        lambda: DENOISERS.create("cnn_denoiser_fmnist", epochs=30, batch_size=32, lr=3e-2, patience=1),
        lambda: (*blobs(110), {}),
    ),
    # four stages: greedy pretraining of three layers, then fine-tuning
    "stacked_dae": (
        lambda: DENOISERS.create("stacked_dae", epochs=2, pretrain_epochs=2, batch_size=16, sizes=(24, 16, 8)),
        lambda: (*blobs(40), {}),
    ),
    # patch training: images of several sizes, patches, flips and noise drawn from the loop's generator
    "dncnn_patches": (
        lambda: DENOISERS.create(
            "dncnn", depth=3, width=8, patch_size=12, patches_per_epoch=64, epochs=3, batch_size=16
        ),
        lambda: (*[photos([(30, 40), (26, 33)])] * 2, {"noise": TrainingNoise("gaussian", 0.1)}),
    ),
    # the collapse restart: new network, lower rate, new epoch budget
    "collapse_restart": (_Collapsing, lambda: (*blobs(40), {})),
    # classifier: three pretraining stages with masks from the loop's generator, dropout, held-out split
    "stacked_classifier": (
        lambda: CLASSIFIERS.create(
            "stacked_ae_softmax", hidden=(24, 12), pretrain_epochs=2, epochs=4, batch_size=32, lr=1e-2
        ),
        lambda: (*squares(120), {}),
    ),
    # classifier with batch norm, random shifts from the loop's generator, cosine, no held-out split (40 images)
    "vgg16_tiny": (
        lambda: CLASSIFIERS.create("vgg16", width=0.0625, epochs=3, batch_size=16, shift=2, schedule="cosine"),
        lambda: (*squares(40), {}),
    ),
}


def fitted(name: str, stem: Path | None = None, every_steps: int = 3):
    make, data = FITS[name]
    model = make()
    if stem is not None:
        model.checkpoint_path, model.checkpoint_every_steps = stem, every_steps
    *arrays, options = data()
    return model.fit(*arrays, seed=5, **options)


def losses(model) -> list[tuple]:
    return [(row["epoch"], row["train_loss"], row["val_loss"], row.get("stage")) for row in model.history_]


def assert_same_fit(resumed, reference) -> None:
    first, second = resumed.fitted_tensors(), reference.fitted_tensors()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), f"{key} differs after resume"
    assert losses(resumed) == losses(reference)


class _Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way catches it."""


def interrupt_after(monkeypatch, steps: int) -> None:
    """Make the fit die right after its ``steps``-th optimizer step."""
    real, count = training.optimizer_step, [0]

    def dying_step(optimizer, compute_loss):
        value = real(optimizer, compute_loss)
        count[0] += 1
        if count[0] == steps:
            raise _Killed
        return value

    monkeypatch.setattr(training, "optimizer_step", dying_step)


def killed_fit(monkeypatch, tmp_path: Path, steps: int, name: str = "conv_ae_noise", every_steps: int = 3) -> Path:
    """Fit ``name`` until it dies right after its ``steps``-th optimizer step; returns the checkpoints' stem."""
    stem = tmp_path / "fit.ckpt"
    with monkeypatch.context() as patch:
        interrupt_after(patch, steps)
        with pytest.raises(_Killed):
            fitted(name, stem, every_steps)
    return stem


@pytest.fixture(scope="module")
def references():
    return {}


def reference(references, name):
    if name not in references:
        references[name] = fitted(name)
    return references[name]


@pytest.mark.parametrize(
    ("name", "kill_at", "every"),
    [
        ("conv_ae_noise", 11, 3),  # mid-epoch (7 steps an epoch), from the checkpoint at step 9
        ("conv_ae_noise", 9, 7),  # from a checkpoint at the last step of epoch 1, before its validation
        ("cnn_denoiser_patience", 8, 3),
        ("dncnn_patches", 6, 4),  # in epoch 2 (4 steps an epoch), from the checkpoint at the end of epoch 1
        ("stacked_dae", 9, 2),  # in the second pretraining stage (6 steps a stage)
        ("stacked_dae", 23, 3),  # in fine-tuning, after three finished stages
        ("collapse_restart", 130, 3),  # after the restart at step 100
        ("stacked_classifier", 5, 3),  # in the first pretraining stage
        ("stacked_classifier", 25, 3),  # in supervised training (after 16 pretraining steps)
        ("vgg16_tiny", 5, 3),
    ],
)
def test_an_interrupted_fit_resumes_bit_identically(name, kill_at, every, tmp_path, monkeypatch, references, caplog):
    expected = reference(references, name)
    stem = killed_fit(monkeypatch, tmp_path, kill_at, name, every)
    assert list(tmp_path.glob("fit.ckpt.*.pt")), "the interrupted fit left its checkpoints"
    with caplog.at_level(logging.INFO, logger="bench.training"):
        resumed = fitted(name, stem, every)
    assert any("from checkpoint" in r.getMessage() for r in caplog.records)
    assert_same_fit(resumed, expected)
    assert list(tmp_path.iterdir()) == [], "a successful fit deletes its checkpoints"


def test_the_resume_line_names_the_step(tmp_path, monkeypatch, caplog):
    stem = killed_fit(monkeypatch, tmp_path, 8)
    with caplog.at_level(logging.INFO, logger="bench.training"):
        fitted("conv_ae_noise", stem)
    lines = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert len(lines) == 1 and lines[0].endswith("at step 6 (epoch 1)"), lines
    assert str(stem) in lines[0]


def test_a_resumed_fit_counts_the_seconds_trained_before_it(tmp_path, monkeypatch):
    stem = killed_fit(monkeypatch, tmp_path, 8)
    path = tmp_path / "fit.ckpt.fit.pt"
    state = read_state(path)
    assert 0 < state["elapsed"] < 600
    save_state(path, state | {"elapsed": 1000.0})  # as if the killed process had trained 1,000 s
    model = FITS["conv_ae_noise"][0]()
    model.checkpoint_path = stem
    assert fit_cache.seconds_before(model) == 1000.0  # what the harness adds to the resumed process's time
    resumed = fitted("conv_ae_noise", stem)
    assert 1000.0 <= resumed.training_["seconds"] < 1600.0
    assert fit_cache.seconds_before(model) == 0.0  # the finished fit removed its checkpoints


def test_a_checkpoint_holds_weights_optimizer_rng_and_progress_without_pickled_objects(tmp_path, monkeypatch):
    killed_fit(monkeypatch, tmp_path, 4)
    state = read_state(tmp_path / "fit.ckpt.fit.pt")
    assert {"net", "optimizer", "rng", "scalars", "best", "history", "info", "epoch_in_progress"} <= state.keys()
    assert state["scalars"]["step"] == 3 and state["epoch_in_progress"]["position"] == 3
    assert state["optimizer"]["state"] and {"torch", "cuda", "loop"} == state["rng"].keys()


def _flip_bytes(path: Path) -> None:
    """Overwrite 3 x 64 bytes in the middle of the file, in its tensor data."""
    raw = bytearray(path.read_bytes())
    for offset in (len(raw) // 2, len(raw) // 2 + 500, len(raw) * 3 // 4):
        raw[offset : offset + 64] = bytes(range(64))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("damage", "warning"),
    [
        (lambda path: path.write_bytes(b"not a checkpoint"), "is damaged (DamagedCheckpoint: no checksum header"),
        (lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]), "checksum mismatch"),
        (_flip_bytes, "checksum mismatch"),
        (lambda path: torch.save({"format": 2, "fingerprint": "another fit"}, path), "no checksum header"),
        (lambda path: save_state(path, {"fingerprint": "another fit"}), "ignoring checkpoint"),
    ],
    ids=["garbage", "truncated", "flipped-bytes", "unchecked", "another-fit"],
)
def test_a_damaged_checkpoint_is_named_once_set_aside_and_the_stage_starts_over(
    damage, warning, tmp_path, monkeypatch, references, caplog
):
    stem = killed_fit(monkeypatch, tmp_path, 11)
    path = tmp_path / "fit.ckpt.fit.pt"
    damage(path)
    damaged = path.read_bytes()
    with caplog.at_level(logging.INFO, logger="bench.training"):
        again = fitted("conv_ae_noise", stem)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warning in warnings[0] and str(path) in warnings[0], warnings
    assert "\n" not in warnings[0]
    assert not any("resuming" in r.getMessage() for r in caplog.records)
    assert_same_fit(again, reference(references, "conv_ae_noise"))  # started over: the same fit
    aside = [p.name for p in tmp_path.iterdir()]
    if warning == "ignoring checkpoint":  # not damaged: another fit's, overwritten, then cleared
        assert aside == []
    else:
        assert aside == ["fit.ckpt.fit.pt.corrupt"] and (tmp_path / aside[0]).read_bytes() == damaged
        assert "moved to fit.ckpt.fit.pt.corrupt" in warnings[0]


def test_a_checkpoint_of_a_damaged_shape_is_ignored(tmp_path, monkeypatch, references, caplog):
    stem = killed_fit(monkeypatch, tmp_path, 11)
    path = tmp_path / "fit.ckpt.fit.pt"
    state = read_state(path)
    state["net"]["enc1.weight"] = torch.zeros(1)
    save_state(path, state)
    with caplog.at_level(logging.WARNING, logger="bench.training"):
        again = fitted("conv_ae_noise", stem)
    assert len(caplog.records) == 1 and "does not match the network" in caplog.records[0].getMessage()
    assert_same_fit(again, reference(references, "conv_ae_noise"))


def test_checkpoint_settings_are_attributes_not_parameters_and_are_checked(tmp_path):
    model = DENOISERS.create("dncnn")
    model.checkpoint_path = tmp_path / "x.ckpt"
    assert "checkpoint_path" not in model.get_params() and "checkpoint_every" not in model.get_params()
    assert Checkpoints.of(model).every_seconds == 300.0
    assert Checkpoints.of(DENOISERS.create("dncnn")) is None
    model.checkpoint_every = 0
    with pytest.raises(ValueError, match="checkpoint_every must be a positive number of seconds; got 0"):
        Checkpoints.of(model)
    assert Checkpoints(tmp_path / "k.ckpt").path("pretrain layer 2").name == "k.ckpt.pretrain-layer-2.pt"


def test_the_wall_clock_interval_writes_checkpoints(tmp_path, monkeypatch):
    model = DENOISERS.create("conv_ae_fmnist", epochs=1, batch_size=16)
    model.checkpoint_path, model.checkpoint_every = tmp_path / "fit.ckpt", 1e-9  # due after every step
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        with pytest.raises(_Killed):
            model.fit(*blobs(120), seed=5)
    state = read_state(tmp_path / "fit.ckpt.fit.pt")
    assert state["scalars"]["step"] == 1 and not state["done"]


# -- the real thing: SIGKILL ---------------------------------------------------------------------

WORKER = """
import json, logging, sys
sys.path[:0] = [{root!r}, {tests!r}]
import torch
torch.set_num_threads(1)
from safetensors.torch import save_file
import test_checkpoint as t
logging.basicConfig(level=logging.INFO, format="%(message)s")
name, stem, out = sys.argv[1:4]
model = t.fitted(name, None if stem == "-" else t.Path(stem), every_steps=2)
save_file(model.fitted_tensors(), out)
t.Path(out + ".json").write_text(json.dumps(t.losses(model)))
"""

#: The SIGKILL fits: 50-100 steps, a checkpoint every 2, so that a kill lands mid-fit.
FITS["conv_ae_long"] = (
    lambda: DENOISERS.create("conv_ae_fmnist", epochs=40, batch_size=8, max_steps=50),
    lambda: (*blobs(120), {"noise": TrainingNoise("gaussian", 0.2)}),
)
FITS["stacked_classifier_long"] = (
    lambda: CLASSIFIERS.create(
        "stacked_ae_softmax", hidden=(64, 32), pretrain_epochs=4, epochs=12, patience=100, batch_size=16
    ),
    lambda: (*squares(120), {}),
)


def _worker(name: str, stem: str, out: Path) -> subprocess.Popen:
    code = WORKER.format(root=str(ROOT), tests=str(ROOT / "tests"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, name, stem, str(out)], stderr=subprocess.PIPE, text=True, env=env
    )


def _result(out: Path) -> tuple[dict, list]:
    from safetensors.torch import load_file

    return load_file(str(out)), json.loads(Path(str(out) + ".json").read_text())


def _kill_after_checkpoints(process: subprocess.Popen, folder: Path, count: int) -> None:
    """SIGKILL ``process`` once ``count`` checkpoint writes have been seen (each is a new file)."""
    seen, deadline = set(), time.monotonic() + 60
    while len(seen) < count and process.poll() is None and time.monotonic() < deadline:
        for file in folder.glob("fit.ckpt.*.pt"):
            try:
                seen.add((file.name, file.stat().st_ino, file.stat().st_mtime_ns))
            except FileNotFoundError:  # replaced between glob and stat
                pass
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["conv_ae_long", "stacked_classifier_long"])
def test_a_fit_killed_with_sigkill_resumes_bit_identically(name, tmp_path):
    stem = tmp_path / "cache" / "fit.ckpt"
    uninterrupted = _worker(name, "-", tmp_path / "reference.safetensors")
    killed = _worker(name, str(stem), tmp_path / "killed.safetensors")
    _kill_after_checkpoints(killed, stem.parent, random.Random(os.getpid()).randint(1, 12))
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL, "the fit finished before it could be killed"
    resumed = _worker(name, str(stem), tmp_path / "resumed.safetensors")
    _, log = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, log
    assert "resuming from checkpoint" in log or "restoring the finished stage" in log, log
    assert uninterrupted.wait(timeout=120) == 0, uninterrupted.stderr.read()
    (weights, history), (expected, expected_history) = (
        _result(tmp_path / "resumed.safetensors"),
        _result(tmp_path / "reference.safetensors"),
    )
    assert weights.keys() == expected.keys()
    assert all(torch.equal(weights[k], expected[k]) for k in weights)
    assert history == expected_history
    assert list(stem.parent.iterdir()) == []


def test_a_checkpoint_that_cannot_be_written_warns_once_and_the_fit_goes_on(tmp_path, monkeypatch, references, caplog):
    import errno

    def full_disk(path, write):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("models.engine.checkpoint.write_atomic", full_disk)
    with caplog.at_level(logging.WARNING, logger="bench.training"):
        model = fitted("conv_ae_noise", tmp_path / "fit.ckpt", 1)  # a checkpoint due every step
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "cannot write checkpoint" in warnings[0] and "No space left" in warnings[0]
    assert "without checkpoints" in warnings[0]
    assert_same_fit(model, reference(references, "conv_ae_noise"))
    assert list(tmp_path.iterdir()) == []
