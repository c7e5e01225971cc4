"""The denoising task on the training engine (``models.engine.training.run_training``):
noisy -> clean pairs, their loss, validation and collapse checks.

Blind and mixed training (levels drawn per batch) minimises the mean over images of the log
of each image's loss (``loss_value(per_image_log=True)``): for MSE, the mean per-image PSNR
the benchmark scores. A plain MSE over randomly drawn levels is dominated by the noisiest
batches (gaussian 0.5 has 25x the noise power of 0.1) and neglects the low levels. Measured on
Fashion-MNIST gaussian (U-Net width 16, 400 steps of 32 on 10,000 images), the blind fit went
from 22.05 / 19.10 / 14.91 dB at 0.1 / 0.3 / 0.5 to 23.35 / 19.49 / 14.29 (level-specific fits:
24.37 / 19.52 / see the README); weighting by 1 / the input's noise power instead gave 23.34 /
15.75 / 11.58, and by 1 / its square root 22.69 / 18.01 / 13.52. Validation then scores the
geometric mean of the images' MSEs, the same ordering as the mean PSNR.

Collapse: trained with MSE, an autoencoder with a sigmoid or ReLU output can settle on a
constant (often all-black) image. A denoiser's validation checks its outputs each epoch
(``collapse_reason``): output variance below 1e-3 of the targets' variance, or an almost
black output whose MSE is within 5% of the mean of x^2. Once 100 optimizer steps have run
(before that every network looks constant), the first detection restarts training from a
fresh initialisation (another seed) at 0.3x the learning rate with a full epoch budget;
every acted-on detection is recorded in ``info["collapse"]``, and ``info["collapsed"]``
holds the last epoch's diagnosis (None when the outputs look alive).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor, nn

from bench.noise import derive_seed
from models.engine.checkpoint import Checkpoints
from models.engine.layers import autocast, to_layout
from models.engine.recipe import LOG_FLOOR, Recipe, loss_value
from models.engine.training import Scorer, TrainResult, Validation, optimizer_step, run_training

__all__ = ["train", "train_step", "collapse_reason", "validation_score", "denoising_loss", "levels_vary"]


def collapse_reason(
    pred_mean: float, pred_var: float, target_mean_sq: float, target_var: float, mse: float
) -> str | None:
    """Why validation outputs look collapsed (constant or all black), or None.

    >>> collapse_reason(0.0, 0.0, 0.1, 0.09, 0.1)
    'constant output (variance 0.00e+00 vs target 9.00e-02)'
    >>> collapse_reason(0.3, 0.05, 0.1, 0.09, 0.01) is None
    True
    """
    if pred_var <= 1e-3 * target_var:
        return f"constant output (variance {pred_var:.2e} vs target {target_var:.2e})"
    if pred_mean < 0.02 and mse >= 0.95 * target_mean_sq:
        return f"all-black output (validation MSE {mse:.4f} ~ mean x^2 {target_mean_sq:.4f})"
    return None


def levels_vary(noise: Any) -> bool:
    """Whether the training noise ``noise`` (a ``TrainingNoise`` or None) draws its level per batch."""
    return noise is not None and getattr(noise, "mode", "fixed") != "fixed"


def denoising_loss(
    net: nn.Module, inputs: Tensor, target: Tensor, loss: str, precision: str = "auto", per_image_log: bool = False
) -> Tensor:
    """The recipe's ``loss`` of ``net(inputs)`` against ``target``, under the training autocast;
    ``per_image_log``: the mean of the images' log losses (blind and mixed training)."""
    with autocast(inputs.device, precision):
        out = net(to_layout(inputs))
    return loss_value(loss, out, target, per_image_log)


def train_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor, target: Tensor, *, loss: str = "mse"
) -> Tensor:
    """One optimizer step on a denoising batch (autocast on CUDA); the detached loss, left on the device."""
    return optimizer_step(optimizer, lambda: denoising_loss(net, inputs, target, loss))


