"""Seed 000: VGG-16, AlexNet and ResNet-18 autoencoders denoise MNIST, the same nets classify.

Source: ``seeds/000_2808b39cce47a589.txt`` ("Denoising and Classifying with Auto Encoder",
Group 2 final report). Table 2 gives the classification accuracy of each model on the
denoised images: VGG-16 99.08% (the mean of a 5-fold cross-validation, Fig. 15-16),
AlexNet 89.00% (Fig. 21 of the same report prints 81.80%), ResNet-18 99.29%.

Protocol (``faithful``, every budget): the report's networks and recipes (``vgg16_ae``,
``alexnet_ae`` at 224x224, ``resnet18_ae`` with its 7x7 stem and max-pool, under their
``faithful`` recipes: Adadelta, binary cross-entropy, the training set corrupted once; the
classifiers ``vgg16_faithful``, ``alexnet_faithful``, ``resnet18_faithful``). The tiny and quick
budgets only shrink images, epochs, steps and widths; every row's ``deviations`` says what.
Each row's ``reading`` says how a gap of the report was filled (``READINGS``).

Run by the grid runner: one grid (MNIST, impulse 0.25, the three autoencoders and
``identity`` for the noisy input, the three classifiers trained on clean training images in every
cell). The cross-validation reads the ``vgg16_ae`` fit from the fit cache and denoises the
cell's noisy training images: 5 folds over them (60,000 at full: every published fold value is a
multiple of 1/12,000).
"""

from __future__ import annotations

import math

import pandas as pd

from bench.grids import Grid
from bench.registry import CLASSIFIERS, DENOISERS
from bench.seeds import protocol
from bench.seeds.common import Reproduction, faithful_params, fit_note, model_params, settings
from bench.seeds.declared import Results, collapse_warning, grid_name, percent_of

NOISE = ("impulse", 0.25)
DATASET = "mnist"
#: (autoencoder, classifier) -> published accuracy in percent (Table 2).
PAIRS = {
    ("vgg16_ae", "vgg16_faithful"): 99.08,
    ("alexnet_ae", "alexnet_faithful"): 89.00,
    ("resnet18_ae", "resnet18_faithful"): 99.29,
}
ALEXNET_FIG21 = 81.80
#: Fig. 15's example folds; their population spread is the published spread we compare with.
VGG_FOLDS = (99.042, 99.133, 99.083, 99.342, 99.117)
K_FOLDS = 5
#: The report's architecture choices that are parameters of our entries (faithful at every budget).
ARCHITECTURE = {"alexnet_ae": {"resize": 224}, "resnet18_ae": {"stem": "report"}}

#: Where the report is silent or contradicts itself: the reading chosen, and why.
READINGS = {
    "noise": "impulse 0.25: the report 'randomly picks pixel points' and Fig. 2 shows about a quarter of the pixels replaced",
    "vgg16_ae": "decoder mirrors all five poolings (the report lists four upsamplings, one short of 28x28); batch 128, the report's preferred of 32/64/128; optimizer and loss unnamed: Adadelta and binary cross-entropy as for its other two autoencoders",
    "alexnet_ae": "the encoder is AlexNet's convolutional part at 224x224 (the report resizes 28 -> 224); batch unnamed: 128",
    "resnet18_ae": "Conv1's 7x7 convolution and max-pool as the report's, stride 1 in the convolution (it 'fine-tunes stride'); loss unnamed: binary cross-entropy",
    "vgg16_faithful": "optimizer unnamed: the report's k-fold code is its ref. [3] (SGD 0.01, momentum 0.9, cross-entropy, 10 epochs of 32, He-uniform initialisation); classified images: 'we first save the clear images we have got from the denoising part', the VGG-16-denoised training images, cross-validated in 5 folds (every Fig. 15 value is a multiple of 1/12,000)",
    "alexnet_faithful": "trained on all clean training images (the report used 'part of the whole MNIST', unsaid which); batch unnamed: Keras' 32, validation Keras' 10%; Table 2's 89.00% and Fig. 21's 81.80% disagree: both are compared",
    "resnet18_faithful": "the 4x4x256 map after three stages fixes Conv1's strides (7x7 stride 1, max-pool stride 2); batch unnamed: Keras' 32; the 'validation : test = 3:5' split is unexplained: scored on the whole denoised test set",
}

