"""Seed 003: the dense denoising autoencoder and the stacked denoising autoencoder 500-300-100.

The report (Ogety, "Reconstructing Noised Images of Fashion-MNIST Dataset using
Autoencoders") maps the flattened noisy image through a sigmoid hidden layer and trains
on squared error by gradient descent: learning rate 0.1, 500 iterations, 5,000 training
images, 1000 hidden units best. Its stacked autoencoder (500-300-100) is trained greedily,
one layer at a time as an autoencoder of the previous layer's output, then fine-tuned by
backpropagation. The report fine-tunes a softmax head for classification; as a denoiser we
fine-tune the unrolled encoder-decoder (decoders initialised from the pretraining
autoencoders), which is the closest denoising reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from models.engine.denoising import train
from models.engine.training import Recipe, TrainResult
from models.latent import LatentInterpolation
from models.neural_denoiser import NeuralDenoiser, register, seeded

__all__ = ["DenseAENet", "DenseDAE", "StackedDAE"]


class DenseAENet(nn.Module):
    """Flatten -> sigmoid dense layers (``sizes``) -> mirrored sigmoid dense layers -> image.

    ``encode``/``decode`` expose the code. With ``image_shape=None`` the net works on
    vectors (the layers of greedy pretraining beyond the first).
    """

    def __init__(self, d_in: int, sizes: tuple[int, ...], image_shape: tuple[int, int, int] | None) -> None:
        super().__init__()
        dims = (d_in, *sizes)
        self.encoders = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.Sigmoid()) for a, b in zip(dims, dims[1:]))
        self.decoders = nn.ModuleList(nn.Sequential(nn.Linear(b, a), nn.Sigmoid()) for a, b in zip(dims, dims[1:]))
        self.image_shape = image_shape

    def encode(self, x: Tensor) -> Tensor:
        z = x.flatten(1)
        for layer in self.encoders:
            z = layer(z)
        return z

    def decode(self, z: Tensor) -> Tensor:
        for layer in reversed(self.decoders):
            z = layer(z)
        return z.view(-1, *self.image_shape) if self.image_shape else z

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def dense_ae_net(shape: tuple[int, int, int], sizes: tuple[int, ...]) -> DenseAENet:
    return DenseAENet(math.prod(shape), tuple(sizes), tuple(shape))


# 500 iterations of full-batch gradient descent (lr 0.1) on 5,000 images, cost 0.5 * squared error
# summed over the pixels and averaged over the images (UFLDL's). The report corrupts its training
# images once ("added 20% noise to the input images") and reports the cost on them: no
# hold-out and no noise redrawn, so the kept model is the one with the lowest cost on its own pairs.
_FAITHFUL = Recipe(
    optimizer="sgd",
    lr=0.1,
    loss="half_sse",
    epochs=500,
    batch_size=5000,
    patience=None,
    val_fraction=0.0,
    redraw_noise=False,
    note="seed 003: GD lr 0.1, 500 iterations, 5000 fixed noisy pairs",
)
_OURS = Recipe(optimizer="adam", lr=1e-3, loss="mse", schedule="cosine", epochs=30, batch_size=128, patience=5)


@register(
    "dense_dae",
    source="seed 003: denoising autoencoder, one sigmoid hidden layer, squared error",
    description="dense denoising autoencoder with one sigmoid hidden layer (1000 units)",
    test_params={"epochs": 1, "batch_size": 32, "hidden": 32},
)
class DenseDAE(LatentInterpolation, NeuralDenoiser):
    """Seed 003's dense denoising autoencoder: D -> hidden (sigmoid) -> D (sigmoid).

    Parameters
    ----------
    hidden : int
        Hidden units (1000 was the report's best).

    ``config='faithful'``: plain gradient descent, lr 0.1, cost 0.5 x squared error summed
    over pixels, 500 full-batch iterations (batch 5000) on the fixed noisy pairs, none held
    out (``redraw_noise=False``, ``val_fraction=0``). ``config='ours'``: Adam 1e-3 with
    cosine decay, MSE, 30 epochs, batch 128, patience 5. Fixes C x H x W at fit time.
    """

    fixed_input_size = True  # dense layers over the whole image
    recipes = {"faithful": _FAITHFUL, "ours": _OURS}

    def __init__(self, *, hidden: int = 1000, **common) -> None:
        super().__init__(**common)
        self.hidden = hidden

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return dense_ae_net(shape, (self.hidden,))


@torch.no_grad()
def _codes(layer: nn.Module, x: Tensor) -> Tensor:
    return torch.cat([layer(chunk.flatten(1)) for chunk in x.split(4096)])


@register(
    "stacked_dae",
    source="seed 003: stacked denoising autoencoder 500-300-100, greedy layer-wise pretraining, fine-tuning",
    description="stacked dense DAE 500-300-100, greedy layer-wise pretraining then end-to-end fine-tuning",
    test_params={"epochs": 1, "pretrain_epochs": 1, "batch_size": 32, "sizes": (24, 16, 8)},
)
class StackedDAE(LatentInterpolation, NeuralDenoiser):
    """Seed 003's stacked denoising autoencoder (500-300-100 sigmoid layers).

    Layer k is first trained alone as an autoencoder from the previous layers' code of the
    noisy images to the code of the clean images (layer 1: noisy image -> clean image, with
    per-batch noise when the cell gives one); then the unrolled stack (encoders, then the
    pretraining decoders in reverse) is fine-tuned end to end. If fine-tuning collapses,
    the restart re-initialises randomly (no second pretraining).

    Parameters
    ----------
    sizes : tuple of int
        Hidden layer sizes.
    pretrain_epochs : int, optional
        Epochs per pretraining layer (default: the recipe's, 500 full-batch iterations
        faithful, 5 epochs ours).
    """

    fixed_input_size = True  # dense layers over the whole image
    recipes = {"faithful": _FAITHFUL, "ours": _OURS}

    def __init__(
        self, *, sizes: tuple[int, ...] = (500, 300, 100), pretrain_epochs: int | None = None, **common
    ) -> None:
        super().__init__(**common)
        self.sizes = tuple(sizes)  # a JSON list comes back as the same tuple
        self.pretrain_epochs = pretrain_epochs

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return dense_ae_net(shape, tuple(self.sizes))

    def _train(self, make_net: Callable[[int], nn.Module], noisy: Tensor, clean: Tensor, **kwargs: Any) -> TrainResult:
        recipe: Recipe = kwargs["recipe"]
        epochs = self.pretrain_epochs or (recipe.epochs if self.config == "faithful" else 5)
        net = make_net(kwargs["seed"])
        pretrain_options = {**kwargs, "recipe": recipe.updated(epochs=epochs)}
        history, stages = self._pretrain(net, noisy, clean, **pretrain_options)
        pretrained_seed = kwargs["seed"]

        def fine_tune_net(seed: int) -> nn.Module:
            return net if seed == pretrained_seed else make_net(seed)

        result = train(fine_tune_net, noisy, clean, stage="fine-tune", **kwargs)
        result.info["pretraining"] = stages
        result.history = history + result.history
        return result

    def _pretrain(self, net: DenseAENet, noisy: Tensor, clean: Tensor, **kwargs: Any) -> tuple[list, list]:
        """Train each layer as an autoencoder of the previous layers' codes; (history, summaries)."""
        history, stages = [], []
        inputs, targets, noise = noisy, clean, kwargs["noise"]
        for k, (encoder, decoder) in enumerate(zip(net.encoders, net.decoders), start=1):
            shape = tuple(clean.shape[1:]) if k == 1 else None
            layer_ae = nn.Sequential(nn.Flatten(), encoder, decoder, *([nn.Unflatten(1, shape)] if shape else []))
            options = {**kwargs, "noise": noise if k == 1 else None}
            make = _reinitialising(layer_ae, kwargs["seed"], clean.device)
            result = train(make, inputs, targets, stage=f"pretrain layer {k}", **options)
            history += result.history
            stages.append({key: value for key, value in result.info.items() if key != "recipe"})
            inputs, targets = _codes(encoder, inputs), _codes(encoder, targets)
        return history, stages


def _reinitialising(module: nn.Module, base_seed: int, device: torch.device) -> Callable[[int], nn.Module]:
    """``make_net`` for a module that already exists: as is for ``base_seed``, re-initialised otherwise."""

    def make(seed: int) -> nn.Module:
        if seed != base_seed:
            with seeded(seed, device):
                for layer in module.modules():
                    if isinstance(layer, nn.Linear):
                        layer.reset_parameters()
        return module

    return make