def _denoising_validation(noisy: Tensor, clean: Tensor, noise: Any, seed: int, chunk: int) -> Validation:
    """Validation MSE per pixel (whatever the training loss, so that curves compare; the
    geometric mean of the images' MSEs when levels vary) and a collapse check."""

    def prepare(val_idx: Tensor, held_out: bool) -> Scorer:
        targets = clean[val_idx]
        if noise is None:
            inputs = noisy[val_idx]
        else:  # drawn once, chunk by chunk (blind/mixed pick a level per chunk), so epochs compare
            generator = torch.Generator(device=clean.device).manual_seed(derive_seed(seed, "validation noise"))
            inputs = torch.cat([noise.sample(part, generator) for part in targets.split(chunk)])
        return lambda net: _validate(net, inputs, targets, levels_vary(noise))

    return prepare


def _validate(net: nn.Module, inputs: Tensor, targets: Tensor, per_image: bool) -> tuple[float, str | None]:
    chunk = 128 if targets.device.type == "cpu" else 1024  # cache-sized on CPU
    return validation_score(net, list(zip(inputs.split(chunk), targets.split(chunk))), per_image=per_image)


@torch.no_grad()
def validation_score(
    net: nn.Module, pairs: list[tuple[Tensor, Tensor]], *, per_image: bool = False
) -> tuple[float, str | None]:
    """MSE per pixel of ``net`` over the (inputs, targets) batches and its collapse diagnosis.

    ``per_image``: the score is the geometric mean of the images' MSEs (each plus
    ``LOG_FLOOR``), what blind training minimises; the collapse check keeps the plain MSE.
    """
    net.eval()
    device = pairs[0][1].device
    # sq error, pred, pred^2, target, target^2, sum of the images' log MSEs
    sums = torch.zeros(6, dtype=torch.float64, device=device)
    for batch, target in pairs:
        with autocast(device):
            out = net(to_layout(batch)).float()
        error = (out - target).pow(2)
        logs = torch.log(error.flatten(1).mean(1) + LOG_FLOOR).sum() if per_image else error.new_zeros(())
        parts = [error.sum(), out.sum(), out.pow(2).sum(), target.sum(), target.pow(2).sum()]
        sums += torch.stack([*parts, logs]).double()
    pixels = sum(target.numel() for _, target in pairs)
    mse, p_sum, p_sq, t_sum, t_sq = (sums[:5] / pixels).tolist()
    score = math.exp(float(sums[5]) / sum(len(target) for _, target in pairs)) if per_image else mse
    return score, collapse_reason(p_sum, p_sq - p_sum**2, t_sq, t_sq - t_sum**2, mse)


def train(
    make_net: Callable[[int], nn.Module],
    noisy: Tensor,
    clean: Tensor,
    *,
    recipe: Recipe,
    seed: int = 0,
    noise: Any = None,
    deadline: float | None = None,
    stage: str | None = None,
    checkpoints: Checkpoints | None = None,
) -> TrainResult:
    """Train ``make_net(seed)`` to map ``noisy`` to ``clean`` (same device) under ``recipe``.

    ``make_net(seed)`` must build the network deterministically from ``seed`` (it is called
    again with another seed if the model collapses). ``noise`` (a ``TrainingNoise``) redraws
    the inputs per batch from the clean batch; ``deadline`` is a ``time.monotonic()`` value.
    """
    device = clean.device

    def build(net_seed: int) -> nn.Module:  # channels-last: the fast layout (see the module docstring)
        return make_net(net_seed).to(device).to(memory_format=torch.channels_last)

    per_image = levels_vary(noise)

    def batch_loss(net: nn.Module, idx: Tensor, generator: torch.Generator) -> Tensor:
        target = clean[idx]
        inputs = noise.sample(target, generator) if noise is not None else noisy[idx]
        return denoising_loss(net, inputs, target, recipe.loss, recipe.precision, per_image)

    validation = _denoising_validation(noisy, clean, noise, seed, recipe.batch_size)
    options = {"validation": validation, "reinit": build, "deadline": deadline, "stage": stage}
    result = run_training(build(seed), batch_loss, recipe, n=len(clean), seed=seed, checkpoints=checkpoints, **options)
    result.info.update(recipe=asdict(recipe), per_image_log_loss=per_image)
    return result
