"""Non-local means, batched in torch: the whole batch at once, on the images' device.

The algorithm is scikit-image's fast mode (Darbon et al. 2008, as in
``skimage.restoration.denoise_nl_means(fast_mode=True)``), rewritten as tensor operations
over the batch: for each shift d of the search window, the squared difference of the
(reflect-padded) images and their shifted copies, a box sum over the patch, the weight
exp(-max(distance - 2 sigma^2, 0) / h^2) cut off beyond 5, and the weighted mean.

What makes it fast on a CPU (each measured against the plain loop over all shifts):
the distance of shift -d at p is that of d at p - d, so only half the shifts are computed
(on the image grown by d, where both uses fall); the images are scaled per image by
sqrt(log2(e) / h^2), so the weight is one ``exp2`` (a third of ``exp``'s cost) of a box sum
with no further arithmetic; the box sum is separable and done by doubling (a side-4 box is
four shifted adds); and every work buffer is allocated once per chunk, written with
``out=``: on a CPU, a fresh megabyte-sized tensor per operation cost more than the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from baselines.base import TunedDenoiser, check_images, check_positive, estimate_noise_sigma
from baselines.filters import noise_sigma
from bench.estimator import POSITIVE, POSITIVE_INT
from bench.registry import DENOISERS

__all__ = ["nl_means", "skimage_nl_means", "NLMeans"]

#: Smallest filtering strength: a noiseless image (sigma estimate 0) must not divide by zero.
_MIN_H = 1e-4
_LOG2E = math.log2(math.e)
#: scikit-image's DISTANCE_CUTOFF: patches further apart (in h^2 units) get weight 0.
_CUTOFF = 5.0
#: Elements of one work buffer per chunk (CPU: cache-sized; GPU: few launches).
_CHUNK_ELEMENTS = {"cpu": 1 << 19, "cuda": 1 << 25}


def _check_window(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"nlm {what} {value!r} is invalid; expected an integer >= 1")


def _reflect_index(n: int, pad: int, device: torch.device) -> Tensor:
    # numpy's 'reflect' (no edge repeat: d c b | a b c d | c b a), period 2n - 2, any pad.
    period = max(2 * n - 2, 1)
    position = torch.arange(-pad, n + pad, device=device).remainder(period)
    return torch.where(position >= n, period - position, position)


def nl_means(images: Tensor, *, patch_size: int, patch_distance: int, h_scale: float) -> Tensor:
    """Non-local means of a float N x C x H x W batch, equal to scikit-image's fast mode.

    Each image's noise sigma is estimated (mean over its channels); the filter gets that
    sigma, so patch distances are corrected for the noise, and ``h = h_scale * sigma``.
    The channels of an image share patch weights. As in scikit-image, an even
    ``patch_size`` is rounded up and the box that sums a patch's squared differences is
    ``2 * (patch_size // 2)`` pixels a side.

    >>> x = torch.rand(2, 1, 12, 12)
    >>> nl_means(x, patch_size=3, patch_distance=2, h_scale=1.0).shape
    torch.Size([2, 1, 12, 12])
    """
    check_images(images, "nlm images")
    _check_window(patch_size, "patch_size")
    _check_window(patch_distance, "patch_distance")
    check_positive(h_scale, "nlm h_scale")
    images = images.float()
    n, c, h, w = images.shape
    sigma = noise_sigma(images).mean(1)
    strength = (h_scale * sigma).clamp_min(_MIN_H)
    size = patch_size + 1 - patch_size % 2
    budget = _CHUNK_ELEMENTS.get(images.device.type, _CHUNK_ELEMENTS["cpu"])
    step = max(1, budget // (c * (h + size + patch_distance) * (w + size + patch_distance)))
    step = -(-n // -(-n // step)) if n else 1  # equal chunks: a small last one pays the per-shift overhead
    parts = [
        _nl_means_chunk(images[i : i + step], sigma[i : i + step], strength[i : i + step], size, patch_distance)
        for i in range(0, n, step)
    ]
    return torch.cat(parts) if parts else images.clone()


def _half_shifts(distance: int) -> list[tuple[int, int]]:
    # One of each pair (d, -d) of non-zero shifts: dy > 0, or dy == 0 and dx > 0.
    return [(dy, dx) for dy in range(distance + 1) for dx in range(-distance, distance + 1) if dy > 0 or dx > 0]


class _Buffers:
    """Flat work buffers, allocated once per chunk, handed out as contiguous views of any shape."""

    def __init__(self, like: Tensor, elements: int) -> None:
        self.like, self.elements, self.flat = like, elements, {}

    def view(self, name: str, *shape: int) -> Tensor:
        if name not in self.flat:
            self.flat[name] = self.like.new_empty(self.elements)
        return self.flat[name][: math.prod(shape)].view(shape)


def _nl_means_chunk(images: Tensor, sigma: Tensor, strength: Tensor, size: int, distance: int) -> Tensor:
    n, c, h, w = images.shape
    half = size // 2
    box = 2 * half  # scikit-image's integral-image box: offsets -half+1 .. half
    pad = half + distance
    # Batch innermost (C x H x W x N): a shifted window is a run of whole rows, each row
    # contiguous over columns and images, so every operation streams long contiguous runs
    # (3x faster on a CPU than N x C x H x W, where each run is one short image row).
    values = images.permute(1, 2, 3, 0).index_select(1, _reflect_index(h, pad, images.device))
    values = values.index_select(2, _reflect_index(w, pad, images.device))
    # In units of log2: weight = exp2(min(box sum of (2 sigma^2 - squared difference), 0)).
    scale = (_LOG2E / (c * size * size * strength.square())).sqrt()
    scaled = values * scale
    noise = 2 * c * sigma.square() * scale.square()
    buffers = _Buffers(images, c * (h + distance + box) * (w + distance + box) * n)
    # The shift 0 has distance 0 and weight 1.
    numerator = values[:, pad : pad + h, pad : pad + w].clone()
    denominator = images.new_ones(1, h, w, n)
    for dy, dx in _half_shifts(distance):
        weights = _shift_weights(scaled, noise, (dy, dx), (h, w), box, buffers)
        # Weights of d at p (pairs p, p + d) and of -d at p, the same pair seen from p + d.
        for sign, (row, col) in ((1, (dy, max(dx, 0))), (-1, (0, max(-dx, 0)))):
            weight = weights[None, row : row + h, col : col + w]
            other = values[:, pad + sign * dy : pad + sign * dy + h, pad + sign * dx : pad + sign * dx + w]
            numerator.addcmul_(weight, other)
            denominator.add_(weight)
    return numerator.div_(denominator).permute(3, 0, 1, 2).contiguous()


def _shift_weights(
    scaled: Tensor, noise: Tensor, shift: tuple[int, int], image: tuple[int, int], box: int, buffers: _Buffers
) -> Tensor:
    """Weights (H' x W' x N) of the shift d for the pixels p of the image and of the image shifted by -d."""
    (dy, dx), (h, w) = shift, image
    c, n = scaled.shape[0], scaled.shape[-1]
    rows, cols = h + dy, w + abs(dx)  # the grid of p: rows -dy .. h-1, cols min(0, -dx) ..
    if box == 0:
        return buffers.view("weights", rows, cols, n).fill_(1.0)  # patches of one pixel: all alike
    pad = (scaled.shape[2] - w) // 2
    top, left = pad - dy - box // 2 + 1, pad + min(0, -dx) - box // 2 + 1
    extent = (rows + box - 1, cols + box - 1)
    here = scaled[:, top : top + extent[0], left : left + extent[1]]
    there = scaled[:, top + dy : top + dy + extent[0], left + dx : left + dx + extent[1]]
    diff = torch.sub(here, there, out=buffers.view("diff", c, *extent, n))
    if c == 1:
        terms = torch.addcmul(noise, diff, diff, value=-1, out=diff)[0]
    else:
        terms = torch.sub(noise, diff.square_().sum(0), out=buffers.view("terms", *extent, n))
    sums = _window_sum(_window_sum(terms, box, -2, buffers, "cols"), box, -3, buffers, "rows")
    sums.clamp_max_(0.0)
    return torch.nn.functional.threshold_(sums, -_CUTOFF * _LOG2E, -math.inf).exp2_()


def _window_sum(values: Tensor, width: int, dim: int, buffers: _Buffers, name: str) -> Tensor:
    """Sums of ``width`` consecutive entries along ``dim``, by doubling: S_2k(i) = S_k(i) + S_k(i + k).

    Sums over powers of two are combined by the binary digits of ``width``; a power of two
    needs log2(width) shifted adds and nothing else.
    """
    length = values.shape[dim] - width + 1
    shape = list(values.shape)
    power, span, done, total = values, 1, 0, None
    while span <= width:
        if width & span:
            piece = power.narrow(dim, done, length)
            if total is None and width < 2 * span:
                return piece  # the only digit: a view, no copy
            if total is None:
                total = buffers.view(name + "-total", *shape[:dim], length, *shape[dim:][1:]).copy_(piece)
            else:
                total.add_(piece)
            done += span
        if 2 * span <= width:
            shorter = power.shape[dim] - span
            shape[dim] = shorter
            out = buffers.view(f"{name}-{span.bit_length() % 2}", *shape)
            power = torch.add(power.narrow(dim, 0, shorter), power.narrow(dim, span, shorter), out=out)
        span *= 2
    return total


def skimage_nl_means(planes: np.ndarray, *, patch_size: int, patch_distance: int, h_scale: float) -> np.ndarray:
    """The reference: scikit-image's ``denoise_nl_means(fast_mode=True)`` image by image.

    ``planes`` is N x C x H x W float64, with the same sigma estimate and ``h`` as
    :func:`nl_means`; used to check it and to time it against.
    """
    from skimage.restoration import denoise_nl_means

    sigmas = estimate_noise_sigma(planes).mean(axis=1)
    out = np.empty_like(planes)
    for i, (image, sigma) in enumerate(zip(planes, sigmas, strict=True)):
        options = dict(patch_size=patch_size, patch_distance=patch_distance, fast_mode=True, sigma=float(sigma))
        h = max(h_scale * float(sigma), _MIN_H)
        channels_last = np.moveaxis(image, 0, -1)
        # scikit-image squeezes a single channel away; the reshape puts it back.
        result = denoise_nl_means(channels_last, h=h, channel_axis=-1, **options).reshape(channels_last.shape)
        out[i] = np.moveaxis(result, -1, 0)
    return out


@DENOISERS.register(
    "nlm",
    source="classical: non-local means (Buades, Coll, Morel 2005), scikit-image fast mode (Darbon et al. 2008)",
    description="non-local means with estimated noise sigma; patch size and strength tuned",
    test_params={"tune_images": 4, "patch_size": 3, "patch_distance": 3},
)
class NLMeans(TunedDenoiser):
    """Non-local means: each pixel becomes a weighted mean of pixels with similar patches.

    scikit-image's fast mode (``denoise_nl_means(fast_mode=True)``) as batched torch
    (:func:`nl_means`), on the images' device; equal to it within 0.1 dB PSNR.

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
        return nl_means(noisy, patch_size=patch_size, patch_distance=patch_distance, h_scale=h_scale)
