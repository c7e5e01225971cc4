"""Every torch classical filter gives the same output on CUDA as on the CPU.

Tolerance: 1e-4 absolute on [0, 1] images (float32; CUDA sums in another order and may use
TF32 in matrix products, which the tests turn off). bm3d_torch's block matching can pick a
different block where two distances tie to rounding, so it is held to a mean difference of
1e-4 and a PSNR difference below 0.01 dB instead. Skipped where no GPU is visible.
"""

from __future__ import annotations

import pytest
import torch

from baselines.bm3d_torch import bm3d_torch
from baselines.filters import gaussian_filter, median_filter, noise_sigma, tv_chambolle
from baselines.nlm import nl_means
from bench.metrics import psnr, ssim
from bench.noise import Noise

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
TOLERANCE = 1e-4

FILTERS = {
    "median": lambda x: median_filter(x, size=5),
    "gaussian_blur": lambda x: gaussian_filter(x, sigma=1.0),
    "gaussian_blur_large": lambda x: gaussian_filter(torch.nn.functional.interpolate(x, size=(150, 150)), sigma=1.0),
    "tv_chambolle": lambda x: tv_chambolle(x, weight=0.1),
    "nlm": lambda x: nl_means(x, patch_size=5, patch_distance=5, h_scale=1.2),
    "noise_sigma": noise_sigma,
    "ssim": lambda x: ssim(x, x.flip(0)),
}


@pytest.fixture(scope="module")
def noisy():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(64, 3, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.1).apply(clean, seed=1), clean


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_on_cuda_equals_cpu(name, noisy):
    x, _ = noisy
    cpu = FILTERS[name](x)
    gpu = FILTERS[name](x.cuda()).cpu()
    assert (gpu - cpu).abs().max() <= TOLERANCE


@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_torch_on_cuda_equals_cpu(channels, noisy):
    x, clean = (t[:, :channels] for t in noisy)
    cpu = bm3d_torch(x)
    gpu = bm3d_torch(x.cuda()).cpu()
    assert (gpu - cpu).abs().mean() <= TOLERANCE
    assert (psnr(gpu.clamp(0, 1), clean) - psnr(cpu.clamp(0, 1), clean)).abs().max() < 0.01


def test_registered_entries_stay_on_the_device(noisy):
    from bench.registry import DENOISERS

    x, clean = (t[:16].cuda() for t in noisy)
    for name in ("median", "gaussian_blur", "tv_chambolle", "nlm", "bm3d_torch"):
        model = DENOISERS.create(name, tune_images=8).fit(x, clean)
        out = model.denoise(x)
        assert out.device == x.device and out.shape == x.shape, name
