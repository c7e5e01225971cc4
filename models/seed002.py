"""Seed 002: the Keras-tutorial denoising autoencoder, its deeper CIFAR-10 variant, latent interpolation.

The report (Mehrpanah, "Image Denoising Autoencoders", 2020) picked the PyImageSearch
denoising autoencoder (Rosebrock 2020, its reference [7]): per filter count a stride-2 3x3
convolution, LeakyReLU(0.2), batch norm; a 16-d dense latent; the mirror image with
transposed convolutions; a sigmoid output; Adam (1e-3), MSE, 25 epochs, batch 32. For
CIFAR-10 it "increased network complexity" without details: ``conv_ae_deep`` is our reading
(three stages of two convolutions, 32-64-128 filters, a 256-d latent). Both interpolate
between two images by decoding points on the line between their codes.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from models.engine.layers import crop_to, pad_to
from models.engine.recipe import Recipe
from models.latent import LatentInterpolation
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["KerasTutorialAENet", "ConvAESmall", "ConvAEDeep"]


def _down(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2), nn.BatchNorm2d(cout)]


def _up(cin: int, cout: int, stride: int) -> list[nn.Module]:
    extra = {"output_padding": 1} if stride == 2 else {}
    return [
        nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=1, **extra),
        nn.LeakyReLU(0.2),
        nn.BatchNorm2d(cout),
    ]


class KerasTutorialAENet(nn.Module):
    """Conv encoder -> dense latent -> transposed-conv decoder -> sigmoid (PyImageSearch layout).

    Parameters
    ----------
    shape : (C, H, W)
        Image shape; H and W are replicate-padded up to a multiple of ``2**len(filters)``
        (28 stays 28 with two stages; becomes 32 with three) and the output cropped back.
    filters : tuple of int
        Filters of the stride-2 stages.
    latent : int
        Size of the dense code.
    convs_per_stage : int
        1 = the tutorial; 2 adds a stride-1 convolution to every stage (the deep variant).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        *,
        filters: tuple[int, ...] = (32, 64),
        latent: int = 16,
        convs_per_stage: int = 1,
    ) -> None:
        super().__init__()
        c, self.height, self.width = shape
        step = 2 ** len(filters)
        self.padded = (math.ceil(self.height / step) * step, math.ceil(self.width / step) * step)
        self.grid = (filters[-1], self.padded[0] // step, self.padded[1] // step)
        down, up, cin = [], [], c
        for f in filters:
            down += _down(cin, f, 2) + sum((_down(f, f, 1) for _ in range(convs_per_stage - 1)), [])
            cin = f
        for f in reversed(filters):
            up += sum((_up(cin, cin, 1) for _ in range(convs_per_stage - 1)), []) + _up(cin, f, 2)
            cin = f
        size = math.prod(self.grid)
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(size, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, size), nn.Unflatten(1, self.grid), *up)
        self.head = nn.Sequential(nn.ConvTranspose2d(cin, c, 3, padding=1), nn.Sigmoid())

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(pad_to(x, *self.padded))

    def decode(self, z: Tensor) -> Tensor:
        return crop_to(self.head(self.decoder(z)), self.height, self.width)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


_FAITHFUL = Recipe(
    optimizer="adam",
    lr=1e-3,
    loss="mse",
    epochs=25,
    batch_size=32,
    patience=None,
    redraw_noise=False,  # the tutorial corrupts its training set once, before training
    note="PyImageSearch denoising autoencoder (seed 002 ref. [7])",
)
_OURS = Recipe(optimizer="adam", lr=2e-3, loss="mse", schedule="cosine", epochs=30, batch_size=128, patience=5)


@register(
    "conv_ae_small",
    source="seed 002: Keras-tutorial (PyImageSearch) denoising autoencoder",
    description="stride-2 conv 32/64 + LeakyReLU + BN, 16-d dense latent, transposed-conv decoder, sigmoid",
    test_params={"epochs": 1, "batch_size": 32},
)
class ConvAESmall(LatentInterpolation, NeuralDenoiser):
    """Seed 002's denoising autoencoder (PyImageSearch layout) with ``interpolate(a, b, steps)``.

    Parameters
    ----------
    latent : int
        Size of the dense code (16 in the tutorial).

    ``config='faithful'``: Adam 1e-3, MSE, 25 epochs, batch 32, noise drawn once. ``config='ours'``: Adam 2e-3
    with cosine decay, 30 epochs, batch 128, patience 5. The dense latent fixes C x H x W at fit.
    """

    fixed_input_size = True  # the dense latent
    recipes = {"faithful": _FAITHFUL, "ours": _OURS}

    def __init__(self, *, latent: int = 16, **common) -> None:
        super().__init__(**common)
        self.latent = latent

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return KerasTutorialAENet(shape, filters=(32, 64), latent=self.latent)


@register(
    "conv_ae_deep",
    source="seed 002: the deeper variant the report built for CIFAR-10 (layers are our reading)",
    description="3 stages x 2 convs (32-64-128) + LeakyReLU + BN, 256-d dense latent, transposed-conv decoder",
    test_params={"epochs": 1, "batch_size": 32, "latent": 8},
)
class ConvAEDeep(LatentInterpolation, NeuralDenoiser):
    """Seed 002's deeper autoencoder for CIFAR-10, with ``interpolate(a, b, steps)``.

    The report only says it "increased network complexity"; we add a third stage and a
    second (stride-1) convolution per stage and widen the code to 256. Recipes as
    ``conv_ae_small``. Sides are padded to a multiple of 8 (28 -> 32) and cropped back.
    """

    fixed_input_size = True  # the dense latent
    recipes = {"faithful": _FAITHFUL, "ours": _OURS}
    budgets = {"full": {}}  # built for CIFAR-10; at ~16 steps/s on a CPU, not in the quick grid

    def __init__(self, *, latent: int = 256, **common) -> None:
        super().__init__(**common)
        self.latent = latent

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return KerasTutorialAENet(shape, filters=(32, 64, 128), latent=self.latent, convs_per_stage=2)
