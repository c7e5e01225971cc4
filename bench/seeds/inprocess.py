"""In-process fitting for the one protocol no grid expresses yet: seed 003.

Seed 003's stacked-autoencoder classifiers train on masked images (Tables 3-4) and on the
first 5,000 training images, and its denoiser is scored on its own training pairs
(Figs. 6-7); a cell trains classifiers on clean images of a seeded subset and scores on
test images. Until the runner can do both, seed 003 loads, splits, fits and scores here,
with the harness's data, noise seeds and metrics, so its numbers are measured as a cell's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bench import metrics
from bench.data import DataError, load
from bench.estimator import as_float_images
from bench.noise import derive_seed
from bench.registry import CLASSIFIERS, DENOISERS, Registry
from bench.seeds.common import Reproduction, model_params, psnr_of_mse

__all__ = [
    "load_dataset", "split", "missing_models", "fit_denoiser", "Scored", "train_and_score", "fit_classifier", "image_scores",
]  # fmt: skip


def load_dataset(name: str, repro: Reproduction):
    """``bench.data.load(name)``; a missing dataset is a one-line DataError naming the seed and the fix."""
    try:
        return load(name, data_dir=repro.data_dir)
    except DataError as err:
        raise DataError(f"seed {repro.report} needs {name}: {err}") from None


def split(
    ds, *, n_train: int | None, n_test: int | None, device: torch.device, seed: int | None = None
) -> tuple[Tensor, ...]:
    """(train images, train labels, test images, test labels) as float [0, 1] on ``device``.

    Training images are the first ``n_train`` (``seed`` None) or a subset seeded by name as in
    the grid runner; test images are always the first ``n_test``, so every number on them is
    on the same images.
    """
    n_train = len(ds.train_images) if n_train is None else min(n_train, len(ds.train_images))
    if seed is None:
        index = torch.arange(n_train)
    else:
        index = torch.randperm(
            len(ds.train_images), generator=torch.Generator().manual_seed(derive_seed(seed, ds.name, "train-subset"))
        )[:n_train]
    n_test = len(ds.test_images) if n_test is None else min(n_test, len(ds.test_images))
    put = lambda t: as_float_images(t).to(device)  # noqa: E731
    return (
        put(ds.train_images[index]),
        ds.train_labels[index].to(device),
        put(ds.test_images[:n_test]),
        ds.test_labels[:n_test].to(device),
    )


def missing_models(registry: Registry, *names: str) -> list[str]:
    """The names among ``names`` not (yet) registered."""
    return [name for name in names if name not in registry]


def fit_denoiser(repro: Reproduction, name: str, noisy_train: Tensor, clean_train: Tensor, *, noise: Any = None,
                 tag: str = "", **overrides: Any) -> tuple[Any, float, list[str]]:  # fmt: skip
    """A fitted ``DENOISERS`` entry, its fit seconds and the overrides it does not take.

    The fit seed derives from the report, the name and ``tag``, never from run order.
    """
    params, dropped = model_params(DENOISERS, name, repro.budget, **overrides)
    model = DENOISERS.create(name, **params)
    start = time.perf_counter()
    model.fit(
        noisy_train, clean_train, seed=derive_seed(repro.seed, "seed", repro.report, "fit", name, tag), noise=noise
    )
    return model, time.perf_counter() - start, dropped


@dataclass
class Scored:
    """A fitted denoiser, its denoised test images and their scores."""

    model: Any
    denoised: Tensor
    scores: dict[str, float]
    fit_seconds: float
    dropped: list[str]

    @property
    def warning(self) -> str:
        """'; training collapsed: ...' when the training loop says the kept model is collapsed, else ''."""
        training = getattr(self.model, "training_", None) or {}
        if not training.get("collapsed"):
            return ""
        reasons = [c.get("reason", "") for c in training.get("collapse", [])]
        return f"; training collapsed: {reasons[-1] if reasons else 'constant output'}"


def train_and_score(repro: Reproduction, name: str, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], *,
                    noise: Any = None, tag: str = "", **overrides: Any) -> Scored:  # fmt: skip
    """Fit ``name`` on (noisy, clean) ``train`` pairs, denoise ``test``'s noisy images, score them.

    The learning curve and training summary (neural models) and the tuned parameters
    (classical ones) go to the reproduction's JSON under ``models``.
    """
    model, seconds, dropped = fit_denoiser(repro, name, *train, noise=noise, tag=tag, **overrides)
    denoised = model.denoise(test[0])
    scores = image_scores(denoised, test[1])
    record = {
        "params": model.get_params(),
        "fit_seconds": round(seconds, 2),
        "n_train": len(train[0]),
        "test": scores,
        "not_taken": dropped,
    }
    for key in ("history_", "training_", "best_params_"):
        if hasattr(model, key):
            record[key.rstrip("_")] = getattr(model, key)
    repro.extra.setdefault("models", {})[f"{name} {tag}".strip()] = record
    return Scored(model, denoised, scores, seconds, dropped)


def fit_classifier(
    repro: Reproduction, name: str, images: Tensor, labels: Tensor, *, tag: str = "", **overrides: Any
) -> Any:
    """A ``CLASSIFIERS`` entry fitted on ``images`` with the budget's parameters and ``overrides``."""
    params, _ = model_params(CLASSIFIERS, name, repro.budget, **overrides)
    return CLASSIFIERS.create(name, **params).fit(
        images, labels, seed=derive_seed(repro.seed, "seed", repro.report, "classifier", name, tag)
    )


def image_scores(pred: Tensor, clean: Tensor) -> dict[str, float]:
    """Mean per-image MSE, PSNR and SSIM (bench.metrics), and the PSNR of the mean MSE."""
    mse = float(metrics.mse(pred, clean).mean())
    return {
        "mse": mse, "psnr": float(metrics.psnr(pred, clean).mean()), "ssim": float(metrics.ssim(pred, clean).mean()),
        "psnr_of_mean_mse": psnr_of_mse(mse),
    }  # fmt: skip
