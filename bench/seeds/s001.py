"""Seed 001: a baseline convolutional autoencoder denoising Fashion-MNIST (salt and pepper 0.1).

Source: ``seeds/001_df0b05f5330edc11.txt`` (Tusinean, Walia, Diksha; University of Windsor,
COMP 4740). Published: the autoencoder ``conv_ae_fmnist`` reaches MSE 0.0182373 on its
training data and 0.01255 on its validation data (sec. 6); the CNN comparator
``cnn_denoiser_fmnist`` 0.0187 and 0.0132 (sec. 7). Noise: salt and pepper at 0.1 (sec. 6,
"Future Works").

Readings the report leaves open (each row's note says which applies):

* "validation" is a held-out share of the training pairs, as in the report's repository
  (80/20 split, best-validation weights kept); we also score the first test images.
* the training loss is the mean MSE over the kept epoch's batches in training mode (what
  Keras prints), from the model's learning curve.
* the report gives no PSNR; 10 log10(1/0.01255) = 19.01 dB is what its validation MSE implies.
  A tuned 3x3/5x5 median filter is scored beside it: at about 20 dB it beats that autoencoder.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.noise import TrainingNoise
from bench.registry import DENOISERS
from bench.seeds import protocol
from bench.seeds.common import (
    Experiment,
    Reproduction,
    fit_note,
    image_scores,
    load_dataset,
    missing_models,
    noisy,
    psnr_of_mse,
    settings,
    split,
    train_and_score,
)  # fmt: skip

NOISE = ("salt_pepper", 0.1)
#: name -> (train MSE, validation MSE), as printed in the report.
PUBLISHED = {"conv_ae_fmnist": (0.0182373, 0.01255), "cnn_denoiser_fmnist": (0.0187, 0.0132)}

SETTINGS = {
    "tiny": {"n_train": 256, "n_test": 200, "configs": ("ours",), "fit": {}},
    "quick": {"n_train": 8000, "n_test": 2000, "configs": ("ours",), "fit": {"max_steps": 3000, "batch_size": 32}},
    "full": {"n_train": None, "n_test": None, "configs": ("faithful", "ours"), "fit": {}},
}
_CONFIG_NOTE = {
    "faithful": "the report's recipe (Adam, MSE, batch 2048, 1000 epochs for the AE / 600 for the CNN, 20% validation), fixed noisy pairs",
    "ours": "our recipe (Adam, cosine decay, batch 128, early stopping), noise redrawn per batch",
}


def _curve_rows(exp: Experiment, model: Any, published: tuple[float, float], config: str, budget_note: str) -> None:
    """Train and validation MSE at the kept epoch, from the learning curve."""
    history, training = getattr(model, "history_", None) or [], getattr(model, "training_", {}) or {}
    best = training.get("best_epoch") or (len(history) if history else None)
    row = history[best - 1] if best else {}
    val_share = model.recipe().val_fraction if hasattr(model, "recipe") else None
    note = f"{_CONFIG_NOTE[config]}{budget_note}; kept epoch {best} of {len(history)}"
    exp.add("train_mse", published[0], row.get("train_loss"), n_test=None,
            note=f"mean training-mode MSE over that epoch's batches (what Keras prints); {note}")  # fmt: skip
    exp.add("val_mse", published[1], row.get("val_loss"), n_test=None,
            note=f"MSE on the held-out {val_share} of the training pairs (the repository's 80/20 split); {note}")  # fmt: skip
    if row.get("val_loss") is not None:
        exp.add("val_psnr_of_mean_mse_db", round(psnr_of_mse(published[1]), 2), psnr_of_mse(row["val_loss"]), n_test=None,
                note=f"published value derived: 10 log10(1/{published[1]}); the report gives no PSNR")  # fmt: skip


def _test_rows(exp: Experiment, scores: dict[str, float], n_test: int, note: str) -> None:
    exp.add("test_mse", None, scores["mse"], n_test=n_test, note=note)
    exp.add("test_psnr_db", None, scores["psnr"], n_test=n_test, note=f"mean per-image PSNR (bench.metrics); {note}")
    exp.add("test_ssim", None, scores["ssim"], n_test=n_test, note=note)


@protocol("001", source="seeds/001_df0b05f5330edc11.txt (Tusinean, Walia, Diksha; Univ. of Windsor)",
          description="conv AE vs CNN denoiser on Fashion-MNIST, salt and pepper 0.1; train/val MSE; tuned median beside them",
          datasets=("fashion-mnist",))  # fmt: skip
def run(*, budget: str, data_dir: Any, device: Any, seed: int, out_dir: Any, log: Any) -> pd.DataFrame:
    """Re-run seed 001's denoisers; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, budget)
    repro = Reproduction("001", budget, device, seed, out_dir, log, data_dir)
    ds = load_dataset("fashion-mnist", repro)
    train_x, _, test_x, _ = split(ds, n_train=cfg.n_train, n_test=cfg.n_test, device=device, seed=seed)
    noisy_train = noisy(train_x, *NOISE, seed=seed, dataset=ds.name, split="train")
    test = (noisy(test_x, *NOISE, seed=seed, dataset=ds.name, split="test"), test_x)
    n_test = len(test_x)
    budget_note = fit_note(budget, len(train_x), cfg.fit)
    repro.extra["settings"] = {**vars(cfg), "noise": NOISE, "n_train": len(train_x), "n_test": n_test}

    with repro.experiment("noisy input (no denoising)") as exp:
        _test_rows(exp, image_scores(test[0], test_x), n_test, "salt and pepper 0.1 on the first test images")
    for name, published in PUBLISHED.items():
        if missing_models(DENOISERS, name):
            repro.skip(
                name, {"train_mse": published[0], "val_mse": published[1]}, f"denoiser {name!r} is not registered"
            )
            continue
        for config in cfg.configs:
            noise = TrainingNoise(*NOISE) if config == "ours" else None
            with repro.experiment(f"{name} ({config})") as exp:
                fitted = train_and_score(repro, name, (noisy_train, train_x), test, noise=noise, tag=config,
                                         config=config, **cfg.fit)  # fmt: skip
                _curve_rows(exp, fitted.model, published, config, budget_note + fitted.warning)
                _test_rows(exp, fitted.scores, n_test, f"{_CONFIG_NOTE[config]}{budget_note}{fitted.warning}")
    _median(repro, (noisy_train, train_x), test, n_test)
    return repro.write()


def _median(repro: Reproduction, train: tuple, test: tuple, n_test: int) -> None:
    """The tuned median filter: the classical answer to impulse noise, beside the report's AE."""
    with repro.experiment("median (tuned window)") as exp:
        fitted = train_and_score(repro, "median", train, test, tag="tuned")
        report_psnr = psnr_of_mse(PUBLISHED["conv_ae_fmnist"][1])
        ours = fitted.scores["psnr_of_mean_mse"]
        verdict = "beats" if ours > report_psnr else "does not beat"
        exp.add(
            "test_mse",
            None,
            fitted.scores["mse"],
            n_test=n_test,
            note=f"window {fitted.model.best_params_} tuned by PSNR on training pairs",
        )
        exp.add("test_psnr_of_mean_mse_db", round(report_psnr, 2), ours, n_test=n_test,
                note=f"published = the report's AE (19.01 dB from val MSE 0.01255); the median {verdict} it by {ours - report_psnr:+.2f} dB")  # fmt: skip
        exp.add("test_psnr_db", None, fitted.scores["psnr"], n_test=n_test, note="mean per-image PSNR (bench.metrics)")
        exp.add("test_ssim", None, fitted.scores["ssim"], n_test=n_test, note="no published SSIM")
