"""Base classes for denoisers and classifiers (scikit-learn style).

Constructors only store their keyword arguments, so ``get_params()`` is a JSON record of
the configuration; learned state ends in ``_`` and exists only after ``fit``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

__all__ = ["Estimator", "Denoiser", "Classifier", "NotFittedError"]


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


class Estimator:
    """Parameters are the constructor's keyword arguments, stored under the same names."""

    name: str = ""

    def get_params(self) -> dict[str, Any]:
        """The keyword-only constructor arguments of this class and of its bases (which a
        subclass passes on as ``**common``), as a JSON-friendly dict."""
        params: dict[str, Any] = {}
        for cls in reversed(type(self).__mro__):
            if "__init__" in vars(cls) and issubclass(cls, Estimator):
                for key, parameter in inspect.signature(cls.__init__).parameters.items():
                    if parameter.kind is parameter.KEYWORD_ONLY:
                        params[key] = getattr(self, key)
        return params

    def set_params(self, **params: Any) -> Estimator:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; expected one of: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def check_fitted(self) -> None:
        """Raise NotFittedError unless ``fit`` has set some learned state."""
        if not any(key.endswith("_") and not key.startswith("_") for key in vars(self)):
            raise NotFittedError(f"{self.name or type(self).__name__} is not fitted; call fit() first")

    def n_parameters(self) -> int:
        """Learned parameter count (0 for classical methods)."""
        return 0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Denoiser(Estimator, ABC):
    """Maps noisy images (float32 N x C x H x W in [0, 1]) to denoised ones.

    ``fit(noisy, clean, seed=..., noise=...)`` learns from training pairs; ``noise`` is the
    cell's training noise (a ``bench.noise.TrainingNoise``), for methods that redraw noise
    per batch. ``denoise`` is pure: same shape, device and range, no state kept.
    """

    @abstractmethod
    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> Denoiser: ...

    @abstractmethod
    def denoise(self, noisy: Tensor) -> Tensor: ...


class Classifier(Estimator, ABC):
    """Maps images (float32 N x C x H x W in [0, 1]) to int64 labels."""

    @abstractmethod
    def fit(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> Classifier: ...

    @abstractmethod
    def predict(self, images: Tensor) -> Tensor: ...


def as_float_images(images: Tensor) -> Tensor:
    """uint8 or float N x C x H x W -> float32 in [0, 1] on the same device."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()
