"""Seed 001: the Fashion-MNIST convolutional autoencoder (49,761 parameters) and its CNN comparator.

The report (University of Windsor, COMP 4740) prints the Keras summary of the autoencoder;
its GitHub repository (``AutoEncoder.py``, ``predict_cnn.py``) gives what the summary leaves
out: a linear output layer, Adam + MSE, batch 2048, 1000 epochs, an 80/20 split with the best
validation checkpoint kept, and the CNN's exact layers.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from models.engine.layers import PatchConv2d, UpConv2d, crop_to, pad_to, pool_relu
from models.engine.recipe import Recipe
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["ConvAEFashionMNISTNet", "cnn_denoiser_net", "ConvAEFashionMNIST", "CNNDenoiserFashionMNIST"]


class ConvAEFashionMNISTNet(nn.Module):
    """The seed 001 Keras model, layer by layer (3x3 kernels, ReLU, 'same' max-pooling).

    ::

        28x28xC -conv64-> 28x28x64 -pool-> 14x14x64 -conv32-> 14x14x32 -pool-> 7x7x32
        -conv16-> 7x7x16 -pool-> 4x4x16 -conv16-> 4x4x16 -up-> 8x8x16 -conv32-> 8x8x32
        -up-> 16x16x32 -conv64 (valid)-> 14x14x64 -up-> 28x28x64 -conv C (linear)-> 28x28xC

    49,761 parameters for C = 1. The valid convolution maps side 8k+4 back to 8k+4, so other
    sizes are replicate-padded to the next 8k+4 (28 needs none; 32 becomes 36) and the output
    is centre-cropped back.
    """

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.enc1 = PatchConv2d(channels, 64)
        self.enc2 = nn.Conv2d(64, 32, 3, padding=1)
        self.enc3 = nn.Conv2d(32, 16, 3, padding=1)
        self.mid = nn.Conv2d(16, 16, 3, padding=1)
        self.dec1 = UpConv2d(16, 32)
        self.dec2 = UpConv2d(32, 64, padding=0)
        self.out = UpConv2d(64, channels)

    @staticmethod
    def working_size(side: int) -> int:
        """The smallest 8k+4 >= side (the sizes the network maps onto themselves)."""
        return 8 * max(1, math.ceil((side - 4) / 8)) + 4

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        y = pad_to(x, self.working_size(h), self.working_size(w))
        y = pool_relu(self.enc1(y))
        y = pool_relu(self.enc2(y))
        y = pool_relu(self.enc3(y))
        y = F.relu(self.mid(y))
        y = F.relu(self.dec1(y))
        y = F.relu(self.dec2(y))
        return crop_to(self.out(y), h, w)


def _valid_conv_pool_side(side: int) -> int:
    """Side after the comparator's conv-pool-conv-pool-conv-conv stack (valid convs, floor pools)."""
    return ((side - 2) // 2 - 2) // 2 - 4


def cnn_denoiser_net(shape: tuple[int, int, int], *, dropout: float = 0.2, hidden: int = 328) -> nn.Sequential:
    """Seed 001's CNN comparator (``predict_cnn.py``): 4 valid tanh convs, 2 max-pools,
    batch norm and dropout after each stage, flatten, Dense(328) and Dense(C*H*W), both linear.

    Needs H, W >= 22 (28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1).
    """
    c, h, w = shape
    side_h, side_w = _valid_conv_pool_side(h), _valid_conv_pool_side(w)
    if min(side_h, side_w) < 1:
        raise ValueError(f"cnn_denoiser_fmnist needs images of at least 22x22; got {h}x{w}")

    def stage(cin: int, cout: int, pool: bool) -> list[nn.Module]:
        conv = PatchConv2d(cin, cout, padding=0) if cin <= 3 else nn.Conv2d(cin, cout, 3)
        return [conv, nn.Tanh(), *([nn.MaxPool2d(2)] if pool else []), nn.BatchNorm2d(cout), nn.Dropout(dropout)]

    return nn.Sequential(
        *stage(c, 32, True),
        *stage(32, 64, True),
        *stage(64, 128, False),
        *stage(128, 128, False)[:-1],
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(128 * side_h * side_w, hidden),
        nn.Dropout(dropout),
        nn.Linear(hidden, c * h * w),
        nn.Unflatten(1, (c, h, w)),
    )


# The repository's split: 20% of the training pairs held out, all of them (no 2,048 cap), and the
# training set corrupted once before training (the report's "future work" proposes noise per batch).
_SEED001_FAITHFUL = dict(
    optimizer="adam",
    lr=1e-3,
    loss="mse",
    batch_size=2048,
    patience=None,
    val_fraction=0.2,
    cap_validation=False,
    redraw_noise=False,
)


@register(
    "conv_ae_fmnist",
    source="seed 001: Keras summary (49,761 params) and AutoEncoder.py of the report's repository",
    description="conv autoencoder 64-32-16 / 16-32-64 with max-pool and upsampling, linear output",
    test_params={"epochs": 1, "batch_size": 32},
)
class ConvAEFashionMNIST(NeuralDenoiser):
    """Seed 001's convolutional denoising autoencoder for Fashion-MNIST (49,761 parameters).

    ``config='faithful'``: Adam (lr 1e-3), MSE, batch 2048, 1000 epochs, 20% validation (all of
    it, uncapped), noise drawn once, best-validation weights kept (as ``AutoEncoder.py``). ``config='ours'``: Adam 2e-3 with
    cosine decay, batch 128, 30 epochs, early stopping (patience 5).
    Source: seed report 001 (Tusinean, Walia, Diksha, University of Windsor).
    """

    recipes = {
        "faithful": Recipe(epochs=1000, note="seed 001 AutoEncoder.py", **_SEED001_FAITHFUL),
        "ours": Recipe(optimizer="adam", lr=2e-3, schedule="cosine", epochs=30, batch_size=128, patience=5),
    }

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return ConvAEFashionMNISTNet(shape[0])


@register(
    "cnn_denoiser_fmnist",
    source="seed 001: the report's CNN comparator (predict_cnn.py of its repository)",
    description="4 tanh convs, 2 max-pools, batch norm, dropout, two dense layers predicting the image",
    test_params={"epochs": 1, "batch_size": 32},
)
class CNNDenoiserFashionMNIST(NeuralDenoiser):
    """Seed 001's comparator: a CNN regressing the clean image through two dense layers.

    Parameters
    ----------
    dropout : float
        Dropout rate after each stage (0.2 in the seed's code).

    ``config='faithful'``: Adam, MSE, 600 epochs (the report), batch 2048 (the repository's
    autoencoder script; the CNN's own training script is not published), 20% validation (uncapped),
    noise drawn once.
    ``config='ours'``: Adam 1e-3 with cosine decay, batch 128, 30 epochs, patience 5.
    Needs images of at least 22x22 (its dense head fixes C x H x W at fit time).
    """

    fixed_input_size = True  # the dense head
    recipes = {
        "faithful": Recipe(epochs=600, note="seed 001 report: 600 epochs, Adam, MSE", **_SEED001_FAITHFUL),
        "ours": Recipe(optimizer="adam", lr=1e-3, schedule="cosine", epochs=30, batch_size=128, patience=5),
    }

    def __init__(self, *, dropout: float = 0.2, **common) -> None:
        super().__init__(**common)
        self.dropout = dropout

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return cnn_denoiser_net(shape, dropout=self.dropout)
