"""Every torch classical filter gives the same output on CUDA as on the CPU.

Tolerance: 1e-4 absolute on [0, 1] images (float32; CUDA sums in another order and may use
TF32 in matrix products, which the tests turn off). bm3d_torch's block matching can pick a
different block where two distances tie to rounding, so it is held to a mean difference of
1e-4 and a PSNR difference below 0.01 dB instead. Skipped where no GPU is visible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from baselines.bm3d_torch import bm3d_torch
from baselines.filters import gaussian_filter, median_filter, noise_sigma, tv_chambolle
from baselines.nlm import nl_means
from bench.metrics import psnr, ssim
from bench.noise import Noise


def cuda(test):
    """Mark a test ``cuda`` and skip it where no GPU is visible."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


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


@cuda
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_on_cuda_equals_cpu(name, noisy):
    x, _ = noisy
    cpu = FILTERS[name](x)
    gpu = FILTERS[name](x.cuda()).cpu()
    assert (gpu - cpu).abs().max() <= TOLERANCE


@cuda
@pytest.mark.parametrize("channels", [1, 3])
def test_bm3d_torch_on_cuda_equals_cpu(channels, noisy):
    x, clean = (t[:, :channels] for t in noisy)
    cpu = bm3d_torch(x)
    gpu = bm3d_torch(x.cuda()).cpu()
    assert (gpu - cpu).abs().mean() <= TOLERANCE
    assert (psnr(gpu.clamp(0, 1), clean) - psnr(cpu.clamp(0, 1), clean)).abs().max() < 0.01


@cuda
def test_registered_entries_stay_on_the_device(noisy):
    from bench.registry import DENOISERS

    x, clean = (t[:16].cuda() for t in noisy)
    for name in ("median", "gaussian_blur", "tv_chambolle", "nlm", "bm3d_torch"):
        model = DENOISERS.create(name, tune_images=8).fit(x, clean)
        out = model.denoise(x)
        assert out.device == x.device and out.shape == x.shape, name


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gpu_check_script_runs_on_the_cpu_and_prints_its_table():
    # The script's own logic, exercised without a GPU: every step runs on the CPU in quick mode.
    script = Path(__file__).parents[1] / ".ci" / "gpu-check"
    # The script calls `python`: this interpreter's, as in an activated environment.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        [str(script), "--device", "cpu", "--quick"],
        capture_output=True,
        text=True,
        timeout=480,
        env={**os.environ, "PATH": path},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["check", "status", "seconds"]
    assert [line.split()[:2] for line in lines[1:4]] == [["cuda-tests", "ok"], ["speed", "ok"], ["grid", "ok"]]
    speed_rows = {line.split()[0] for line in lines[5:]}
    assert {"median", "gaussian_blur", "tv_chambolle", "nlm", "bm3d_torch", "ssim", "psnr"} <= speed_rows


def test_gpu_check_rejects_a_bad_device():
    script = Path(__file__).parents[1] / ".ci" / "gpu-check"
    done = subprocess.run([str(script), "--device", "tpu"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "expected cuda or cpu" in done.stderr
