"""Seed 004's autoencoder: no output pixel phase of its 2x upsampling decoder is left dead."""

import pytest
import torch

from bench import data, noise
from models.seed004 import BNConvAE


def phase_mse(denoised: torch.Tensor, clean: torch.Tensor, period: int = 4) -> torch.Tensor:
    """Mean squared error at each (y % period, x % period) pixel phase, as a period x period tensor."""
    errors = torch.empty(period, period)
    for y in range(period):
        for x in range(period):
            errors[y, x] = (denoised[..., y::period, x::period] - clean[..., y::period, x::period]).pow(2).mean()
    return errors


def test_phase_mse_finds_a_dead_phase():
    clean = torch.full((2, 1, 8, 8), 0.5)
    denoised = clean.clone()
    denoised[..., 1::4, 2::4] = 0.0
    errors = phase_mse(denoised, clean)
    assert errors[1, 2] == pytest.approx(0.25) and errors.sum() == pytest.approx(0.25)


@pytest.mark.slow
def test_bn_conv_ae_fit_has_no_dead_output_phase():
    # Each output phase of a 2x2 stride-2 transposed convolution has weights of its own; behind
    # the ReLU output one phase died in training and stayed at 0 (a grid of dots, 15 dB on MNIST).
    digits = data.load("digits")
    clean = digits.train_images[:1000].float() / 255
    test = digits.test_images[:300].float() / 255
    generator = torch.Generator().manual_seed(0)
    noisy, test_noisy = noise.gaussian(clean, 0.3, generator), noise.gaussian(test, 0.3, generator)
    model = BNConvAE(config="faithful", epochs=6).fit(noisy, clean, seed=0)
    denoised = model.denoise(test_noisy)
    errors = phase_mse(denoised, test)
    never_lit = [(y, x) for y in range(4) for x in range(4) if denoised[..., y::4, x::4].max() == 0]
    assert not never_lit, f"output phases stuck at 0 on every test image: {never_lit}"
    assert errors.max() < 1.5 * errors.median(), f"per-phase MSE spread: {errors}"
