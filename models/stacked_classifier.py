"""Stacked denoising autoencoder 500-300-100 with a softmax layer on top (seed 003).

Greedy layer-wise pretraining: each sigmoid layer learns to reconstruct its (clean) input
from a masked copy, the input of the next layer being the codes of the one before (Vincent
et al. 2010). Then the softmax layer is trained on top, with the encoder fine-tuned
(``finetune="full"``) or frozen, on all labels or on ``labels_per_class`` labels per class.

Ours (``stacked_ae_softmax``) differs from the report in two measured ways, on 5,000
Fashion-MNIST training images and all 10,000 test images: 30 pretraining epochs a layer
instead of 10 and dropout 0.2 on the input and on every hidden layer while fine-tuning
take test accuracy from 84.1% to 85.0-85.5% (seeds 0 and 1), past the RBF SVM's 84.3%.
The report's protocol variants (``*_frozen``, ``*_1label``, ``*_5labels``) use no dropout;
``stacked_ae_softmax_faithful`` also trains as the report did (UFLDL's summed cost, full-batch
gradient descent, 500 iterations a stage).
"""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import torch
from torch import Tensor, nn

from bench.estimator import FRACTION, POSITIVE, POSITIVE_INT, one_of
from bench.noise import Noise, derive_seed
from bench.registry import CLASSIFIERS
from models.engine.checkpoint import Checkpoints
from models.engine.layers import autocast
from models.engine.recipe import Recipe, loss_value
from models.engine.training import planned_steps, run_training
from models.neural_denoiser import seeded
from models.torch_classifier import EVAL_BATCH, TorchClassifier, check_training_data

__all__ = ["StackedAESoftmax", "few_label_indices"]

FINETUNE_MODES = ("full", "frozen")
OPTIMIZERS = ("adam", "sgd")
PRETRAIN_LOSSES = ("mse", "half_sse")
#: A batch size above any training set: the engine caps it there, so every step is full-batch.
FULL_BATCH = 1_000_000
_TEST_PARAMS = {
    "hidden": (32, 16),
    "pretrain_epochs": 5,
    "pretrain_lr": 1e-2,
    "epochs": 30,
    "batch_size": 16,
    "lr": 1e-2,
}


def few_label_indices(labels: Tensor, per_class: int, generator: torch.Generator) -> Tensor:
    """Seeded choice of exactly ``per_class`` image indices of each class present in ``labels``."""
    labels = labels.cpu()
    chosen = []
    for label in labels.unique().tolist():
        members = (labels == label).nonzero().flatten()
        if len(members) < per_class:
            raise ValueError(f"labels_per_class={per_class} but class {label} has only {len(members)} training images")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen)


def _draw_seed(generator: torch.Generator) -> int:
    return int(torch.randint(2**62, (1,), generator=generator))


class StackedNet(nn.Module):
    """Flatten, sigmoid encoder, softmax layer; dropout on the input and on each code in training."""

    def __init__(self, encoder: nn.Sequential, head: nn.Linear, dropout: float) -> None:
        super().__init__()
        self.flatten, self.encoder, self.head, self.dropout = nn.Flatten(), encoder, head, nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(self.flatten(x))
        for layer in self.encoder:
            x = self.dropout(layer(x))
        return self.head(x)


