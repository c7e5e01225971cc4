"""Seed 000's classifiers as its report built and trained them: vgg16_faithful, alexnet_faithful, resnet18_faithful.

Each network is the report's (``*_report_net``: plain VGG-16 with its 4096-unit head, the whole
of AlexNet on 224x224 input, ResNet-18 without its last stage) under the report's optimizer,
loss, split and epochs. Only the full grid and the seed reports run them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bench.registry import CLASSIFIERS
from models.classifiers import TEST_PARAMS, ConvNetClassifier, Shape, materialize, mlp_head, scale_widths, scaled
from models.engine.recipe import Recipe

__all__ = [
    "VGG16Faithful",
    "AlexNetFaithful",
    "ResNet18Faithful",
    "vgg16_report_net",
    "alexnet_report_net",
    "resnet18_report_net",
]


def _keras_init(net: nn.Module, kernel: str = "glorot_uniform") -> nn.Module:
    """Keras initialisation (the seed reports' framework): ``kernel`` weights ('glorot_uniform',
    Keras' default, or 'he_uniform'), zero biases.
    """
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if kernel == "he_uniform":
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net


def vgg16_report_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """Seed 000's VGG-16 classifier: "a model which contains all the layers of VGG-16".

    torchvision ``vgg16(weights=None)`` (no batch norm, the 4096-4096 head) on ``shape[0]``
    channels; its five 2x2 max-pools round up (Keras' 'same' pooling, 28 -> 14 -> 7 -> 4 -> 2 -> 1),
    so no layer is dropped; the 7x7 adaptive pool becomes 1x1 (a 1x1 map is what reaches it).
    """
    from torchvision.models import vgg16

    with torch.device("meta"):
        net = vgg16(weights=None)
    net.features[0] = nn.Conv2d(shape[0], 64, 3, padding=1)
    for index, layer in enumerate(net.features):
        if isinstance(layer, nn.MaxPool2d):
            net.features[index] = nn.MaxPool2d(2, 2, ceil_mode=True)
    scale_widths(net.features, width, keep_input=net.features[0])
    net.avgpool = nn.AdaptiveAvgPool2d(1)
    net.classifier = mlp_head(scaled(512, width), scaled(4096, width), n_classes, dropout_first=False)
    # He-uniform as the report's k-fold code (its ref. [3]) initialises every layer: under Keras'
    # default Glorot init each ReLU layer halves the signal's variance, and 15 of them leave SGD at chance.
    return _keras_init(materialize(net), "he_uniform")


class _Resized(nn.Module):
    """``net`` applied to the input resized (bilinear) to ``size`` x ``size``."""

    def __init__(self, net: nn.Module, size: int) -> None:
        super().__init__()
        self.net, self.size = net, size

    def forward(self, x: Tensor) -> Tensor:
        return self.net(nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False))


def alexnet_report_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """Seed 000's AlexNet classifier: the whole of torchvision ``alexnet(weights=None)`` (11x11
    stride-4 stem, 4096-4096 head with dropout) on ``shape[0]`` channels, with every image resized
    to 224x224 first ("the size is 224", sec. 3.2.2).
    """
    from torchvision.models import alexnet

    with torch.device("meta"):
        net = alexnet(weights=None, num_classes=n_classes)
    net.features[0] = nn.Conv2d(shape[0], 64, 11, stride=4, padding=2)
    scale_widths(net.features, width, keep_input=net.features[0])
    net.classifier = mlp_head(scaled(256, width) * 36, scaled(4096, width), n_classes, dropout_first=True)
    return _Resized(_keras_init(materialize(net)), 224)


def resnet18_report_net(shape: Shape, n_classes: int, width: float) -> nn.Module:
    """Seed 000's ResNet-18 classifier: "the last block is removed ... the image size after the
    convolution layer is 4*4*256. Finally, through a Flatten and full connection layer".

    Conv1 as the report's (7x7 convolution, batch norm, max-pool); its stride is our reading:
    stride 1 and the 3x3 stride-2 max-pool take 28 -> 14, and three stages (64, 128, 256) take
    14 -> 14 -> 7 -> 4, the report's 4x4x256. Then flatten and one dense layer.
    """
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(shape[0], 64, 7, stride=1, padding=3, bias=False)
    scale_widths(net, width, keep_input=net.conv1)
    side_h, side_w = (math.ceil(side / 8) for side in shape[1:])
    trunk = [net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3]
    head = nn.Linear(scaled(256, width) * side_h * side_w, n_classes)
    return _keras_init(nn.Sequential(*trunk, nn.Flatten(), head))


class _ReportClassifier(ConvNetClassifier):
    """A seed report's classifier trained as the report did: ``REPORT_RECIPE`` fixes the optimizer,
    loss and split, ``epochs``/``batch_size``/``lr`` default to the report's (a budget shrinks them).
    No early stopping: the report trained every epoch.
    """

    REPORT_RECIPE: ClassVar[dict[str, Any]] = {}
    # Only the full grid and the seed reports run them: the report's epochs (10 to 100, AlexNet
    # at 224x224) would make the quick grid's first run hours long.
    budgets: ClassVar[dict[str, dict[str, Any]]] = {"full": {}}

    def __init__(self, *, epochs: int, batch_size: int, lr: float, patience: int | None = None, **common: Any) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, **common)

    def recipe(self, **overrides: Any) -> Recipe:
        """``TorchClassifier.recipe`` under the report's optimizer, loss and split."""
        return super().recipe(**(self.REPORT_RECIPE | overrides))


# The report's k-fold code is its reference [3] (Brownlee): SGD lr 0.01, momentum 0.9,
# categorical cross-entropy, 10 epochs of batch 32, each fold's own held-out part as its test set.
_VGG_REPORT = {"optimizer": "sgd", "momentum": 0.9, "val_fraction": 0.0}


@CLASSIFIERS.register(
    "vgg16_faithful",
    source="seed 000 sec. 2.1.3 (all the layers of VGG-16; 5-fold CV, 10 epochs of batch 32) and its ref. [3]",
    description="plain VGG-16 (no batch norm, 4096-4096 head), SGD 0.01 momentum 0.9, 10 epochs of 32",
    test_params={**TEST_PARAMS, "lr": 0.01},
)
class VGG16Faithful(_ReportClassifier):
    """Seed 000's VGG-16 classifier as the report trained it; see ``vgg16_report_net``."""

    name, builder = "vgg16_faithful", staticmethod(vgg16_report_net)
    REPORT_RECIPE = _VGG_REPORT

    def __init__(self, *, epochs: int = 10, batch_size: int = 32, lr: float = 0.01, **common: Any) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, **common)


