"""Seed 000: VGG-16, AlexNet and ResNet-18 autoencoders denoise MNIST, the same nets classify.

Source: ``seeds/000_2808b39cce47a589.txt`` ("Denoising and Classifying with Auto Encoder",
Group 2 final report). Table 2 gives the classification accuracy of each model on the
denoised images: VGG-16 99.08% (the mean of a 5-fold cross-validation, Fig. 15-16),
AlexNet 89.00% (Fig. 21 of the same report prints 81.80%), ResNet-18 99.29%.

Readings the report leaves open (each row's note says which applies):

* noise: "randomly picking pixel points ... and randomly adding those pixel points"; Fig. 2
  looks like 20-30% of the pixels replaced by random values: ``impulse`` at 0.25.
* each architecture's autoencoder (``vgg16_ae``, ``alexnet_ae``, ``resnet18_ae``) denoises the
  noisy test images; the same architecture's classifier, trained on clean training images
  (DESIGN.md's definition), classifies them.
* VGG-16's 5-fold cross-validation is run on the VGG-16-denoised test images ("we first save
  the clear images we have got from the denoising part", sec. 2.1.3), as the report did:
  mean and population spread of the five fold accuracies.

Run by the grid runner: one grid (MNIST, impulse 0.25, the three autoencoders and
``identity`` for the noisy input, the three classifiers in every cell); the classifiers and
the autoencoders train on one seeded subset of the training images. The cross-validation
reads the ``vgg16_ae`` fit from the fit cache and denoises the run's noisy test images.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.grids import Grid
from bench.registry import CLASSIFIERS, DENOISERS
from bench.seeds import protocol
from bench.seeds.common import Reproduction, fit_note, model_params, settings
from bench.seeds.declared import Results, collapse_warning, grid_name, percent_of

NOISE = ("impulse", 0.25)
DATASET = "mnist"
#: (autoencoder, classifier) -> published accuracy in percent (Table 2).
PAIRS = {("vgg16_ae", "vgg16"): 99.08, ("alexnet_ae", "alexnet"): 89.00, ("resnet18_ae", "resnet18"): 99.29}
ALEXNET_FIG21 = 81.80
#: Fig. 15's example folds; their population spread is the published spread we compare with.
VGG_FOLDS = (99.042, 99.133, 99.083, 99.342, 99.117)
K_FOLDS = 5

#: ``n_train``: the seeded training subset of the classifiers and the autoencoders.
#: ``fit``: overrides of every autoencoder fit; ``clf``/``cv``: of the classifiers and of each CV fold.
#: The quick budget narrows the autoencoders (width 0.25): at full width a 2-core CPU affords too
#: few steps to learn anything. Budgets are steps and epochs, never seconds, so that a budget gives
#: the same numbers on every machine.
SETTINGS = {
    "tiny": {"n_train": 1000, "n_test": 200, "n_cv": 200, "fit": {}, "clf": {}, "cv": {}},
    "quick": {
        "n_train": 10000,
        "n_test": 1000,
        "n_cv": 2000,
        "fit": {"max_steps": 600, "batch_size": 32, "width": 0.25},
        "clf": {"epochs": 1},
        "cv": {"epochs": 1},
    },
    "full": {"n_train": 60000, "n_test": 10000, "n_cv": None, "fit": {}, "clf": {}, "cv": {}},
}


def entries(budget: str) -> set[str]:
    """The registry entries seed 000's grid runs."""
    return {"identity", *(name for pair in PAIRS for name in pair)}


