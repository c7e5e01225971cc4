"""Seed 004: convolutional autoencoder with batch norm, ReLU, max-pooling and a deconvolution decoder.

The report (Zhao, "Image Denoising by AutoEncoder: Learning Core Representations") uses
convolution + batch norm + ReLU + max-pooling in the encoder, deconvolutions + batch norm +
ReLU in the decoder, a ReLU on the output layer ("the network should produce positive
output"), Adam, MSE, batch 100, 100 epochs, Gaussian noise on MNIST. It gives no layer
sizes: we use two stages of 32 and 64 filters (3x3 convolutions, 2x2 pooling) mirrored by
2x2 stride-2 transposed convolutions. The "max-pooling in the decoder" it mentions has no
denoising reading and is left out. A ReLU output can die (an all-black image): the
training loop's collapse check restarts such a run once.
"""

from __future__ import annotations

from torch import Tensor, nn

from models.engine.layers import conv_block, crop_to, pad_to
from models.engine.recipe import Recipe
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["BNConvAENet", "BNConvAE"]


class BNConvAENet(nn.Module):
    """conv-BN-ReLU-pool x 2 -> deconv-BN-ReLU -> deconv -> ReLU; sides padded to a multiple of 4."""

    def __init__(self, channels: int, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            conv_block(channels, width), nn.MaxPool2d(2), conv_block(width, 2 * width), nn.MaxPool2d(2)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 2, stride=2, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 2, stride=2),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        y = pad_to(x, -(-h // 4) * 4, -(-w // 4) * 4)
        return crop_to(self.decoder(self.encoder(y)), h, w)


@register(
    "bn_conv_ae",
    source="seed 004: conv + BN + ReLU + max-pool encoder, deconvolution decoder, ReLU output, Adam, MSE",
    description="conv-BN-ReLU-maxpool autoencoder with a transposed-conv decoder and ReLU output",
    test_params={"epochs": 1, "batch_size": 32, "width": 8},
)
class BNConvAE(NeuralDenoiser):
    """Seed 004's batch-normalised convolutional denoising autoencoder.

    Parameters
    ----------
    width : int
        Filters of the first stage (the second has twice as many); the report gives none.

    ``config='faithful'``: Adam 1e-3, MSE, batch 100, 100 epochs. ``config='ours'``: Adam 2e-3
    with cosine decay, batch 128, 30 epochs, patience 5.
    """

    recipes = {
        "faithful": Recipe(
            optimizer="adam", lr=1e-3, loss="mse", epochs=100, batch_size=100, patience=None, note="seed 004"
        ),
        "ours": Recipe(optimizer="adam", lr=2e-3, loss="mse", schedule="cosine", epochs=30, batch_size=128, patience=5),
    }

    def __init__(self, *, width: int = 32, **common) -> None:
        super().__init__(**common)
        self.width = width

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return BNConvAENet(shape[0], self.width)
