"""Seed 000: VGG-16, AlexNet and ResNet-18 shaped denoising autoencoders.

The report ("Denoising and Classifying with Auto Encoder", Group 2) builds one autoencoder
per classic network, trained on MNIST with impulse noise. Its flows leave gaps, filled as
each class's docstring says. The decoders mirror the encoders; after each 2x upsampling the
map is centre-cropped to the size of the matching encoder level (which is how odd sizes such
as 7x7 come back), and an upsampling followed by a 3x3 convolution is computed exactly by
``UpConv2d``. ``width`` scales every layer's filter count (1.0 = the report's networks).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from models.engine.layers import PatchConv2d, UpConv2d, conv_block, crop_to
from models.engine.recipe import Recipe
from models.neural_denoiser import NeuralDenoiser, register

__all__ = ["VGG16AENet", "AlexNetAENet", "ResNet18AENet", "VGG16AE", "AlexNetAE", "ResNet18AE"]


def _scaled(n: int, width: float) -> int:
    return max(8, round(n * width))


def _relu_convs(cin: int, outs: list[int], *, up: bool) -> nn.Sequential:
    """3x3 'same' convolutions with ReLUs; with ``up`` the first one is an UpConv2d (2x upsampling)."""
    layers: list[nn.Module] = []
    for i, cout in enumerate(outs):
        conv = (
            UpConv2d(cin, cout)
            if up and i == 0
            else (PatchConv2d(cin, cout) if cin <= 3 else nn.Conv2d(cin, cout, 3, padding=1))
        )
        layers += [conv, nn.ReLU()]
        cin = cout
    return nn.Sequential(*layers)


def _up_crop(y: Tensor, size: tuple[int, int], factor: tuple[int, int] = (2, 2)) -> Tensor:
    return crop_to(F.interpolate(y, scale_factor=factor, mode="nearest"), *size)


class VGG16AENet(nn.Module):
    """The report's VGG-16 autoencoder: 13 3x3 convs (32, 64 | 128 x2 | 256 x3 | 512 x3 | 512 x3)
    with 2x2, 2x2, 2x2, 2x1, 2x1 'same' max-pools (28x28 -> 1x4x512), mirrored by upsampling.

    The report's decoder lists four upsamplings, one short of returning to 28x28; we mirror
    all five poolings. ReLU everywhere, a 3x3 convolution to C channels and a sigmoid last.
    """

    ENCODER = ((32, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
    POOLS = ((2, 2), (2, 2), (2, 2), (2, 1), (2, 1))

    def __init__(self, channels: int, width: float = 1.0) -> None:
        super().__init__()
        enc = [[_scaled(n, width) for n in stage] for stage in self.ENCODER]
        self.encoder = nn.ModuleList()
        cin = channels
        for stage in enc:
            self.encoder.append(_relu_convs(cin, stage, up=False))
            cin = stage[-1]
        # Decoder stages, deepest first: (upsampling factor before the stage, filters).
        plan = [(None, enc[4]), ((2, 1), enc[3]), ((2, 1), enc[2]), ((2, 2), enc[1]), ((2, 2), enc[0][::-1])]
        self.ups = [up for up, _ in plan] + [(2, 2)]
        self.decoder = nn.ModuleList()
        for up, stage in plan:
            self.decoder.append(_relu_convs(cin, list(stage), up=up == (2, 2)))
            cin = stage[-1]
        self.decoder.append(nn.Sequential(UpConv2d(cin, channels), nn.Sigmoid()))

    def forward(self, x: Tensor) -> Tensor:
        sizes, y = [], x
        for stage, pool in zip(self.encoder, self.POOLS):
            sizes.append(tuple(y.shape[-2:]))
            y = F.max_pool2d(stage(y), pool, ceil_mode=True)
        for stage, up, size in zip(self.decoder, self.ups, [None, *sizes[::-1]]):
            if up == (2, 1):
                y = stage(_up_crop(y, size, (2, 1)))
            elif up == (2, 2):
                y = stage[1:](crop_to(stage[0](y), *size))
            else:
                y = stage(y)
        return y


class AlexNetAENet(nn.Module):
    """AlexNet's convolutional part as an autoencoder, mirrored with upsampling and
    stride-1 transposed convolutions (written as the equivalent convolutions).

    ``resize=224`` (the report): the input is resized to 224x224 and the encoder is AlexNet's
    (11x11/4 stem with 96 filters, 5x5 x 256, 3x3 x 384, 384, 256, three 2x2 'same' pools;
    224 -> 56 -> 7x7), the decoder ends in an 11x11/4 transposed convolution and the output
    is resized back. ``resize=None``: the same layers at the native resolution with a 3x3
    stride-1 stem (28 -> 28 -> 4x4), about 50x cheaper.
    """

    def __init__(self, channels: int, width: float = 1.0, resize: int | None = None) -> None:
        super().__init__()
        c96, c256, c384 = (_scaled(n, width) for n in (96, 256, 384))
        self.resize = resize
        self.stem = nn.Conv2d(channels, c96, 11, stride=4, padding=4) if resize else PatchConv2d(channels, c96)
        self.conv2 = nn.Conv2d(c96, c256, 5, padding=2)
        self.conv3 = _relu_convs(c256, [c384, c384, c256], up=False)
        self.dec3 = _relu_convs(c256, [c384, c384, c256], up=True)
        self.dec2 = nn.Conv2d(c256, c96, 5, padding=2)
        if resize:
            self.head = nn.ConvTranspose2d(c96, channels, 11, stride=4, padding=4, output_padding=1)
        else:
            self.head = UpConv2d(c96, channels)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        y = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", antialias=True) if self.resize else x
        s0 = F.relu(self.stem(y))
        s1 = F.max_pool2d(s0, 2, ceil_mode=True)
        s2 = F.max_pool2d(F.relu(self.conv2(s1)), 2, ceil_mode=True)
        z = F.max_pool2d(self.conv3(s2), 2, ceil_mode=True)
        y = self.dec3[1:](crop_to(self.dec3[0](z), *s2.shape[-2:]))
        y = F.relu(self.dec2(_up_crop(y, tuple(s1.shape[-2:]))))
        if self.resize:
            y = self.head(_up_crop(y, tuple(s0.shape[-2:])))
            return F.interpolate(y.sigmoid(), size=(h, w), mode="bilinear", antialias=True)
        return crop_to(self.head(y), *s0.shape[-2:]).sigmoid()


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv-BN pairs plus an identity or 1x1 projection shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.stride = stride
        projection = stride != 1 or cin != cout
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)) if projection else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        # A strided 1x1 convolution is a subsampling then a 1x1 convolution. Written that way
        # because torch 2.14's CPU 1x1 stride-2 convolution on channels-last input with fewer
        # than 8 channels corrupts the heap.
        return F.relu(self.body(x) + self.shortcut(x[:, :, :: self.stride, :: self.stride]))


#: ResNet-18 autoencoder stems: the report's Conv1 (7x7 convolution, batch norm, ReLU, 3x3
#: stride-2 max-pool; stride 1 in the convolution is our reading of its "fine-tuned stride"),
#: and a 3x3 stride-1 stem without max-pool (He et al.'s small-image stem).
STEMS = ("report", "small")


class ResNet18AENet(nn.Module):
    """ResNet-18 encoder (stem, four stages of two basic blocks, 64-128-256-512, global average
    pool -> 1x1x512 as in the report), mirrored decoder: a transposed convolution back to the
    last stage's size, then per stage two basic blocks and a nearest 2x upsampling (one more
    after the report's max-pool stem), a 3x3 convolution to C channels and a sigmoid.
    ``stem='report'``: 7x7 convolution and max-pool (28 -> 14 -> 14, 7, 4, 2); ``'small'``: a
    3x3 convolution, no max-pool (28 -> 28, 14, 7, 4). The report's final 1x5 kernel (a size
    fix) is replaced by cropping. The transposed convolution's kernel is the bottleneck size,
    so the network is built for one H x W.
    """

    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, stem: str = "small") -> None:
        super().__init__()
        c, h, w = shape
        ch = [_scaled(n, width) for n in (64, 128, 256, 512)]
        if stem not in STEMS:
            raise ValueError(f"resnet18_ae stem {stem!r} is unknown; expected one of: {', '.join(STEMS)}")
        self.pooled_stem = stem == "report"
        if self.pooled_stem:
            self.stem = nn.Sequential(
                nn.Conv2d(c, ch[0], 7, padding=3, bias=False),
                nn.BatchNorm2d(ch[0]),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        else:
            self.stem = conv_block(c, ch[0])
        stages, cin = [], ch[0]
        for i, cout in enumerate(ch):
            stages.append(nn.Sequential(BasicBlock(cin, cout, 1 if i == 0 else 2), BasicBlock(cout, cout)))
            cin = cout
        self.encoder = nn.ModuleList(stages)
        bottom = (math.ceil(h / 8), math.ceil(w / 8))
        self.expand = nn.Sequential(
            nn.ConvTranspose2d(ch[3], ch[3], bottom, bias=False), nn.BatchNorm2d(ch[3]), nn.ReLU()
        )
        outs = [ch[3], ch[2], ch[1], ch[0]]
        self.decoder = nn.ModuleList(
            nn.Sequential(BasicBlock(a, b), BasicBlock(b, b)) for a, b in zip([ch[3], *outs], outs)
        )
        self.head = nn.Sequential(nn.Conv2d(ch[0], c, 3, padding=1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        y, sizes = self.stem(x), []
        for stage in self.encoder:
            y = stage(y)
            sizes.append(tuple(y.shape[-2:]))
        y = self.expand(F.adaptive_avg_pool2d(y, 1))
        for i, stage in enumerate(self.decoder):
            y = stage(y if i == 0 else _up_crop(y, sizes[-1 - i]))
        if self.pooled_stem:  # undo the stem's max-pool
            y = _up_crop(y, tuple(x.shape[-2:]))
        return self.head(y)


# The report trains the AlexNet and ResNet autoencoders with Adadelta and binary
# cross-entropy (the Keras blog it cites; lr 1.0 was Keras' default then) and names
# neither for VGG: all three use that pairing.
def _faithful(epochs: int, **extra) -> Recipe:
    return Recipe(
        optimizer="adadelta",
        lr=1.0,
        loss="bce",
        epochs=epochs,
        batch_size=128,
        patience=None,
        redraw_noise=False,  # "we add noise to each image": the training set is corrupted once
        note="seed 000",
        **extra,
    )


# Binary cross-entropy in ours too: through the sigmoid output, MSE's gradient (p - t) p (1 - p)
# vanishes once the deep plain stacks output near-constant values, and VGG-16's and AlexNet's
# autoencoders settled on a constant image at every Adam rate tried (1e-4 to 1e-3; width 0.25,
# 600 steps on 4,000 MNIST impulse-0.25 pairs). BCE's gradient p - t does not vanish: AlexNet's
# reached 17.8 dB there, where MSE left it at 10.2 dB (noisy input 11.0 dB).
_OURS = Recipe(optimizer="adam", lr=1e-3, loss="bce", schedule="cosine", epochs=20, batch_size=128, patience=5)


class _WidthDenoiser(NeuralDenoiser):
    """Shared ``width`` parameter of the seed-000 models."""

    # Full width is ~30M parameters and ~20 training images/s on one CPU core; even at 1/8
    # width VGG-16's and ResNet-18's autoencoders learn nothing in the quick grid's seconds.
    budgets: dict = {"full": {}}

    def __init__(self, *, width: float = 1.0, **common) -> None:
        super().__init__(**common)
        self.width = width


@register(
    "vgg16_ae",
    source="seed 000: VGG-16 denoising autoencoder flow (Fig. 3-4)",
    description="VGG-16 shaped conv autoencoder (28x28 -> 1x4x512 -> 28x28), sigmoid output",
    test_params={"epochs": 1, "batch_size": 32, "width": 0.0625},
)
class VGG16AE(_WidthDenoiser):
    """Seed 000's VGG-16 autoencoder (``VGG16AENet``); ~29M parameters at ``width=1``.

    ``config='faithful'``: Adadelta (lr 1.0), binary cross-entropy, batch 128 (the report's
    preferred), 100 epochs. ``config='ours'``: Adam 1e-3, cosine decay, binary cross-entropy, 20 epochs, patience 5.
    """

    recipes = {"faithful": _faithful(100), "ours": _OURS}

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return VGG16AENet(shape[0], self.width)


@register(
    "alexnet_ae",
    source="seed 000: AlexNet denoising autoencoder (Fig. 8); resize=224 is the report's mode",
    description="AlexNet-conv autoencoder with upsampling + transposed convs; native 28x28 by default",
    test_params={"epochs": 1, "batch_size": 32, "width": 0.0625},
)
class AlexNetAE(_WidthDenoiser):
    """Seed 000's AlexNet autoencoder (``AlexNetAENet``).

    Parameters
    ----------
    resize : int or None
        224 resizes every image to 224x224 inside the model, as the report did (faithful, about
        50x the compute); None (default, what the grids use) runs the layers at native resolution.

    ``config='faithful'``: Adadelta (lr 1.0), binary cross-entropy, 100 epochs, batch 128.
    ``config='ours'``: Adam 1e-3, cosine decay, binary cross-entropy, 20 epochs, patience 5.
    """

    recipes = {"faithful": _faithful(100), "ours": _OURS}
    budgets = {"quick": {"width": 0.125, "max_steps": 100, "batch_size": 8}, "full": {}}

    def __init__(self, *, resize: int | None = None, **common) -> None:
        super().__init__(**common)
        self.resize = resize

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        if self.resize is not None and self.resize < 64:
            raise ValueError(
                f"alexnet_ae resize {self.resize!r} is too small; expected None or >= 64 (the report used 224)"
            )
        return AlexNetAENet(shape[0], self.width, self.resize)


@register(
    "resnet18_ae",
    source="seed 000: ResNet-18 denoising autoencoder (Fig. 10-11)",
    description="ResNet-18 encoder to a 1x1x512 code, mirrored basic-block decoder, sigmoid output",
    test_params={"epochs": 1, "batch_size": 32, "width": 0.0625},
)
class ResNet18AE(_WidthDenoiser):
    """Seed 000's ResNet-18 autoencoder (``ResNet18AENet``).

    Parameters
    ----------
    stem : {'small', 'report'}
        'report' is the report's 7x7 convolution and max-pool (seed 000's faithful protocol);
        'small' (default, what the grids use) a 3x3 stem without max-pool.

    ``config='faithful'``: Adadelta (lr 1.0), binary cross-entropy, batch 128, 50 epochs,
    train:validation 6:1 (the report). ``config='ours'``: Adam 1e-3, cosine, binary cross-entropy, 20 epochs.
    """

    fixed_input_size = True  # the transposed convolution's kernel is the bottleneck size
    recipes = {"faithful": _faithful(50, val_fraction=1 / 7, cap_validation=False), "ours": _OURS}

    def __init__(self, *, stem: str = "small", **common) -> None:
        super().__init__(**common)
        self.stem = stem

    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        return ResNet18AENet(shape, self.width, self.stem)
