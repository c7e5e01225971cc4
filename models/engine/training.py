"""The one training engine: every neural denoiser, classifier and greedy pretraining stage runs it.

``run_training(net, batch_loss, recipe, n=...)`` minimises ``batch_loss(net, indices,
generator)`` over shuffled mini-batches of ``range(n)``. Data stay on their device: batches
are index tensors (no DataLoader, no per-batch host copies) and ``generator``, the loop's own
seeded generator on that device, draws the batch orders and whatever a batch loss draws
(training noise, pretraining masks). bf16 autocast is used on CUDA, and on a CPU when a
recipe asks for ``precision='bf16'``.

One budget vocabulary: ``recipe.epochs`` and ``recipe.max_steps`` (optimizer steps, per
stage), plus an optional wall-clock ``deadline``; stopping mid-epoch happens after the batch
that spends the budget. One validation rule (``split_validation``). The fit is scored at
validation points: once an epoch, and every ``floor(planned steps / 10)`` steps when that is
more often, so that even a fit of a few epochs records a curve of at least 10 points
(``bench.report.convergence`` reads it), plus one where the budget ends; but points are at
least ``ceil(held-out images / batch size)`` steps apart, so that scoring costs at most a third
of the training (``split.validation_interval``). The score is the task's ``validation`` on the held-out images (at most 2,048)
or, with none held out, on the training pool if the task scores that (denoisers do; a
classifier's eval-mode loss on its own training images is no stopping signal, so it does
not). The best-scoring weights are restored at the end and ``recipe.patience`` epochs'
worth of steps without a better score stop early; without a score, the mean training loss
since the last point picks the weights and never stops the fit. Each history entry is one
point: its step, its (fractional) epoch, the training loss since the last point and the
validation loss. The learning-rate schedule (``recipe.schedule``) runs over the planned steps.

The denoising task on this engine (loss, validation, blind training, collapse checks) is
``models.engine.denoising``.

Checkpoints (``models.engine.checkpoint``): given ``checkpoints``, the engine writes its whole state
every ``every_seconds`` (or ``every_steps``) and at the end of the stage, and a rerun resumes
from it, bit-identically on the CPU for step and epoch budgets.

CPU speed (EPYC, conv_ae_fmnist, batch 128, one core, process CPU time per 60,000-image
epoch / inference images/s in chunks of 64): a plain channels-first port 155 s / 955,
channels-last 148 s / 2,040; ours 77 s / 3,300, and 61 s with ``tune_cpu_allocator``.
The time went to oneDNN's weight gradient of the 1-channel first convolution (~2 GFLOPS),
the 64->1 last convolution and nearest upsampling at 28x28, ReLU passes over 28x28x64
tensors and page faults on the 25 MB activations. ``models/engine/layers.py`` rewrites the layers
exactly (same parameters), denoisers keep networks and batches channels-last, and
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
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from bench.noise import derive_seed
from models.engine import checkpoint
from models.engine.checkpoint import Best, Checkpoints, EpochInProgress, fractional_epoch
from models.engine.layers import autocasts
from models.engine.recipe import Recipe, make_optimizer, schedule_factor
from models.engine.split import batches as _batches
from models.engine.split import planned_steps, split_validation, steps_per_epoch, validation_interval

__all__ = ["Recipe", "TrainResult", "run_training", "optimizer_step", "split_validation", "Progress", "planned_steps"]

log = logging.getLogger("bench.training")

#: Optimizer steps before a collapsed-looking model is acted upon.
COLLAPSE_MIN_STEPS = 100
#: ``batch_loss(net, indices, generator) -> scalar loss``; ``generator`` is the loop's.
BatchLoss = Callable[[nn.Module, Tensor, torch.Generator], Tensor]
#: ``validation(indices, held_out) -> score or None``: prepares scoring on those images (the
#: training pool when ``held_out`` is False); ``score(net)`` gives (loss, collapse diagnosis or None).
Scorer = Callable[[nn.Module], tuple[float, str | None]]
Validation = Callable[[Tensor, bool], Scorer | None]


class Progress:
    """Logs a validation point of a long fit on ``bench.training``, at most every ``every``
    seconds, so that a fit of minutes says how far it is and a fit of seconds says nothing; and,
    where points are far apart (a DnCNN on photo patches scores one every 25 minutes on a CPU
    core), a line with the step and the time left whenever ``quiet`` seconds pass without one."""

    every = 30.0
    quiet = 300.0

    def __init__(self, what: str, step: int = 0) -> None:
        self.what, self.last = what, time.monotonic()
        self.started, self.first_step = self.last, step  # a resumed fit times its own steps only

    def point(self, epoch: float, step: int, steps: int, **losses: float | None) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        shown = ", ".join(f"{name} {value:.5g}" for name, value in losses.items() if value is not None)
        log.info("%s: epoch %g, step %d/%d, %s", self.what, epoch, step, steps, shown)

    def step(self, step: int, steps: int) -> None:
        now = time.monotonic()
        if now - self.last < self.quiet or step <= self.first_step:
            return
        self.last = now
        per_step = (now - self.started) / (step - self.first_step)
        left = per_step * max(0, steps - step)
        shown = f"{left / 3600:.1f} h" if left >= 5400 else f"{left / 60:.0f} min"
        log.info("%s: step %d/%d, %.3g s a step, about %s to go", self.what, step, steps, per_step, shown)


@dataclass
class TrainResult:
    """The trained network (best weights restored), the history of validation points, a JSON summary, the training indices."""

    net: nn.Module
    history: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    train_idx: Tensor | None = None


def _json_number(value: float) -> float | None:
    """The value, or None for NaN/inf (a diverged run), so histories stay valid JSON."""
    return value if math.isfinite(value) else None


def _trainable(net: nn.Module) -> list[nn.Parameter]:
    return [p for p in net.parameters() if p.requires_grad]


def optimizer_step(optimizer: torch.optim.Optimizer, compute_loss: Callable[[], Tensor]) -> Tensor:
    """One optimizer step on ``compute_loss()``; the detached loss, left on the device."""
    value = compute_loss()
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    return value.detach()


class _Engine:
    """One call of ``run_training``: split, generator, budget, schedule, best-so-far, history."""

    def __init__(self, net, batch_loss, recipe, n, seed, validation, reinit, deadline, stage, checkpoints, scored):
        self.device = next(net.parameters()).device
        self.recipe, self.batch_loss, self.reinit, self.seed, self.n = recipe, batch_loss, reinit, seed, n
        self.deadline, self.stage, self.checkpoints = deadline, stage, checkpoints
        self.stage_name = stage or "fit"
        self.train_idx, val_idx = split_validation(n, recipe.val_fraction, seed, self.device, cap=recipe.cap_validation)
        self.info: dict[str, Any] = {"collapse": [], "restarted": False, "collapsed": None, "stopped": "epochs"}
        held_out = len(val_idx) < n
        self.generator = torch.Generator(device=self.device).manual_seed(derive_seed(seed, "batches and noise"))
        self.score = validation(val_idx, held_out) if validation is not None else None
        self.info["validation"] = (
            f"{len(val_idx)} held-out images" if held_out else f"the {n} training images" if self.score else "none"
        )
        self.batch_size = min(recipe.batch_size, len(self.train_idx))
        self.planned_steps = planned_steps(recipe, n)
        self.per_epoch = steps_per_epoch(len(self.train_idx), recipe.batch_size)
        if scored is None:  # the held-out images; the training pool (< 100 images) is cheap to score
            scored = len(val_idx) if held_out and self.score is not None else 0
        self.interval = validation_interval(self.planned_steps, self.per_epoch, scored, self.batch_size)
        self.net, self.lr = net, recipe.lr
        self.optimizer = make_optimizer(recipe, _trainable(net), self.lr)
        self.step, self.epoch, self.last_step, self.schedule_step = 0, 0, self.planned_steps, 0
        self.best, self.history, self.current = Best(), [], None
        self.progress: Progress | None = None
        # the training loss since the last validation point, summed on the device
        self.loss_sum, self.loss_count = torch.zeros((), device=self.device), 0
        self.start = self.schedule_time = self.saved_at = time.monotonic()

    def lr_factor(self) -> float:
        progress = (self.step - self.schedule_step) / max(1, self.planned_steps)
        if self.deadline is not None:
            elapsed, budget = time.monotonic() - self.schedule_time, self.deadline - self.schedule_time
            progress = max(progress, elapsed / max(1e-9, budget))
        return schedule_factor(self.recipe.schedule, progress)

    def out_of_budget(self) -> bool:
        """The step cap is reached or the deadline has passed."""
        steps_done = self.recipe.max_steps is not None and self.step >= self.recipe.max_steps
        return steps_done or (self.deadline is not None and time.monotonic() >= self.deadline)

    def run_to_point(self) -> float:
        """Train up to the next validation point, across epochs; the mean training loss since the last."""
        self.net.train()
        until = min((self.step // self.interval + 1) * self.interval, self.last_step)
        self.run_epoch(until)  # at least one batch, even past a deadline
        while self.step < until and not self.out_of_budget():
            self.run_epoch(until)
        mean = float(self.loss_sum) / max(1, self.loss_count)
        self.loss_sum, self.loss_count = torch.zeros((), device=self.device), 0
        return mean

    def run_epoch(self, until: int) -> None:
        """Go on with the epoch in progress (a new one if none) until step ``until`` or its end."""
        if self.current is None:
            self.epoch += 1
            perm = torch.randperm(len(self.train_idx), generator=self.generator, device=self.device)
            self.current = EpochInProgress(self.train_idx[perm], 0)
        now = self.current
        order = _batches(now.order, self.batch_size)
        for idx in order[now.position :]:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * self.lr_factor()
            loss = optimizer_step(self.optimizer, partial(self.batch_loss, self.net, idx, self.generator))
            self.loss_sum += loss * len(idx)  # summed on the device: no sync per batch
            self.loss_count, now.position, self.step = self.loss_count + len(idx), now.position + 1, self.step + 1
            if self.progress is not None:
                self.progress.step(self.step, self.last_step)
            if self.out_of_budget() or self.step >= until:
                break
            self.maybe_checkpoint()
        if now.position >= len(order) or self.out_of_budget():
            self.current = None

    def maybe_checkpoint(self) -> None:
        every = self.checkpoints
        if every is None or not every.writable:
            return
        due_steps = every.every_steps is not None and self.step % every.every_steps == 0
        if due_steps or time.monotonic() - self.saved_at >= every.every_seconds:
            every.save(self.stage_name, checkpoint.capture(self, done=False))
            self.saved_at = time.monotonic()

    def end_point(self, train_loss: float, progress: Progress) -> bool:
        """Score a validation point, record it, restart a collapsed run or keep the best; True to stop."""
        val_loss, collapse = self.score(self.net) if self.score is not None else (train_loss, None)
        losses = {"train_loss": _json_number(train_loss), "val_loss": _json_number(val_loss) if self.score else None}
        stage = {"stage": self.stage} if self.stage else {}
        epoch = fractional_epoch(self.step, self.per_epoch)
        seconds = time.perf_counter() - self.point_tic
        self.history.append({"epoch": epoch, "step": self.step, **losses, "seconds": seconds} | stage)
        progress.point(epoch, self.step, self.last_step, **losses)
        if self.note_collapse(collapse):
            # Fresh start from another seed at a lower learning rate, once, with a full step budget.
            self.lr, self.best, self.last_step = self.lr * 0.3, Best(step=self.step), self.step + self.planned_steps
            self.net = self.reinit(derive_seed(self.seed, "collapse restart"))
            self.optimizer = make_optimizer(self.recipe, _trainable(self.net), self.lr)
            self.schedule_step, self.schedule_time = self.step, time.monotonic()
        else:
            self.best.update(self.net, val_loss, epoch, self.step)
        patience = self.recipe.patience if self.score is not None else None
        # patience counts epochs: as many steps without a better score, however often it is scored
        waited_out = patience is not None and self.step - self.best.step >= patience * self.per_epoch
        if self.out_of_budget() or waited_out:
            self.info["stopped"] = "budget" if self.out_of_budget() else "early"
            return True
        return False

    def note_collapse(self, collapse: str | None) -> bool:
        """Record the epoch's collapse diagnosis; True when training should restart now."""
        self.info["collapsed"] = collapse  # the last epoch's diagnosis (None: alive)
        if collapse is None or self.step < COLLAPSE_MIN_STEPS:  # a few steps in, every net looks constant
            return False
        restart = not self.info["restarted"] and self.reinit is not None
        self.info["collapse"].append(
            {"epoch": self.epoch, "reason": collapse, "action": "restart" if restart else "none"}
        )
        self.info["restarted"] = self.info["restarted"] or restart
        return restart

    def train(self, what: str) -> TrainResult:
        path = self.checkpoints.path(self.stage_name) if self.checkpoints is not None else None
        if path is not None and checkpoint.resume(self, path, what):
            return self.result()
        progress = self.progress = Progress(what, self.step)
        while self.step < self.last_step:
            self.point_tic = time.perf_counter()
            if self.end_point(self.run_to_point(), progress):
                break
            self.maybe_checkpoint()  # a point's step is saved once scored: a resume goes on to the next
        if self.best.state is not None:
            self.net.load_state_dict(self.best.state)
        self.info.update(best_epoch=self.best.epoch, steps=self.step, device=str(self.device))
        self.info.update(validation_every=self.interval)
        self.info.update(best_val_loss=self.best.loss if self.best.state is not None else None)
        self.info.update(
            seconds=time.monotonic() - self.start, mixed_precision=autocasts(self.device, self.recipe.precision)
        )
        if path is not None and self.checkpoints.writable:  # the finished stage: a rerun of the fit skips it
            self.checkpoints.save(self.stage_name, checkpoint.capture(self, done=True))
        return self.result()

    def result(self) -> TrainResult:
        return TrainResult(self.net.eval(), self.history, self.info, self.train_idx)


def run_training(
    net: nn.Module,
    batch_loss: BatchLoss,
    recipe: Recipe,
    *,
    n: int,
    seed: int = 0,
    validation: Validation | None = None,
    reinit: Callable[[int], nn.Module] | None = None,
    deadline: float | None = None,
    stage: str | None = None,
    what: str | None = None,
    checkpoints: Checkpoints | None = None,
    scored: int | None = None,
) -> TrainResult:
    """Train ``net``'s parameters that require gradients on ``range(n)`` under ``recipe``.

    ``reinit(seed)`` builds a fresh network for a collapse restart (None: collapses are only
    recorded); ``deadline`` is a ``time.monotonic()`` value; ``stage`` names the stage in the
    history and its checkpoint file; ``what`` names the fit in log lines. ``scored``: what one
    validation point costs, in training samples' worth of work, when ``validation`` scores
    something other than the held-out part of ``range(n)`` (patch training scores whole
    images); it spaces the points (``split.validation_interval``).
    """
    engine = _Engine(net, batch_loss, recipe, n, seed, validation, reinit, deadline, stage, checkpoints, scored)
    return engine.train(what or f"{type(net).__name__}{f' ({stage})' if stage else ''}")
