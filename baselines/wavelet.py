"""Wavelet shrinkage with BayesShrink thresholds, batched over images with PyWavelets."""

from __future__ import annotations

import numpy as np
import pywt
import torch
from torch import Tensor

from baselines import dwt
from baselines.base import TunedDenoiser, check_positive, estimate_noise_sigma, from_numpy
from bench.estimator import POSITIVE, POSITIVE_INT, Rule, one_of
from bench.registry import DENOISERS

__all__ = ["bayes_shrink", "Wavelet"]

_MODES = ("soft", "hard")


def _threshold(coeffs: np.ndarray, value: np.ndarray, mode: str) -> np.ndarray:
    # pywt.threshold's soft mode divides value by |coeff| and returns NaN for 0/0 (a noiseless,
    # flat plane); this is the same rule without the division, in two passes instead of four:
    # c - clip(c, -v, v) is sign(c) * max(|c| - v, 0), rounded the same.
    if mode == "soft":
        return coeffs - np.clip(coeffs, -value, value)
    return np.where(np.abs(coeffs) < value, 0.0, coeffs)


def _bayes_threshold(details: np.ndarray, variance: np.ndarray) -> np.ndarray:
    # Chang et al.'s sigma^2 / sigma_signal per plane and subband, as in scikit-image.
    # In the coefficients' dtype, so that a float32 decomposition is not promoted to float64.
    signal = np.mean(details * details, axis=(-2, -1), keepdims=True) - variance
    return (variance / np.sqrt(np.maximum(signal, np.finfo(np.float64).eps))).astype(details.dtype)


def _check_wavelet_args(wavelet: str, levels: int, mode: str) -> None:
    if wavelet not in pywt.wavelist(kind="discrete"):
        raise ValueError(f"wavelet {wavelet!r} is unknown; expected a discrete PyWavelets name such as db1, db2, sym4")
    if not isinstance(levels, int) or isinstance(levels, bool) or levels < 1:
        raise ValueError(f"wavelet levels {levels!r} is invalid; expected an integer >= 1")
    if mode not in _MODES:
        raise ValueError(f"wavelet threshold mode {mode!r} is unknown; expected one of: {', '.join(_MODES)}")


def bayes_shrink(
    planes: np.ndarray,
    *,
    sigma: np.ndarray | None = None,
    sigma_scale: float = 1.0,
    wavelet: str,
    levels: int,
    mode: str,
) -> np.ndarray:
    """BayesShrink wavelet denoising of each 2-D plane of ``planes`` (..., H, W).

    Equal, plane by plane, to ``skimage.restoration.denoise_wavelet(plane, sigma=s,
    wavelet=wavelet, wavelet_levels=levels, mode=mode, method='BayesShrink')`` but one
    PyWavelets call for the whole stack.

    Parameters
    ----------
    planes : ndarray
        Float array (..., H, W); the work is done in its dtype.
    sigma : ndarray or None
        Noise sigma of each plane, shape ``planes.shape[:-2]``; None estimates it
        (``baselines.base.estimate_noise_sigma``, in float64).
    sigma_scale : float
        Multiplier on ``sigma``.
    wavelet : str
        Discrete PyWavelets wavelet name.
    levels : int
        Decomposition levels, capped at what the plane size allows (at least 1).
    mode : {'soft', 'hard'}
        Thresholding rule.
    """
    _check_wavelet_args(wavelet, levels, mode)
    height, width = planes.shape[-2:]
    levels = max(1, min(levels, pywt.dwtn_max_level((height, width), wavelet)))
    coeffs = dwt.wavedec2(planes, wavelet, levels)
    if sigma is None:
        # In float64 whatever the planes' dtype: the estimate drops exactly-zero coefficients
        # (flat regions), and which ones round to exactly zero depends on the precision. On
        # images with flat 0 and 1 regions (MNIST under salt-and-pepper) a float32 estimate
        # moved sigma enough to change the tuned filter's output by up to 0.3. The estimate
        # transforms only its diagonal detail, along contiguous rows (baselines.dwt), which
        # keeps it at a fraction of the decomposition's cost.
        sigma = estimate_noise_sigma(planes.astype(np.float64, copy=False))
    variance = (sigma_scale * np.asarray(sigma, dtype=np.float64))[..., None, None] ** 2
    shrunk = [coeffs[0]] + [
        tuple(_threshold(d, _bayes_threshold(d, variance), mode) for d in level) for level in coeffs[1:]
    ]
    # Odd sizes reconstruct one pixel larger.
    return dwt.waverec2(shrunk, wavelet)[..., :height, :width]


@DENOISERS.register(
    "wavelet",
    source="classical: BayesShrink wavelet thresholding (Chang, Yu, Vetterli 2000) via PyWavelets, as in scikit-image",
    description="BayesShrink wavelet shrinkage per channel; wavelet, levels, mode and sigma multiplier tuned",
    test_params={"tune_images": 8, "wavelet": "db1", "levels": 1},
)
class Wavelet(TunedDenoiser):
    """BayesShrink wavelet denoising of each channel, with a tuned noise-level multiplier.

    The noise sigma of each channel of each image is estimated from its finest diagonal
    wavelet coefficients (``estimate_noise_sigma``) and multiplied by ``sigma_scale``:
    clipped noise is not Gaussian at its nominal level, so the multiplier is tuned.

    Parameters
    ----------
    wavelet : str or None
        PyWavelets name; None tunes over ``param_grid['wavelet']``.
    levels : int or None
        Decomposition levels (capped by image size); None tunes.
    mode : {'soft', 'hard'} or None
        Thresholding rule; None tunes.
    sigma_scale : float or None
        Multiplier on the estimated sigma; None tunes.
    tune_images : int
        Training pairs the tuning uses (a seeded subset).

    References
    ----------
    S. G. Chang, B. Yu, M. Vetterli, "Adaptive wavelet thresholding for image denoising
    and compression", IEEE Trans. Image Process. 9(9), 1532-1546 (2000).
    """

    name = "wavelet"
    param_grid = {
        "wavelet": ("db1", "db2"),
        "levels": (1, 2, 3),
        "mode": ("soft", "hard"),
        "sigma_scale": (0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
    }
    param_rules = {
        "wavelet": Rule(
            lambda w: w in pywt.wavelist(kind="discrete"), "a discrete PyWavelets name such as db1, db2, sym4"
        ).or_none("tuned"),
        "levels": POSITIVE_INT.or_none("tuned"),
        "mode": one_of(*_MODES).or_none("tuned"),
        "sigma_scale": POSITIVE.or_none("tuned"),
    }

    def __init__(
        self,
        *,
        wavelet: str | None = None,
        levels: int | None = None,
        mode: str | None = None,
        sigma_scale: float | None = None,
        tune_images: int = 256,
    ) -> None:
        self.wavelet = wavelet
        self.levels = levels
        self.mode = mode
        self.sigma_scale = sigma_scale
        self.tune_images = tune_images

    def _filter(self, noisy: Tensor, *, wavelet: str, levels: int, mode: str, sigma_scale: float) -> Tensor:
        # float32, as scikit-image keeps a float32 image: PyWavelets runs 1.5-2x faster than in
        # float64 on photographs, and the output moves by under 5e-6.
        planes = noisy.detach().to("cpu", torch.float32).numpy()
        scale = check_positive(sigma_scale, "wavelet sigma_scale")
        denoised = bayes_shrink(planes, sigma_scale=scale, wavelet=wavelet, levels=levels, mode=mode)
        return from_numpy(denoised, noisy)
