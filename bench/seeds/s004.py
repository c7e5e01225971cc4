"""Seed 004: a denoising autoencoder on MNIST with Gaussian noise, judged by a classifier.

Source: ``seeds/004_7dc4cfe07bcdb573.txt`` (Zhenyu Zhao, ANU). Table 1: a small CNN trained on
clean MNIST (Adam, 30 epochs) classifies 98.25% of the clean test images, 13.68% of the
noisy ones and 96.10% after the autoencoder (conv + batch norm, ReLU output, Adam, batch
100, 100 epochs) denoised them; 10,000 test images each.

The report gives no noise level. We calibrate it: the sigma at which our clean-trained
``cnn_small`` classifies 13.68% of the noisy test images, found by bisection on sigma with
the harness's clipped Gaussian noise; that sigma is reported, and sigma 0.5 is run beside it
as a level where denoising is known to help. Denoisers: ``bn_conv_ae`` (the report's model),
our strongest neural ones (``dncnn``, ``unet``) and a tuned median filter. If 96% after
denoising is out of reach at the calibrated sigma, the last rows say so with the numbers.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.noise import TrainingNoise
from bench.registry import DENOISERS
from bench.seeds import protocol
from bench.seeds.common import (
    Reproduction,
    bisect,
    fit_classifier,
    fit_note,
    load_dataset,
    missing_models,
    noisy,
    percent,
    settings,
    split,
    train_and_score,
)  # fmt: skip

PUBLISHED = {"clean": 98.25, "noisy": 13.68, "denoised": 96.10}
REPORT_MODEL = "bn_conv_ae"
#: Bracket of the sigma search. A small CNN falls to ~13.7% near sigma 1.85, a better-trained
#: one only beyond 3; with clipping, accuracy sinks towards chance (~10%) as sigma grows.
SIGMA_BRACKET = (0.3, 8.0)
SECOND_SIGMA = 0.5
CLASSIFIER = "cnn_small"

SETTINGS = {
    "tiny": {"n_clf_train": 1000, "n_train": 256, "n_test": 300, "n_calib": 300, "iterations": 4,
             "denoisers": (REPORT_MODEL, "unet", "median"), "fit": {}, "clf_overrides": {"epochs": 3}},
    "quick": {"n_clf_train": 20000, "n_train": 4000, "n_test": 2000, "n_calib": 2000, "iterations": 7,
              "denoisers": (REPORT_MODEL, "unet", "median"), "fit": {"max_steps": 800, "batch_size": 32}, "clf_overrides": {}},
    "full": {"n_clf_train": None, "n_train": None, "n_test": None, "n_calib": 10000, "iterations": 10,
             "denoisers": (REPORT_MODEL, "dncnn", "unet", "median"), "fit": {}, "clf_overrides": {"epochs": 30}},
}  # fmt: skip


def _calibrate(repro: Reproduction, classifier: Any, test_x, test_y, cfg) -> float:
    """Bisection on sigma for the noisy accuracy the report printed (13.68%)."""
    images, labels = test_x[: cfg.n_calib], test_y[: cfg.n_calib]

    def accuracy_at(sigma: float) -> float:
        return percent(
            classifier, noisy(images, "gaussian", sigma, seed=repro.seed, dataset="mnist", split="test"), labels
        )

    with repro.experiment("sigma calibration") as exp:
        sigma, history = bisect(accuracy_at, PUBLISHED["noisy"], *SIGMA_BRACKET, iterations=cfg.iterations, tol=0.1)
        reached = min(abs(h["f"] - PUBLISHED["noisy"]) for h in history)
        sigma = round(sigma, 3)  # the value written in the table is the value used
        miss = "" if reached <= 1.0 else f"; NOT reached: the closest evaluation is {reached:.2f} points off"
        # Near chance the curve is flat and noisy: say how loosely the target pins sigma down.
        close = [h["x"] for h in history if abs(h["f"] - PUBLISHED["noisy"]) <= 2.0]
        if len(close) > 1:
            miss += f"; accuracy within 2 points of the target for sigma {min(close):.3g}-{max(close):.3g} (flat tail)"
        exp.add("sigma", None, sigma, n_test=len(images),
                note=f"report gives no sigma; bisection on [{SIGMA_BRACKET[0]}, {SIGMA_BRACKET[1]}], {len(history)} evaluations, "
                     f"clipped gaussian noise, target noisy accuracy {PUBLISHED['noisy']}% for {CLASSIFIER} trained on clean images{miss}")  # fmt: skip
    repro.extra["calibration"] = {
        "target": PUBLISHED["noisy"],
        "bracket": SIGMA_BRACKET,
        "n_images": len(images),
        "evaluations": history,
    }
    return sigma


def _denoisers(
    repro: Reproduction, cfg, sigma: float, train: tuple, test: tuple, test_y, classifier: Any, calibrated: bool
) -> dict[str, float]:
    """Noisy and denoised accuracy at ``sigma``; returns denoiser -> accuracy."""
    n_test, results = len(test_y), {}
    label = f"sigma {sigma:g}" + (" (calibrated)" if calibrated else "")
    with repro.experiment(f"{label}: noisy input") as exp:
        exp.add("accuracy_noisy_pct", PUBLISHED["noisy"] if calibrated else None, percent(classifier, test[0], test_y), n_test=n_test,
                note="by construction near 13.68 (sigma calibrated on it)" if calibrated else "no published number at this sigma")  # fmt: skip
    for name in cfg.denoisers:
        published = PUBLISHED["denoised"] if calibrated and name == REPORT_MODEL else None
        if missing_models(DENOISERS, name):
            reason = f"denoiser {name!r} is not registered"
            repro.skip(f"{label}: {name}", {"accuracy_denoised_pct": published}, reason, n_test=n_test)
            continue
        with repro.experiment(f"{label}: {name}") as exp:
            results[name] = _denoise_and_classify(
                repro, cfg, exp, name, sigma, train, test, test_y, classifier, published, calibrated
            )
    return results


def _denoise_and_classify(repro: Reproduction, cfg, exp, name: str, sigma: float, train: tuple, test: tuple, test_y,
                          classifier: Any, published: float | None, calibrated: bool) -> float:  # fmt: skip
    """Fit ``name`` at ``sigma``, classify its denoised test images; add the rows, return the accuracy."""
    config = "faithful" if repro.budget == "full" and name == REPORT_MODEL else "ours"
    noise = TrainingNoise("gaussian", sigma) if config == "ours" else None
    fitted = train_and_score(repro, name, train, test, noise=noise, tag=f"sigma {sigma:g}", config=config, **cfg.fit)
    accuracy = percent(classifier, fitted.denoised, test_y)
    how = (
        f"{config} recipe" if hasattr(fitted.model, "recipe") else f"tuned {getattr(fitted.model, 'best_params_', '')}"
    )
    compare = "" if published or not calibrated else f"; compare the report's AE at {PUBLISHED['denoised']}"
    exp.add("accuracy_denoised_pct", published, accuracy, n_test=len(test_y),
            note=f"{CLASSIFIER} trained on clean images; {name} {how}{fit_note(repro.budget, len(train[0]), cfg.fit, fitted.dropped)}{fitted.warning}{compare}")  # fmt: skip
    exp.add(
        "psnr_db",
        None,
        fitted.scores["psnr"],
        n_test=len(test_y),
        note="mean per-image PSNR of the denoised test images",
    )
    return accuracy


@protocol("004", source="seeds/004_7dc4cfe07bcdb573.txt (Zhenyu Zhao, ANU)",
          description="MNIST gaussian noise: classifier accuracy on clean / noisy / denoised, sigma calibrated to the report's 13.68%",
          datasets=("mnist",))  # fmt: skip
def run(*, budget: str, data_dir: Any, device: Any, seed: int, out_dir: Any, log: Any) -> pd.DataFrame:
    """Re-run seed 004's Table 1; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, budget)
    repro = Reproduction("004", budget, device, seed, out_dir, log, data_dir)
    ds = load_dataset("mnist", repro)
    clf_x, clf_y, test_x, test_y = split(ds, n_train=cfg.n_clf_train, n_test=cfg.n_test, device=device, seed=seed)
    repro.extra["settings"] = {**vars(cfg), "n_clf_train": len(clf_x), "n_test": len(test_x)}
    with repro.experiment(f"{CLASSIFIER} on clean test images") as exp:
        classifier = fit_classifier(repro, CLASSIFIER, clf_x, clf_y, **cfg.clf_overrides)
        exp.add("accuracy_clean_pct", PUBLISHED["clean"], percent(classifier, test_x, test_y), n_test=len(test_x),
                note=f"{CLASSIFIER} (two conv/pool stages + dense 128; the report's CNN is unspecified) on {len(clf_x)} clean training images")  # fmt: skip
    repro.extra["classifier_history"] = getattr(classifier, "history_", None)
    sigma = _calibrate(repro, classifier, test_x, test_y, cfg)
    # The same seeded order as the classifier's images: the denoisers' pairs are its first n_train.
    train_clean = split(ds, n_train=cfg.n_train, n_test=0, device=device, seed=seed)[0]
    best = {}
    for level, calibrated in ((sigma, True), (SECOND_SIGMA, False)):
        train = (noisy(train_clean, "gaussian", level, seed=seed, dataset="mnist", split="train"), train_clean)
        test = (noisy(test_x, "gaussian", level, seed=seed, dataset="mnist", split="test"), test_x)
        best[level] = _denoisers(repro, cfg, level, train, test, test_y, classifier, calibrated)
    _verdict(repro, sigma, best, len(test_x))
    return repro.write()


def _verdict(repro: Reproduction, sigma: float, best: dict[float, dict[str, float]], n_test: int) -> None:
    """Does 96.10% after denoising hold at the calibrated sigma? And the sigma-0.5 target."""
    with repro.experiment("claim check") as exp:
        for level, target, published in (
            (sigma, PUBLISHED["denoised"], PUBLISHED["denoised"]),
            (SECOND_SIGMA, 97.0, None),
        ):
            metric = f"best_denoised_accuracy_pct_sigma_{level:g}"
            if not best[level]:
                exp.add(metric, published, None, n_test=n_test, note="not run: no denoiser registered")
                continue
            name, value = max(best[level].items(), key=lambda kv: kv[1])
            verdict = "reached" if value >= target else "NOT reached"
            what = "the report's 96.10% after denoising" if published else "our target of >= 97% (full budget)"
            exp.add(metric, published, value, n_test=n_test,
                    note=f"{what} {verdict} at sigma {level:g}: best is {name} with {value:.2f}% ({repro.budget} budget)")  # fmt: skip
