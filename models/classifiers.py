"""CNN classifiers: a small conv net (seed 004) and VGG-16, AlexNet, ResNet-18 (seed 000).

Seed 000's own classifiers, as its report built and trained them, are in
``models.report_classifiers``; this module holds what they share (``ConvNetClassifier``, the
width helpers).

The three classic networks are torchvision's definitions (``weights=None``) adapted to 28x28
grey and 32x32 colour inputs; each builder's docstring lists exactly what was changed. A
``width`` multiplier scales every convolution, batch norm and hidden layer (1.0 = the
published widths); tiny widths make the fast test variants.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from bench.estimator import POSITIVE
from bench.noise import derive_seed
from bench.registry import CLASSIFIERS
from models.torch_classifier import TorchClassifier

__all__ = [
    "ConvNetClassifier",
    "CNNSmall",
    "VGG16",
    "AlexNet",
    "ResNet18",
    "cross_validate",
]

Shape = tuple[int, int, int]
#: ``fit(fold, images, labels, seed) -> fitted classifier``: how ``cross_validate`` gets a fold's model.
FoldFit = Callable[[int, Tensor, Tensor, int], Any]


def scaled(channels: int, width: float) -> int:
    return max(1, round(channels * width))


def materialize(net: nn.Module) -> nn.Module:
    """Allocate a meta-device network on the CPU and initialise it with PyTorch's defaults."""
    net.to_empty(device="cpu")
    for module in net.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return net


def scale_widths(net: nn.Module, width: float, *, keep_input: nn.Conv2d) -> None:
    """Replace each Conv2d and BatchNorm2d by one with ``width`` times the channels.

    ``keep_input`` (the first convolution) keeps its input channels: those are the image's.
    Replacements get PyTorch's default initialisation.
    """
    if width == 1.0:
        return
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                in_channels = child.in_channels if child is keep_input else scaled(child.in_channels, width)
                new = nn.Conv2d(
                    in_channels,
                    scaled(child.out_channels, width),
                    child.kernel_size,
                    child.stride,
                    child.padding,
                    child.dilation,
                    bias=child.bias is not None,
                )
            elif isinstance(child, nn.BatchNorm2d):
                new = nn.BatchNorm2d(scaled(child.num_features, width))
            else:
                continue
            setattr(parent, name, new)


