"""Image-quality metrics, batched in torch, per image (data_range 1), and bootstrap intervals.

SSIM follows DESIGN.md: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 0.01,
K2 0.03, reflect padding and a 5-pixel border crop, per channel then averaged; it matches
``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``. The Gaussian filter is applied as two banded
matrix products, which on small maps is far faster on a CPU than conv2d.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

from bench.estimator import check_images

__all__ = ["mse", "psnr", "psnr_uint8", "ssim", "accuracy", "mean_ci"]

_SIGMA, _TRUNCATE, _K1, _K2 = 1.5, 3.5, 0.01, 0.03
_RADIUS = int(_TRUNCATE * _SIGMA + 0.5)  # 5: the 11x11 window, and the border skimage crops


def _check_pair(pred: Tensor, target: Tensor) -> None:
    check_images(pred, "pred", floating=False)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must be N x C x H x W of one shape; got {tuple(pred.shape)} and {tuple(target.shape)}"
        )


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error per image, Tensor[N] (float32)."""
    _check_pair(pred, target)
    return (pred.float() - target.float()).pow(2).flatten(1).mean(1)


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR per image in dB, 10 log10(1 / MSE) with MSE floored at 1e-10.

    >>> x = torch.zeros(1, 1, 2, 2); y = torch.full((1, 1, 2, 2), 0.1)
    >>> round(float(psnr(x, y)[0]), 4)
    20.0
    """
    return -10.0 * torch.log10(mse(pred, target).clamp_min(1e-10))


def psnr_uint8(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR per image of ``pred`` clipped to [0, 1] and rounded to 8 bits, as the denoising
    papers' ``im2uint8`` does before scoring (``target`` is used as given).

    >>> x = torch.zeros(1, 1, 2, 2); y = torch.full((1, 1, 2, 2), 0.1)
    >>> round(float(psnr_uint8(y, x)[0]), 2)  # 0.1 rounds to 26/255
    19.83
    """
    _check_pair(pred, target)
    return psnr(pred.float().clamp(0.0, 1.0).mul(255.0).round().div(255.0), target)


@lru_cache(maxsize=16)
def _band(size: int) -> np.ndarray:
    # Row i of the filtered signal is band[i] @ signal (scipy's 'reflect' borders), for the
    # rows that survive skimage's border crop only: their taps are all inside the signal, so
    # each row sums to 1 and the blur of a constant is that constant.
    full = gaussian_filter1d(np.eye(size), _SIGMA, axis=0, mode="reflect", truncate=_TRUNCATE)
    return full[_RADIUS : size - _RADIUS]


def ssim(pred: Tensor, target: Tensor, *, chunk: int = 256) -> Tensor:
    """Mean SSIM per image, Tensor[N]; images need H, W >= 11.

    >>> x = torch.rand(2, 1, 16, 16)
    >>> bool(torch.allclose(ssim(x, x), torch.ones(2)))
    True
    """
    _check_pair(pred, target)
    # Chunks of 256 28x28 images keep the maps (3 MB) in cache: measured 1.3x faster on a
    # 2-core CPU than chunks of 1,024.
    if min(pred.shape[-2:]) < 2 * _RADIUS + 1:
        raise ValueError(f"ssim needs images of at least 11x11 pixels; got {tuple(pred.shape[-2:])}")
    return torch.cat([_ssim_chunk(p, t) for p, t in zip(pred.split(chunk), target.split(chunk))])


def _ssim_chunk(pred: Tensor, target: Tensor) -> Tensor:
    """SSIM of each image of a chunk; each channel is scored as its own image, then averaged.

    Four maps are blurred: x, y, x^2 + y^2 + C1 + C2 and 2xy + C2 (only these sums enter
    the formula, and the blur keeps constants, so the maps carry the constants for free).
    Each 1-D Gaussian pass is one matrix product band (H' x H) @ maps^T, contracting the
    maps' last axis where it lies, so no map is ever transposed or copied: the W pass turns
    (N*C*H, W) rows into (W', N*C, H), the H pass turns those into (H', 4, W', N*C), whose
    per-image means reduce over leading axes. Measured 1.6x faster on one CPU thread than
    five maps blurred as (maps @ band^T) after a transposed copy.
    """
    n, c, h, w = pred.shape
    b = n * c
    c1, c2 = _K1**2, _K2**2
    x, y = pred.float().reshape(b * h, w), target.float().reshape(b * h, w)
    squares = torch.addcmul(x.new_full((), c1 + c2), x, x).addcmul_(y, y)
    cross = torch.addcmul(x.new_full((), c2), x, y, value=2.0)
    band_h, band_w = _band_tensor(h, x.device), _band_tensor(w, x.device)
    rows = x.new_empty(4, len(band_w), b, h)
    for k, plane in enumerate((x, y, squares, cross)):
        torch.mm(band_w, plane.T, out=rows[k].view(len(band_w), b * h))
    mu_x, mu_y, squares, cross = (band_h @ rows.view(-1, h).T).view(len(band_h), 4, len(band_w), b).unbind(1)
    # Fused multiply-adds, in place where a map is no longer needed: fresh temporaries of
    # this size cost more than the arithmetic.
    luminance = torch.addcmul(x.new_full((), c1), mu_x, mu_y, value=2.0)  # 2 mu_x mu_y + C1
    contrast = cross.addcmul_(mu_x, mu_y, value=-2.0)  # 2 sigma_xy + C2
    energy = torch.addcmul(x.new_full((), c1), mu_x, mu_x).addcmul_(mu_y, mu_y)  # mu_x^2 + mu_y^2 + C1
    spread = squares.sub_(energy)  # sigma_x^2 + sigma_y^2 + C2
    ratio = luminance.mul_(contrast).div_(energy.mul_(spread))
    return ratio.mean(dim=(0, 1)).reshape(n, c).mean(1)


@lru_cache(maxsize=32)
def _band_tensor(size: int, device: torch.device) -> Tensor:
    return torch.as_tensor(_band(size), dtype=torch.float32, device=device)


def accuracy(predicted: Tensor, labels: Tensor) -> float:
    """Share of correct labels, in [0, 1]."""
    if predicted.shape != labels.shape:
        raise ValueError(
            f"predicted and true labels differ in shape: {tuple(predicted.shape)} vs {tuple(labels.shape)}"
        )
    return float((predicted.cpu() == labels.cpu()).float().mean()) if len(labels) else float("nan")


def mean_ci(values: Tensor, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap interval of per-image values.

    >>> mean_ci(torch.ones(10))
    (1.0, 1.0, 1.0)
    """
    values = values.detach().double().cpu().flatten()
    if len(values) == 0:
        return (float("nan"),) * 3
    generator = torch.Generator().manual_seed(seed)
    index = torch.randint(len(values), (n_boot, len(values)), generator=generator)
    means = values[index].mean(1)
    alpha = (1 - level) / 2
    low, high = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64)).tolist()
    return float(values.mean()), low, high
