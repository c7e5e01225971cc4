"""Training recipes: optimizer, loss, schedule, epochs, batch size, stopping rule.

Each model keeps two named recipes, ``faithful`` (its seed report's or paper's settings) and
``ours`` (our stronger defaults); ``models.engine.training`` runs either. Classifiers train under a
recipe too (Adam, constant rate), built from their constructor parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Recipe",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "PRECISIONS",
    "loss_value",
    "per_image_loss",
    "LOG_FLOOR",
    "make_optimizer",
    "schedule_factor",
]

LOSSES = ("mse", "half_sse", "bce", "l1")
OPTIMIZERS = ("adam", "adamw", "sgd", "adadelta")
SCHEDULES = ("constant", "cosine", "step")
#: ``auto``: bf16 autocast on CUDA, float32 elsewhere; ``bf16`` also autocasts on a CPU (oneDNN's
#: bf16 convolutions train the U-Net 1.8x faster on an AVX512-BF16 core; weights and the optimizer
#: stay float32); ``fp32`` never autocasts.
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: optimizer, loss, epochs, batch size, stopping rule.

    Parameters
    ----------
    optimizer : {'adam', 'adamw', 'sgd', 'adadelta'}
    lr : float
    loss : {'mse', 'half_sse', 'bce', 'l1'}
        ``half_sse`` is 0.5 * squared error summed over pixels, averaged over images.
    epochs, batch_size : int
    schedule : {'constant', 'cosine', 'step'}
        Progress runs over the planned steps (or the time budget, if sooner): cosine decays
        to 1% of ``lr``; step divides it by 10 after 60% (DnCNN's epoch 30 of 50).
    weight_decay, momentum : float
    patience : int or None
        Epochs without validation improvement before stopping; None trains all epochs.
    val_fraction : float
        Share of the given images held out for validation (seeded; at most 2,048 unless
        ``cap_validation`` is False, none below 100 images: see ``models.engine.split.split_validation``).
    cap_validation : bool
        Cap the hold-out at 2,048 images (True); False holds out the whole ``val_fraction``,
        as a report's own split does (seed 001's 80/20, seed 000's 6:1).
    max_steps : int or None
        Cap on optimizer steps (per training stage); the schedule then runs over at most this
        many steps. Unlike a wall-clock budget it gives the same numbers on every machine.
    precision : {'auto', 'fp32', 'bf16'}
        Autocast of the training forward passes (see ``PRECISIONS``); validation and
        inference follow ``auto``.
    redraw_noise : bool
        Draw fresh noisy inputs for every batch from the clean ones when the cell gives a
        training noise (``models.engine.denoising.train``'s ``noise``); False trains on the fixed noisy
        pairs given, as reports do that corrupt their training set once (seed 003). Every
        ``NeuralDenoiser`` honours it.
    note : str
        Where the numbers come from.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    loss: str = "mse"
    epochs: int = 20
    batch_size: int = 128
    schedule: str = "constant"
    weight_decay: float = 0.0
    momentum: float = 0.0
    patience: int | None = 5
    val_fraction: float = 0.1
    cap_validation: bool = True
    max_steps: int | None = None
    precision: str = "auto"
    redraw_noise: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("loss", self.loss, LOSSES),
            ("schedule", self.schedule, SCHEDULES),
            ("precision", self.precision, PRECISIONS),
        ):
            if value not in allowed:
                raise ValueError(f"recipe {name} {value!r} is unknown; expected one of: {', '.join(allowed)}")
        if self.epochs < 1 or self.batch_size < 1 or not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(
                f"recipe needs epochs >= 1, batch_size >= 1 and 0 <= val_fraction < 1; got {self.epochs}, {self.batch_size}, {self.val_fraction}"
            )
        if self.max_steps is not None and (not isinstance(self.max_steps, int) or self.max_steps < 1):
            raise ValueError(f"recipe max_steps must be None or an int >= 1; got {self.max_steps!r}")

    def updated(self, **overrides: Any) -> Recipe:
        """A copy with the overrides that are not None."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


#: Added to each image's loss before its log (``loss_value(per_image_log=True)``): an MSE of
#: 1e-5 is 50 dB, beyond any denoiser here, so a near-perfect image cannot take over a batch.
LOG_FLOOR = 1e-5


def loss_value(name: str, out: Tensor, target: Tensor, per_image_log: bool = False) -> Tensor:
    """The training loss ``name`` of a batch, computed in float32.

    ``per_image_log``: the mean over images of log(each image's loss + ``LOG_FLOOR``); for
    ``mse``, minimising it maximises the mean per-image PSNR.
    """
    out = out.float()
    if per_image_log:
        return torch.log(per_image_loss(name, out, target) + LOG_FLOOR).mean()
    if name == "mse":
        return F.mse_loss(out, target)
    if name == "half_sse":
        return 0.5 * (out - target).pow(2).flatten(1).sum(1).mean()
    if name == "bce":
        return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), target)
    return F.l1_loss(out, target)


def per_image_loss(name: str, out: Tensor, target: Tensor) -> Tensor:
    """Each image's loss ``name`` (a vector over the batch)."""
    if name == "bce":
        per_pixel = F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), target, reduction="none")
    elif name == "l1":
        per_pixel = (out - target).abs()
    else:
        per_pixel = (out - target).pow(2)
    per_image = per_pixel.flatten(1)
    return 0.5 * per_image.sum(1) if name == "half_sse" else per_image.mean(1)


def make_optimizer(recipe: Recipe, params, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``params`` at learning rate ``lr``."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=recipe.weight_decay)
    cls = torch.optim.AdamW if recipe.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=lr, weight_decay=recipe.weight_decay)


def schedule_factor(schedule: str, progress: float) -> float:
    """The learning-rate multiplier of ``schedule`` at ``progress`` (0 to 1) through the budget."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return 1.0 if progress < 0.6 else 0.1
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
