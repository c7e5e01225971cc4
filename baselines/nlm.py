"""Non-local means, batched in torch: the whole batch at once, on the images' device.

The algorithm is scikit-image's fast mode (Darbon et al. 2008, as in
``skimage.restoration.denoise_nl_means(fast_mode=True)``), rewritten as tensor operations
over the batch: for each shift of the search window, the squared difference of the
(reflect-padded) images and their shifted copies, a box sum over the patch, the weight
exp(-max(distance - 2 sigma^2, 0) / h^2) cut off beyond 5, and the weighted mean. The work
buffers are allocated once per chunk and the loop runs in place: on a CPU, a fresh
megabyte-sized tensor per operation cost more than the arithmetic.
"""

from __future__ import annotations

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
    step = max(1, budget // (c * (h + size) * (w + size)))
    parts = [
        _nl_means_chunk(images[i : i + step], sigma[i : i + step], strength[i : i + step], size, patch_distance)
        for i in range(0, n, step)
    ]
    return torch.cat(parts) if parts else images.clone()


def _nl_means_chunk(images: Tensor, sigma: Tensor, strength: Tensor, size: int, distance: int) -> Tensor:
    n, c, h, w = images.shape
    half = size // 2
    box = 2 * half  # scikit-image's integral-image box: offsets -half+1 .. half
    pad = half + distance + 1
    padded = images.index_select(-2, _reflect_index(h, pad, images.device))
    padded = padded.index_select(-1, _reflect_index(w, pad, images.device))
    lead = 1 if box else 0
    first = pad - half + lead  # padded index of the box's first row for image row 0
    rows, cols = h + box - lead, w + box - lead
    base = padded[..., first : first + rows, first : first + cols]
    # The noise correction 2 C sigma^2 per pixel of the box, and -1 / (C h^2 s^2).
    offset = (2 * c * box * box * sigma.square()).view(n, 1, 1)
    scale = (-1.0 / (c * size * size * strength.square())).view(n, 1, 1)
    diff = images.new_empty(n, c, rows, cols)
    row_sums, distances, weights = images.new_empty(n, rows, w), images.new_empty(n, h, w), images.new_empty(n, h, w)
    term = images.new_empty(n, c, h, w)
    numerator, denominator = images.new_zeros(n, c, h, w), images.new_zeros(n, h, w)
    for dy in range(-distance, distance + 1):
        for dx in range(-distance, distance + 1):
            shifted = padded[..., first + dy : first + dy + rows, first + dx : first + dx + cols]
            torch.sub(base, shifted, out=diff).square_()
            squared = diff[:, 0] if c == 1 else diff.sum(1)
            _box_sum(squared, box, row_sums, distances)
            distances.sub_(offset).clamp_min_(0).mul_(scale)  # minus the patch distance
            torch.exp(distances, out=weights).masked_fill_(distances < -_CUTOFF, 0.0)
            denominator.add_(weights)
            value = shifted[..., half - lead : half - lead + h, half - lead : half - lead + w]
            numerator.add_(torch.mul(value, weights[:, None], out=term))
    return numerator.div_(denominator[:, None])


def _box_sum(values: Tensor, box: int, row_sums: Tensor, out: Tensor) -> None:
    # Sliding sums of side `box` by shifted in-place adds, rows then columns, into `out`.
    h, w = out.shape[-2:]
    if box == 0:
        out.zero_()
        return
    row_sums.copy_(values[..., :w])
    for j in range(1, box):
        row_sums.add_(values[..., j : j + w])
    out.copy_(row_sums[:, :h])
    for i in range(1, box):
        out.add_(row_sums[:, i : i + h])


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
