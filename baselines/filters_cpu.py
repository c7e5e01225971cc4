"""Compiled (numba) CPU kernels of ``baselines.filters``: Chambolle's TV iteration and the
Gaussian blur of large images.

``baselines.filters.tv_chambolle`` runs the iteration as batched torch operations on a GPU.
On a CPU each of the iteration's dozen tensor passes streams its operands through memory
(the whole plane, on a photograph), and a batch of thumbnails pays a dispatch per pass and
iteration; here each plane runs on its own, one compiled call for the stack. One
iteration is one pass over the rows: row i + 1 of the current estimate is made from the
dual variable p before p's row i is updated from rows i and i + 1, so the pass needs no
other full-size temporary. The arithmetic, its order per pixel, and the stopping rule are
scikit-image's ``_denoise_tv_chambolle_nd`` on a 2-D plane, down to numpy's float32 pairwise
sums of the energy.

``gaussian_planes`` filters each row, then each column, as a few multiply-adds of shifted,
contiguous rows per tap, with scipy.ndimage's 'reflect' borders: 3-4x
``scipy.ndimage.gaussian_filter`` on one thread on 256x256 and 512x512 photographs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["tv_chambolle_planes", "tv_chambolle_plane", "gaussian_planes"]

#: error_model 'numpy': a float division is IEEE's (inf or nan on zero, which never occurs
#: here), not Python's ZeroDivisionError check, whose branch kept the TV update loop scalar.
_JIT = {"fastmath": True, "boundscheck": False, "nogil": True, "cache": True, "error_model": "numpy"}
#: No fast-math for the TV iteration: a fused multiply-add would round g0^2 + g1^2 otherwise
#: than numpy does, and the stopping rule is that sensitive.
_EXACT = dict(_JIT, fastmath=False)
#: 1 / (2 * ndim) for a 2-D plane: Chambolle's step.
_TAU = 0.25


@njit(**_EXACT)
def tv_chambolle_planes(planes, weight, eps, max_num_iter):  # pragma: no cover - compiled
    """``tv_chambolle_plane`` of each plane of a float32 M x H x W stack, in one call."""
    out = np.empty_like(planes)
    for m in range(planes.shape[0]):
        out[m] = tv_chambolle_plane(planes[m], weight, eps, max_num_iter)
    return out


@njit(**_EXACT)
def tv_chambolle_plane(image, weight, eps, max_num_iter):  # pragma: no cover - compiled
    """Total-variation denoising of one float32 H x W plane; returns a new H x W array.

    ``weight`` > 0 is the regularisation, the iteration stops when the energy changes by
    less than ``eps`` times the first iteration's energy, or after ``max_num_iter``.
    """
    h, w = image.shape
    p0 = np.zeros((h, w), np.float32)  # the dual variable along rows (axis 0) ...
    p1 = np.zeros((h, w), np.float32)  # ... and along columns (axis 1)
    out = image.copy()  # the first iteration's estimate is the image itself
    squares = np.zeros((h, w), np.float32)  # d squared, and the gradient norms: the energy's terms
    norms = np.empty((h, w), np.float32)
    zeros = np.zeros(w, np.float32)
    tau, scale = np.float32(_TAU), np.float32(_TAU / weight)
    e_init = e_prev = np.float32(0.0)
    for iteration in range(max_num_iter):
        if iteration > 0:
            _estimate_row(image[0], p0[0], p1[0], zeros, out[0], squares[0])
        for i in range(h):
            if iteration > 0 and i + 1 < h:  # row i + 1 of the estimate, before p's row i changes
                _estimate_row(image[i + 1], p0[i + 1], p1[i + 1], p0[i], out[i + 1], squares[i + 1])
            below = out[i + 1] if i + 1 < h else out[i]  # the last row has no gradient along axis 0
            _update_row(out[i], below, p0[i], p1[i], tau, scale, norms[i])
        # float32 pairwise sums, as numpy's: the stopping rule compares energies a few ulps
        # apart, so it stops where scikit-image does only if they are summed alike.
        energy = _pairwise_sum(squares.ravel()) + np.float32(weight) * _pairwise_sum(norms.ravel())
        energy = energy / np.float32(h * w)
        if iteration == 0:
            e_init = e_prev = energy
        elif abs(e_prev - energy) < np.float32(eps) * e_init:
            break
        else:
            e_prev = energy
    return out


@njit(inline="always", **_EXACT)
def _estimate_row(image, p0, p1, p0_above, out, squares):  # pragma: no cover - compiled
    """One row of image + d, d = -(p0 + p1) + p0 from above + p1 from the left (skimage's order),
    and of d squared."""
    w = len(image)
    d = -(p0[0] + p1[0]) + p0_above[0]
    out[0], squares[0] = image[0] + d, d * d
    # Slices from column 1, so every index is a plain loop index and the loop vectorises.
    p0_r, p1_r, above_r, left = p0[1:], p1[1:], p0_above[1:], p1[: w - 1]
    image_r, out_r, squares_r = image[1:], out[1:], squares[1:]
    for j in range(w - 1):
        d = -(p0_r[j] + p1_r[j]) + above_r[j] + left[j]
        out_r[j] = image_r[j] + d
        squares_r[j] = d * d


@njit(inline="always", **_EXACT)
def _update_row(out, below, p0, p1, tau, scale, norms):  # pragma: no cover - compiled
    """One row of p's projected gradient step, and of the gradient norms."""
    w = len(out)
    right = out[1:]
    for j in range(w - 1):
        g0, g1 = below[j] - out[j], right[j] - out[j]
        norm = np.sqrt(g0 * g0 + g1 * g1)
        norms[j] = norm
        factor = norm * scale + np.float32(1.0)
        p0[j] = (p0[j] - tau * g0) / factor
        p1[j] = (p1[j] - tau * g1) / factor
    g0 = below[w - 1] - out[w - 1]  # the last column has no gradient along axis 1
    norm = np.sqrt(g0 * g0 + np.float32(0.0))
    norms[w - 1] = norm
    factor = norm * scale + np.float32(1.0)
    p0[w - 1] = (p0[w - 1] - tau * g0) / factor
    p1[w - 1] = (p1[w - 1] - tau * np.float32(0.0)) / factor


@njit(**_EXACT)
def _pairwise_sum(values):  # pragma: no cover - compiled
    """numpy's float32 ``sum`` of a contiguous 1-D array: halves (cut at a multiple of 8)
    down to blocks of at most 128, each summed by eight interleaved accumulators, the halves
    added back up the tree, and the total added to the identity 0. Iterative: numba's cache
    cannot hold a recursive function."""
    # A stack of pending halves: start, length, and the left half's sum once it is known.
    starts, sizes = np.empty(64, np.int64), np.empty(64, np.int64)
    lefts, has_left = np.empty(64, np.float32), np.zeros(64, np.bool_)
    starts[0], sizes[0], depth = 0, len(values), 1
    while True:
        top = depth - 1
        if sizes[top] > 128:  # descend into the left half
            starts[depth], sizes[depth], has_left[depth] = starts[top], _left_size(sizes[top]), False
            depth += 1
            continue
        value = _block_sum(values[starts[top] : starts[top] + sizes[top]])
        depth -= 1
        while depth > 0:  # hand the sum up: a left half waits for its right, a right one completes
            parent = depth - 1
            if not has_left[parent]:
                lefts[parent], has_left[parent] = value, True
                half = _left_size(sizes[parent])
                starts[depth], sizes[depth], has_left[depth] = starts[parent] + half, sizes[parent] - half, False
                depth += 1
                break
            value = lefts[parent] + value
            depth -= 1
        if depth == 0:
            return np.float32(0.0) + value


@njit(inline="always", **_EXACT)
def _left_size(n):  # pragma: no cover - compiled
    half = n // 2
    return half - half % 8


@njit(inline="always", **_EXACT)
def _block_sum(values):  # pragma: no cover - compiled
    n = len(values)
    if n < 8:
        total = np.float32(-0.0)
        for i in range(n):
            total += values[i]
        return total
    r = values[:8].copy()
    i = 8
    while i < n - n % 8:
        for j in range(8):
            r[j] += values[i + j]
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        total += values[i]
        i += 1
    return total


@njit(inline="always", **_JIT)
def _reflect(position, n):  # pragma: no cover - compiled
    # scipy.ndimage's 'reflect' (d c b a | a b c d | d c b a), period 2n, any offset.
    position %= 2 * n
    return 2 * n - 1 - position if position >= n else position


@njit(**_JIT)
def gaussian_planes(planes, taps):  # pragma: no cover - compiled
    """Separable filter of each plane of a float32 M x H x W stack by the odd-length 1-D ``taps``."""
    m, h, w = planes.shape
    radius = (len(taps) - 1) // 2
    out = np.empty_like(planes)
    padded = np.empty(w + 2 * radius, np.float32)  # one row with its reflected borders
    across = np.empty((h, w), np.float32)  # the plane filtered along its rows
    for k in range(m):
        for i in range(h):
            row = planes[k, i]
            for j in range(w + 2 * radius):
                padded[j] = row[_reflect(j - radius, w)]
            _weighted_rows(across[i], [padded[t : t + w] for t in range(len(taps))], taps)
        for i in range(h):
            _weighted_rows(out[k, i], [across[_reflect(i - radius + t, h)] for t in range(len(taps))], taps)
    return out


@njit(inline="always", **_JIT)
def _weighted_rows(target, sources, taps):  # pragma: no cover - compiled
    """target = sum of taps[t] * sources[t], one contiguous (vectorised) pass per tap."""
    first, tap = sources[0], taps[0]
    for j in range(len(target)):
        target[j] = tap * first[j]
    for t in range(1, len(taps)):
        source, tap = sources[t], taps[t]
        for j in range(len(target)):
            target[j] += tap * source[j]
