"""Shared machinery of the classical denoisers: input checks, grid tuning, cacheable state.

A classical denoiser has no weights, only a few parameters (a window size, a threshold, a
weight). Published defaults are tuned for other images and noise, so ``fit`` picks them
from a small candidate grid by mean PSNR on the training pairs; that makes the classical
rows of the leaderboard a fair floor for the learned ones.
"""

from __future__ import annotations

import itertools
import math
import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from baselines.dwt import finest_diagonal
from bench.estimator import POSITIVE_INT, Denoiser, Rule, check_images
from bench.metrics import psnr

__all__ = [
    "ClassicalDenoiser",
    "TunedDenoiser",
    "check_pair",
    "check_positive",
    "tune",
    "tuning_subset",
    "estimate_noise_sigma",
    "sigma_from_diagonal",
    "to_numpy",
    "from_numpy",
]

#: 75th percentile of the standard normal: turns a median absolute deviation into a sigma.
_MAD_TO_SIGMA = 0.6744897501960817


def check_positive(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise one clear ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} {value!r} is invalid; expected a finite number > 0")
    return float(value)


def check_pair(noisy: Any, clean: Any) -> tuple[Tensor, Tensor]:
    """Return ``(noisy, clean)`` if both are float image batches of one non-empty shape."""
    noisy, clean = check_images(noisy, "noisy"), check_images(clean, "clean")
    if noisy.shape != clean.shape or len(noisy) == 0:
        raise ValueError(
            f"noisy and clean must be non-empty and of one shape; got {tuple(noisy.shape)} and {tuple(clean.shape)}"
        )
    return noisy, clean


def tuning_subset(n: int, size: int, seed: int) -> Tensor:
    """Sorted indices of a seeded random subset of ``size`` of ``range(n)`` (all if n <= size).

    >>> tuning_subset(5, 10, seed=0).tolist()
    [0, 1, 2, 3, 4]
    >>> len(tuning_subset(100, 8, seed=0))
    8
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"tuning subset size {size!r} is invalid; expected an integer >= 1")
    if n <= size:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(int(seed))
    # Sorted so that the subset keeps the data's order (and its memory locality).
    return torch.randperm(n, generator=generator)[:size].sort().values


def tune(
    apply: Any, noisy: Tensor, clean: Tensor, grid: dict[str, tuple], fixed: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid search: the parameters maximising mean PSNR of ``apply(noisy, **params)`` against ``clean``.

    Parameters in ``fixed`` are not searched. Candidates are tried in grid order and the
    first of equal scores wins, so the result is deterministic. Returns the winner and
    every candidate's score (empty when there was nothing to choose).
    """
    names = [name for name in grid if name not in fixed]
    candidates = [
        dict(fixed, **dict(zip(names, values, strict=True))) for values in itertools.product(*(grid[n] for n in names))
    ]
    if len(candidates) == 1:
        apply(noisy[:1], **candidates[0])  # nothing to choose; still fail at fit time on a bad fixed value
        return candidates[0], []
    scores, best, best_score = [], None, -float("inf")
    for params in candidates:
        denoised = apply(noisy, **params).clamp(0.0, 1.0)
        score = float(psnr(denoised, clean).double().mean())
        scores.append({"params": params, "psnr": score})
        if score > best_score:
            best, best_score = params, score
    return best, scores


def to_numpy(images: Tensor) -> np.ndarray:
    """N x C x H x W float64 numpy copy on the CPU (scikit-image, PyWavelets and bm3d work in float64)."""
    return images.detach().to("cpu", torch.float64).numpy().copy()


def from_numpy(array: np.ndarray, like: Tensor) -> Tensor:
    """float32 tensor on ``like``'s device."""
    return torch.from_numpy(np.ascontiguousarray(array)).to(device=like.device, dtype=torch.float32)


def estimate_noise_sigma(planes: np.ndarray) -> np.ndarray:
    """Gaussian noise sigma of each 2-D plane in ``planes`` (..., H, W), by Donoho's MAD rule.

    The same estimate as ``skimage.restoration.estimate_sigma`` (median absolute value of
    the finest db2 diagonal wavelet coefficients over 0.6745, zeros ignored), batched over
    the leading axes. A plane with no non-zero coefficient gets 0. Clipped noise is not
    Gaussian at its nominal level, which is why the denoisers that need a sigma estimate
    it from the noisy image and tune a multiplier over it.
    """
    with warnings.catch_warnings():
        # dwt2 of a plane smaller than the filter warns about boundary effects; the estimate stays usable.
        warnings.simplefilter("ignore", UserWarning)
        diagonal = finest_diagonal(planes, "db2")
    return sigma_from_diagonal(diagonal)


