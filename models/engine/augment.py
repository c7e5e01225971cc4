"""Training-time augmentation, drawn from the training loop's generator so that a seeded fit
(and a resumed one) sees the same batches: classifier shifts and the eight flips and
transposes of a square patch (also the denoisers' self-ensemble at test time)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["random_shift", "dihedral", "random_dihedral"]


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


def dihedral(x: Tensor, k: int, *, undo: bool = False) -> Tensor:
    """The ``k``-th (0-7) flip/transpose of an image batch: bit 0 flips W, bit 1 flips H,
    bit 2 transposes (applied first); ``undo`` applies the inverse.

    >>> x = torch.arange(6.0).view(1, 1, 2, 3)
    >>> all(torch.equal(dihedral(dihedral(x, k), k, undo=True), x) for k in range(8))
    True
    """
    steps = [(k & 4, lambda t: t.transpose(-2, -1)), (k & 1, lambda t: t.flip(-1)), (k & 2, lambda t: t.flip(-2))]
    for wanted, step in reversed(steps) if undo else steps:
        x = step(x) if wanted else x
    return x


def random_dihedral(*batches: Tensor, generator: torch.Generator) -> tuple[Tensor, ...]:
    """Each square image of the N x C x P x P batches under its own one of the eight flips and
    transposes (the same one at the same index of every batch: noisy and clean stay paired)."""
    n = len(batches[0])
    ks = torch.randint(0, 8, (n,), generator=generator, device=generator.device).to(batches[0].device)
    out = tuple(batch.clone() for batch in batches)
    for k in range(1, 8):
        chosen = (ks == k).nonzero().flatten()
        if len(chosen):
            for source, target in zip(batches, out):
                target[chosen] = dihedral(source[chosen], k)
    return out