def _spread(values: tuple[float, ...]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _config(budget: str) -> str:
    return "faithful" if budget == "full" else "ours"


def _grid(cfg, seed: int) -> Grid:
    autoencoders = [ae for ae, _ in PAIRS if ae in DENOISERS]
    params = {
        ae: model_params(DENOISERS, ae, cfg.budget, config=_config(cfg.budget), **cfg.fit)[0] for ae in autoencoders
    }
    params |= {clf: model_params(CLASSIFIERS, clf, cfg.budget, **cfg.clf)[0] for _, clf in PAIRS}
    return Grid.build(
        name=grid_name("000"),
        datasets=[DATASET],
        noises={NOISE[0]: [NOISE[1]]},
        denoisers=["identity", *autoencoders],
        classifiers=[clf for _, clf in PAIRS],
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        params={k: v for k, v in params.items() if v},
        seed=seed,
        description="seed 000: VGG-16 / AlexNet / ResNet-18 autoencoders denoise MNIST (impulse 0.25), the same nets classify",
    )


@protocol(
    "000",
    source="seeds/000_2808b39cce47a589.txt (Group 2 final report)",
    description="VGG-16 / AlexNet / ResNet-18 autoencoders denoise MNIST (impulse 0.25), the same nets classify; VGG 5-fold CV",
    datasets=("mnist",),
    entries=entries,
)
def run(repro: Reproduction, results: Results) -> pd.DataFrame:
    """Re-run seed 000's Table 2; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, repro.budget)
    repro.extra["settings"] = {**vars(cfg), "noise": NOISE}
    grid = results.run(_grid(cfg, repro.seed))
    for (ae, clf), published in PAIRS.items():
        denoised = _pair(repro, results, grid, cfg, ae, clf, published)
        if clf == "vgg16":
            _cross_validate(repro, results, grid, cfg, denoised, published)
    return repro.write()


def _pair(repro: Reproduction, results: Results, grid: Grid, cfg, ae: str, clf: str, published: float):
    """Clean, noisy and denoised accuracy of ``clf``; returns the autoencoder's cell (or None)."""
    with repro.experiment(f"{clf} on clean and noisy test images") as exp:
        accuracy = results.accuracy(results.cell(grid, "identity"), clf)
        note = f"trained on {cfg.n_train} clean MNIST training images ({repro.budget} budget parameters)"
        exp.add("accuracy_clean_pct", None, percent_of(accuracy, "accuracy_clean"), n_test=cfg.n_test, note=note)
        exp.add(
            "accuracy_noisy_pct",
            None,
            percent_of(accuracy, "accuracy_noisy"),
            n_test=cfg.n_test,
            note=f"impulse 0.25, no denoising; {note}",
        )
    failed = results.missing(grid, ae)
    if failed:
        repro.skip(f"{ae} -> {clf}", {"accuracy_denoised_pct": published}, failed, n_test=cfg.n_test)
        return None
    with repro.experiment(f"{ae} -> {clf}") as exp:
        cell = results.cell(grid, ae)
        row = results.row(cell)
        accuracy = percent_of(results.accuracy(cell, clf), "accuracy_denoised")
        config = dict(cell.params).get("config", _config(repro.budget))
        recipe = f"{config} recipe{fit_note(repro.budget, cfg.n_train, cfg.fit)}{results.set_note(ae)}{collapse_warning(row)}"
        note = f"{ae} ({recipe}) denoises impulse 0.25; {clf} trained on clean images classifies{results.set_note(clf)}"
        exp.add("accuracy_denoised_pct", published, accuracy, n_test=row["n_test"], note=f"Table 2; {note}")
        if clf == "alexnet":
            exp.add(
                "accuracy_denoised_pct",
                ALEXNET_FIG21,
                accuracy,
                n_test=row["n_test"],
                note=f"same measurement; the report's Fig. 21 prints {ALEXNET_FIG21}% for AlexNet (trained on part of MNIST), Table 2 {published}%",
            )
        exp.add(
            "psnr_db",
            None,
            float(row["psnr"]),
            n_test=row["n_test"],
            note="mean per-image PSNR of the denoised test images; no published number",
        )
    return cell


def _cross_validate(repro: Reproduction, results: Results, grid: Grid, cfg, cell, published: float) -> None:
    """VGG-16's 5-fold cross-validation on the VGG-16-denoised images (Fig. 15), from the cached fit."""
    from models.classifiers import cross_validate

    name = "vgg16 5-fold CV on denoised images"
    if cell is None:
        repro.skip(
            name,
            {"cv_mean_pct": published, "cv_spread_pct": round(_spread(VGG_FOLDS), 3)},
            "needs the vgg16_ae-denoised images",
        )
        return
    runner = results.runner(grid)
    denoised = results.fitted(grid, cell).denoise(runner.test_set(cell)[1])
    labels = runner.data(DATASET)[3]
    n = len(denoised) if cfg.n_cv is None else min(cfg.n_cv, len(denoised))
    # The folds are vgg16 fits too: --set vgg16.KEY=VALUE narrows them as it does the grid's.
    params, _ = model_params(CLASSIFIERS, "vgg16", repro.budget, **{**cfg.cv, **results.launch.params.get("vgg16", {})})
    source = f"{DATASET}: the first {n} test images of cell {cell.key} denoised"

    def fit_fold(fold: int, images, labels, seed: int):  # through the fit cache: a rerun reuses, a kill resumes
        where = f"{source}, fold {fold + 1} of {K_FOLDS}"
        return runner.classifiers.model(where, "vgg16", tuple(sorted(params.items())), images, labels, seed)

    with repro.experiment(name) as exp:
        result = cross_validate("vgg16", denoised[:n], labels[:n], k=K_FOLDS, seed=repro.seed, fit=fit_fold, **params)
        folds = [100 * f for f in result["folds"]]
        repro.extra["vgg16_cv"] = {"folds_pct": folds, "n_images": n, "params": params}
        note = f"{K_FOLDS}-fold CV over the first {n} vgg16_ae-denoised test images (the report CVs its saved denoised images)"
        exp.add("cv_mean_pct", published, 100 * result["mean"], n_test=n, note=f"Table 2 average; {note}")
        exp.add(
            "cv_spread_pct",
            round(_spread(VGG_FOLDS), 3),
            _spread(tuple(folds)),
            n_test=n,
            note=f"population std of the folds; published = spread of Fig. 15's example folds {list(VGG_FOLDS)}",
        )
