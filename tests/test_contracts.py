"""Contract tests generated from the registries: every entry is checked the moment it is registered."""

import json

import pytest
import torch

from bench.estimator import NotFittedError
from bench.noise import Noise, TrainingNoise
from bench.registry import CLASSIFIERS, DENOISERS


def make(registry, name):
    for module in getattr(registry.entry(name).factory, "requires", ()):
        pytest.importorskip(module, reason=f"{name} needs the optional package {module!r}")
    return registry.create(name, **registry.entry(name).test_params)


@pytest.fixture(scope="module")
def pairs():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(48, 1, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.15).apply(clean, seed=1), clean


@pytest.mark.parametrize("name", DENOISERS.names())
def test_denoiser_contract(name, pairs):
    noisy, clean = pairs
    model = make(DENOISERS, name)
    json.dumps(model.get_params())  # the parameters are a JSON record
    with pytest.raises(NotFittedError, match="not fitted"):
        model.denoise(noisy[:2])
    assert model.fit(noisy[:32], clean[:32], seed=0, noise=TrainingNoise("gaussian", 0.15)) is model
    test = noisy[32:].clone()
    out = model.denoise(test)
    assert out.shape == test.shape and out.dtype == torch.float32 and out.device == test.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert torch.equal(test, noisy[32:]), "denoise must not modify its input"
    assert torch.equal(model.denoise(test), out), "denoise must be pure"
    again = make(DENOISERS, name).fit(noisy[:32], clean[:32], seed=0, noise=TrainingNoise("gaussian", 0.15))
    assert torch.equal(again.denoise(test), out), "same seed, same result"
    assert model.n_parameters() >= 0


@pytest.mark.parametrize("name", DENOISERS.names())
def test_denoiser_handles_colour(name, pairs):
    noisy, clean = pairs
    colour_noisy, colour_clean = noisy[:16].repeat(1, 3, 1, 1), clean[:16].repeat(1, 3, 1, 1)
    model = make(DENOISERS, name).fit(colour_noisy, colour_clean, seed=0, noise=TrainingNoise("gaussian", 0.15))
    assert model.denoise(colour_noisy[:4]).shape == (4, 3, 28, 28)


@pytest.mark.parametrize("name", CLASSIFIERS.names())
def test_classifier_contract(name):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 2
    images = torch.rand(40, 1, 28, 28, generator=generator) * 0.2
    images[labels == 1, :, 8:20, 8:20] += 0.7  # a bright square marks class 1
    model = make(CLASSIFIERS, name)
    assert model.fit(images, labels, seed=0) is model
    predicted = model.predict(images)
    assert predicted.dtype == torch.int64 and predicted.shape == labels.shape
    assert torch.equal(model.predict(images), predicted)
