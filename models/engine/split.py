"""The budget rules of the one training engine: the validation hold-out, batches, planned steps.

``models.engine.training.run_training`` follows them, and ``bench plan`` uses ``planned_steps`` to
turn a probed step cost into a fit's cost, so the two can never disagree.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from bench.noise import derive_seed
from models.engine.recipe import Recipe

__all__ = [
    "MAX_VALIDATION",
    "MIN_IMAGES_FOR_VALIDATION",
    "MIN_VALIDATION_POINTS",
    "held_out_count",
    "split_validation",
    "batches",
    "planned_steps",
    "steps_per_epoch",
    "validation_interval",
]

#: Cap on held-out images: 2,048 pin a validation loss down well, and validating 6,000
#: images every epoch would cost a slow CPU model more than its time budget.
MAX_VALIDATION = 2048
#: Below this many images nothing is held out (the fit is scored on its training pool): a
#: handful of held-out images says nothing, and few-label training must use every label.
MIN_IMAGES_FOR_VALIDATION = 100
#: Validation points a fit records at least (its planned steps allowing): a curve of 3 to 5
#: epochs cannot say whether a fit had converged (``bench.report.convergence``).
MIN_VALIDATION_POINTS = 10


def held_out_count(n: int, fraction: float, cap: bool = True) -> int:
    """Images ``split_validation`` holds out of ``n``: ``round(fraction * n)``, at most
    MAX_VALIDATION when ``cap``, and none below MIN_IMAGES_FOR_VALIDATION images.

    >>> held_out_count(60000, 0.2), held_out_count(60000, 0.2, cap=False)
    (2048, 12000)
    """
    if n < MIN_IMAGES_FOR_VALIDATION:
        return 0
    return min(round(fraction * n), MAX_VALIDATION) if cap else round(fraction * n)


def split_validation(
    n: int, fraction: float, seed: int, device: torch.device, *, cap: bool = True
) -> tuple[Tensor, Tensor]:
    """Seeded (train, validation) indices of ``range(n)``: the one validation rule.

    ``held_out_count(n, fraction, cap)`` images are held out; holding none out, both are the
    whole pool.
    """
    n_val = held_out_count(n, fraction, cap)
    if n_val == 0:
        everything = torch.arange(n, device=device)
        return everything, everything
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "validation split")))
    return perm[n_val:].to(device), perm[:n_val].to(device)


def planned_steps(recipe: Recipe, n: int) -> int:
    """Optimizer steps ``run_training`` plans for ``recipe`` on ``n`` pairs, before early stopping.

    The same rules as the engine's: ``split_validation``'s hold-out, ``batches``' merge of a
    last one-image batch, ``recipe.max_steps``. ``bench plan`` multiplies a probed step cost by it.

    >>> planned_steps(Recipe(epochs=3, batch_size=8), 1000)  # 900 pairs after the hold-out
    339
    """
    n_fit = n - held_out_count(n, recipe.val_fraction, recipe.cap_validation)
    per_epoch = steps_per_epoch(n_fit, recipe.batch_size)
    return int(min(recipe.epochs * per_epoch, recipe.max_steps or math.inf))


def steps_per_epoch(n_fit: int, batch_size: int) -> int:
    """Batches in an epoch of ``n_fit`` training pairs (``batches`` merges a last one-image batch).

    >>> steps_per_epoch(900, 8), steps_per_epoch(17, 8)
    (113, 2)
    """
    batch = min(batch_size, n_fit)
    per_epoch = math.ceil(n_fit / batch)
    return per_epoch - 1 if per_epoch > 1 and n_fit % batch == 1 else per_epoch


def validation_interval(planned: int, per_epoch: int, scored: int = 0, batch_size: int = 1) -> int:
    """Optimizer steps between two validation points: once an epoch, and more often when that
    would give fewer than ``MIN_VALIDATION_POINTS`` over the ``planned`` steps (a fit of fewer
    steps than that is scored after every step), but never more often than every
    ``ceil(scored / batch_size)`` steps, where ``scored`` is the held-out images a point scores:
    a point's forward passes then cost at most a third of the training steps between two points
    (each a forward and a backward pass), and a probe of a few steps (``bench plan``) is scored
    once, at its end, as a real fit's steps are.

    >>> validation_interval(1200, 282, 1000, 32), validation_interval(25, 11), validation_interval(3000, 200)
    (120, 2, 200)
    >>> validation_interval(12, 563, 1000, 16)  # a probe: scored at its end only
    63
    """
    least = math.ceil(scored / batch_size)
    return max(1, least, min(per_epoch, planned // MIN_VALIDATION_POINTS))


def batches(order: Tensor, batch_size: int) -> list[Tensor]:
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:  # batch norm cannot train on one image
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches
