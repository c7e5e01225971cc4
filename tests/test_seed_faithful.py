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


@pytest.mark.parametrize("name,fraction", [("conv_ae_fmnist", 0.2), ("cnn_denoiser_fmnist", 0.2), ("resnet18_ae", 1 / 7)])
def test_faithful_recipes_keep_the_reports_split(name, fraction):
    recipe = DENOISERS.create(name, config="faithful").recipe()
    assert recipe.val_fraction == pytest.approx(fraction)
    assert recipe.cap_validation is False
