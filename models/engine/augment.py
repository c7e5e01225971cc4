"""Training-time augmentation of classifier batches, drawn from the training loop's generator
so that a seeded fit (and a resumed one) sees the same batches."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["random_shift"]


def random_shift(images: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Each image of the N x C x H x W batch moved by its own offset of up to ``shift`` pixels
    along each axis; pixels moved in from outside are 0 (the background of the digit sets).

    One gather over the zero-padded batch: no per-image loop.
    """
    if shift == 0:
        return images
    n, _, height, width = images.shape
    offsets = torch.randint(0, 2 * shift + 1, (2, n), generator=generator, device=generator.device).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # N x H
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # N x W
    padded = F.pad(images, (shift, shift, shift, shift)).permute(0, 2, 3, 1)  # N x H' x W' x C
    batch = torch.arange(n, device=images.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
