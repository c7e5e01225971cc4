"""Timings of noise generation and metrics on a fixed batch.

``pytest tests/benchmarks --benchmark-enable --benchmark-group-by=group`` prints our batched SSIM
beside scikit-image's per-image loop on the same images; their ratio is the speed-up.
"""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from bench import metrics
from bench.noise import Noise


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(2048, 1, 30, 30, generator=generator), 3, 1)
    return clean, Noise("gaussian", 0.2).apply(clean, seed=1)


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper", "masking", "impulse", "poisson", "speckle"])
def test_noise(benchmark, batch, kind):
    clean, _ = batch
    level = 30.0 if kind == "poisson" else 0.2
    benchmark.group = "noise"
    out = benchmark(Noise(kind, level).apply, clean, seed=0)
    assert out.shape == clean.shape


@pytest.mark.parametrize("metric", ["psnr", "ssim"])
def test_metric(benchmark, batch, metric):
    clean, noisy = batch
    benchmark.group = "ssim-vs-skimage" if metric == "ssim" else "metrics"
    out = benchmark(getattr(metrics, metric), noisy, clean)
    assert out.shape == (len(clean),)


def test_skimage_ssim_loop_reference(benchmark, batch):
    """The reference: scikit-image's SSIM image by image on the first 256 images, scaled to the batch."""
    clean, noisy = (t[:256, 0].double().numpy() for t in batch)
    opts = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    benchmark.group = "ssim-vs-skimage"
    benchmark.extra_info["images"] = 256
    scores = benchmark(lambda: [structural_similarity(a, b, **opts) for a, b in zip(noisy, clean)])
    assert np.isfinite(scores).all()


def test_bootstrap_interval(benchmark, batch):
    clean, noisy = batch
    values = metrics.psnr(noisy, clean)
    benchmark.group = "metrics"
    mean, low, high = benchmark(metrics.mean_ci, values)
    assert low <= mean <= high
