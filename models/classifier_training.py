"""The training loop of the torch classifiers and their shared base class.

Everything stays on the images' device: batches are index slices of tensors already there,
shuffles are drawn on a CPU generator (the same order on every device) and moved once per
epoch. Adam, early stopping on a held-out split, bf16 autocast on CUDA only.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from bench.estimator import Classifier
from models.base import seeded
from models.training import Progress, autocast

__all__ = ["fit_loop", "split_validation", "check_training_data", "TorchClassifier"]

#: Below this many training images no validation split is held out: a handful of held-out
#: images says nothing, and few-label training must use every label it has.
MIN_IMAGES_FOR_VALIDATION = 100
#: Images per forward pass when predicting or evaluating.
EVAL_BATCH = 1024
#: Training images whose batch statistics replace the running ones after training.
BATCHNORM_IMAGES = 8192


def split_validation(n: int, fraction: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Seeded (train, validation) index split; no validation below MIN_IMAGES_FOR_VALIDATION."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1); got {fraction!r}")
    order = torch.randperm(n, generator=generator)
    n_val = int(round(n * fraction)) if n >= MIN_IMAGES_FOR_VALIDATION else 0
    return order[n_val:], order[:n_val]


def check_training_data(images: Tensor, labels: Tensor, name: str) -> None:
    """One-line errors for the inputs ``fit`` accepts."""
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{images.dtype} of shape {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{name}: training images must be float N x C x H x W in [0, 1]; got {got}")
    if not isinstance(labels, Tensor) or labels.shape != (len(images),) or labels.is_floating_point():
        got = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name}: labels must be integer of shape ({len(images)},); got {got}")
    if len(images) < 2 or int(labels.min()) < 0:
        raise ValueError(
            f"{name}: need at least 2 images and labels >= 0; got {len(images)} images, min label {int(labels.min())}"
        )


def fit_loop(
    params: Iterable[nn.Parameter],
    batch_loss: Callable[[Tensor], Tensor],
    train_idx: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
    max_seconds: float | None = None,
    patience: int | None = None,
    val_loss: Callable[[], float] | None = None,
    state: nn.Module | None = None,
) -> list[dict[str, float]]:
    """Minimise ``batch_loss(indices)`` over shuffled mini-batches of ``train_idx`` with Adam.

    After each epoch the score is ``val_loss()`` (or the epoch's mean training loss without
    one); ``state``'s best weights are restored at the end, and ``patience`` epochs without
    improvement stop early. ``max_seconds`` stops mid-epoch once spent. Returns per-epoch history.
    """
    optimizer = torch.optim.Adam([p for p in params if p.requires_grad], lr=lr)
    start = time.perf_counter()
    deadline = math.inf if max_seconds is None else start + max_seconds
    history, best, best_state, stale = [], math.inf, None, 0
    progress = Progress(f"{type(state).__name__ if state is not None else 'classifier'} (classifier)")
    for epoch in range(epochs):
        order = train_idx[torch.randperm(len(train_idx), generator=generator).to(train_idx.device)]
        train_loss, out_of_time = _epoch(optimizer, batch_loss, order.split(batch_size), deadline)
        score = val_loss() if val_loss is not None else train_loss
        seconds = time.perf_counter() - start
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "val_loss": score if val_loss is not None else None,
                "seconds": seconds,
            }
        )
        progress.epoch(
            epoch + 1, epochs, (epoch + 1) * math.ceil(len(order) / batch_size), train_loss=train_loss, val_loss=score
        )
        if score < best:
            best, stale = score, 0
            best_state = {k: v.detach().clone() for k, v in state.state_dict().items()} if state is not None else None
        else:
            stale += 1
        if out_of_time or (patience is not None and stale >= patience):
            break
    if best_state is not None:
        state.load_state_dict(best_state)
    return history


def _epoch(
    optimizer: torch.optim.Optimizer, batch_loss: Callable[[Tensor], Tensor], batches: Iterable[Tensor], deadline: float
) -> tuple[float, bool]:
    """One pass; returns the mean training loss and whether the deadline cut it short."""
    total, count = 0.0, 0
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = batch_loss(batch)
        loss.backward()
        optimizer.step()
        total, count = total + loss.detach() * len(batch), count + len(batch)
        if time.perf_counter() > deadline:
            return float(total) / count, True
    return float(total) / max(count, 1), False  # one device sync per epoch, not per batch


class TorchClassifier(Classifier):
    """Base of the torch classifiers: a network from ``build``, trained by ``fit_loop``.

    Subclasses implement ``build(input_shape, n_classes) -> nn.Module`` and keep their
    architecture settings as keyword-only constructor parameters; ``_prepare`` may pretrain
    parts of the network and choose the trained parameters and labelled images.

    Parameters
    ----------
    epochs, batch_size, lr : int, int, float
        Adam training budget.
    max_seconds : float or None
        Wall-clock cap on training (the quick grid's budget); None for no cap.
    val_fraction : float
        Share of the training images held out for early stopping (none below 100 images).
    patience : int
        Epochs without a better validation loss before stopping (none without a validation split).
    """

    def __init__(
        self,
        *,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        max_seconds: float | None = None,
        val_fraction: float = 0.1,
        patience: int = 3,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_seconds = max_seconds
        self.val_fraction = val_fraction
        self.patience = patience

    @abstractmethod
    def build(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        """The untrained network for C x H x W inputs and ``n_classes`` outputs."""

    def _prepare(
        self, net: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> tuple[Tensor | None, list]:
        """(labelled indices or None for all, parameters to train) before supervised training."""
        return None, list(net.parameters())

    def fit(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> TorchClassifier:
        check_training_data(images, labels, self.name)
        device, labels = images.device, labels.to(images.device, torch.int64)
        shape, n_classes = tuple(images.shape[1:]), max(int(labels.max()) + 1, 2)
        generator, start = torch.Generator().manual_seed(seed), time.perf_counter()
        with seeded(seed, device):
            net = self.build(shape, n_classes).to(device)
            labelled, params = self._prepare(net, images, labels, generator)
            # max_seconds caps the whole fit: supervised training gets what _prepare left.
            seconds = None if self.max_seconds is None else max(self.max_seconds - (time.perf_counter() - start), 0.0)
            pool = torch.arange(len(images)) if labelled is None else labelled.cpu()
            train, val = split_validation(len(pool), self.val_fraction, generator)
            train, val = pool[train].to(device), pool[val].to(device)

            def batch_loss(idx: Tensor) -> Tensor:
                with autocast(device):
                    logits = net(images[idx])
                return nn.functional.cross_entropy(logits.float(), labels[idx])

            net.train()
            # Without a validation split the training loss only says when to restore, never when to stop.
            history = fit_loop(
                params,
                batch_loss,
                train,
                epochs=self.epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                generator=generator,
                max_seconds=seconds,
                patience=self.patience if len(val) else None,
                state=net,
                val_loss=(lambda: self._loss(net, images[val], labels[val])) if len(val) else None,
            )
            recalibrate_batchnorm(net, images[train[:BATCHNORM_IMAGES]])
        self.net_, self.input_shape_, self.n_classes_, self.history_ = net.eval(), shape, n_classes, history
        return self

    @staticmethod
    def _loss(net: nn.Module, images: Tensor, labels: Tensor) -> float:
        """Mean cross-entropy in eval mode (the loop switches back to train mode)."""
        net.eval()
        logits = _logits(net, images)
        net.train()
        return float(nn.functional.cross_entropy(logits, labels))

    def _checked_logits(self, images: Tensor) -> Tensor:
        self.check_fitted()
        if not isinstance(images, Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape_:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"{self.name}: expected images of shape N x {' x '.join(map(str, self.input_shape_))}; got {got}"
            )
        device = next(self.net_.parameters()).device
        return _logits(self.net_, images.float().to(device)).to(images.device)

    def predict(self, images: Tensor) -> Tensor:
        return self._checked_logits(images).argmax(1)

    def predict_proba(self, images: Tensor) -> Tensor:
        """Class probabilities, N x n_classes, float32."""
        return self._checked_logits(images).softmax(1)

    def n_parameters(self) -> int:
        self.check_fitted()
        return sum(p.numel() for p in self.net_.parameters())

    def fitted_tensors(self) -> dict[str, Tensor]:
        self.check_fitted()
        return {f"net.{k}": v for k, v in self.net_.state_dict().items()}

    def fitted_state(self) -> dict[str, Any]:
        self.check_fitted()
        return {"input_shape": list(self.input_shape_), "n_classes": self.n_classes_, "history": self.history_}

    def load_fitted(self, tensors: dict[str, Tensor], state: dict[str, Any], device: Any = "cpu") -> TorchClassifier:
        """Rebuild the network from ``state`` and load ``tensors``: no training, no pickle."""
        shape, n_classes = tuple(int(d) for d in state["input_shape"]), int(state["n_classes"])
        with seeded(0, torch.device("cpu")):  # the throwaway initialisation must not touch the caller's RNG
            net = self.build(shape, n_classes)
        net.load_state_dict({k.removeprefix("net."): v for k, v in tensors.items() if k.startswith("net.")})
        self.net_, self.input_shape_, self.n_classes_ = net.to(device).eval(), shape, n_classes
        self.history_ = list(state.get("history", []))
        return self


@torch.no_grad()
def recalibrate_batchnorm(net: nn.Module, images: Tensor) -> None:
    """Replace batch-norm running statistics by exact averages over ``images`` ("precise BN").

    The running averages lag behind weights that Adam still moves, which on short runs makes
    eval-mode predictions far worse than train-mode ones (Wu & Johnson 2021, "Rethinking
    'Batch' in BatchNorm"). Only the batch-norm layers switch to train mode, so dropout stays off.
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or len(images) < 2:
        return
    net.eval()
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average over the batches below
        norm.train()
    with autocast(images.device):
        for batch in images.split(EVAL_BATCH):
            if len(batch) > 1:
                net(batch)
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum
    net.eval()


@torch.inference_mode()
def _logits(net: nn.Module, images: Tensor) -> Tensor:
    """float32 logits of ``images`` in eval batches on the network's device."""
    with autocast(images.device):
        return torch.cat([net(batch).float() for batch in images.split(EVAL_BATCH)])
