"""Non-local means, batched in torch: the whole batch at once, on the images' device.

The algorithm is scikit-image's fast mode (Darbon et al. 2008, as in
``skimage.restoration.denoise_nl_means(fast_mode=True)``), rewritten as tensor operations
over the batch: for each shift d of the search window, the squared difference of the
(reflect-padded) images and their shifted copies, a box sum over the patch, the weight
exp(-max(distance - 2 sigma^2, 0) / h^2) cut off beyond 5, and the weighted mean.

Two paths compute the same weights. On a CPU, ``baselines.nlm_cpu`` fuses each shift's
work into one compiled pass (numba) that stays in the first-level cache; on a GPU (and in the
tests, on a CPU too) ``_batched_torch`` runs it as tensor operations.

What makes the torch path fast (4x a plain in-place loop over all shifts, one CPU thread,
28x28 images): the distance of shift -d at p is that of d at p - d, so only half the
shifts are computed (on the image grown by d, where both uses fall); the images are scaled
per image by sqrt(log2(e) / h^2), so the weight is one ``exp2`` (a third of ``exp``'s
cost) of a box sum with no further arithmetic; the box sum is separable and done by
doubling (a side-4 box is four shifted adds); the batch is the innermost axis, so every
shifted window is a long contiguous run; and each chunk size records its buffers, views
and operations once (``_Plan``) and replays them, written with ``out=``: on a CPU, a fresh
megabyte-sized tensor per operation cost more than the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import torch
from torch import Tensor

from baselines.base import TunedDenoiser, check_positive, estimate_noise_sigma
from baselines.filters import noise_sigma
from bench.estimator import POSITIVE, POSITIVE_INT, check_images
from bench.registry import DENOISERS

__all__ = ["nl_means", "skimage_nl_means", "NLMeans"]

#: Smallest filtering strength: a noiseless image (sigma estimate 0) must not divide by zero.
_MIN_H = 1e-4
_LOG2E = math.log2(math.e)
#: scikit-image's DISTANCE_CUTOFF: patches further apart (in h^2 units) get weight 0.
_CUTOFF = 5.0
#: Elements of one work buffer per chunk of the torch path (CPU: cache-sized; GPU: few launches).
_CHUNK_ELEMENTS = {"cpu": 1 << 19, "cuda": 1 << 25}
#: Images per call of the compiled CPU kernel (64-256 measured alike on 28x28).
_CPU_CHUNK = 128
#: Padded pixels per call of the compiled CPU kernel: large images go one (or a few) at a time.
_CPU_CHUNK_PIXELS = 1 << 18
#: Elements of the work rows (values, scaled values, sums, weight sums) of one band of output
#: rows of the compiled CPU kernel: every shift runs over a band while it is in the
#: second-level cache.
_CPU_BAND_ELEMENTS = 1 << 16


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
    sigma = noise_sigma(images).mean(1)
    strength = (h_scale * sigma).clamp_min(_MIN_H)
    size = patch_size + 1 - patch_size % 2
    run = _fused_cpu if images.device.type == "cpu" else _batched_torch
    return run(images, sigma, strength, size, patch_distance)


def _units(sigma: Tensor, strength: Tensor, channels: int, size: int) -> tuple[Tensor, Tensor]:
    """Per image: the scale that makes squared differences log2 weights, and the noise term
    in those units: weight = exp2(min(box sum of (noise - squared difference), 0))."""
    scale = torch.sqrt(_LOG2E / (channels * size * size * strength.square()))
    return scale, sigma.square() * scale.square() * (2 * channels)


def _fused_cpu(images: Tensor, sigma: Tensor, strength: Tensor, size: int, distance: int) -> Tensor:
    """The CPU path: ``baselines.nlm_cpu``'s compiled kernel on chunks of images, the chunks
    spread over torch's CPU threads (the kernel releases the GIL)."""
    from baselines.nlm_cpu import nl_means_chunk

    n, c, h, w = images.shape
    pad = size // 2 + distance
    index = [_reflect_index(length, pad, images.device) for length in (h, w)]
    scale, noise = _units(sigma, strength, c, size)
    threads = torch.get_num_threads()
    per_chunk = max(1, min(_CPU_CHUNK, _CPU_CHUNK_PIXELS // (len(index[0]) * len(index[1]))))
    step = max(1, min(per_chunk, -(-n // threads)))
    row_elements = (3 * c + 1) * len(index[1]) * min(step, n)
    band = max(_band_floor(size, distance), _CPU_BAND_ELEMENTS // row_elements)

    def chunk(start: int) -> Tensor:
        part = slice(start, start + step)
        values = images[part].permute(1, 2, 3, 0).index_select(1, index[0]).index_select(2, index[1]).contiguous()
        result = nl_means_chunk(
            values.numpy(), scale[part].numpy(), noise[part].numpy(), size, distance, _CUTOFF * _LOG2E, band
        )
        return torch.from_numpy(result).permute(3, 0, 1, 2)

    starts = range(0, n, step)
    if threads > 1 and len(starts) > 1:
        with ThreadPoolExecutor(min(threads, len(starts))) as pool:
            parts = list(pool.map(chunk, starts))
    else:
        parts = [chunk(start) for start in starts]
    return torch.cat(parts).contiguous() if parts else images.clone()


def _band_floor(size: int, distance: int) -> int:
    # Each band recomputes about distance + size rows of weights per shift; four times that
    # keeps the repeat under a fifth of the work.
    return 4 * (distance + size)


def _batched_torch(images: Tensor, sigma: Tensor, strength: Tensor, size: int, distance: int) -> Tensor:
    """The GPU path (any device): the batch in chunks of recorded tensor operations (``_Plan``)."""
    n, c, h, w = images.shape
    budget = _CHUNK_ELEMENTS.get(images.device.type, _CHUNK_ELEMENTS["cpu"])
    step = max(1, budget // (c * (h + size + distance) * (w + size + distance)))
    step = -(-n // -(-n // step)) if n else 1  # equal chunks: a small last one pays the per-shift overhead
    plans: dict[int, _Plan] = {}  # at most two chunk sizes
    parts = []
    for i in range(0, n, step):
        chunk = images[i : i + step]
        if len(chunk) not in plans:
            plans[len(chunk)] = _Plan(chunk, size, distance)
        parts.append(plans[len(chunk)].run(chunk, sigma[i : i + step], strength[i : i + step]))
    return torch.cat(parts) if parts else images.clone()


def _half_shifts(distance: int) -> list[tuple[int, int]]:
    # One of each pair (d, -d) of non-zero shifts: dy > 0, or dy == 0 and dx > 0.
    return [(dy, dx) for dy in range(distance + 1) for dx in range(-distance, distance + 1) if dy > 0 or dx > 0]


class _Buffers:
    """Flat work buffers, allocated on first use, handed out as contiguous views of any shape."""

    def __init__(self, like: Tensor, elements: int) -> None:
        self.like, self.elements, self.flat = like, elements, {}

    def view(self, name: str, *shape: int) -> Tensor:
        if name not in self.flat:
            self.flat[name] = self.like.new_empty(self.elements)
        return self.flat[name][: math.prod(shape)].view(shape)


class _Plan:
    """The work of one chunk size: every buffer and view made once, every operation recorded.

    Each chunk copies its images in and replays the recorded calls. Building the views and
    dispatching them anew cost about 5 ms per chunk of any size (measured on a CPU), a
    tenth of a 256-image chunk's arithmetic.
    """

    def __init__(self, like: Tensor, size: int, distance: int) -> None:
        n, c, h, w = like.shape
        self.shape, self.size, self.box, self.pad = like.shape, size, 2 * (size // 2), size // 2 + distance
        self.index = [_reflect_index(length, self.pad, like.device) for length in (h, w)]
        # Batch innermost (C x H x W x N): a shifted window is a run of whole rows, each row
        # contiguous over columns and images, so every operation streams long contiguous runs.
        self.values = like.new_empty(c, h + 2 * self.pad, w + 2 * self.pad, n)
        self.scaled = torch.empty_like(self.values)
        self.scale, self.noise = like.new_empty(n), like.new_empty(n)
        self.sums, self.weight_sums = like.new_empty(c, h, w, n), like.new_empty(1, h, w, n)
        buffers = _Buffers(like, c * (h + distance + self.box) * (w + distance + self.box) * n)
        self.steps = [step for shift in _half_shifts(distance) for step in self._shift_steps(shift, buffers)]

    def run(self, images: Tensor, sigma: Tensor, strength: Tensor) -> Tensor:
        """Non-local means of ``images`` (this plan's chunk size), a fresh N x C x H x W tensor."""
        c, h, w = self.shape[1:]
        pad = self.pad
        torch.index_select(images.permute(1, 2, 3, 0).index_select(1, self.index[0]), 2, self.index[1], out=self.values)
        scale, noise = _units(sigma, strength, c, self.size)
        self.scale.copy_(scale)
        self.noise.copy_(noise)
        torch.mul(self.values, self.scale, out=self.scaled)
        # The shift 0 has distance 0 and weight 1.
        self.sums.copy_(self.values[:, pad : pad + h, pad : pad + w])
        self.weight_sums.fill_(1.0)
        for step in self.steps:
            step()
        return torch.div(self.sums, self.weight_sums).permute(3, 0, 1, 2).contiguous()

    def _shift_steps(self, shift: tuple[int, int], buffers: _Buffers) -> list[Callable[[], object]]:
        (dy, dx), (n, _, h, w), pad = shift, self.shape, self.pad
        rows, cols = h + dy, w + abs(dx)  # the grid of p: rows -dy .. h-1, cols min(0, -dx) ..
        if self.box == 0:  # patches of one pixel: all alike
            steps, weights = [], buffers.view("ones", rows, cols, n).fill_(1.0)
        else:
            steps, weights = self._weight_steps(shift, (rows, cols), buffers)
        # Weights of d at p (pairs p, p + d) and of -d at p, the same pair seen from p + d.
        for sign, (row, col) in ((1, (dy, max(dx, 0))), (-1, (0, max(-dx, 0)))):
            weight = weights[None, row : row + h, col : col + w]
            other = self.values[:, pad + sign * dy : pad + sign * dy + h, pad + sign * dx : pad + sign * dx + w]
            steps += [partial(self.sums.addcmul_, weight, other), partial(self.weight_sums.add_, weight)]
        return steps

    def _weight_steps(
        self, shift: tuple[int, int], grid: tuple[int, int], buffers: _Buffers
    ) -> tuple[list[Callable[[], object]], Tensor]:
        """Steps that leave the weights of shift d on ``grid`` (H' x W' x N), and those weights."""
        (dy, dx), c, n, box = shift, self.shape[1], self.shape[0], self.box
        top, left = self.pad - dy - box // 2 + 1, self.pad + min(0, -dx) - box // 2 + 1
        extent = (grid[0] + box - 1, grid[1] + box - 1)
        here = self.scaled[:, top : top + extent[0], left : left + extent[1]]
        there = self.scaled[:, top + dy : top + dy + extent[0], left + dx : left + dx + extent[1]]
        diff = buffers.view("diff", c, *extent, n)
        steps: list[Callable[[], object]] = [partial(torch.sub, here, there, out=diff)]
        if c == 1:
            terms = diff[0]
            steps.append(partial(torch.addcmul, self.noise, diff, diff, value=-1.0, out=diff))
        else:
            terms = buffers.view("terms", *extent, n)
            steps += [
                diff.square_,
                partial(torch.sum, diff, 0, out=terms),
                partial(torch.sub, self.noise, terms, out=terms),
            ]
        column_steps, partial_sums = _window_sum(terms, box, -2, buffers, "cols")
        row_steps, sums = _window_sum(partial_sums, box, -3, buffers, "rows")
        cut = partial(torch.nn.functional.threshold_, sums, -_CUTOFF * _LOG2E, -math.inf)
        return steps + column_steps + row_steps + [partial(sums.clamp_max_, 0.0), cut, sums.exp2_], sums


def _window_sum(
    values: Tensor, width: int, dim: int, buffers: _Buffers, name: str
) -> tuple[list[Callable[[], object]], Tensor]:
    """Steps that leave sums of ``width`` consecutive entries along ``dim``, and those sums.

    By doubling, S_2k(i) = S_k(i) + S_k(i + k), and sums over powers of two combined by the
    binary digits of ``width``: a power of two needs log2(width) shifted adds and nothing else.
    """
    length = values.shape[dim] - width + 1
    shape = list(values.shape)
    steps: list[Callable[[], object]] = []
    power, span, done, total = values, 1, 0, None
    while span <= width:
        if width & span:
            piece = power.narrow(dim, done, length)
            if total is None and width < 2 * span:
                return steps, piece  # the only digit: a view, no copy
            if total is None:
                total = buffers.view(name + "-total", *shape[:dim], length, *shape[dim:][1:])
                steps.append(partial(total.copy_, piece))
            else:
                steps.append(partial(total.add_, piece))
            done += span
        if 2 * span <= width:
            shorter = power.shape[dim] - span
            shape[dim] = shorter
            out = buffers.view(f"{name}-{span.bit_length() % 2}", *shape)
            steps.append(partial(torch.add, power.narrow(dim, 0, shorter), power.narrow(dim, span, shorter), out=out))
            power = out
        span *= 2
    return steps, total


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
