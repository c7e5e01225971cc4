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

__all__ = ["mse", "psnr", "ssim", "accuracy", "mean_ci"]

_SIGMA, _TRUNCATE, _K1, _K2 = 1.5, 3.5, 0.01, 0.03
_RADIUS = int(_TRUNCATE * _SIGMA + 0.5)  # 5: the 11x11 window, and the border skimage crops


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
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


@lru_cache(maxsize=16)
def _band(size: int) -> np.ndarray:
    # Row i of the filtered signal is band[i] @ signal (scipy's 'reflect' borders), for the
    # rows that survive skimage's border crop only.
    full = gaussian_filter1d(np.eye(size), _SIGMA, axis=0, mode="reflect", truncate=_TRUNCATE)
    return full[_RADIUS : size - _RADIUS]


def _blur_cropped(maps: Tensor) -> Tensor:
    """Blur and crop maps laid out as (K, H, B, W) -> (K, H', B, W').

    The (H, B, W) layout turns both 1-D passes into large GEMMs with no transposed copies:
    one over all rows (the last axis), one over all columns (H as the inner dimension).
    """
    k, h, b, w = maps.shape
    band_h = torch.as_tensor(_band(h), dtype=maps.dtype, device=maps.device)
    band_w = torch.as_tensor(_band(w), dtype=maps.dtype, device=maps.device)
    rows = (maps.reshape(-1, w) @ band_w.T).reshape(k, h, b * band_w.shape[0])
    return (band_h @ rows).reshape(k, band_h.shape[0], b, band_w.shape[0])


def ssim(pred: Tensor, target: Tensor, *, chunk: int = 256) -> Tensor:
    """Mean SSIM per image, Tensor[N]; images need H, W >= 11.

    >>> x = torch.rand(2, 1, 16, 16)
    >>> bool(torch.allclose(ssim(x, x), torch.ones(2)))
    True
    """
    _check_pair(pred, target)
    # Chunks of 256 28x28 images keep the five maps (4 MB) in cache: measured 1.3x faster
    # on a 2-core CPU than chunks of 1,024.
    if min(pred.shape[-2:]) < 2 * _RADIUS + 1:
        raise ValueError(f"ssim needs images of at least 11x11 pixels; got {tuple(pred.shape[-2:])}")
    return torch.cat([_ssim_chunk(p, t) for p, t in zip(pred.split(chunk), target.split(chunk))])


def _ssim_chunk(pred: Tensor, target: Tensor) -> Tensor:
    n, c, h, w = pred.shape
    # (H, N*C, W) layout, see _blur_cropped; each channel is scored as its own image.
    maps = torch.empty((5, h, n * c, w), dtype=torch.float32, device=pred.device)
    x, y = maps[0], maps[1]
    x.copy_(pred.reshape(n * c, h, w).transpose(0, 1))
    y.copy_(target.reshape(n * c, h, w).transpose(0, 1))
    torch.mul(x, x, out=maps[2])
    torch.mul(y, y, out=maps[3])
    torch.mul(x, y, out=maps[4])
    mu_x, mu_y, xx, yy, xy = _blur_cropped(maps)
    # In place from here on: fresh temporaries of this size cost more than the arithmetic.
    c1, c2 = _K1**2, _K2**2
    mu_xy = mu_x * mu_y
    mu_sq = mu_x.square_().add_(mu_y.square_())  # mu_x^2 + mu_y^2
    num = xy.sub_(mu_xy).mul_(2).add_(c2).mul_(mu_xy.mul_(2).add_(c1))
    den = xx.add_(yy).sub_(mu_sq).add_(c2).mul_(mu_sq.add_(c1))
    per_channel = num.div_(den).mean(dim=(0, 2))
    return per_channel.reshape(n, c).mean(1)


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
