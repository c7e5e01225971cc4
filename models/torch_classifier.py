"""The torch classifiers' shared base class: a network trained by the one training engine.

Everything stays on the images' device: batches are index slices of tensors already there
(``models.engine.training.run_training``), cross-entropy, Adam at a constant rate, early stopping
on the engine's validation split, optional random shifts of the training batches, bf16
autocast on CUDA (and on a CPU with ``precision='bf16'``), and batch-norm statistics
recomputed after training.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bench.estimator import NON_NEGATIVE_INT, Classifier, check_images, one_of
from models.engine.augment import random_shift
from models.engine.checkpoint import Checkpoints, seconds_trained
from models.engine.layers import autocast
from models.engine.recipe import SCHEDULES, Recipe
from models.engine.training import planned_steps, run_training
from models.neural_denoiser import seeded

__all__ = ["check_training_data", "TorchClassifier", "classification_loss", "recalibrate_batchnorm", "EVAL_BATCH"]

#: Images per forward pass when predicting or evaluating.
EVAL_BATCH = 1024
#: Training images whose batch statistics replace the running ones after training.
BATCHNORM_IMAGES = 8192


def check_training_data(images: Tensor, labels: Tensor, name: str) -> None:
    """One-line errors for the inputs ``fit`` accepts."""
    check_images(images, f"{name}: training images")
    if not isinstance(labels, Tensor) or labels.shape != (len(images),) or labels.is_floating_point():
        got = f"{labels.dtype} of shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"{name}: labels must be integer of shape ({len(images)},); got {got}")
    if len(images) < 2 or int(labels.min()) < 0:
        raise ValueError(
            f"{name}: need at least 2 images and labels >= 0; got {len(images)} images, min label {int(labels.min())}"
        )


class TorchClassifier(Classifier):
    """Base of the torch classifiers: a network from ``build``, trained by the training engine.

    Subclasses implement ``build(input_shape, n_classes) -> nn.Module`` and keep their
    architecture settings as keyword-only constructor parameters; ``_prepare`` may pretrain
    parts of the network (freezing some: only parameters that require gradients train) and
    choose the labelled images. With ``checkpoint_path`` set (a plain attribute, see
    ``models.engine.checkpoint``), every stage writes mid-fit checkpoints and a rerun resumes.

    Parameters
    ----------
    epochs, batch_size, lr : int, int, float
        Adam training budget.
    max_steps : int or None
        Cap on optimizer steps (per training stage); like epochs, the same on every machine.
    max_seconds : float or None
        Wall-clock cap on the whole fit; None for no cap. Not reproducible across machines or
        on resume: step and epoch budgets are.
    val_fraction : float
        Share of the training images held out for early stopping (at most 2,048; none below
        100 images, where the training loss picks the weights to keep).
    patience : int
        Epochs without a better validation loss before stopping (none without a validation split).
    schedule : {'constant', 'cosine', 'step'}
        Learning-rate schedule over the planned steps (``models.engine.recipe.Recipe``).
    shift : int
        Each training image is moved by a random offset of up to this many pixels along each
        axis, drawn afresh every batch (0: no augmentation). Validation and test images are not.
    precision : {'auto', 'fp32', 'bf16'}
        Training autocast: ``auto`` is bf16 on CUDA and float32 on a CPU; ``bf16`` autocasts
        on a CPU too (weights and optimizer state stay float32).
    """

    accelerated: ClassVar[bool] = True  # a network: executors give its fits a GPU
    param_rules: ClassVar[dict[str, Any]] = {"schedule": one_of(*SCHEDULES), "shift": NON_NEGATIVE_INT}

    def __init__(
        self,
        *,
        epochs: int = 20,
        batch_size: int = 128,
        lr: float = 1e-3,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        val_fraction: float = 0.1,
        patience: int = 3,
        schedule: str = "constant",
        shift: int = 0,
        precision: str = "auto",
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.val_fraction = val_fraction
        self.patience = patience
        self.schedule = schedule
        self.shift = shift
        self.precision = precision

    @abstractmethod
    def build(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        """The untrained network for C x H x W inputs and ``n_classes`` outputs."""

    def _prepare(
        self,
        net: nn.Module,
        images: Tensor,
        labels: Tensor,
        generator: torch.Generator,
        checkpoints: Checkpoints | None,
    ) -> Tensor | None:
        """The labelled indices (None for all) after any work before supervised training."""
        return None

    def recipe(self, **overrides: Any) -> Recipe:
        """The supervised training recipe (Adam) from the constructor parameters."""
        settings = {"lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size, "patience": self.patience}
        settings |= {"schedule": self.schedule, "precision": self.precision}
        settings |= {"val_fraction": self.val_fraction, "max_steps": self.max_steps, "note": self.name}
        return Recipe(**({"optimizer": "adam"} | settings | overrides))

    def planned_stage_steps(self, n: int) -> list[int]:
        """Optimizer steps of each training stage on ``n`` images, before early stopping (``bench plan``)."""
        return [planned_steps(self.recipe(), n)]

    def fit(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> TorchClassifier:
        check_training_data(images, labels, self.name)
        recipe = self.recipe()
        device, labels = images.device, labels.to(images.device, torch.int64)
        shape, n_classes = tuple(images.shape[1:]), max(int(labels.max()) + 1, 2)
        generator, checkpoints = torch.Generator().manual_seed(seed), Checkpoints.of(self)
        # max_seconds caps the whole fit: supervised training gets what _prepare leaves.
        deadline = None if self.max_seconds is None else time.monotonic() + self.max_seconds
        with seeded(seed, device):
            net = self.build(shape, n_classes).to(device)
            labelled = self._prepare(net, images, labels, generator, checkpoints)
            pool = torch.arange(len(images), device=device) if labelled is None else labelled.to(device)

            def batch_loss(net: nn.Module, idx: Tensor, generator: torch.Generator) -> Tensor:
                batch = random_shift(images[pool[idx]], self.shift, generator)
                with autocast(device, recipe.precision):
                    logits = net(batch)
                return classification_loss(recipe.loss, logits, labels[pool[idx]])

            def validation(val_idx: Tensor, held_out: bool):
                held = pool[val_idx]  # on its own training images the loss says when to keep, not when to stop
                return (lambda net: (self._loss(net, images[held], labels[held]), None)) if held_out else None

            what = f"{type(net).__name__} (classifier)"
            options = {"validation": validation, "deadline": deadline, "what": what, "checkpoints": checkpoints}
            result = run_training(net, batch_loss, recipe, n=len(pool), seed=seed, **options)
            recalibrate_batchnorm(net, images[pool[result.train_idx[:BATCHNORM_IMAGES]]])
        self.net_, self.input_shape_, self.n_classes_, self.history_ = net.eval(), shape, n_classes, result.history
        if checkpoints is not None:
            checkpoints.clear()
        return self

    @staticmethod
    def _loss(net: nn.Module, images: Tensor, labels: Tensor) -> float:
        """Mean cross-entropy in eval mode (the engine switches back to train mode each epoch)."""
        net.eval()
        return float(nn.functional.cross_entropy(_logits(net, images), labels))

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

    seconds_trained = seconds_trained  # the Estimator hook, read from this model's checkpoints

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


def classification_loss(name: str, logits: Tensor, labels: Tensor) -> Tensor:
    """A classifier's training loss, in float32: cross-entropy, or with ``name='bce'`` Keras'
    ``binary_crossentropy`` on softmax outputs against one-hot labels (what seed 000 trained with).
    """
    logits = logits.float()
    if name != "bce":
        return nn.functional.cross_entropy(logits, labels)
    target = nn.functional.one_hot(labels, logits.shape[1]).float()
    return nn.functional.binary_cross_entropy(logits.softmax(1).clamp(1e-7, 1 - 1e-7), target)


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
