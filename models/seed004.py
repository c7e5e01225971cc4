"""Seed 004: convolutional autoencoder with batch norm, ReLU, max-pooling and a deconvolution decoder.

The report (Zhao, "Image Denoising by AutoEncoder: Learning Core Representations") uses
convolution + batch norm + ReLU + max-pooling in the encoder, deconvolutions + batch norm +
ReLU in the decoder, a ReLU on the output layer ("the network should produce positive
output"), Adam, MSE, batch 100, 100 epochs, Gaussian noise on MNIST. It gives no layer
sizes: we use two stages of 32 and 64 filters (3x3 convolutions, 2x2 pooling) mirrored by
two 2x upsampling stages. The "max-pooling in the decoder" it mentions has no denoising reading
and is left out. A ReLU output can die (an all-black image): the training loop's collapse
check restarts such a run once.

Where the report's reading produces dead outputs: its deconvolutions read as 2x2 stride-2
transposed convolutions give each output pixel phase (y % 2, x % 2) weights of its own, and
behind the ReLU output one phase can be pushed below zero for every input and never recover
(no gradient through a dead ReLU). The output is then a regular grid of pixels stuck at 0:
trained on 6,000 MNIST images at gaussian 0.3 for 3 epochs, one phase in four read 0 on 99.9%
of pixels (phase MSE 0.10 against 0.013 elsewhere), 15.1 dB against the input's 13.3.
Each decoder stage here is instead a resize-convolution (nearest 2x upsampling, then a 3x3
convolution, ``UpConv2d``), whose weights all output phases share: 21.0 dB on the same run,
every phase at MSE 0.008. Keeping the transposed convolutions and ending in a shared 3x3
convolution was not enough (15.8 dB, two phases in sixteen dead).
"""

from __future__ import annotations

from torch import Tensor, nn

from models.engine.layers import UpConv2d, conv_block, crop_to, pad_to
from models.engine.recipe import Recipe
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["BNConvAENet", "BNConvAE"]


class BNConvAENet(nn.Module):
    """conv-BN-ReLU-pool x 2 -> up-conv-BN-ReLU -> up-conv -> ReLU; sides padded to a multiple of 4."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            conv_block(channels, width), nn.MaxPool2d(2), conv_block(width, 2 * width), nn.MaxPool2d(2)
        )
        self.decoder = nn.Sequential(
            UpConv2d(2 * width, width),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            UpConv2d(width, channels),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        y = pad_to(x, -(-h // 4) * 4, -(-w // 4) * 4)
        return crop_to(self.decoder(self.encoder(y)), h, w)


@register(
    "bn_conv_ae",
    source="seed 004: conv + BN + ReLU + max-pool encoder, deconvolution (upsample+conv) decoder, ReLU output, Adam, MSE",
    description="conv-BN-ReLU-maxpool autoencoder with an upsample+conv decoder and ReLU output",
    test_params={"epochs": 1, "batch_size": 32, "width": 8},
)
class BNConvAE(NeuralDenoiser):
    """Seed 004's batch-normalised convolutional denoising autoencoder.

    Parameters
    ----------
    width : int
        Filters of the first stage (the second has twice as many); the report gives none.

    ``config='faithful'``: Adam 1e-3, MSE, batch 100, 100 epochs, noise drawn once. ``config='ours'``: Adam 2e-3
    with cosine decay, batch 128, 30 epochs, patience 5.
    """

    recipes = {
        "faithful": Recipe(
            optimizer="adam",
            lr=1e-3,
            loss="mse",
            epochs=100,
            batch_size=100,
            patience=None,
            redraw_noise=False,  # "we first add white Gaussian noise to original images", once
            note="seed 004",
        ),
        "ours": Recipe(optimizer="adam", lr=2e-3, loss="mse", schedule="cosine", epochs=30, batch_size=128, patience=5),
    }

    def __init__(self, *, width: int = 32, **common) -> None:
        super().__init__(**common)
        self.width = width

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return BNConvAENet(shape[0], self.width)
