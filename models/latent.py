"""``LatentInterpolation``: decoding points between two images' codes (seed 002's figure)."""

from __future__ import annotations

import torch
from torch import Tensor

from bench.estimator import as_float_images
from models.engine.layers import to_layout

__all__ = ["LatentInterpolation"]


class LatentInterpolation:
    """``interpolate(a, b, steps)`` for autoencoders whose network has ``encode``/``decode``."""

    def interpolate(self, a: Tensor, b: Tensor, steps: int = 8) -> Tensor:
        """Decode ``steps`` points on the line between the codes of images ``a`` and ``b``.

        ``a`` and ``b`` are C x H x W (or 1 x C x H x W) images on one device; the result is
        ``steps x C x H x W``, from ``a``'s reconstruction to ``b``'s (seed 002).
        """
        self.check_fitted()
        if steps < 2:
            raise ValueError(f"interpolate steps {steps!r} is too small; expected an int >= 2")
        pair = torch.stack([as_float_images(t.reshape(-1, *t.shape[-3:]))[0] for t in (a, b)])
        self._check_shape(pair)
        net = self._net_on(pair.device)
        with torch.no_grad():
            za, zb = net.encode(to_layout(pair)).float()
            weights = torch.linspace(0.0, 1.0, steps, device=pair.device).view(-1, *[1] * za.ndim)
            return net.decode(za + weights * (zb - za)).float().clamp_(0.0, 1.0)
