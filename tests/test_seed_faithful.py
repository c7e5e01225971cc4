"""The seed models' ``faithful`` recipes follow their reports' protocols (split, noise, recipes)."""

from __future__ import annotations

import pytest
import torch

from bench.registry import DENOISERS
from models.engine.recipe import Recipe
from models.engine.split import MAX_VALIDATION, held_out_count, planned_steps, split_validation

CPU = torch.device("cpu")


def test_an_uncapped_split_holds_out_the_whole_fraction():
    assert len(split_validation(60_000, 0.2, 0, CPU)[1]) == MAX_VALIDATION
    train, val = split_validation(60_000, 0.2, 0, CPU, cap=False)
    assert (len(train), len(val)) == (48_000, 12_000)  # seed 001's 80/20
    assert held_out_count(99, 0.5, cap=False) == 0  # still nothing held out of a handful


def test_planned_steps_follow_the_uncapped_split():
    capped = Recipe(epochs=1, batch_size=1000, val_fraction=0.2)
    assert planned_steps(capped, 60_000) == 58  # ceil(57,952 / 1,000)
    assert planned_steps(capped.updated(cap_validation=False), 60_000) == 48


# Each report corrupted its training set once; none redraws noise per batch.
FAITHFUL_ONCE = ["vgg16_ae", "alexnet_ae", "resnet18_ae", "conv_ae_fmnist", "cnn_denoiser_fmnist"]
FAITHFUL_ONCE += ["conv_ae_small", "conv_ae_deep", "dense_dae", "bn_conv_ae"]


@pytest.mark.parametrize("name", FAITHFUL_ONCE)
def test_faithful_recipes_draw_the_training_noise_once(name):
    model = DENOISERS.create(name, config="faithful")
    assert model.recipe().redraw_noise is False
    assert DENOISERS.create(name, config="ours").recipe().redraw_noise is True


@pytest.mark.parametrize(
    "name,fraction", [("conv_ae_fmnist", 0.2), ("cnn_denoiser_fmnist", 0.2), ("resnet18_ae", 1 / 7)]
)
def test_faithful_recipes_keep_the_reports_split(name, fraction):
    recipe = DENOISERS.create(name, config="faithful").recipe()
    assert recipe.val_fraction == pytest.approx(fraction)
    assert recipe.cap_validation is False


def test_seed000_resnet_autoencoder_takes_the_reports_stem():
    from models.seed000 import ResNet18AENet

    report, small = ResNet18AENet((1, 28, 28), 0.125, "report"), ResNet18AENet((1, 28, 28), 0.125, "small")
    assert report.stem[0].kernel_size == (7, 7) and isinstance(report.stem[-1], torch.nn.MaxPool2d)
    assert small.stem[0].kernel_size == (3, 3)
    assert report(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="resnet18_ae stem 'big' is unknown"):
        ResNet18AENet((1, 28, 28), 0.125, "big")


def test_seed000_faithful_classifiers_are_the_reports():
    from bench.registry import CLASSIFIERS

    vgg = CLASSIFIERS.create("vgg16_faithful")
    net = vgg.build((1, 28, 28), 10)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # plain VGG-16
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 5  # all five pools kept
    assert net.classifier[0].out_features == 4096
    assert (vgg.recipe().optimizer, vgg.recipe().epochs, vgg.recipe().batch_size) == ("sgd", 10, 32)
    resnet = CLASSIFIERS.create("resnet18_faithful")
    net = resnet.build((1, 28, 28), 10)
    assert net[0].kernel_size == (7, 7) and net[-1].in_features == 256 * 4 * 4  # three stages, flatten + dense
    recipe = resnet.recipe()
    assert (recipe.optimizer, recipe.loss, recipe.epochs, recipe.val_fraction, recipe.cap_validation) == (
        "adadelta",
        "bce",
        100,
        0.1,
        False,
    )
    alexnet = CLASSIFIERS.create("alexnet_faithful", width=0.0625)
    net = alexnet.build((1, 28, 28), 10)
    assert net.size == 224 and net.net.features[0].kernel_size == (11, 11)
    assert (alexnet.recipe().optimizer, alexnet.recipe().loss, alexnet.recipe().epochs) == ("adam", "bce", 50)
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_bce_classification_loss_is_keras_binary_crossentropy_on_softmax():
    from models.torch_classifier import classification_loss

    logits, labels = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    p = logits.softmax(1)[0]
    keras = -(torch.log(p[0]) + torch.log(1 - p[1]) + torch.log(1 - p[2])) / 3
    assert classification_loss("bce", logits, labels).item() == pytest.approx(keras.item(), rel=1e-5)
    assert classification_loss("mse", logits, labels).item() == pytest.approx(-torch.log(p[0]).item(), rel=1e-5)


def test_seed003_frozen_variants_pretrain_without_masking():
    from bench.registry import CLASSIFIERS

    for name in ("stacked_ae_softmax_frozen", "stacked_ae_softmax_1label", "stacked_ae_softmax_5labels"):
        assert CLASSIFIERS.create(name).mask_level == 0.0  # the report adds noise only from Table 3 on
    assert CLASSIFIERS.create("stacked_ae_softmax").mask_level == 0.2  # ours: a denoising pretraining


def test_a_budget_shrinks_only_what_the_protocol_names():
    # The quick grid's generic caps (100 steps of batch 8) must not reach a report's protocol.
    from bench.seeds import s001, s002
    from bench.seeds.common import faithful_params, settings

    assert faithful_params(DENOISERS, "bn_conv_ae", "quick") == {"config": "faithful"}
    assert faithful_params(DENOISERS, "conv_ae_fmnist", "tiny", epochs=2) == {"config": "faithful", "epochs": 2}
    quick = dict(s001.grids(settings(s001.SETTINGS, "quick"), 0)[0].params)
    assert dict(quick["conv_ae_fmnist"]) == {"config": "faithful", "epochs": 50}
    grid = s002._grid(settings(s002.SETTINGS, "quick"), 0, ["mnist"], 0.5, ["identity", "conv_ae_small"])
    assert dict(dict(grid.params)["conv_ae_small"]) == {"config": "faithful", "epochs": 4}
