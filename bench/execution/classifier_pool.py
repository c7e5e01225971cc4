"""Denoise-then-classify: classifiers fitted once per dataset on clean training images,
then scored on the clean, noisy and denoised test images of every cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.errors import one_line
from bench.execution import fits as fit_cache
from bench.execution.rows import ClassifierRow
from bench.registry import CLASSIFIERS

__all__ = ["ClassifierPool", "classifier_stem", "gap_recovered", "confusion_matrix"]


def gap_recovered(clean: float, noisy: float, denoised: float) -> float:
    """Share of the clean-to-noisy accuracy gap that denoising wins back (NaN when no gap).

    >>> round(gap_recovered(0.98, 0.50, 0.86), 2)
    0.75
    """
    gap = clean - noisy
    return (denoised - noisy) / gap if gap > 0.005 else float("nan")


def confusion_matrix(predicted: Tensor, labels: Tensor, n_classes: int) -> list[list[int]]:
    """Rows are true classes, columns predicted ones."""
    index = labels.cpu() * n_classes + predicted.cpu()
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes).tolist()


def classifier_stem(cache_dir: Path, dataset: str, name: str, params: tuple, n_train: int, seed: int) -> Path:
    """Where the fit of classifier ``name`` on ``dataset``'s first ``n_train`` images is cached."""
    spec = {"classifier": name, "params": dict(params), "dataset": dataset, "n_train": n_train, "seed": seed}
    return cache_dir / f"classifier-{fit_cache.fit_key(spec)}"


@dataclass
class ClassifierPool:
    """Fitted classifiers of one run, keyed by (dataset, classifier, params); cached on disk."""

    cache_dir: Path
    device: torch.device
    _models: dict[tuple, Any] = field(default_factory=dict)
    _accuracy: dict[tuple, float] = field(default_factory=dict)
    #: fits that already failed elsewhere in the run, (dataset, name, params) -> reason: not retried
    errors: dict[tuple, str] = field(default_factory=dict)
    checkpoint_every: float | None = None  # seconds between mid-fit checkpoints (None: the model's default)

    def model(self, dataset: str, name: str, params: tuple, images: Tensor, labels: Tensor, seed: int) -> Any:
        key = (dataset, name, params)
        if key in self.errors:
            raise RuntimeError(f"its fit failed: {self.errors[key]}")
        if key not in self._models:
            model = CLASSIFIERS.create(name, **dict(params))
            stem = classifier_stem(self.cache_dir, dataset, name, params, len(images), seed)
            fit_cache.fit_or_load(
                model,
                stem,
                lambda: model.fit(images, labels, seed=seed),
                device=self.device,
                checkpoint_every=self.checkpoint_every,
            )
            self._models[key] = model
        return self._models[key]

    def accuracy(self, memo_key: tuple, model: Any, images: Tensor, labels: Tensor) -> float:
        """Accuracy, remembered under ``memo_key`` (clean and noisy sets repeat across cells)."""
        memo_key = (*memo_key, len(images))  # a subsampled cell must not reuse a full-set accuracy
        if memo_key not in self._accuracy:
            self._accuracy[memo_key] = float((model.predict(images).cpu() == labels.cpu()).float().mean())
        return self._accuracy[memo_key]

    def score(
        self, cell, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor, Tensor, Tensor], n_classes: int
    ) -> list[ClassifierRow]:
        """One row per classifier of the cell; a classifier that fails gives a row with its error."""
        return [self._score_one(cell, name, params, train, test, n_classes) for name, params in cell.classifiers]

    def _score_one(self, cell, name: str, params: tuple, train, test, n_classes: int) -> ClassifierRow:
        clean, noisy, denoised, labels = test
        try:
            model = self.model(cell.dataset, name, params, *train, seed=cell.seed)
            base = (cell.dataset, name, params)
            accuracy_clean = self.accuracy((*base, "clean"), model, clean, labels)
            accuracy_noisy = self.accuracy((*base, cell.noise, cell.level), model, noisy, labels)
            predicted = model.predict(denoised)
            correct = predicted.cpu() == labels.cpu()
            accuracy_denoised = float(correct.float().mean())
            return ClassifierRow(
                classifier=name,
                accuracy_clean=accuracy_clean,
                accuracy_noisy=accuracy_noisy,
                accuracy_denoised=accuracy_denoised,
                gap_recovered=gap_recovered(accuracy_clean, accuracy_noisy, accuracy_denoised),
                confusion=confusion_matrix(predicted, labels, n_classes),
                correct=correct.numpy(),  # per test image, for paired tests between denoisers
            )
        except Exception as err:  # a broken classifier must not fail the denoiser's cell
            return ClassifierRow(classifier=name, error=one_line(err))
