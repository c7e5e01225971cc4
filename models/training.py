"""The one training loop every neural denoiser uses.

Data stay on their device: mini-batches are gathered with a seeded permutation of index
tensors (no DataLoader, no per-batch host copies) and, when a ``TrainingNoise`` is given,
each batch's noisy input is drawn afresh from its clean batch on that device. Mixed
precision (bf16 autocast) is used on CUDA only. A seeded validation split drives early
stopping (patience) and the best weights are restored at the end; ``recipe.max_steps``
caps the optimizer steps and ``deadline`` the wall-clock time. ``val_loss`` is always the
validation MSE per pixel, whatever the training loss, so learning curves of different
recipes compare.

Collapse: trained with MSE, an autoencoder with a sigmoid or ReLU output can settle on a
constant (often all-black) image. After each epoch ``collapse_reason`` checks the
validation outputs: output variance below 1e-3 of the targets' variance, or an almost
black output whose MSE is within 5% of the mean of x^2. Once 100 optimizer steps have run
(before that every network looks constant), the first detection restarts training from a
fresh initialisation (another seed) at 0.3x the learning rate with a full epoch budget;
every acted-on detection is recorded in ``info["collapse"]``, and ``info["collapsed"]``
holds the last epoch's diagnosis (None when the outputs look alive).

CPU speed (EPYC, conv_ae_fmnist, batch 128, one core, process CPU time per 60,000-image
epoch / inference images/s in chunks of 64): a plain channels-first port 155 s / 955,
channels-last 148 s / 2,040; ours 77 s / 3,300, and 61 s with ``tune_cpu_allocator``.
The time went to oneDNN's weight gradient of the 1-channel first convolution (~2 GFLOPS),
the 64->1 last convolution and nearest upsampling at 28x28, ReLU passes over 28x28x64
tensors and page faults on the 25 MB activations. ``models/layers.py`` rewrites the layers
exactly (same parameters), the loop keeps networks and batches channels-last, and
``tune_cpu_allocator`` (opt-in, process-wide) stops the page faults. Threads: two
OpenMP threads win only on an otherwise idle machine; with any other load on a 2-core box
one thread is several times faster (each parallel region waits for a descheduled thread),
so the thread count is left to the caller (``torch.set_num_threads``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from bench.noise import derive_seed
from models.recipe import Recipe, loss_value, make_optimizer

__all__ = [
    "Recipe",
    "TrainResult",
    "train",
    "train_step",
    "collapse_reason",
    "autocast",
    "to_layout",
    "tune_cpu_allocator",
    "Progress",
]

log = logging.getLogger("bench.training")

#: Optimizer steps before a collapsed-looking model is acted upon.
COLLAPSE_MIN_STEPS = 100
#: Cap on held-out pairs: 2,048 images pin the validation MSE down well, and validating
#: 6,000 images every epoch would cost a slow CPU model more than its time budget.
MAX_VALIDATION = 2048


class Progress:
    """Logs an epoch line of a long fit on ``bench.training``, at most every ``every`` seconds,
    so that a fit of minutes says how far it is and a fit of seconds says nothing."""

    every = 30.0

    def __init__(self, what: str) -> None:
        self.what, self.last = what, time.monotonic()

    def epoch(self, epoch: int, epochs: int, steps: int, **losses: float | None) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        shown = ", ".join(f"{name} {value:.5g}" for name, value in losses.items() if value is not None)
        log.info("%s: epoch %d/%d, step %d, %s", self.what, epoch, epochs, steps, shown)


@dataclass
class TrainResult:
    """The trained network (best weights restored), per-epoch history and a JSON summary."""

    net: nn.Module
    history: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a disabled context elsewhere (CPU trains in float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def to_layout(x: Tensor) -> Tensor:
    """Channels-last for image batches (the fast layout for oneDNN and cuDNN)."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def tune_cpu_allocator() -> bool:
    """Keep freed memory in glibc's heap instead of returning it to the OS (opt-in, process-wide).

    Training allocates the same 10-30 MB activation tensors every step; by default glibc
    serves such sizes with fresh ``mmap`` pages or trims them off the heap when freed, so
    every step pays page faults. Raising the trim and mmap thresholds (like the
    ``MALLOC_TRIM_THRESHOLD_``/``MALLOC_MMAP_THRESHOLD_`` variables) measured 15-25% faster
    conv_ae_fmnist CPU epochs, at the cost of a process that keeps its peak memory.
    Returns False where the C library has no ``mallopt`` (not glibc).
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_trim_threshold, 1 << 30)) and bool(libc.mallopt(m_mmap_threshold, 1 << 25))
    except (OSError, AttributeError):
        return False


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


def train_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor, target: Tensor, *, loss: str = "mse"
) -> Tensor:
    """One optimizer step on a batch (autocast on CUDA); the detached loss, left on the device."""
    with autocast(inputs.device):
        out = net(to_layout(inputs))
    value = loss_value(loss, out, target)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    return value.detach()


def _json_number(value: float) -> float | None:
    """The value, or None for NaN/inf (a diverged run), so histories stay valid JSON."""
    return value if math.isfinite(value) else None


def _split(n: int, fraction: float, seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Seeded (train, validation) index tensors (at most MAX_VALIDATION held out); with < 2 pairs both are everything."""
    if n < 2 or fraction <= 0:
        everything = torch.arange(n, device=device)
        return everything, everything
    n_val = min(max(1, round(fraction * n)), n - 1, MAX_VALIDATION)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(seed, "validation split")))
    return perm[n_val:].to(device), perm[:n_val].to(device)