@CLASSIFIERS.register(
    "stacked_ae_softmax",
    source="seed 003 (Ogety, stacked autoencoder 500-300-100 + softmax on Fashion-MNIST, 76.40%)",
    description="stacked denoising autoencoder, greedy layer-wise pretraining, softmax, full fine-tuning",
    test_params=_TEST_PARAMS,
)
class StackedAESoftmax(TorchClassifier):
    """Stacked denoising autoencoder with a softmax classifier.

    Seed 003 pretrains three sigmoid layers (500, 300, 100 units) greedily on masked inputs
    (20% of the pixels set to 0), puts a softmax layer on top and trains it with the encoder
    frozen, also with only 1 or 5 labelled images per class (50.3% and 70.5% test accuracy on
    Fashion-MNIST from 5,000 training images; 76.4% with 500 labels per class).

    Parameters
    ----------
    hidden : sequence of int
        Encoder layer sizes (seed 003: 500, 300, 100).
    finetune : {'full', 'frozen'}
        Train the encoder with the softmax layer, or only the softmax layer.
    labels_per_class : int or None
        Train the softmax layer on this many seeded labelled images per class (seed 003: 1 and
        5); the encoder is still pretrained, unsupervised, on every image. None uses all labels.
    mask_level : float
        Share of inputs set to 0 in denoising pretraining (seed 003: 0.2).
    dropout : float
        Dropout on the input and on each hidden layer during supervised training (ours; the
        report used none).
    input_masking : float
        Share of the training images' pixels set to 0 once, before any training (fixed masked
        copies seeded from the fit seed, ``bench.noise``'s masking): seed 003's Tables 3-4 train
        the whole classifier on masked images. 0 trains on the images as given.
    optimizer : {'adam', 'sgd'}
        Of every stage: Adam (ours) or plain gradient descent (seed 003's, no momentum).
    pretrain_loss : {'mse', 'half_sse'}
        Pretraining cost: per-unit mean squared error (ours) or UFLDL's 0.5 x squared error
        summed over the units, averaged over the images (784x larger on the first layer, so a
        learning rate means something else under each).
    pretrain_epochs, pretrain_lr : int, float
        Budget of each layer's pretraining.
    epochs, batch_size, lr, max_seconds, val_fraction, patience
        The supervised training, see ``TorchClassifier``; ``max_seconds`` caps the whole fit,
        half of it for pretraining.
    """

    name = "stacked_ae_softmax"
    budgets = {"quick": {"pretrain_epochs": 5, "epochs": 20, "batch_size": 32}, "full": {}}
    param_rules = {
        "finetune": one_of(*FINETUNE_MODES),
        "labels_per_class": POSITIVE_INT.or_none("all labels"),
        "optimizer": one_of(*OPTIMIZERS),
        "pretrain_loss": one_of(*PRETRAIN_LOSSES),
        "pretrain_epochs": POSITIVE_INT,
        "pretrain_lr": POSITIVE,
        **dict.fromkeys(("mask_level", "dropout", "input_masking"), FRACTION),
    }

    def __init__(
        self,
        *,
        hidden: tuple[int, ...] = (500, 300, 100),
        finetune: str = "full",
        labels_per_class: int | None = None,
        mask_level: float = 0.2,
        dropout: float = 0.2,
        input_masking: float = 0.0,
        optimizer: str = "adam",
        pretrain_loss: str = "mse",
        pretrain_epochs: int = 30,
        pretrain_lr: float = 1e-3,
        epochs: int = 100,
        patience: int = 10,
        **common: Any,
    ) -> None:
        super().__init__(epochs=epochs, patience=patience, **common)
        self.hidden = hidden
        self.finetune = finetune
        self.labels_per_class = labels_per_class
        self.mask_level = mask_level
        self.dropout = dropout
        self.input_masking = input_masking
        self.optimizer = optimizer
        self.pretrain_loss = pretrain_loss
        self.pretrain_epochs = pretrain_epochs
        self.pretrain_lr = pretrain_lr

    def build(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        # The encoder is built first, so its initialisation does not depend on n_classes.
        sizes = [input_shape[0] * input_shape[1] * input_shape[2], *self.hidden]
        layers = [nn.Sequential(nn.Linear(a, b), nn.Sigmoid()) for a, b in pairwise(sizes)]
        encoder = nn.Sequential(*layers)
        return StackedNet(encoder, nn.Linear(sizes[-1], n_classes), self.dropout)

    def recipe(self, **overrides: Any) -> Recipe:
        """``TorchClassifier.recipe`` under this model's optimizer."""
        return super().recipe(**overrides).updated(optimizer=self.optimizer)

    def training_images(self, images: Tensor, *, seed: int = 0) -> Tensor:
        """The images ``fit(images, labels, seed=seed)`` trains on: masked once when ``input_masking`` > 0."""
        if not self.input_masking:
            return images
        noise = Noise("masking", float(self.input_masking))
        return noise.apply(images, seed=derive_seed(seed, "input masking", float(self.input_masking)))

    def fit(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> StackedAESoftmax:
        check_training_data(images, labels, self.name)
        return super().fit(self.training_images(images, seed=seed), labels, seed=seed)

    def pretrain(self, images: Tensor, *, seed: int = 0) -> nn.Module:
        """The pretrained encoder that ``fit(images, labels, seed=seed)`` starts from."""
        generator = torch.Generator().manual_seed(seed)
        with seeded(seed, images.device):
            encoder = self.build(tuple(images.shape[1:]), 2).encoder.to(images.device)
            self._pretrain(encoder, self.training_images(images, seed=seed), generator, None)
        return encoder

    def planned_stage_steps(self, n: int) -> list[int]:
        """Each layer's pretraining on all ``n`` images, then the softmax on the labelled ones."""
        pretrain = self.recipe(lr=self.pretrain_lr, epochs=self.pretrain_epochs, patience=None, val_fraction=0.0)
        labelled = n if self.labels_per_class is None else min(n, 10 * self.labels_per_class)  # ten classes
        return [planned_steps(pretrain, n)] * len(self.hidden) + [planned_steps(self.recipe(), labelled)]

    def _pretrain(
        self, encoder: nn.Module, images: Tensor, generator: torch.Generator, checkpoints: Checkpoints | None
    ) -> None:
        """Greedy layer-wise denoising pretraining of ``encoder`` in place (each layer one engine stage)."""
        device = images.device
        codes = images.flatten(1)
        seconds = None if self.max_seconds is None else self.max_seconds / (2 * len(encoder))
        with seeded(_draw_seed(generator), device):  # decoders: independent of n_classes
            for k, layer in enumerate(encoder, start=1):
                deadline = None if seconds is None else time.monotonic() + seconds
                self._pretrain_layer(layer, codes, _draw_seed(generator), deadline, f"pretrain layer {k}", checkpoints)
                with torch.no_grad(), autocast(device):
                    codes = torch.cat([layer(chunk).float() for chunk in codes.split(EVAL_BATCH)])

    def _pretrain_layer(
        self, layer: nn.Module, codes: Tensor, seed: int, deadline: float | None, stage: str, checkpoints: Any
    ) -> None:  # checkpoints: Checkpoints or None
        """Train ``layer`` and a throwaway decoder to restore ``codes`` from masked copies (no validation)."""
        device = codes.device
        decoder = nn.Sequential(nn.Linear(layer[0].out_features, layer[0].in_features), nn.Sigmoid()).to(device)

        def batch_loss(net: nn.Module, idx: Tensor, masks: torch.Generator) -> Tensor:
            clean = codes[idx]
            keep = torch.rand(clean.shape, generator=masks, device=device) >= self.mask_level
            with autocast(device):
                out = net(clean * keep)
            return loss_value(self.pretrain_loss, out, clean)

        recipe = self.recipe(lr=self.pretrain_lr, epochs=self.pretrain_epochs, patience=None, val_fraction=0.0)
        options = {"deadline": deadline, "stage": stage, "what": f"{self.name} ({stage})", "checkpoints": checkpoints}
        run_training(nn.Sequential(layer, decoder), batch_loss, recipe, n=len(codes), seed=seed, **options)

    def _prepare(self, net, images, labels, generator, checkpoints) -> Tensor | None:  # see TorchClassifier
        self._pretrain(net.encoder, images, generator, checkpoints)
        labelled = None
        if self.labels_per_class is not None:
            labelled = few_label_indices(labels, self.labels_per_class, generator)
        self.labelled_indices_ = labelled
        if self.finetune == "frozen":
            net.encoder.requires_grad_(False)
        return labelled

    def fitted_tensors(self) -> dict[str, Tensor]:
        tensors = super().fitted_tensors()
        if self.labelled_indices_ is not None:
            tensors["labelled_indices"] = self.labelled_indices_
        return tensors

    def load_fitted(self, tensors: dict[str, Tensor], state: dict[str, Any], device: Any = "cpu") -> StackedAESoftmax:
        super().load_fitted(tensors, state, device)
        self.labelled_indices_ = tensors.get("labelled_indices")
        return self


def _variant(
    name: str,
    description: str,
    fixed: dict[str, Any],
    defaults: dict[str, Any] | None = None,
    test: dict | None = None,
    budgets: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Register a variant of StackedAESoftmax: ``fixed`` settings spell out its name, ``defaults`` may be
    overridden; ``budgets`` replace the grids' budgets of StackedAESoftmax where its own defaults drop them."""
    defaults = defaults or {}

    def factory(**params: Any) -> StackedAESoftmax:
        model = StackedAESoftmax(**fixed, **{**defaults, **params})
        model.name = name
        return model

    factory.__name__ = name
    factory.budgets = {
        k: {p: v for p, v in b.items() if p not in defaults} for k, b in StackedAESoftmax.budgets.items()
    } | (budgets or {})
    test = test or ({**_TEST_PARAMS, "epochs": 100} if defaults else _TEST_PARAMS)
    CLASSIFIERS.register(
        name,
        source="seed 003 (Ogety): frozen pretrained encoder, softmax layer only",
        description=description,
        test_params=test,
    )(factory)


# Few-label training sees 10-50 images: one batch an epoch, so it needs many more epochs.
_FEW = {"epochs": 300, "lr": 1e-2}
# Seed 003's frozen variants pretrain on the images as given (its Tables 1-2 add no noise; from
# Table 3 on the images are masked once, ``input_masking``), so no masking in pretraining.
_FROZEN = {"finetune": "frozen", "dropout": 0.0, "mask_level": 0.0}
_variant(
    "stacked_ae_softmax_frozen",
    "stacked autoencoder, frozen encoder, softmax on all labels",
    _FROZEN,
)
_variant(
    "stacked_ae_softmax_1label",
    "frozen pretrained encoder, softmax on 1 label per class",
    {**_FROZEN, "labels_per_class": 1},
    _FEW,
)
_variant(
    "stacked_ae_softmax_5labels",
    "frozen pretrained encoder, softmax on 5 labels per class",
    {**_FROZEN, "labels_per_class": 5},
    _FEW,
)

# Seed 003's own protocol (Table 1): UFLDL's costs under plain full-batch gradient descent, 500
# iterations a stage on every training image (no hold-out), no input corruption (Table 3 adds
# it). Its rates 0.1-0.5 are gradient-descent rates on a per-image summed cost: under our
# per-unit mean and Adam the same numbers mean a step 784x smaller on the first layer's
# cost and a different optimizer, at which the softmax sits at chance. UFLDL's weight decay
# and sparsity terms are left out: the report gives neither.
_variant(
    "stacked_ae_softmax_faithful",
    "seed 003's protocol: frozen encoder, UFLDL costs, full-batch gradient descent, 500 iterations a stage",
    {"finetune": "frozen", "dropout": 0.0, "optimizer": "sgd", "pretrain_loss": "half_sse"},
    {
        "lr": 0.1,
        "pretrain_lr": 0.1,
        "epochs": 500,
        "pretrain_epochs": 500,
        "batch_size": FULL_BATCH,
        "val_fraction": 0.0,
        "mask_level": 0.0,
    },
    test={"hidden": (32, 16), "pretrain_epochs": 20, "epochs": 300, "lr": 0.5, "pretrain_lr": 0.1},
    # 2,000 full-batch iterations take over a minute of a CPU core: the quick grid runs a tenth of them
    budgets={"quick": {"pretrain_epochs": 50, "epochs": 50}},
)
