"""The identity floor and the batched-torch classical filters: median, Gaussian blur, TV.

These run on the images' device (CPU or GPU) with no per-image Python loop.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from baselines.base import ClassicalDenoiser, TunedDenoiser, check_pair
from baselines.filters import gaussian_filter, median_filter, tv_chambolle
from bench.estimator import NON_NEGATIVE, ODD_POSITIVE_INT, POSITIVE, POSITIVE_INT
from bench.registry import DENOISERS

__all__ = ["Identity", "Median", "GaussianBlur", "TVChambolle"]


@DENOISERS.register(
    "identity",
    source="baseline: no denoising",
    description="returns the noisy input unchanged; the floor every denoiser must beat",
)
class Identity(ClassicalDenoiser):
    """Returns the noisy images unchanged: the PSNR floor of every cell.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(2, 1, 8, 8)
    >>> bool((Identity().fit(x, x).denoise(x) == x).all())
    True
    """

    name = "identity"

    def __init__(self) -> None:
        pass

    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> Identity:
        check_pair(noisy, clean)
        self.best_params_: dict[str, Any] = {}
        return self

    def _filter(self, noisy: Tensor) -> Tensor:
        return noisy.clone()


@DENOISERS.register(
    "median",
    source="classical: median filter (Tukey 1974); batched torch, equal to scipy.ndimage.median_filter",
    description="median over a square window, window size tuned on the training pairs",
    test_params={"tune_images": 8},
)
class Median(TunedDenoiser):
    """Median filter over a ``size`` x ``size`` window, borders reflected as in scipy.ndimage.

    The textbook remedy for impulse (salt-and-pepper) noise: an isolated outlier never
    reaches the median of its window.

    Parameters
    ----------
    size : {3, 5, 7} or odd int or None
        Window side; None tunes it over ``param_grid['size']``.
    tune_images : int
        Training pairs the tuning uses (a seeded subset).

    References
    ----------
    J. W. Tukey, "Nonlinear (nonsuperposable) methods for smoothing data", 1974.
    """

    name = "median"
    param_grid = {"size": (3, 5, 7)}
    param_rules = {"size": ODD_POSITIVE_INT.or_none("tuned")}

    def __init__(self, *, size: int | None = None, tune_images: int = 256) -> None:
        self.size = size
        self.tune_images = tune_images

    def _filter(self, noisy: Tensor, *, size: int) -> Tensor:
        return median_filter(noisy, size=size)


@DENOISERS.register(
    "gaussian_blur",
    source="classical: Gaussian low-pass filter; batched torch, equal to scipy.ndimage.gaussian_filter",
    description="separable Gaussian blur, sigma tuned on the training pairs",
    test_params={"tune_images": 8},
)
class GaussianBlur(TunedDenoiser):
    """Gaussian blur as two 1-D convolutions, borders reflected as in scipy.ndimage.

    Parameters
    ----------
    sigma : float or None
        Standard deviation in pixels; None tunes it over ``param_grid['sigma']``.
    truncate : float
        Kernel radius in sigmas (scipy's default 4.0).
    tune_images : int
        Training pairs the tuning uses (a seeded subset).
    """

    name = "gaussian_blur"
    param_grid = {"sigma": (0.3, 0.5, 0.7, 1.0, 1.4, 2.0)}
    param_rules = {"sigma": POSITIVE.or_none("tuned"), "truncate": POSITIVE}

    def __init__(self, *, sigma: float | None = None, truncate: float = 4.0, tune_images: int = 256) -> None:
        self.sigma = sigma
        self.truncate = truncate
        self.tune_images = tune_images

    def _filter(self, noisy: Tensor, *, sigma: float) -> Tensor:
        return gaussian_filter(noisy, sigma=sigma, truncate=self.truncate)


@DENOISERS.register(
    "tv_chambolle",
    source="classical: total variation, Chambolle (2004) projection algorithm; batched torch port of skimage's",
    description="total-variation denoising per channel, weight tuned on the training pairs",
    test_params={"tune_images": 8},
)
class TVChambolle(TunedDenoiser):
    """Total-variation (Rudin-Osher-Fatemi) denoising by Chambolle's projection algorithm.

    Same iteration and per-image stopping rule as
    ``skimage.restoration.denoise_tv_chambolle`` on each channel, run as one torch batch.

    Parameters
    ----------
    weight : float or None
        Regularisation weight; None tunes it over ``param_grid['weight']``.
    eps : float
        Relative energy change that stops an image.
    max_num_iter : int
        Iteration cap.
    tune_images : int
        Training pairs the tuning uses (a seeded subset).

    References
    ----------
    A. Chambolle, "An algorithm for total variation minimization and applications",
    J. Math. Imaging Vis. 20, 89-97 (2004).
    """

    name = "tv_chambolle"
    param_grid = {"weight": (0.02, 0.04, 0.07, 0.1, 0.15, 0.25, 0.4, 0.7)}
    param_rules = {"weight": POSITIVE.or_none("tuned"), "eps": NON_NEGATIVE, "max_num_iter": POSITIVE_INT}

    def __init__(
        self, *, weight: float | None = None, eps: float = 2e-4, max_num_iter: int = 200, tune_images: int = 256
    ) -> None:
        self.weight = weight
        self.eps = eps
        self.max_num_iter = max_num_iter
        self.tune_images = tune_images

    def _filter(self, noisy: Tensor, *, weight: float) -> Tensor:
        return tv_chambolle(noisy, weight=weight, eps=self.eps, max_num_iter=self.max_num_iter)
