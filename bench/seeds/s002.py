"""Seed 002: a small convolutional denoising autoencoder on MNIST, Fashion-MNIST and CIFAR-10.

Source: ``seeds/002_8c9cf5cb3979b492.txt`` (Amir Mehrpanah, "Image Denoising Autoencoders",
2020). The report prints no numbers; its claims are qualitative and are checked here:

1. the selected autoencoder ([7], PyImageSearch's Keras tutorial: ``conv_ae_small``) denoises
   MNIST and Fashion-MNIST well (Figs. 2-3) but fails on CIFAR-10 (Fig. 4);
2. on CIFAR-10 it does about as badly without noise as with it (Fig. 5), so the cause is
   capacity, not noise; a deeper network (``conv_ae_deep``) covers CIFAR;
3. decoding a linear interpolation between two codes generates new samples (MNIST and
   Fashion-MNIST): saved as ``seeds/002_interpolation.png``.

Readings: the noise is Gaussian with sigma 0.5 (the tutorial draws N(0.5, 0.5) and clips; the
harness's Gaussian is zero-mean, so its +0.5 shift is dropped). CIFAR-10 runs only where its
files are found; otherwise its rows say it was skipped and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import torch

from bench.noise import TrainingNoise
from bench.registry import DENOISERS
from bench.seeds import protocol
from bench.seeds.common import (
    Reproduction,
    fit_note,
    has_dataset,
    image_scores,
    load_dataset,
    missing_models,
    noisy,
    settings,
    split,
    train_and_score,
)  # fmt: skip

NOISE = ("gaussian", 0.5)
SMALL, DEEP = "conv_ae_small", "conv_ae_deep"
STEPS = 8
PNG = "002_interpolation.png"

SETTINGS = {
    "tiny": {"n_train": 256, "n_test": 100, "fit": {}},
    "quick": {"n_train": 5000, "n_test": 1000, "fit": {"max_steps": 600, "batch_size": 32}},
    "full": {"n_train": None, "n_test": None, "fit": {}},
}


@protocol("002", source="seeds/002_8c9cf5cb3979b492.txt (Amir Mehrpanah, 2020)",
          description="small conv AE on MNIST, Fashion-MNIST, CIFAR-10 (gaussian 0.5); deeper CIFAR AE; latent interpolation PNG",
          datasets=("mnist", "fashion-mnist"))  # fmt: skip
def run(*, budget: str, data_dir: Any, device: Any, seed: int, out_dir: Any, log: Any) -> pd.DataFrame:
    """Re-run seed 002's experiments; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, budget)
    repro = Reproduction("002", budget, device, seed, out_dir, log, data_dir)
    repro.extra["settings"] = {**vars(cfg), "noise": NOISE}
    frames = {}
    for name in ("mnist", "fashion-mnist", "cifar10"):
        if name == "cifar10" and not has_dataset(name, data_dir):
            reason = "cifar10 files (cifar-10-batches-py) not found on the data path; pass --data-dir DIR holding them"
            for model in (f"{SMALL} noisy", f"{SMALL} clean input", DEEP):
                repro.skip(f"cifar10: {model}", {"test_psnr_db": None}, reason)
            continue
        frames[name] = _dataset(repro, cfg, name)
    _interpolation(repro, frames)
    return repro.write()


def _fit(repro: Reproduction, cfg, model: str, ds_name: str, train: tuple, test: tuple, tag: str, noise: Any):
    config = "faithful" if repro.budget == "full" else "ours"
    return train_and_score(repro, model, train, test, noise=noise, tag=f"{ds_name} {tag}", config=config, **cfg.fit)


