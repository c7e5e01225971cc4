"""Image sets whose images may differ in size: ``ImageList`` and the size groups a run batches.

The thumbnail datasets hold one N x C x H x W tensor; natural-image test sets (BSD68 has both
481x321 and 321x481 images, Set12 both 256x256 and 512x512) hold an ``ImageList``. Code that
works batch by batch goes through ``size_groups`` and ``map_batches``, which treat a tensor
as one group, so the same code serves both, and no image is ever resized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "ImageList",
    "Images",
    "size_groups",
    "image_sizes",
    "map_batches",
    "per_image",
    "count",
    "common_crop",
    "put_images",
    "sample_crops",
    "SAMPLE_CROP",
]


class ImageList:
    """Images of any sizes, in order; each a C x H x W tensor (all of one dtype, device and C).

    Parameters
    ----------
    images : sequence of Tensor
        The images, each C x H x W.

    Examples
    --------
    >>> images = ImageList([torch.zeros(1, 4, 6), torch.zeros(1, 6, 4), torch.ones(1, 4, 6)])
    >>> [(idx.tolist(), tuple(b.shape)) for idx, b in images.groups()]
    [([0, 2], (2, 1, 4, 6)), ([1], (1, 1, 6, 4))]
    """

    def __init__(self, images: Sequence[Tensor]) -> None:
        self.images = tuple(images)
        for i, image in enumerate(self.images):
            if not isinstance(image, Tensor) or image.ndim != 3:
                got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
                raise ValueError(f"image {i} of an ImageList must be a C x H x W tensor; got {got}")
        channels = {int(image.shape[0]) for image in self.images}
        if len(channels) > 1:
            raise ValueError(f"the images of an ImageList must share their channel count; got {sorted(channels)}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int | slice | Tensor | Sequence[int]) -> Tensor | ImageList:
        """One image (an int) or an ImageList (a slice, or a sequence or tensor of indices)."""
        if isinstance(index, int):
            return self.images[index]
        if isinstance(index, slice):
            return ImageList(self.images[index])
        return ImageList([self.images[int(i)] for i in index])

    def __iter__(self):
        return iter(self.images)

    @property
    def dtype(self) -> torch.dtype:
        return self.images[0].dtype if self.images else torch.uint8

    @property
    def channels(self) -> int:
        """C of every image (0 for an empty list)."""
        return int(self.images[0].shape[0]) if self.images else 0

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(H, W) of each image."""
        return [tuple(int(s) for s in image.shape[-2:]) for image in self.images]

    def map(self, fn: Callable[[Tensor], Tensor]) -> ImageList:
        """``fn`` applied to each image (C x H x W in, C x H x W out)."""
        return ImageList([fn(image) for image in self.images])

    def to(self, *args, **kwargs) -> ImageList:
        """Every image moved or cast as ``Tensor.to`` does."""
        return self.map(lambda image: image.to(*args, **kwargs))

    def groups(self) -> list[tuple[Tensor, Tensor]]:
        """(indices, N x C x H x W batch) per image size, sizes in order of first appearance."""
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(self.images):
            by_size.setdefault(tuple(image.shape), []).append(i)
        return [(torch.tensor(idx), torch.stack([self.images[i] for i in idx])) for idx in by_size.values()]


#: What a dataset split or a run's test set holds: one batch, or images of different sizes.
Images = Tensor | ImageList


def count(images: Images) -> int:
    """Number of images."""
    return len(images)


def image_sizes(images: Images) -> list[tuple[int, int]]:
    """(H, W) of each image."""
    if isinstance(images, ImageList):
        return images.sizes
    return [tuple(int(s) for s in images.shape[-2:])] * len(images)


def size_groups(images: Images) -> list[tuple[Tensor, Tensor]]:
    """(indices, batch) per image size; a tensor is one group."""
    if isinstance(images, ImageList):
        return images.groups()
    return [(torch.arange(len(images)), images)]


def map_batches(fn: Callable[[Tensor], Tensor], images: Images) -> Images:
    """``fn`` applied to each same-size batch, the results put back in the images' order.

    A tensor is one batch and gives a tensor; an ImageList gives an ImageList.
    """
    if not isinstance(images, ImageList):
        return fn(images)
    out: list[Tensor | None] = [None] * len(images)
    for index, batch in images.groups():
        result = fn(batch)
        for i, image in zip(index.tolist(), result):
            out[i] = image
    return ImageList(out)


def per_image(fn: Callable[..., Tensor], *sets: Images) -> Tensor:
    """A per-image metric ``fn(batch, batch, ...) -> Tensor[N]`` over equal-shaped image sets,
    batched by size, as one Tensor[N] in the images' order."""
    first = sets[0]
    if not isinstance(first, ImageList):
        return fn(*sets)
    values = torch.empty(len(first), dtype=torch.float32)
    for index, _ in first.groups():
        batches = [torch.stack([s[int(i)] for i in index]) for s in sets]
        values[index] = fn(*batches).float().cpu()
    return values


def common_crop(images: ImageList) -> Tensor:
    """Every image cut to the centre crop of the smallest height and width among them, stacked."""
    height = min(h for h, _ in images.sizes)
    width = min(w for _, w in images.sizes)

    def crop(image: Tensor) -> Tensor:
        top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
        return image[:, top : top + height, left : left + width]

    return torch.stack([crop(image) for image in images])


def put_images(images: Images, device) -> Images:
    """uint8 (or float) images as float32 in [0, 1] on ``device``."""

    def as_float(t: Tensor) -> Tensor:
        return t.to(device).float().div_(255.0) if t.dtype == torch.uint8 else t.to(device).float()

    return images.map(as_float) if isinstance(images, ImageList) else as_float(images)


#: Side of the square region the report shows of each sample image: photos are cropped to it
#: (the same region of the clean, noisy and denoised image), thumbnails are shown whole.
SAMPLE_CROP = 96


def _detailed_box(image: Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the most detailed (highest standard deviation) of 3 x 3 candidate
    windows of ``size``: a flat patch of sky would show no difference between denoisers."""
    height, width = image.shape[-2:]
    tops = sorted({round(f * (height - size[0])) for f in (0.25, 0.5, 0.75)})
    lefts = sorted({round(f * (width - size[1])) for f in (0.25, 0.5, 0.75)})
    spread = {
        (top, left): float(image[:, top : top + size[0], left : left + size[1]].float().std())
        for top in tops
        for left in lefts
    }
    return max(spread, key=spread.get)


def sample_crops(clean: Images, noisy: Images, denoised: Images, *, n: int) -> dict[str, np.ndarray]:
    """The first ``n`` images of each set as uint8 N x C x h x w arrays, each cut to the same
    region (at most ``SAMPLE_CROP`` square, chosen on the clean image) in all three."""
    count_ = min(n, len(clean))
    sizes = [tuple(clean[i].shape[-2:]) for i in range(count_)]
    size = (min(SAMPLE_CROP, *(h for h, _ in sizes)), min(SAMPLE_CROP, *(w for _, w in sizes)))
    boxes = [_detailed_box(clean[i], size) for i in range(count_)]

    def crops(images: Images) -> np.ndarray:
        cut = [images[i][:, top : top + size[0], left : left + size[1]] for i, (top, left) in enumerate(boxes)]
        return torch.stack(cut).mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()

    return {"clean": crops(clean), "noisy": crops(noisy), "denoised": crops(denoised)}
