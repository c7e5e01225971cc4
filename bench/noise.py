"""Noise models on clean images x in [0, 1] (DESIGN.md section 4), clipped back to [0, 1],
except ``awgn``, the literature's unclipped Gaussian noise at sigma/255.

Each kind is a plain function ``f(clean, level, generator)`` registered in ``NOISES``.
``Noise.apply`` draws on a CPU generator seeded from names and moves the result to the
images' device, so CPU and GPU runs see bit-identical noise; images of different sizes (an
``ImageList``) each draw from their own seed, derived from the set's seed and their index. ``TrainingNoise`` redraws
noise per batch on the batch's own device for training (fixed, blind or mixed levels).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.estimator import check_images
from bench.images import ImageList, Images
from bench.registry import NOISES

__all__ = ["Noise", "TrainingNoise", "derive_seed", "LEVEL_RANGES", "MIXED_KINDS", "TRAIN_MODES"]

#: Allowed level range of each kind, and the range blind/mixed training draws from.
LEVEL_RANGES: dict[str, tuple[float, float]] = {}
#: Training-level words a grid may use instead of a number.
TRAIN_MODES = ("blind", "mixed")


def derive_seed(base_seed: int, *parts: object) -> int:
    """A 63-bit seed from a base seed and names, independent of run order.

    >>> derive_seed(0, "mnist", "test", "gaussian", 0.1) == derive_seed(0, "mnist", "test", "gaussian", 0.1)
    True
    """
    text = json.dumps([int(base_seed), *[str(p) for p in parts]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _pixel_shape(clean: Tensor) -> tuple[int, ...]:
    # Masks are drawn per pixel and shared by the pixel's channels.
    return (clean.shape[0], 1, *clean.shape[2:])


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(shape, generator=generator, device=like.device, dtype=torch.float32)


def _register(name: str, low: float, high: float, train_range: tuple[float, float], description: str):
    LEVEL_RANGES[name] = train_range

    def decorate(fn):
        fn.level_bounds = (low, high)
        return NOISES.register(name, source="DESIGN.md section 4", description=description)(fn)

    return decorate


@_register("gaussian", 0.0, float("inf"), (0.05, 0.5), "x + s*N(0,1), clipped; s on the 0-1 scale")
def gaussian(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=torch.float32)
    return (clean + level * noise).clamp_(0.0, 1.0)


@_register("awgn", 0.0, float("inf"), (5.0, 55.0), "x + (s/255)*N(0,1), not clipped; s on the 0-255 scale")
def awgn(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    # The denoising literature's protocol (DnCNN's and FFDNet's test code): the noisy image
    # keeps values outside [0, 1], and the level is written as sigma on the 0-255 scale.
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=torch.float32)
    return clean + (level / 255.0) * noise


@_register("salt_pepper", 0.0, 1.0, (0.02, 0.5), "each pixel with probability p set to 0 or 1, half each")
def salt_pepper(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    hit = _uniform(_pixel_shape(clean), clean, generator) < level
    salt = (_uniform(_pixel_shape(clean), clean, generator) < 0.5).to(clean.dtype)
    return torch.where(hit, salt, clean)


@_register("masking", 0.0, 1.0, (0.1, 0.7), "each pixel with probability p set to 0 (seed 003)")
def masking(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    hit = _uniform(_pixel_shape(clean), clean, generator) < level
    return clean.masked_fill(hit, 0.0)


@_register("impulse", 0.0, 1.0, (0.05, 0.5), "each pixel with probability p set to a uniform random value (seed 000)")
def impulse(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    hit = _uniform(_pixel_shape(clean), clean, generator) < level
    values = _uniform(tuple(clean.shape), clean, generator)
    return torch.where(hit, values, clean)


@_register("poisson", 1e-6, float("inf"), (5.0, 100.0), "Poisson(x*peak)/peak; a lower peak is noisier")
def poisson(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    return (torch.poisson(clean * level, generator=generator) / level).clamp_(0.0, 1.0)


@_register("speckle", 0.0, float("inf"), (0.1, 1.0), "x + x*s*N(0,1), clipped")
def speckle(clean: Tensor, level: float, generator: torch.Generator) -> Tensor:
    noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=torch.float32)
    return (clean + clean * level * noise).clamp_(0.0, 1.0)


#: The kinds ``mixed`` training draws from by default: every kind but ``awgn``, the literature's
#: unclipped Gaussian on the 0-255 scale (gaussian's twin), so mixed fits stay as they were.
MIXED_KINDS = tuple(kind for kind in LEVEL_RANGES if kind != "awgn")


@dataclass(frozen=True)
class Noise:
    """One noise kind at one level.

    Parameters
    ----------
    kind : {'gaussian', 'awgn', 'salt_pepper', 'masking', 'impulse', 'poisson', 'speckle'}
    level : float
        Sigma for gaussian/speckle (0-1 scale) and awgn (0-255 scale, e.g. 25), probability for salt_pepper/masking/impulse, peak for poisson.

    Examples
    --------
    >>> x = torch.full((1, 1, 4, 4), 0.5)
    >>> bool((Noise("masking", 1.0).apply(x, seed=0) == 0).all())
    True
    """

    kind: str
    level: float

    def __post_init__(self) -> None:
        fn = NOISES.entry(self.kind).factory
        low, high = fn.level_bounds
        if not (isinstance(self.level, (int, float)) and low <= float(self.level) <= high):
            raise ValueError(
                f"noise level {self.level!r} for {self.kind!r} is out of range; expected a number in [{low}, {high}]"
            )
        object.__setattr__(self, "level", float(self.level))

    def draw(self, clean: Tensor, generator: torch.Generator) -> Tensor:
        """Noisy copy of ``clean`` drawn from ``generator`` (on the images' device)."""
        check_images(clean, f"{self.kind} noise's clean images")
        return NOISES.entry(self.kind).factory(clean, self.level, generator)

    def apply(self, clean: Images, *, seed: int) -> Images:
        """Noisy copy of ``clean``, the same on every device for the same seed.

        Each image of an ImageList draws from ``derive_seed(seed, "image", index)``, so its
        noise does not depend on the other images' sizes or on how a run batches them.
        """
        if isinstance(clean, ImageList):
            return ImageList(
                [self.apply(image[None], seed=derive_seed(seed, "image", i))[0] for i, image in enumerate(clean)]
            )
        check_images(clean, f"{self.kind} noise's clean images")
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return self.draw(clean.detach().to("cpu", torch.float32), generator).to(clean.device)


@dataclass(frozen=True)
class TrainingNoise:
    """The noise a denoiser trains on: a fixed level, ``blind`` or ``mixed``.

    Parameters
    ----------
    kind : str
        The noise kind; with ``mode='mixed'`` the kind of the cell (the batch kinds come from ``kinds``).
    level : float or None
        The fixed level; ignored by blind and mixed.
    mode : {'fixed', 'blind', 'mixed'}
        ``blind`` draws a random level of ``kind`` per batch, ``mixed`` a random kind and level.
    kinds : tuple of str
        The kinds ``mixed`` draws from (default: ``MIXED_KINDS``).
    """

    kind: str
    level: float | None = None
    mode: str = "fixed"
    kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("fixed", *TRAIN_MODES):
            raise ValueError(f"training noise mode {self.mode!r} is unknown; expected one of: fixed, blind, mixed")
        if self.mode == "fixed":
            Noise(self.kind, self.level)  # validates kind and level
        for kind in (self.kind, *self.kinds):
            NOISES.entry(kind)

    def pick(self, generator: torch.Generator) -> Noise:
        """The Noise for the next batch."""
        if self.mode == "fixed":
            return Noise(self.kind, self.level)
        kinds = (self.kinds or MIXED_KINDS) if self.mode == "mixed" else (self.kind,)
        u = torch.rand(2, generator=generator, device=generator.device).tolist()
        kind = kinds[min(int(u[0] * len(kinds)), len(kinds) - 1)]
        low, high = LEVEL_RANGES[kind]
        return Noise(kind, low + (high - low) * u[1])

    def sample(self, clean: Tensor, generator: torch.Generator) -> Tensor:
        """A fresh noisy copy of a training batch, on the batch's device."""
        return self.pick(generator).draw(clean, generator)