@CLASSIFIERS.register(
    "alexnet_faithful",
    source="seed 000 sec. 3.2.2 (Adam, binary cross-entropy, 50 epochs, 224x224 input)",
    description="whole AlexNet on images resized to 224, Adam + binary cross-entropy, 50 epochs",
    test_params=TEST_PARAMS,
)
class AlexNetFaithful(_ReportClassifier):
    """Seed 000's AlexNet classifier as the report trained it; see ``alexnet_report_net``.

    Batch 32 (Keras' default; the report names none); Keras' 10% validation split.
    """

    name, builder = "alexnet_faithful", staticmethod(alexnet_report_net)
    REPORT_RECIPE = {"optimizer": "adam", "loss": "bce", "cap_validation": False}

    def __init__(self, *, epochs: int = 50, batch_size: int = 32, lr: float = 1e-3, **common: Any) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, **common)


@CLASSIFIERS.register(
    "resnet18_faithful",
    source="seed 000 sec. 2.3.3 and 3.3.2 (3 stages, flatten + dense; Adadelta, binary cross-entropy, 100 epochs, 9:1)",
    description="ResNet-18 without its last stage, 7x7 stem and max-pool, Adadelta + binary cross-entropy, 100 epochs",
    test_params={**TEST_PARAMS, "lr": 1.0},
)
class ResNet18Faithful(_ReportClassifier):
    """Seed 000's ResNet-18 classifier as the report trained it; see ``resnet18_report_net``.

    Adadelta at lr 1.0 (Keras' default then), binary cross-entropy, 100 epochs, the training
    and validation images 9:1 (all of the tenth held out), batch 32 (Keras' default).
    """

    name, builder = "resnet18_faithful", staticmethod(resnet18_report_net)
    REPORT_RECIPE = {"optimizer": "adadelta", "loss": "bce", "cap_validation": False}

    def __init__(self, *, epochs: int = 100, batch_size: int = 32, lr: float = 1.0, **common: Any) -> None:
        super().__init__(epochs=epochs, batch_size=batch_size, lr=lr, **common)
