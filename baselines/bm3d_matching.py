"""Block matching of bm3d_torch: each reference block's nearest blocks within its own search window.

Reference blocks (8x8, a stride of 3, the last row and column always included) are matched
in rectangular tiles. A tile's candidates are the blocks of the union of its references'
39x39 search windows, so one matrix product per tile gives every distance the tile needs
and the cost grows with pixels x window, not with pixels squared; candidates outside a
reference's own window are masked. A small image is one tile whose candidates are all of
its blocks. The tile side and the images per chunk come from a memory budget, so peak
memory stays bounded at any image size and grows with what the device can hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["BLOCK", "Tile", "block_coefficients", "gather", "match", "plan", "tiles"]

BLOCK, STEP, WINDOW = 8, 3, 39
_RADIUS = WINDOW // 2
#: Most candidates per tile: a 9x9 tile of references on a large image (63 x 63 candidate
#: blocks) compares each reference with 2.6x its window, cheap beside the per-tile overhead
#: that smaller tiles pay; larger tiles would mostly compare blocks outside the windows.
_MAX_CANDIDATES = 64 * 64


@dataclass(frozen=True)
class Tile:
    """Reference blocks matched together, and the blocks they are matched against.

    The candidates form a rectangle of the block grid; each reference's window is a
    rectangle of it too (39 x 39 positions, or the whole rectangle when smaller), shifted
    inward at the image's border, where ``far_rows`` and ``far_cols`` mask the positions
    beyond the search radius. Window positions are kept per axis: (r, window rows) and
    (r, window columns), never (r, window area).
    """

    refs: Tensor  # (r,) block indices (row-major over the block grid) of the references
    candidates: Tensor | None  # (k,) block indices of the candidate rectangle; None: every block
    shape: tuple[int, int]  # the candidate rectangle's rows and columns
    window_rows: Tensor  # (r, wy) each reference's window rows within the rectangle
    window_cols: Tensor  # (r, wx) and its window columns
    far_rows: Tensor  # (r, wy) True for window rows beyond the search radius
    far_cols: Tensor  # (r, wx) and for such columns
    self_index: Tensor  # (r, 1) each reference's position in its (row-major) window
    #: (references per column, per row) where every window is a full, unshifted 39x39 square
    #: and the references are STEP apart: the windows are then one strided view of the
    #: distances (no gather, nothing to mask). None elsewhere (the image's border, small images).
    regular: tuple[int, int] | None = None


def reference_starts(n: int) -> list[int]:
    """Reference block starts along an axis of ``n`` block positions: a stride of 3 and the last."""
    starts = list(range(0, n, STEP))
    if starts[-1] != n - 1:
        starts.append(n - 1)
    return starts


def plan(rows: int, cols: int, per_reference: int, budget: int) -> tuple[int, int]:
    """(references per tile side, images per chunk) for a ``rows`` x ``cols`` block grid.

    ``per_reference`` is the largest group tensor's elements per reference block of one
    image; the distances add a tile's candidates per reference. The tile is the largest
    square within ``_MAX_CANDIDATES`` and ``budget`` elements; images share a chunk when one
    tile covers the whole image and more fit the budget.
    """
    n_y, n_x = len(reference_starts(rows)), len(reference_starts(cols))

    def elements(side: int) -> tuple[int, int]:
        candidates = _extent(side, rows, n_y) * _extent(side, cols, n_x)
        return candidates, min(side, n_y) * min(side, n_x) * max(per_reference, candidates)

    side = max(n_y, n_x)
    while side > 1 and (elements(side)[0] > _MAX_CANDIDATES or elements(side)[1] > budget):
        side -= 1
    whole_image = side >= max(n_y, n_x)
    return side, max(1, budget // elements(side)[1]) if whole_image else 1


def _extent(side: int, n: int, n_refs: int) -> int:
    # Candidate positions along an axis for a tile of ``side`` references (the whole axis if one tile spans it).
    return n if side >= n_refs else min(n, STEP * (side - 1) + WINDOW)


def tiles(rows: int, cols: int, side: int, device: torch.device) -> Iterator[Tile]:
    """The tiles of ``side`` x ``side`` references covering a ``rows`` x ``cols`` block grid."""
    starts_y, starts_x = reference_starts(rows), reference_starts(cols)
    for i in range(0, len(starts_y), side):
        for j in range(0, len(starts_x), side):
            yield _tile(starts_y[i : i + side], starts_x[j : j + side], rows, cols, device)


def _tile(ref_y: list[int], ref_x: list[int], rows: int, cols: int, device: torch.device) -> Tile:
    y0, y1 = max(0, ref_y[0] - _RADIUS), min(rows, ref_y[-1] + _RADIUS + 1)
    x0, x1 = max(0, ref_x[0] - _RADIUS), min(cols, ref_x[-1] + _RADIUS + 1)
    ry, rx = torch.tensor(ref_y), torch.tensor(ref_x)
    (wy, far_y, self_y), (wx, far_x, self_x) = _window(ry, y0, y1), _window(rx, x0, x1)
    ny, nx = len(ref_y), len(ref_x)
    per_reference = [a.repeat_interleave(nx, 0) for a in (wy, far_y)] + [a.repeat(ny, 1) for a in (wx, far_x)]
    self_index = (self_y[:, None] * wx.shape[1] + self_x[None, :]).reshape(-1, 1)
    refs = (ry[:, None] * cols + rx[None, :]).flatten()
    whole = (y0, y1, x0, x1) == (0, rows, 0, cols)
    candidates = None if whole else (torch.arange(y0, y1)[:, None] * cols + torch.arange(x0, x1)).flatten()
    window_rows, far_rows, window_cols, far_cols = (a.to(device) for a in per_reference)
    regular = _unshifted(ref_y, y0, y1) and _unshifted(ref_x, x0, x1)
    return Tile(
        refs.to(device),
        None if whole else candidates.to(device),
        (y1 - y0, x1 - x0),
        window_rows,
        window_cols,
        far_rows,
        far_cols,
        self_index.to(device),
        (ny, nx) if regular else None,
    )


def _unshifted(refs: list[int], low: int, high: int) -> bool:
    # STEP apart, and each window the full 39 positions centred on its reference within [low, high).
    evenly = all(b - a == STEP for a, b in zip(refs, refs[1:]))
    return evenly and refs[0] - _RADIUS == low and refs[-1] + _RADIUS + 1 == high


def _window(refs: Tensor, low: int, high: int) -> tuple[Tensor, Tensor, Tensor]:
    # Along one axis: each reference's window (positions relative to ``low``), which of them
    # lie beyond the radius, and the reference's own place in it.
    size = min(WINDOW, high - low)
    start = (refs - _RADIUS).clamp(low, high - size)
    positions = start[:, None] + torch.arange(size)
    return positions - low, (positions - refs[:, None]).abs() > _RADIUS, refs - start


def block_coefficients(images: Tensor, forward: Tensor, budget: int) -> Tensor:
    """2-D transform (a 64 x 64 matrix) of every 1-stride 8x8 block: (n, C, H, W) -> (n, P, C, 64).

    Built a strip of block rows at a time (about ``budget`` elements): the copy of a strip's
    blocks is still in cache when the transform reads it, so the cost per pixel does not
    grow with the image.
    """
    n, c, h, w = images.shape
    rows, cols = h - BLOCK + 1, w - BLOCK + 1
    out = images.new_empty(n, rows * cols, c, BLOCK * BLOCK)
    strip = max(1, budget // (n * cols * c * BLOCK * BLOCK))
    for top in range(0, rows, strip):
        m = min(strip, rows - top)
        # Two Tensor.unfold views and one copy: 4x faster on a CPU than F.unfold (im2col).
        part = images[:, :, top : top + m + BLOCK - 1].unfold(2, BLOCK, 1).unfold(3, BLOCK, 1)
        blocks = part.permute(0, 2, 3, 1, 4, 5).reshape(n, m * cols, c, BLOCK * BLOCK)
        target = out[:, top * cols : (top + m) * cols]
        if target.is_contiguous():  # one image, or a strip of all rows: the product writes in place
            torch.matmul(blocks, forward.T, out=target)
        else:
            target.copy_(blocks @ forward.T)
    return out


def match(features: Tensor, norms: Tensor, tile: Tile, size: int) -> Tensor:
    """Block indices (n, r, size) of each of the tile's references' nearest blocks, itself first.

    ``features`` (n, P, 64) are the luminance blocks' 2-D coefficients (unit-norm rows:
    their distances stand in for the blocks'), ``norms`` (n, P) their squared norms.
    """
    candidates, candidate_norms = features, norms
    if tile.candidates is not None:
        candidates, candidate_norms = features[:, tile.candidates], norms[:, tile.candidates]
    refs = features[:, tile.refs]
    # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, the product and the sum in one call.
    squares = norms[:, tile.refs, None] + candidate_norms[:, None, :]
    distance = torch.baddbmm(squares, refs, candidates.transpose(1, 2), alpha=-2)
    n, r = distance.shape[:2]
    (height, width), wy, wx = tile.shape, tile.window_rows.shape[1], tile.window_cols.shape[1]
    if tile.regular is not None:
        # Reference (i, j)'s window starts at row STEP i, column STEP j of the rectangle.
        ny, nx = tile.regular
        area = height * width
        strides = (r * area, nx * area + STEP * width, area + STEP, width, 1)
        distance = distance.as_strided((n, ny, nx, wy, wx), strides).reshape(n, r, wy * wx)
    else:
        distance = distance.view(n, r, height, width)
        if (wy, wx) != (height, width):  # each reference's window: its rows of the rectangle, then its columns
            distance = distance.gather(2, tile.window_rows[None, :, :, None].expand(n, r, wy, width))
            distance = distance.gather(3, tile.window_cols[None, :, None, :].expand(n, r, wy, wx))
        distance.masked_fill_(tile.far_rows[None, :, :, None], torch.inf)
        distance.masked_fill_(tile.far_cols[None, :, None, :], torch.inf)
        distance = distance.view(n, r, wy * wx)
    # The reference must lead its group even where rounding gives a duplicate block a tie.
    distance.scatter_(2, tile.self_index.expand(n, -1, 1), -1.0)
    found = distance.topk(min(size, wy * wx), dim=2, largest=False).indices
    if (wy, wx) != (height, width):
        rows = tile.window_rows.expand(n, r, wy).gather(2, found // wx)
        found = rows * width + tile.window_cols.expand(n, r, wx).gather(2, found % wx)
    return found if tile.candidates is None else tile.candidates[found]


def gather(coefficients: Tensor, members: Tensor) -> Tensor:
    """Group members' coefficients: (n, P, C, 64) and (n, r, k) -> (n, r, k, C, 64)."""
    n, p = coefficients.shape[:2]
    flat = (members + torch.arange(n, device=members.device).view(-1, 1, 1) * p).flatten()
    return coefficients.flatten(0, 1).index_select(0, flat).view(*members.shape, *coefficients.shape[2:])
