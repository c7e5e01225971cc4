"""Image-quality metrics, batched in torch, per image (data_range 1)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["mse", "psnr"]


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"pred and target must be N x C x H x W of one shape; got {tuple(pred.shape)} and {tuple(target.shape)}")


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
