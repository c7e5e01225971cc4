import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from bench import metrics
from bench.data import load
from bench.noise import Noise


def skimage_ssim(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    opts = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=0)
    return np.array(
        [structural_similarity(p.double().numpy(), t.double().numpy(), **opts) for p, t in zip(pred, target)]
    )


def test_psnr_of_a_known_image():
    target = torch.zeros(2, 1, 8, 8)
    pred = target.clone()
    pred[0, 0, 0, 0] = 1.0  # MSE = 1/64 -> 10 log10(64) dB
    assert metrics.psnr(pred, target)[0].item() == pytest.approx(10 * np.log10(64), abs=1e-4)
    assert metrics.psnr(pred, target)[1].item() == pytest.approx(100.0)  # MSE floored at 1e-10
    assert metrics.mse(pred, target).tolist() == pytest.approx([1 / 64, 0.0])


def test_ssim_matches_skimage_on_real_mnist(data_dir):
    clean = load("mnist", data_dir=data_dir).test_images[:200].float() / 255
    for noise in (Noise("gaussian", 0.3), Noise("salt_pepper", 0.1)):
        noisy = noise.apply(clean, seed=0)
        assert np.abs(metrics.ssim(noisy, clean).numpy() - skimage_ssim(noisy, clean)).max() < 1e-6


def test_ssim_matches_skimage_on_colour_cifar_shaped_images():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(16, 3, 34, 34, generator=generator), 3, 1)  # smooth, 32x32
    noisy = Noise("gaussian", 0.1).apply(clean, seed=1)
    assert np.abs(metrics.ssim(noisy, clean).numpy() - skimage_ssim(noisy, clean)).max() < 1e-6


def test_ssim_matches_skimage_on_the_smallest_non_square_float64_and_strided_inputs():
    generator = torch.Generator().manual_seed(2)
    clean = torch.rand(5, 2, 23, 11, generator=generator, dtype=torch.float64)
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    for pred, target in ((noisy, clean), (noisy.transpose(2, 3), clean.transpose(2, 3))):
        assert np.abs(metrics.ssim(pred, target).numpy() - skimage_ssim(pred, target)).max() < 1e-6


def test_ssim_is_one_for_identical_images_and_chunking_does_not_change_it():
    x = torch.rand(10, 1, 28, 28)
    y = Noise("gaussian", 0.2).apply(x, seed=0)
    assert torch.allclose(metrics.ssim(x, x), torch.ones(10))
    assert torch.allclose(metrics.ssim(y, x, chunk=3), metrics.ssim(y, x))


def test_metric_errors_name_the_problem():
    with pytest.raises(ValueError, match="one shape"):
        metrics.psnr(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_mean_ci_brackets_the_mean_and_is_seeded():
    values = torch.randn(500, generator=torch.Generator().manual_seed(0)) + 20
    mean, low, high = metrics.mean_ci(values, seed=3)
    assert low < mean < high
    half_width = 1.96 * float(values.std()) / 500**0.5
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    assert metrics.mean_ci(values, seed=3) == (mean, low, high)


def test_accuracy():
    assert metrics.accuracy(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 0, 4])) == 0.75


def test_psnr_uint8_scores_the_output_rounded_to_8_bits():
    clean = torch.randint(0, 256, (3, 1, 16, 16)).float() / 255
    offset = (clean + 0.3 / 255).clamp(0, 1)  # rounds back to clean: infinite PSNR, floored
    assert torch.all(metrics.psnr_uint8(offset, clean) == 100.0) and torch.all(metrics.psnr(offset, clean) < 100)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    expected = metrics.psnr((noisy.clamp(0, 1) * 255).round() / 255, clean)
    assert torch.equal(metrics.psnr_uint8(noisy, clean), expected)
    assert torch.allclose(metrics.psnr_uint8(noisy, clean), metrics.psnr(noisy.clamp(0, 1), clean), atol=0.05)