def _batches(order: Tensor, batch_size: int) -> list[Tensor]:
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:  # batch norm cannot train on one image
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


class _Trainer:
    """One call of ``train``: data split, batch order and noise generator, restart state."""

    def __init__(
        self, noisy: Tensor, clean: Tensor, recipe: Recipe, seed: int, noise: Any, deadline: float | None
    ) -> None:
        self.device = clean.device
        self.noisy, self.clean, self.recipe, self.noise, self.deadline = noisy, clean, recipe, noise, deadline
        self.train_idx, self.val_idx = _split(len(clean), recipe.val_fraction, seed, self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(derive_seed(seed, "batches and noise"))
        self.val_inputs = self._validation_inputs(seed)
        self.batch_size = min(recipe.batch_size, len(self.train_idx))
        self.steps_per_epoch = len(_batches(self.train_idx, self.batch_size))
        self.planned_steps = min(recipe.epochs * self.steps_per_epoch, recipe.max_steps or math.inf)
        self.step = 0
        self.start = time.monotonic()
        self.restart_schedule()

    def restart_schedule(self) -> None:
        self.schedule_step, self.schedule_time = self.step, time.monotonic()

    def _validation_inputs(self, seed: int) -> Tensor:
        if self.noise is None:
            return self.noisy[self.val_idx]
        # Drawn once, chunk by chunk (blind/mixed pick a level per chunk), so epochs compare.
        generator = torch.Generator(device=self.device).manual_seed(derive_seed(seed, "validation noise"))
        chunks = self.clean[self.val_idx].split(self.recipe.batch_size)
        return torch.cat([self.noise.sample(chunk, generator) for chunk in chunks])

    def lr_factor(self) -> float:
        if self.recipe.schedule == "constant":
            return 1.0
        progress = (self.step - self.schedule_step) / max(1, self.planned_steps)
        if self.deadline is not None:
            elapsed, budget = time.monotonic() - self.schedule_time, self.deadline - self.schedule_time
            progress = max(progress, elapsed / max(1e-9, budget))
        if self.recipe.schedule == "step":
            return 1.0 if progress < 0.6 else 0.1
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def out_of_budget(self) -> bool:
        """The step cap is reached or the deadline has passed."""
        steps_done = self.recipe.max_steps is not None and self.step >= self.recipe.max_steps
        return steps_done or (self.deadline is not None and time.monotonic() >= self.deadline)

    def epoch(self, net: nn.Module, optimizer: torch.optim.Optimizer, lr: float) -> float:
        """One pass over the training split; the mean training loss."""
        net.train()
        order = self.train_idx[torch.randperm(len(self.train_idx), generator=self.generator, device=self.device)]
        total, seen = torch.zeros((), device=self.device), 0
        for idx in _batches(order, self.batch_size):
            target = self.clean[idx]
            inputs = self.noise.sample(target, self.generator) if self.noise is not None else self.noisy[idx]
            for group in optimizer.param_groups:
                group["lr"] = lr * self.lr_factor()
            loss = train_step(net, optimizer, inputs, target, loss=self.recipe.loss)
            total += loss * len(idx)  # summed on the device: no sync per batch
            seen += len(idx)
            self.step += 1
            if self.out_of_budget():
                break
        return float(total) / max(1, seen)

    @torch.no_grad()
    def validate(self, net: nn.Module) -> tuple[float, str | None]:
        """Validation MSE and a collapse diagnosis (None when the outputs look alive)."""
        net.eval()
        sums = torch.zeros(4, dtype=torch.float64, device=self.device)  # sq error, pred, pred^2, target^2
        targets = self.clean[self.val_idx]
        chunk = 128 if self.device.type == "cpu" else 1024  # cache-sized on CPU
        for inputs, target in zip(self.val_inputs.split(chunk), targets.split(chunk)):
            with autocast(self.device):
                out = net(to_layout(inputs)).float()
            sums += torch.stack(
                [(out - target).pow(2).sum(), out.sum(), out.pow(2).sum(), target.pow(2).sum()]
            ).double()
        count = targets.numel()
        mse, p_sum, p_sq, t_sq = (sums / count).tolist()
        t_mean = float(targets.mean())
        return mse, collapse_reason(p_sum, p_sq - p_sum**2, t_sq, t_sq - t_mean**2, mse)


def _init(make_net: Callable[[int], nn.Module], seed: int, device: torch.device) -> nn.Module:
    return make_net(seed).to(device).to(memory_format=torch.channels_last)


@dataclass
class _Best:
    """Best validation loss so far, its weights and epoch, and the epochs waited since."""

    loss: float = math.inf
    state: dict[str, Tensor] | None = None
    epoch: int = 0
    waited: int = 0

    def update(self, net: nn.Module, loss: float, epoch: int) -> None:
        if loss < self.loss:
            self.loss, self.epoch, self.waited = loss, epoch, 0
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            self.waited += 1


def _note_collapse(info: dict[str, Any], epoch: int, collapse: str | None, steps: int) -> bool:
    """Record the epoch's collapse diagnosis; True when training should restart now."""
    info["collapsed"] = collapse  # the last epoch's diagnosis (None: alive)
    if collapse is None or steps < COLLAPSE_MIN_STEPS:  # a few steps in, every net looks constant
        return False
    restart = not info["restarted"]
    info["collapse"].append({"epoch": epoch, "reason": collapse, "action": "restart" if restart else "none"})
    info["restarted"] = True
    return restart


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
) -> TrainResult:
    """Train ``make_net(seed)`` to map ``noisy`` to ``clean`` (same device) under ``recipe``.

    ``make_net(seed)`` must build the network deterministically from ``seed`` (it is called
    again with another seed if the model collapses). ``noise`` (a ``TrainingNoise``) redraws
    the inputs per batch from the clean batch; ``deadline`` is a ``time.monotonic()`` value.
    """
    run = _Trainer(noisy, clean, recipe, seed, noise, deadline)
    net, lr = _init(make_net, seed, run.device), recipe.lr
    optimizer = make_optimizer(recipe, net.parameters(), lr)
    history: list[dict[str, Any]] = []
    info: dict[str, Any] = {"collapse": [], "restarted": False, "collapsed": None, "stopped": "epochs"}
    best, epoch, last_epoch = _Best(), 0, recipe.epochs
    progress = Progress(f"{type(net).__name__}{f' ({stage})' if stage else ''}")
    while epoch < last_epoch:
        epoch, tic = epoch + 1, time.perf_counter()
        train_loss = run.epoch(net, optimizer, lr)
        val_loss, collapse = run.validate(net)
        losses = {"train_loss": _json_number(train_loss), "val_loss": _json_number(val_loss)}
        history.append(
            {"epoch": epoch, **losses, "seconds": time.perf_counter() - tic} | ({"stage": stage} if stage else {})
        )
        progress.epoch(epoch, last_epoch, run.step, **losses)
        if _note_collapse(info, epoch, collapse, run.step):
            # Fresh start from another seed at a lower learning rate, once, with a full epoch budget.
            lr, best, last_epoch = lr * 0.3, _Best(), epoch + recipe.epochs
            net = _init(make_net, derive_seed(seed, "collapse restart"), run.device)
            optimizer = make_optimizer(recipe, net.parameters(), lr)
            run.restart_schedule()
        else:
            best.update(net, val_loss, epoch)
        if run.out_of_budget() or (recipe.patience is not None and best.waited >= recipe.patience):
            info["stopped"] = "budget" if run.out_of_budget() else "early"
            break
    if best.state is not None:
        net.load_state_dict(best.state)
    info.update(best_epoch=best.epoch, best_val_loss=best.loss if best.state is not None else None, steps=run.step)
    info.update(seconds=time.monotonic() - run.start, device=str(run.device), mixed_precision=run.device.type == "cuda")
    return TrainResult(net.eval(), history, info | {"recipe": asdict(recipe)})