def sigma_from_diagonal(diagonal: np.ndarray) -> np.ndarray:
    """``estimate_noise_sigma`` from each plane's finest db2 diagonal coefficients (..., h, w).

    For a caller that has them already: a db2 wavelet decomposition's finest level holds them.
    """
    magnitudes = np.abs(diagonal).reshape(*diagonal.shape[:-2], -1)
    # Exactly-zero coefficients come from flat regions, not noise (as in scikit-image).
    magnitudes[magnitudes == 0] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-zero plane is a NaN median
        sigma = np.nanmedian(magnitudes, axis=-1) / _MAD_TO_SIGMA
    return np.nan_to_num(sigma, nan=0.0)


class ClassicalDenoiser(Denoiser):
    """A denoiser whose fitted state is one dict of parameters, ``best_params_``.

    Subclasses implement ``_filter(noisy, **params)`` on a float32 batch; this class checks
    inputs, clamps and casts the output, and saves and restores the fitted state as JSON.
    """

    @abstractmethod
    def _filter(self, noisy: Tensor, **params: Any) -> Tensor:
        """Denoise a float32 N x C x H x W batch with explicit parameters."""

    def denoise(self, noisy: Tensor) -> Tensor:
        """Denoised copy of ``noisy``: same shape, device and dtype, values in [0, 1]."""
        self.check_fitted()
        check_images(noisy, f"{self._label()}: noisy")
        if len(noisy) == 0:
            return noisy.clone()
        out = self._filter(noisy.float(), **self.best_params_)
        return out.clamp(0.0, 1.0).to(device=noisy.device, dtype=noisy.dtype)

    def fitted_state(self) -> dict[str, Any]:
        """JSON-able fitted state, ``{"best_params": {...}}``: all ``denoise`` needs."""
        self.check_fitted()
        return {"best_params": dict(self.best_params_)}

    def load_fitted_state(self, state: dict[str, Any]) -> ClassicalDenoiser:
        """Restore what ``fitted_state`` returned; returns self."""
        params = state.get("best_params") if isinstance(state, dict) else None
        expected = sorted(getattr(self, "param_grid", {}))
        if not isinstance(params, dict) or sorted(params) != expected:
            raise ValueError(
                f"fitted state of {self.name or type(self).__name__} is invalid; expected "
                f"{{'best_params': {{...}}}} with keys {expected}, got {state!r}"
            )
        self.best_params_ = dict(params)
        return self

    def load_fitted(self, tensors: dict[str, Tensor], state: dict[str, Any], device: Any) -> ClassicalDenoiser:
        """The ``bench.execution.fits`` hook: classical denoisers have no tensors, only ``state``."""
        return self.load_fitted_state(state)


class TunedDenoiser(ClassicalDenoiser):
    """A classical denoiser whose parameters ``fit`` picks from ``param_grid`` by mean PSNR.

    A constructor argument named in ``param_grid`` and left as ``None`` is tuned; any other
    value fixes it. Subclasses take ``tune_images`` (how many training pairs the search
    uses) unless they override ``_tuning_size``.
    """

    #: Candidate values of each tunable parameter, tried in this order.
    param_grid: ClassVar[dict[str, tuple]] = {}
    #: The tuning-subset sizes (``tune_images``, or ``subsample`` where a subclass names it so).
    param_rules: ClassVar[dict[str, Rule]] = {"tune_images": POSITIVE_INT, "subsample": POSITIVE_INT}

    def _tuning_size(self) -> int:
        return self.tune_images

    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> TunedDenoiser:
        """Pick the grid parameters with the best mean PSNR on a seeded subset of the pairs.

        ``noise`` (the cell's training noise) is not used: the pairs carry the noise.
        """
        noisy, clean = check_pair(noisy, clean)
        index = tuning_subset(len(noisy), self._tuning_size(), seed).to(noisy.device)
        fixed = {name: getattr(self, name) for name in self.param_grid if getattr(self, name) is not None}
        best, scores = tune(self._filter, noisy[index].float(), clean[index].float(), self.param_grid, fixed)
        self.best_params_, self.tuning_scores_, self.tuning_size_ = best, scores, len(index)
        return self
