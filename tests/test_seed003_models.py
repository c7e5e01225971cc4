"""Seed 003's training options: fixed noisy pairs (``Recipe.redraw_noise``), the stacked classifier's
input masking, optimizer and pretraining cost, and its faithful variant."""

import pytest
import torch

from bench.noise import TrainingNoise
from bench.registry import CLASSIFIERS, DENOISERS
from models.engine.recipe import Recipe
from models.neural_denoiser import seeded
from models.stacked_classifier import StackedAESoftmax


def _pairs(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return TrainingNoise("masking", 0.2).pick(None).apply(clean, seed=1), clean


def _weights(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.net_.parameters()]


@pytest.mark.parametrize("name", ["dense_dae", "stacked_dae"])
def test_faithful_recipe_trains_on_the_fixed_pairs_and_ours_redraws(name):
    noisy, clean = _pairs()
    small = {"epochs": 2, "pretrain_epochs": 2} if name == "stacked_dae" else {"epochs": 2}
    small |= {"sizes": (8, 4)} if name == "stacked_dae" else {"hidden": 8}
    noise = TrainingNoise("masking", 0.2)

    def fit(config: str, given) -> list[torch.Tensor]:
        return _weights(DENOISERS.create(name, config=config, **small).fit(noisy, clean, seed=3, noise=given))

    assert DENOISERS.create(name, config="faithful").recipe().redraw_noise is False
    assert all(torch.equal(a, b) for a, b in zip(fit("faithful", noise), fit("faithful", None)))
    assert not all(torch.equal(a, b) for a, b in zip(fit("ours", noise), fit("ours", None)))


def test_faithful_dense_dae_holds_nothing_out_and_scores_its_training_pairs():
    noisy, clean = _pairs(120)  # above the 100 images below which nothing is held out anyway
    model = DENOISERS.create("dense_dae", config="faithful", hidden=8, epochs=3).fit(noisy, clean, seed=0)
    assert model.training_["validation"] == "the 120 training images" and model.training_["steps"] == 3
    mse = float((model.denoise(noisy) - clean).pow(2).mean())
    assert model.training_["best_val_loss"] == pytest.approx(mse, rel=1e-4)
    assert Recipe().redraw_noise is True


def test_input_masking_masks_the_training_images_once_by_seed():
    images = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.1
    model = StackedAESoftmax(input_masking=0.3)
    masked = model.training_images(images, seed=2)
    assert torch.equal(masked, model.training_images(images, seed=2))
    assert not torch.equal(masked, model.training_images(images, seed=3))
    assert float((masked == 0).float().mean()) == pytest.approx(0.3, abs=0.02)
    assert StackedAESoftmax().training_images(images, seed=2) is images


def test_stacked_training_options_and_the_faithful_variant():
    faithful = CLASSIFIERS.create("stacked_ae_softmax_faithful")
    recipe = faithful.recipe()
    assert (recipe.optimizer, recipe.epochs, recipe.lr, recipe.val_fraction) == ("sgd", 500, 0.1, 0.0)
    assert (faithful.pretrain_loss, faithful.pretrain_epochs, faithful.finetune, faithful.mask_level) == (
        "half_sse",
        500,
        "frozen",
        0.0,
    )
    assert CLASSIFIERS.create("stacked_ae_softmax_faithful", lr=0.3).recipe().lr == 0.3
    assert StackedAESoftmax().recipe().optimizer == "adam"
    for bad, expected in (
        ({"optimizer": "rmsprop"}, "optimizer='rmsprop' is invalid; expected one of: adam, sgd"),
        ({"pretrain_loss": "l1"}, "pretrain_loss='l1' is invalid; expected one of: mse, half_sse"),
        ({"input_masking": 1.0}, r"input_masking=1.0 is invalid; expected a finite number in \[0, 1\)"),
    ):
        model = StackedAESoftmax(**bad)  # constructors only store; grids check before anything runs
        with pytest.raises(ValueError, match=expected):
            model.check_params()


def test_half_sse_pretraining_takes_larger_steps_than_mse_at_one_rate():
    images = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    common = {"hidden": (8,), "pretrain_epochs": 1, "pretrain_lr": 0.01, "optimizer": "sgd", "batch_size": 40}
    with seeded(0, torch.device("cpu")):  # the initialisation pretrain(seed=0) starts from
        start = StackedAESoftmax(**common).build((1, 28, 28), 2).encoder[0][0].weight.detach()
    moved = {}
    for loss in ("mse", "half_sse"):
        encoder = StackedAESoftmax(**common, pretrain_loss=loss).pretrain(images, seed=0)
        moved[loss] = float((encoder[0][0].weight.detach() - start).abs().sum())
    assert moved["mse"] > 0 and moved["half_sse"] > 50 * moved["mse"]  # 0.5 x 784 summed: a 392x larger gradient
