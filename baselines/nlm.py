"""Non-local means via scikit-image, one image at a time (its Cython kernel is per image)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from baselines.base import TunedDenoiser, check_positive, estimate_noise_sigma, from_numpy, to_numpy
from bench.estimator import POSITIVE, POSITIVE_INT
from bench.registry import DENOISERS

__all__ = ["nl_means", "NLMeans"]

#: Smallest filtering strength: a noiseless image (sigma estimate 0) must not divide by zero.
_MIN_H = 1e-4


def _check_window(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"nlm {what} {value!r} is invalid; expected an integer >= 1")


def nl_means(planes: np.ndarray, *, patch_size: int, patch_distance: int, h_scale: float) -> np.ndarray:
    """Non-local means of each image in ``planes`` (N x C x H x W float64), scikit-image's fast mode.

    Each image's noise sigma is estimated (mean over its channels); the filter gets that
    sigma, so patch distances are corrected for the noise, and ``h = h_scale * sigma``.
    The channels of an image share patch weights.
    """
    _check_window(patch_size, "patch_size")
    _check_window(patch_distance, "patch_distance")
    check_positive(h_scale, "nlm h_scale")
    from skimage.restoration import denoise_nl_means

    sigmas = estimate_noise_sigma(planes).mean(axis=1)
    out = np.empty_like(planes)
    for i, (image, sigma) in enumerate(zip(planes, sigmas, strict=True)):
        options = dict(patch_size=patch_size, patch_distance=patch_distance, fast_mode=True, sigma=float(sigma))
        h = max(h_scale * float(sigma), _MIN_H)
        if len(image) == 1:
            out[i, 0] = denoise_nl_means(image[0], h=h, **options)
        else:
            out[i] = np.moveaxis(denoise_nl_means(np.moveaxis(image, 0, -1), h=h, channel_axis=-1, **options), -1, 0)
    return out


@DENOISERS.register(
    "nlm",
    source="classical: non-local means (Buades, Coll, Morel 2005), scikit-image fast mode (Darbon et al. 2008)",
    description="non-local means with estimated noise sigma; patch size and strength tuned",
    test_params={"tune_images": 4, "patch_size": 3, "patch_distance": 3},
)
class NLMeans(TunedDenoiser):
    """Non-local means: each pixel becomes a weighted mean of pixels with similar patches.

    Runs ``skimage.restoration.denoise_nl_means`` (fast mode) per image on the CPU, so it
    is the slowest of the scikit-image-based baselines; its grid is kept small.

    Parameters
    ----------
    patch_size : int or None
        Patch side; None tunes over ``param_grid['patch_size']``.
    patch_distance : int or None
        Search radius in pixels; None tunes.
    h_scale : float or None
        Filtering strength as a multiple of the estimated noise sigma; None tunes.
    tune_images : int
        Training pairs the tuning uses (a seeded subset).

    References
    ----------
    A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005.
    J. Darbon et al., "Fast nonlocal filtering applied to electron cryomicroscopy", ISBI 2008.
    """

    name = "nlm"
    #: The quick grid tunes on fewer pairs: one image per ~3 ms and 8 candidates add up.
    budgets = {"quick": {"tune_images": 64}}
    param_grid = {"patch_size": (3, 5), "patch_distance": (5,), "h_scale": (0.6, 0.9, 1.2, 1.8)}
    param_rules = {n: POSITIVE_INT.or_none("tuned") for n in ("patch_size", "patch_distance")} | {
        "h_scale": POSITIVE.or_none("tuned")
    }

    def __init__(
        self,
        *,
        patch_size: int | None = None,
        patch_distance: int | None = None,
        h_scale: float | None = None,
        tune_images: int = 256,
    ) -> None:
        self.patch_size = patch_size
        self.patch_distance = patch_distance
        self.h_scale = h_scale
        self.tune_images = tune_images

    def _filter(self, noisy: Tensor, *, patch_size: int, patch_distance: int, h_scale: float) -> Tensor:
        planes = to_numpy(noisy)
        return from_numpy(
            nl_means(planes, patch_size=patch_size, patch_distance=patch_distance, h_scale=h_scale), noisy
        )
