"""Training on random patches of images of any size (DnCNN's protocol), for fully convolutional denoisers.

DnCNN (Zhang et al. 2017) trains on 40 x 40 patches cut from the 400 180 x 180 images of
Train400, each under one of the eight flips and transposes, and then denoises whole images:
a convolutional network does not care how large its input is. ``train_patches`` does the same
inside the one training engine (``models.engine.training.run_training``): an "epoch" is
``patches_per_epoch`` patches, and every batch cuts its patches afresh from the loop's seeded
generator (image, position, transform), so a fit is reproducible and a resumed fit (the
generator is part of the checkpoint) continues with the very batches it would have drawn.

Images are picked in proportion to the patch positions they hold, so every pixel of the
training set is equally likely to be seen whatever the image sizes. Validation holds out
whole images (the engine's one validation rule, ``split_validation``, over images rather than
patches) and scores the network on them at their full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bench.noise import derive_seed
from models.engine.augment import random_dihedral
from models.engine.checkpoint import Checkpoints
from models.engine.denoising import denoising_loss, levels_vary, validation_score
from models.engine.recipe import Recipe
from models.engine.split import split_validation
from models.engine.training import TrainResult, run_training

__all__ = ["PatchPlan", "PatchSource", "train_patches"]


@dataclass(frozen=True)
class PatchPlan:
    """How patches are cut: side ``size``, ``per_epoch`` patches an epoch (None: as many as the
    non-overlapping patches the training images hold), ``augment`` with the eight flips and transposes."""

    size: int
    per_epoch: int | None = None
    augment: bool = True

    def epoch_patches(self, sizes: Sequence[tuple[int, int]]) -> int:
        """Patches per epoch for training images of these (H, W) sizes."""
        if self.per_epoch is not None:
            return self.per_epoch
        return max(1, sum((h // self.size) * (w // self.size) for h, w in sizes))


class PatchSource:
    """Random ``size`` x ``size`` patches of C x H x W images (a list, or an N x C x H x W batch).

    With ``noisy`` (images of the same sizes), patches are cut at the same place of both, for
    training on fixed noisy pairs; otherwise ``draw`` returns clean patches only.
    """

    def __init__(
        self, clean: Sequence[Tensor], size: int, *, noisy: Sequence[Tensor] | None = None, augment: bool = True
    ):
        self.clean, self.noisy, self.size, self.augment = (
            list(clean),
            None if noisy is None else list(noisy),
            size,
            augment,
        )
        for i, image in enumerate(self.clean):
            if image.ndim != 3 or min(image.shape[-2:]) < size:
                shape = "x".join(map(str, image.shape))
                raise ValueError(f"training image {i} is {shape}; expected C x H x W with sides >= patch_size {size}")
        if self.noisy is not None and [t.shape for t in self.noisy] != [t.shape for t in self.clean]:
            raise ValueError("noisy and clean training images must match in number and sizes")
        positions = [(h - size + 1) * (w - size + 1) for h, w in (t.shape[-2:] for t in self.clean)]
        self.weights = torch.tensor(positions, dtype=torch.float64)
        self.spans = torch.tensor([t.shape[-2:] for t in self.clean]) - size + 1  # corner positions per axis

    def draw(self, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """``count`` patches (N x C x P x P clean, and noisy or None), drawn from ``generator``."""
        device = generator.device
        picks = torch.multinomial(self.weights.to(device), count, replacement=True, generator=generator)
        corners = torch.rand(count, 2, generator=generator, device=device, dtype=torch.float64)
        spans = self.spans.to(device)[picks]
        corners = (corners * spans).long().clamp_max_(spans - 1)
        s = self.size

        def cut(images: list[Tensor]) -> Tensor:
            return torch.stack(
                [images[i][:, y : y + s, x : x + s] for i, (y, x) in zip(picks.tolist(), corners.tolist())]
            )

        batches = [cut(self.clean)] + ([cut(self.noisy)] if self.noisy is not None else [])
        if self.augment:
            batches = list(random_dihedral(*batches, generator=generator))
        return batches[0], batches[1] if len(batches) > 1 else None


def _held_out_scorer(clean: list[Tensor], noisy: list[Tensor] | None, noise: Any, seed: int) -> Callable:
    """Scores a network on whole held-out images, grouped by size; noise drawn once per image."""
    generator = torch.Generator(device=clean[0].device).manual_seed(derive_seed(seed, "validation noise"))
    inputs = noisy if noise is None else [noise.sample(image[None], generator)[0] for image in clean]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(clean):
        groups.setdefault(tuple(image.shape), []).append(i)
    pairs = [
        (torch.stack([inputs[i] for i in part]), torch.stack([clean[i] for i in part]))
        for idx in groups.values()
        for part in (idx[j : j + 16] for j in range(0, len(idx), 16))
    ]
    return lambda net: validation_score(net, pairs, per_image=levels_vary(noise))


def train_patches(
    make_net: Callable[[int], nn.Module],
    noisy: Sequence[Tensor] | None,
    clean: Sequence[Tensor],
    *,
    plan: PatchPlan,
    recipe: Recipe,
    seed: int = 0,
    noise: Any = None,
    deadline: float | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainResult:
    """Train ``make_net(seed)`` on random patches of the images ``clean`` (each C x H x W, any sizes).

    With ``noise`` (a ``TrainingNoise``) every batch of patches gets fresh noise; without it,
    patches of ``noisy`` (the same sizes) are the inputs. Whole images are held out for
    validation by the recipe's ``val_fraction``; the rest give the patches.
    """
    device = clean[0].device
    train_idx, val_idx = split_validation(
        len(clean), recipe.val_fraction, seed, torch.device("cpu"), cap=recipe.cap_validation
    )
    held_out = len(val_idx) < len(clean)
    pick = lambda images, idx: None if images is None else [images[int(i)] for i in idx]  # noqa: E731
    source = PatchSource(
        pick(clean, train_idx),
        plan.size,
        noisy=None if noise is not None else pick(noisy, train_idx),
        augment=plan.augment,
    )
    score = _held_out_scorer(pick(clean, val_idx), None if noise is not None else pick(noisy, val_idx), noise, seed)
    n = plan.epoch_patches([tuple(image.shape[-2:]) for image in source.clean])
    # A validation point scores whole held-out images: worth this many patches of training work.
    held_out_pixels = sum(int(clean[int(i)].shape[-2]) * int(clean[int(i)].shape[-1]) for i in val_idx)
    scored = math.ceil(held_out_pixels / plan.size**2)

    def build(net_seed: int) -> nn.Module:  # channels-last: the fast layout (see models.engine.training)
        return make_net(net_seed).to(device).to(memory_format=torch.channels_last)

    def batch_loss(net: nn.Module, idx: Tensor, generator: torch.Generator) -> Tensor:
        target, inputs = source.draw(len(idx), generator)
        inputs = noise.sample(target, generator) if noise is not None else inputs
        return denoising_loss(net, inputs, target, recipe.loss, recipe.precision, levels_vary(noise))

    result = run_training(
        build(seed),
        batch_loss,
        recipe.updated(val_fraction=0.0),
        n=n,
        seed=seed,
        checkpoints=checkpoints,
        validation=lambda _idx, _held: score,
        reinit=build,
        deadline=deadline,
        stage=None,
        scored=scored,
    )
    where = f"{len(val_idx)} held-out images" if held_out else f"the {len(clean)} training images"
    result.info.update(validation=where, recipe=asdict(recipe), patches=asdict(plan) | {"per_epoch": n})
    return result
