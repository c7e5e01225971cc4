"""Inference of a fitted network: images per forward pass, and large images tile by tile."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from models.engine.layers import to_layout

__all__ = ["DENOISE_CHUNK", "TILE", "TILE_MARGIN", "chunk_images", "apply_net"]

#: 28 x 28 images per forward pass in ``denoise``: on CPU small chunks keep activations in cache
#: (conv_ae_fmnist: 2,600 img/s per core at 32-64, 1,700 at 512); GPUs want large ones. Larger
#: images go in chunks of as many pixels (``chunk_images``), at least one image.
DENOISE_CHUNK = {"cpu": 64, "cuda": 1024}


#: Side of the tiles a large image is denoised in, and the border of surroundings each tile
#: sees: at least a network's receptive radius (17 for DnCNN-17, about 30 for the default
#: U-Net), and a multiple of 8 so tiles keep a U-Net's pooling grid (up to four levels).
TILE, TILE_MARGIN = 1024, 64


def chunk_images(device: torch.device, height: int, width: int) -> int:
    """Images of ``height x width`` per forward pass on ``device``: ``DENOISE_CHUNK``'s pixels."""
    return max(1, DENOISE_CHUNK.get(device.type, 256) * 28 * 28 // (height * width))


def apply_net(net: nn.Module, x: Tensor, *, tiled: bool = True) -> Tensor:
    """``net(x)`` in float32; with ``tiled``, an image larger than ``TILE`` x ``TILE`` goes tile by
    tile, each tile seen with ``TILE_MARGIN`` pixels of its surroundings, so memory stays bounded
    whatever the size (an entry of fixed input size takes its images whole)."""
    height, width = x.shape[-2:]
    if not tiled or height * width <= TILE * TILE:
        return net(to_layout(x)).float()
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            y0, x0 = max(0, top - TILE_MARGIN), max(0, left - TILE_MARGIN)
            region = x[..., y0 : top + TILE + TILE_MARGIN, x0 : left + TILE + TILE_MARGIN]
            tile = net(to_layout(region)).float()
            out[..., top : top + TILE, left : left + TILE] = tile[
                ..., top - y0 : top - y0 + TILE, left - x0 : left - x0 + TILE
            ]
    return out
