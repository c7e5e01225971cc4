"""Beyond the seeds: DnCNN (residual learning, Zhang et al. 2017) and a small residual U-Net.

Both predict the noise-free image as ``x + f(x)`` (DnCNN as ``x - noise(x)``), so an
untrained network starts at the identity and training learns only the correction; this
is what makes them the strongest entries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.estimator import one_of
from models.engine.layers import PatchConv2d, UpConv2d, conv_block
from models.engine.recipe import Recipe
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["DnCNNNet", "ResidualUNetNet", "DnCNN", "UNet", "dncnn_init"]


#: The smallest magnitude of a batch-norm scale at initialisation (``b_min`` of the authors' code).
DNCNN_SCALE_MIN = 0.025


def dncnn_init(net: nn.Module, width: int) -> None:
    """The DnCNN authors' initialisation (``DnCNN_init_model_64_25_Res_Bnorm_Adam.m`` in cszn/DnCNN's
    training code): every convolution ~ N(0, 2 / (9 * width)), biases 0, and every batch-norm
    scale ~ N(0, 2 / (9 * width)) with magnitudes below 0.025 raised to 0.025, shifts 0.

    Why it matters: the small scales start the noise branch near zero, so the untrained network
    is near the identity. PyTorch's defaults (scales 1, convolutions at a third of the
    variance) train far slower: on 40 x 40 Train400 patches at sigma 25, batches of 64, Adam
    from 1e-3, the 17-layer network reaches 26.85 dB on BSD68's first 8 images after 100 steps
    from this initialisation, and 26.83 dB after 2,200 steps from the defaults.
    """
    std = math.sqrt(2.0 / (9 * width))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):
                scale = module.weight.normal_(0.0, std)
                small = scale.abs() < DNCNN_SCALE_MIN
                scale[small] = torch.where(scale[small] < 0, -DNCNN_SCALE_MIN, DNCNN_SCALE_MIN)
                module.bias.zero_()


class DnCNNNet(nn.Module):
    """DnCNN: conv+ReLU, (depth-2) x (conv+BN+ReLU), conv; the body predicts the noise.

    Zhang, Zuo, Chen, Meng, Zhang, "Beyond a Gaussian Denoiser: Residual Learning of Deep
    CNN for Image Denoising", IEEE TIP 2017 (depth 17, 64 filters for blind Gaussian).
    Initialised as the authors' code does (:func:`dncnn_init`), or with ``init='pytorch'``
    as PyTorch's layers initialise themselves.
    """

    def __init__(self, channels: int, depth: int = 17, width: int = 64, init: str = "authors") -> None:
        super().__init__()
        if depth < 3:
            raise ValueError(f"dncnn depth {depth!r} is too small; expected an int >= 3")
        layers: list[nn.Module] = [PatchConv2d(channels, width), nn.ReLU()]
        layers += [conv_block(width, width) for _ in range(depth - 2)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        if init == "authors":
            dncnn_init(self.body, width)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(conv_block(cin, cout), conv_block(cout, cout))


class ResidualUNetNet(nn.Module):
    """U-Net with ``levels`` resolutions (filters ``width * 2**level``), max-pool down,
    nearest-upsampling + 3x3 conv up (``UpConv2d``), skip concatenation, two conv-BN-ReLU per
    level, a 1x1 head and a global residual: output = x + head(features).

    Sides are replicate-padded at the bottom and right to a multiple of ``2**(levels-1)`` and
    cropped back: the pooling grid stays anchored at the top-left corner, so a tile cut at a
    multiple of the stride sees the grid the whole image does (``NeuralDenoiser``'s tiles).
    """

    def __init__(self, channels: int, width: int = 32, levels: int = 3) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"unet levels {levels!r} is too small; expected an int >= 1")
        widths = [width * 2**i for i in range(levels)]
        self.down = nn.ModuleList(_double_conv(a, b) for a, b in zip([channels, *widths], widths))
        self.up = nn.ModuleList(UpConv2d(widths[i + 1], widths[i]) for i in range(levels - 1))
        self.merge = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in range(levels - 1))
        self.head = nn.Conv2d(width, channels, 1)
        self.step = 2 ** (levels - 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        y = F.pad(x, (0, -w % self.step, 0, -h % self.step), mode="replicate") if h % self.step or w % self.step else x
        skips = []
        for i, block in enumerate(self.down):
            y = block(y if i == 0 else F.max_pool2d(y, 2))
            skips.append(y)
        for i in reversed(range(len(self.up))):
            y = self.merge[i](torch.cat([F.relu(self.up[i](y)), skips[i]], dim=1))
        return x + self.head(y)[..., :h, :w]


@register(
    "dncnn",
    source="Zhang et al. 2017 (DnCNN, IEEE TIP): residual learning with batch norm",
    description="DnCNN: 17 conv layers (64 filters, BN, ReLU) predicting the noise, residual output",
    test_params={"epochs": 1, "batch_size": 32, "depth": 3, "width": 8},
)
class DnCNN(NeuralDenoiser):
    """DnCNN (Zhang et al. 2017), one of the two strongest entries.

    Parameters
    ----------
    depth : int
        Convolution layers (17 in the paper).
    width : int
        Filters per layer (64 in the paper).
    init : {'authors', 'pytorch'}
        The authors' initialisation (:func:`dncnn_init`, near the identity; the default) or
        PyTorch's own, which trains far slower. A parameter, so that fits of the two never
        share a cache entry.

    ``config='faithful'``: the paper's Adam (lr 1e-3, divided by 10 after 60% of training:
    epochs 30 of 50), batch 128, MSE, 50 epochs; on whole images unless ``patch_size=40``
    (with ``patches_per_epoch=238336``, the paper's patches of Train400).
    ``config='ours'``: Adam 2e-3 with cosine decay, MSE, 30 epochs, batch 64, patience 5.
    """

    recipes = {
        "faithful": Recipe(
            optimizer="adam",
            lr=1e-3,
            loss="mse",
            schedule="step",
            epochs=50,
            batch_size=128,
            patience=None,
            note="Zhang et al. 2017",
        ),
        "ours": Recipe(optimizer="adam", lr=2e-3, loss="mse", schedule="cosine", epochs=30, batch_size=64, patience=5),
    }
    # 17 x 64 layers train at ~17 images/s on one core: the quick grid runs a shallow, narrow
    # one on batches of 4 (F-MNIST salt_pepper 0.1, 1,000 images: 800 steps ~27 dB, median 20).
    # Natural images (Train400): ``natural_full`` is the paper's DnCNN-S schedule, 50 epochs of
    # 238,336 40x40 patches (1,862 batches of 128), Adam 1e-3 divided by 10 at epoch 30; a GPU's
    # work. ``natural`` is the CPU budget: the same network and patches, 4,000 batches of 64
    # (256,000 patches, about one of the paper's epochs) under a cosine decay from 1e-3, in
    # float32: this CPU has no bf16 instructions, and bf16 autocast trains 20x slower on it.
    budgets = {
        "quick": {"depth": 8, "width": 32, "max_steps": 300, "batch_size": 4},
        "full": {},
        "natural": {"patch_size": 40, "patches_per_epoch": 16_000, "epochs": 16, "batch_size": 64, "lr": 1e-3},
        "natural_full": {
            "config": "faithful",
            "patch_size": 40,
            "patches_per_epoch": 238_336,
            "epochs": 50,
            "batch_size": 128,
        },
    }

    param_rules = {"init": one_of("authors", "pytorch")}

    def __init__(self, *, depth: int = 17, width: int = 64, init: str = "authors", **common) -> None:
        super().__init__(**common)
        self.depth = depth
        self.width = width
        self.init = init

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return DnCNNNet(shape[0], self.depth, self.width, self.init)


@register(
    "unet",
    source="Ronneberger et al. 2015 (U-Net), with a global residual; our configuration",
    description="small residual U-Net (32-64-128 filters, BN, skip connections), output = x + correction",
    test_params={"epochs": 1, "batch_size": 32, "width": 8, "levels": 2},
)
class UNet(NeuralDenoiser):
    """A small residual U-Net, the other strongest entry, and the cheaper of the two on a CPU
    (most of its work is at 1/2 and 1/4 resolution).

    Parameters
    ----------
    width : int
        Filters at full resolution (doubled per level).
    levels : int
        Resolutions (3: 28, 14, 7).

    ``config='ours'`` (default): Adam 2e-3 with cosine decay, MSE, 30 epochs, batch 64,
    patience 5. ``config='faithful'`` has no source to be faithful to: it is DnCNN's recipe.
    """

    recipes = {"faithful": DnCNN.recipes["faithful"], "ours": DnCNN.recipes["ours"]}
    # Natural images: DnCNN's patch protocol at 64x64 (room for three resolutions). ``natural_full``
    # takes as many patches as DnCNN's; the CPU budget ``natural`` half as many (4,000 batches of
    # 32, 128,000 patches): that is still 1.3x DnCNN's pixels, and its two fits at 8,000 steps
    # (about 4.9 CPU-hours each by `bench plan`) put the natural grid at 14 h on 2 workers.
    budgets = {
        "quick": {"width": 16, "max_steps": 400, "batch_size": 4},
        "full": {},
        "natural": {"patch_size": 64, "patches_per_epoch": 16_000, "epochs": 8, "batch_size": 32, "lr": 1e-3},
        "natural_full": {
            "config": "faithful",
            "patch_size": 64,
            "patches_per_epoch": 238_336,
            "epochs": 50,
            "batch_size": 128,
        },
    }

    def __init__(self, *, width: int = 32, levels: int = 3, **common) -> None:
        super().__init__(**common)
        self.width = width
        self.levels = levels

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return ResidualUNetNet(shape[0], self.width, self.levels)
