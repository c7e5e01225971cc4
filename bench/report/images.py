"""Image strips for the report: the stored test images of each cell, clean, noisy and denoised."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from bench.report.canvas import png_uri
from bench.report.select import below_identity, diagonal
from bench.report.tables import broken_output

__all__ = ["image_strip", "image_grids", "IMAGE_BUDGET"]


def image_strip(images: np.ndarray, *, gap: int = 2) -> str:
    """uint8 N x C x H x W images side by side, white gaps between, as one PNG data URI.

    >>> image_strip(np.zeros((2, 1, 4, 4), np.uint8)).startswith("data:image/png;base64,")
    True
    """
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    n, channels, height, width = images.shape
    strip = np.full((height, n * width + (n - 1) * gap, channels), 255, np.uint8)
    for i, image in enumerate(images):
        strip[:, i * (width + gap) : i * (width + gap) + width] = image.transpose(1, 2, 0)
    picture = Image.fromarray(strip[..., 0] if channels == 1 else strip)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return png_uri(buffer.getvalue())


#: Bytes of image strips per page. The page shows one cell's strips at a time (a selector picks
#: the cell), so its height no longer grows with the grid; this keeps its file under 10 MB.
IMAGE_BUDGET = 6_000_000


def image_grids(store, cells: pd.DataFrame, *, budget: int = IMAGE_BUDGET) -> dict[str, Any]:
    """Per (dataset, noise, level): strips of the stored test images, clean, noisy, then each entry.

    ``store`` is a :class:`bench.execution.store.Store`; cells without samples are left out. Once the
    strips pass ``budget`` bytes the remaining groups are counted in ``left_out``, not drawn
    (a full grid would otherwise make a page of tens of megabytes).
    Each entry's strip carries ``broken``, why its output reads as broken (see
    :func:`bench.report.tables.broken_output`), or ''.
    Returns ``{"grids": [{dataset, noise, level, height, strips: [{name, uri, broken}]}], "left_out": n}``.
    """
    grids, used, left_out = [], 0, 0
    rows = diagonal(cells.assign(below_identity=below_identity(cells)))
    for (dataset, noise, level), group in rows.groupby(["dataset", "noise", "level"], sort=True):
        if used >= budget:
            left_out += 1
            continue
        strips, height = [], 0
        for _, cell in group.sort_values("entry").iterrows():
            samples = store.samples(cell["key"])
            if "denoised" not in samples:
                continue
            if not strips:  # every entry of a cell group sees the same clean and noisy images
                strips += [
                    {"name": "clean", "uri": image_strip(samples["clean"]), "broken": ""},
                    {"name": "noisy", "uri": image_strip(samples["noisy"]), "broken": ""},
                ]
                height = 2 * samples["clean"].shape[-2]
            strips.append(
                {"name": cell["entry"], "uri": image_strip(samples["denoised"]), "broken": broken_output(cell)}
            )
        if strips:
            used += sum(len(strip["uri"]) for strip in strips)
            grids.append(
                {"dataset": dataset, "noise": noise, "level": f"{level:g}", "height": height, "strips": strips}
            )
    return {"grids": grids, "left_out": left_out}