def _dataset(repro: Reproduction, cfg, name: str) -> Any:
    """Noisy baseline, the small AE (and on CIFAR the clean-input and deeper runs); returns the small AE."""
    ds = load_dataset(name, repro)
    train_x, _, test_x, _ = split(ds, n_train=cfg.n_train, n_test=cfg.n_test, device=repro.device, seed=repro.seed)
    train = (noisy(train_x, *NOISE, seed=repro.seed, dataset=name, split="train"), train_x)
    test = (noisy(test_x, *NOISE, seed=repro.seed, dataset=name, split="test"), test_x)
    n_test, budget_note = len(test_x), fit_note(repro.budget, len(train_x), cfg.fit)
    with repro.experiment(f"{name}: noisy input") as exp:
        scores = image_scores(test[0], test_x)
        exp.add(
            "test_psnr_db",
            None,
            scores["psnr"],
            n_test=n_test,
            note="gaussian 0.5 (zero-mean reading of the tutorial's N(0.5, 0.5))",
        )
        exp.add("test_ssim", None, scores["ssim"], n_test=n_test, note="no published number")
    if missing_models(DENOISERS, SMALL):
        repro.skip(f"{name}: {SMALL} noisy", {"test_psnr_db": None}, f"denoiser {SMALL!r} is not registered")
        return None
    claim = "fails on CIFAR-10 (Fig. 4)" if name == "cifar10" else "denoises well (Figs. 2-3)"
    with repro.experiment(f"{name}: {SMALL} noisy") as exp:
        small = _fit(repro, cfg, SMALL, name, train, test, "noisy", TrainingNoise(*NOISE))
        exp.add(
            "test_psnr_db",
            None,
            small.scores["psnr"],
            n_test=n_test,
            note=f"report: {claim}; no published number{budget_note}{small.warning}",
        )
        exp.add("test_ssim", None, small.scores["ssim"], n_test=n_test, note=f"noisy input SSIM {scores['ssim']:.3f}")
    if name == "cifar10":
        _cifar_claims(repro, cfg, train, test, small, budget_note)
    return (small.model, test_x, ds.test_labels[:n_test])


def _cifar_claims(repro: Reproduction, cfg, train: tuple, test: tuple, small: Any, budget_note: str) -> None:
    """Fig. 5 (no better without noise) and the deeper network (better on CIFAR)."""
    n_test = len(test[1])
    with repro.experiment(f"cifar10: {SMALL} clean input") as exp:
        clean = _fit(repro, cfg, SMALL, "cifar10", (train[1], train[1]), (test[1], test[1]), "clean input", None)
        gap = clean.scores["psnr"] - small.scores["psnr"]
        exp.add("test_psnr_db", None, clean.scores["psnr"], n_test=n_test,
                note=f"reconstructing clean images; report (Fig. 5): about as poor as with noise; ours {gap:+.2f} dB vs the noisy run{budget_note}")  # fmt: skip
    if missing_models(DENOISERS, DEEP):
        repro.skip(f"cifar10: {DEEP}", {"test_psnr_db": None}, f"denoiser {DEEP!r} is not registered")
        return
    with repro.experiment(f"cifar10: {DEEP}") as exp:
        deep = _fit(repro, cfg, DEEP, "cifar10", train, test, "noisy", TrainingNoise(*NOISE))
        gain = deep.scores["psnr"] - small.scores["psnr"]
        exp.add("test_psnr_db", None, deep.scores["psnr"], n_test=n_test,
                note=f"report: the deeper network covers CIFAR; ours {gain:+.2f} dB over {SMALL}{budget_note}")  # fmt: skip


def _pair_of_classes(labels: torch.Tensor) -> tuple[int, int]:
    """Indices of the first two test images of different classes."""
    second = int((labels != labels[0]).nonzero()[0])
    return 0, second


def _interpolation(repro: Reproduction, frames: dict[str, Any]) -> None:
    """Decode ``STEPS`` points between two images' codes, per dataset, into one PNG."""
    rows = {}
    for name in ("mnist", "fashion-mnist"):
        fitted = frames.get(name)
        if fitted is None or not hasattr(fitted[0], "interpolate"):
            continue
        model, images, labels = fitted
        a, b = _pair_of_classes(labels)
        rows[name] = model.interpolate(images[a], images[b], STEPS).cpu()
    if not rows:
        repro.skip("latent interpolation", {"frames": None}, f"{SMALL} is not registered or has no interpolate()")
        return
    path = Path(repro.out_dir) / "seeds" / PNG
    with repro.experiment("latent interpolation") as exp:
        _save_grid(rows, path)
        repro.extra["interpolation_png"] = str(path)
        exp.add(
            "frames",
            None,
            sum(len(r) for r in rows.values()),
            n_test=None,
            note=f"{STEPS} decoded codes between two test images of different classes per dataset, saved to {path}",
        )


def _save_grid(rows: dict[str, torch.Tensor], path: Path) -> None:
    """One row of images per dataset, written atomically as a PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), STEPS, figsize=(1.2 * STEPS, 1.3 * len(rows)), squeeze=False)
    for axis_row, (name, images) in zip(axes, rows.items()):
        for axis, image in zip(axis_row, images):
            axis.imshow(image.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
        axis_row[0].set_ylabel(name, fontsize=8)
    fig.suptitle("seed 002: decoded linear interpolation between two codes", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