def mlp_head(features: int, hidden: int, n_classes: int, *, dropout_first: bool) -> nn.Sequential:
    """The VGG/AlexNet three-layer head (Linear-ReLU-Dropout twice, then Linear), narrower."""
    layers: list[nn.Module] = [nn.Dropout(0.5)] if dropout_first else []
    layers += [
        nn.Linear(features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        nn.Linear(hidden, hidden),
        nn.ReLU(inplace=True),
    ]
    layers += [] if dropout_first else [nn.Dropout(0.5)]
    return nn.Sequential(*layers, nn.Linear(hidden, n_classes))


def cnn_small_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """Two 3x3 conv + max-pool stages (32, 64 channels), a 128-unit dense layer, dropout 0.25.

    The Keras MNIST example architecture; seed 004 says only that its classifier is a small
    CNN trained with Adam for 30 epochs (98.25% on clean MNIST test images).
    """
    c1, c2, hidden = scaled(32, width), scaled(64, width), scaled(128, width)
    flat = c2 * (shape[1] // 4) * (shape[2] // 4)
    return nn.Sequential(
        nn.Conv2d(shape[0], c1, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(flat, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(0.25),
        nn.Linear(hidden, n_classes),
    )


def vgg16_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """torchvision ``vgg16_bn(weights=None)`` adapted to small images.

    Changes: the first conv takes ``shape[0]`` channels; the fifth (last) max-pool is dropped,
    since five halvings take 28x28 to nothing (the seed used 2x1 pools there instead); the
    7x7 adaptive pool becomes 1x1; the 4096-unit head becomes 512 units (x ``width``).
    Batch norm (the ``_bn`` variant) because plain VGG-16 trained from scratch with Adam at
    lr 1e-3 tends to stall at chance.
    """
    from torchvision.models import vgg16_bn

    with torch.device("meta"):  # skip allocating the 102M-parameter ImageNet head
        net = vgg16_bn(weights=None)
    net.features = net.features[:-1]
    net.features[0] = nn.Conv2d(shape[0], 64, 3, padding=1)
    scale_widths(net.features, width, keep_input=net.features[0])
    net.avgpool = nn.AdaptiveAvgPool2d(1)
    net.classifier = mlp_head(scaled(512, width), scaled(512, width), n_classes, dropout_first=False)
    return materialize(net)


def alexnet_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """torchvision ``alexnet(weights=None)`` adapted to small images.

    Changes: the 11x11 stride-4 first conv becomes 3x3 stride 1 on ``shape[0]`` channels (the
    original maps 224 pixels to 55; on 28 it would leave nothing for the three max-pools,
    which stay: 28 -> 13 -> 6 -> 2); the 6x6 adaptive pool becomes 2x2; the 4096-unit
    head becomes 1024 units (x ``width``); He initialisation. Seed 000 instead upscaled
    MNIST to 224x224.
    """
    from torchvision.models import alexnet

    with torch.device("meta"):
        net = alexnet(weights=None)
    net.features[0] = nn.Conv2d(shape[0], 64, 3, padding=1)
    scale_widths(net.features, width, keep_input=net.features[0])
    net.avgpool = nn.AdaptiveAvgPool2d(2)
    net.classifier = mlp_head(scaled(256, width) * 4, scaled(1024, width), n_classes, dropout_first=True)
    materialize(net)
    # He initialisation: with PyTorch's default one this network, which has no batch norm, sits
    # at chance level for hundreds of Adam steps (measured: 9% on MNIST after 10 s, 71% with He).
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return net


def resnet18_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """torchvision ``resnet18(weights=None)`` with the small-image stem of He et al. (2016, sec. 4.2).

    Changes: the 7x7 stride-2 first conv becomes 3x3 stride 1 on ``shape[0]`` channels and the
    stem max-pool is removed, so 28x28 inputs reach the last stage at 4x4 instead of vanishing;
    the fc layer has ``n_classes`` outputs. All four stages are kept (the seed dropped the last).
    """
    from torchvision.models import resnet18

    net = resnet18(weights=None, num_classes=n_classes)
    net.conv1 = nn.Conv2d(shape[0], 64, 3, padding=1, bias=False)
    net.maxpool = nn.Identity()
    scale_widths(net, width, keep_input=net.conv1)
    net.fc = nn.Linear(scaled(512, width), n_classes)
    return net


class ConvNetClassifier(TorchClassifier):
    """A torch classifier whose network is ``builder(shape, n_classes, width)``.

    Parameters
    ----------
    width : float
        Channel and hidden-unit multiplier; 1.0 is the published architecture.
    epochs, batch_size, lr, max_seconds, val_fraction, patience
        Training settings, see ``models.torch_classifier.TorchClassifier``.
    """

    builder: Callable[[Shape, int, float], nn.Module]
    param_rules = {"width": POSITIVE}

    def __init__(self, *, width: float = 1.0, **common: Any) -> None:
        super().__init__(**common)
        self.width = width

    def build(self, input_shape: Shape, n_classes: int) -> nn.Module:
        if min(input_shape[1:]) < 8:
            raise ValueError(f"{self.name}: images must be at least 8x8; got {input_shape[1]}x{input_shape[2]}")
        return type(self).builder(input_shape, n_classes, self.width)


# 12 epochs: with 8, the tiny VGG-16 stopped at 62-88% on the test's separable task for 3 of 6
# seeds on one CPU model (other float kernels), 100% for all 6 with 12.
TEST_PARAMS = {"width": 0.0625, "epochs": 12, "batch_size": 20}
# Quick grid: ~1,000 training images, small batches, a few epochs (5-8 s each on a 2-core CPU).
# Budgets are epochs, not seconds, so the quick grid gives the same numbers on every machine.
_QUICK = {"width": 0.25, "epochs": 2, "batch_size": 32}
_FULL = {"epochs": 30, "patience": 5}


@CLASSIFIERS.register(
    "cnn_small",
    source="seed 004 (classifier of the denoised images); Keras MNIST CNN",
    description="two conv/max-pool stages and a dense layer, Adam",
    test_params={**TEST_PARAMS, "width": 0.25},
)
class CNNSmall(ConvNetClassifier):
    """Small CNN of seed 004: conv 32 - pool - conv 64 - pool - dense 128 - softmax."""

    name, builder = "cnn_small", staticmethod(cnn_small_net)
    budgets = {"quick": {"epochs": 6, "batch_size": 32}, "full": _FULL}


@CLASSIFIERS.register(
    "vgg16",
    source="seed 000 (VGG-16 on denoised MNIST); Simonyan & Zisserman 2015",
    description="torchvision VGG-16 (batch norm) adapted to 28x28/32x32",
    test_params=TEST_PARAMS,
)
class VGG16(ConvNetClassifier):
    """VGG-16 of seed 000 (99.08% 5-fold on MNIST); see ``vgg16_net`` for the adaptations."""

    name, builder = "vgg16", staticmethod(vgg16_net)
    budgets = {"quick": _QUICK, "full": _FULL}


@CLASSIFIERS.register(
    "alexnet",
    source="seed 000 (AlexNet on denoised MNIST); Krizhevsky et al. 2012",
    description="torchvision AlexNet adapted to 28x28/32x32",
    test_params={**TEST_PARAMS, "lr": 2e-3},
)
class AlexNet(ConvNetClassifier):
    """AlexNet of seed 000 (89.00% there); see ``alexnet_net`` for the adaptations."""

    name, builder = "alexnet", staticmethod(alexnet_net)
    # Without batch norm Adam at 1e-3 overshoots early on (29% vs 71% after 10 s on MNIST at 3e-4).
    budgets = {"quick": {**_QUICK, "epochs": 3, "lr": 3e-4}, "full": {**_FULL, "lr": 3e-4}}


@CLASSIFIERS.register(
    "resnet18",
    source="seed 000 (ResNet-18 on denoised MNIST); He et al. 2016",
    description="torchvision ResNet-18 with a small-image stem",
    test_params=TEST_PARAMS,
)
class ResNet18(ConvNetClassifier):
    """ResNet-18 of seed 000 (99.29% there); see ``resnet18_net`` for the adaptations."""

    name, builder = "resnet18", staticmethod(resnet18_net)
    budgets = {"quick": _QUICK, "full": _FULL}


def cross_validate(
    name: str, images: Tensor, labels: Tensor, *, k: int = 5, seed: int = 0, fit: FoldFit | None = None, **params: Any
) -> dict[str, Any]:
    """k-fold accuracy of the registered classifier ``name`` (seed 000 used k=5).

    Folds are a seeded random partition; fold ``i`` trains a fresh ``CLASSIFIERS.create(name,
    **params)`` on the other folds with seed ``derive_seed(seed, name, i)``. ``fit(i, images,
    labels, seed)``, if given, makes that fitted model instead (a caller that caches the folds).

    Returns
    -------
    dict
        ``mean`` and ``std`` (population) of the fold accuracies, and ``folds``, the list of them.
    """
    if not 2 <= k <= len(images):
        raise ValueError(f"k must be between 2 and the number of images ({len(images)}); got {k!r}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed)).to(images.device)
    folds = []
    for i, held_out in enumerate(order.tensor_split(k)):
        keep = torch.ones(len(images), dtype=torch.bool, device=images.device)
        keep[held_out] = False
        fold_seed = derive_seed(seed, name, i)
        if fit is None:
            model = CLASSIFIERS.create(name, **params).fit(images[keep], labels[keep], seed=fold_seed)
        else:
            model = fit(i, images[keep], labels[keep], fold_seed)
        folds.append(float((model.predict(images[held_out]) == labels[held_out].to(images.device)).float().mean()))
    mean = sum(folds) / k
    return {"mean": mean, "std": math.sqrt(sum((f - mean) ** 2 for f in folds) / k), "folds": folds}