#: ``n_train``: the seeded training subset of the classifiers and the autoencoders.
#: ``fit``: overrides of every autoencoder fit; ``clf``/``cv``: of the classifiers and of each CV fold;
#: ``n_cv``: the denoised training images cross-validated (None: all of them). Budgets are steps and
#: epochs, never seconds, so that a budget gives the same numbers on every machine. The quick
#: budget narrows the networks (width 0.25): at full width a 2-core CPU affords too few steps.
SETTINGS = {
    "tiny": {
        "n_train": 1000,
        "n_test": 200,
        "n_cv": 200,
        "fit": {"epochs": 1},
        "clf": {"epochs": 1},
        "cv": {"epochs": 1},
    },
    "quick": {
        "n_train": 10000,
        "n_test": 1000,
        "n_cv": 2000,
        "fit": {"max_steps": 600, "batch_size": 32, "width": 0.25},
        "clf": {"epochs": 1, "width": 0.25},
        "cv": {"epochs": 1, "width": 0.25},
    },
    "full": {"n_train": 60000, "n_test": 10000, "n_cv": None, "fit": {}, "clf": {}, "cv": {}},
}
FULL_N_TRAIN = 60000


def entries(budget: str) -> set[str]:
    """The registry entries seed 000's grid runs."""
    return {"identity", *(name for pair in PAIRS for name in pair)}


def _spread(values: tuple[float, ...]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def shrunk(cfg, overrides: dict, what: str) -> tuple[str, ...]:
    """The budget's departures for ``what`` (empty at full), one string."""
    note = fit_note(cfg.budget, cfg.n_train, overrides).removeprefix("; ")
    if not note:
        return ()
    return (f"{note} for {what} (report: all {FULL_N_TRAIN} training images, its epochs, full width)",)


def autoencoder_params(cfg, name: str) -> dict:
    """The autoencoder's parameters: the faithful recipe, the report's architecture, the budget's cuts."""
    return faithful_params(DENOISERS, name, cfg.budget, **ARCHITECTURE.get(name, {}), **cfg.fit)


def _grid(cfg, seed: int) -> Grid:
    autoencoders = [ae for ae, _ in PAIRS if ae in DENOISERS]
    params = {ae: autoencoder_params(cfg, ae) for ae in autoencoders}
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
    repro.extra["settings"] = {**vars(cfg), "noise": NOISE, "architecture": ARCHITECTURE}
    grid = results.run(_grid(cfg, repro.seed))
    for (ae, clf), published in PAIRS.items():
        denoised = _pair(repro, results, grid, cfg, ae, clf, published)
        if clf == "vgg16_faithful":
            _cross_validate(repro, results, grid, cfg, denoised, published)
    return repro.write()


def _reading(*names: str) -> str:
    return "; ".join(f"{name}: {READINGS[name]}" for name in ("noise", *names))


def _pair(repro: Reproduction, results: Results, grid: Grid, cfg, ae: str, clf: str, published: float):
    """Clean, noisy and denoised accuracy of ``clf``; returns the autoencoder's cell (or None)."""
    clf_deviations = shrunk(cfg, cfg.clf, clf)
    with repro.experiment(f"{clf} on clean and noisy test images") as exp:
        accuracy = results.accuracy(results.cell(grid, "identity"), clf)
        note = f"trained on {cfg.n_train} clean MNIST training images"
        common = {"n_test": cfg.n_test, "reading": _reading(clf), "deviations": clf_deviations}
        exp.add("accuracy_clean_pct", None, percent_of(accuracy, "accuracy_clean"), note=note, **common)
        exp.add(
            "accuracy_noisy_pct",
            None,
            percent_of(accuracy, "accuracy_noisy"),
            note=f"impulse 0.25, no denoising; {note}",
            **common,
        )
    failed = results.missing(grid, ae)
    deviations = shrunk(cfg, cfg.fit, ae) + clf_deviations
    if failed:
        repro.skip(
            f"{ae} -> {clf}",
            {"accuracy_denoised_pct": published},
            failed,
            n_test=cfg.n_test,
            reading=_reading(ae, clf),
            deviations=deviations,
        )
        return None
    with repro.experiment(f"{ae} -> {clf}") as exp:
        cell = results.cell(grid, ae)
        row = results.row(cell)
        accuracy = percent_of(results.accuracy(cell, clf), "accuracy_denoised")
        fit = f"faithful recipe{results.set_note(ae)}{collapse_warning(row)}"
        note = f"{ae} ({fit}) denoises impulse 0.25; {clf} trained on clean images classifies{results.set_note(clf)}"
        common = {"n_test": row["n_test"], "reading": _reading(ae, clf), "deviations": deviations}
        exp.add("accuracy_denoised_pct", published, accuracy, note=f"Table 2; {note}", **common)
        if clf == "alexnet_faithful":
            fig21 = f"same measurement; the report's Fig. 21 prints {ALEXNET_FIG21}% for AlexNet (trained on part of MNIST), Table 2 {published}%"
            exp.add("accuracy_denoised_pct", ALEXNET_FIG21, accuracy, note=fig21, **common)
        psnr = "mean per-image PSNR of the denoised test images; no published number"
        exp.add("psnr_db", None, float(row["psnr"]), note=psnr, **common)
    return cell


def cv_images(runner, cell, n_cv: int | None):
    """The cell's noisy training images (drawn once, the fit's own) and their labels, the first ``n_cv``."""
    noisy = runner.training_pairs(cell)[0]
    labels = runner.data(DATASET)[1]
    n = len(noisy) if n_cv is None else min(n_cv, len(noisy))
    return noisy[:n], labels[:n]


def _cross_validate(repro: Reproduction, results: Results, grid: Grid, cfg, cell, published: float) -> None:
    """VGG-16's 5-fold cross-validation on the VGG-16-denoised training images (Fig. 15), from the cached fit."""
    from models.classifiers import cross_validate

    name = "vgg16_faithful 5-fold CV on denoised training images"
    reading = _reading("vgg16_ae", "vgg16_faithful")
    deviations = shrunk(cfg, cfg.fit, "vgg16_ae") + shrunk(cfg, cfg.cv, "each fold")
    if cfg.n_cv is not None:
        deviations += (f"{cfg.budget} budget: {cfg.n_cv} denoised training images cross-validated (report: 60,000)",)
    published_spread = round(_spread(VGG_FOLDS), 3)
    if cell is None:
        missing = {"cv_mean_pct": published, "cv_spread_pct": published_spread}
        repro.skip(name, missing, "needs the vgg16_ae-denoised images", reading=reading, deviations=deviations)
        return
    runner = results.runner(grid)
    noisy, labels = cv_images(runner, cell, cfg.n_cv)
    denoised = results.fitted(grid, cell).denoise(noisy)
    n = len(denoised)
    # The folds are vgg16_faithful fits too: --set vgg16_faithful.KEY=VALUE narrows them as it does the grid's.
    overrides = {**cfg.cv, **results.launch.params.get("vgg16_faithful", {})}
    params, _ = model_params(CLASSIFIERS, "vgg16_faithful", repro.budget, **overrides)
    source = f"{DATASET}: the first {n} training images of cell {cell.key}, noisy then denoised"

    def fit_fold(fold: int, images, labels, seed: int):  # through the fit cache: a rerun reuses, a kill resumes
        where = f"{source}, fold {fold + 1} of {K_FOLDS}"
        return runner.classifiers.model(where, "vgg16_faithful", tuple(sorted(params.items())), images, labels, seed)

    with repro.experiment(name) as exp:
        result = cross_validate("vgg16_faithful", denoised, labels, k=K_FOLDS, seed=repro.seed, fit=fit_fold, **params)
        folds = [100 * f for f in result["folds"]]
        repro.extra["vgg16_cv"] = {
            "folds_pct": folds,
            "published_folds_pct": list(VGG_FOLDS),
            "n_images": n,
            "params": params,
        }
        note = f"{K_FOLDS}-fold CV over {n} vgg16_ae-denoised training images"
        common = {"n_test": n, "reading": reading, "deviations": deviations}
        exp.add("cv_mean_pct", published, 100 * result["mean"], note=f"Table 2 average; {note}", **common)
        spread_note = f"population std of the folds; published = spread of Fig. 15's example folds {list(VGG_FOLDS)}"
        exp.add("cv_spread_pct", published_spread, _spread(tuple(folds)), note=spread_note, **common)
        for index, (ours, theirs) in enumerate(zip(folds, VGG_FOLDS, strict=True)):
            exp.add(f"cv_fold{index + 1}_pct", theirs, ours, note=f"Fig. 15's fold {index + 1}; {note}", **common)
