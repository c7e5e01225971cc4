"""Denoise timings of the classical baselines on a fixed, seeded batch of 256 28x28 images.

``pytest tests/benchmarks/test_bench_baselines.py --benchmark-enable`` prints the times;
images/s is 256 over the mean. Parameters are fixed (the tuned values on gaussian 0.1)
so that the timing measures ``denoise`` alone, never the tuning. bm3d is timed on 4
images only (about a second each at the package's default profile).
"""

import pytest
import torch

from bench.noise import Noise
from bench.registry import DENOISERS

FIXED = {
    "identity": {},
    "median": {"size": 3},
    "gaussian_blur": {"sigma": 0.5},
    "tv_chambolle": {"weight": 0.04},
    "wavelet": {"wavelet": "db2", "levels": 2, "mode": "soft", "sigma_scale": 1.0},
    "nlm": {"patch_size": 5, "patch_distance": 5, "h_scale": 1.2},
}
#: Seconds-per-call denoisers get one timed round instead of pytest-benchmark's calibration.
SLOW = {"nlm"}


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(256, 1, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.1).apply(clean, seed=1), clean


@pytest.mark.parametrize("name", sorted(FIXED))
def test_denoise(benchmark, batch, name):
    noisy, clean = batch
    model = DENOISERS.create(name, **FIXED[name]).fit(noisy[:8], clean[:8])
    benchmark.group = "classical denoise, 256 x 1 x 28 x 28"
    benchmark.extra_info["images"] = len(noisy)
    if name in SLOW:
        out = benchmark.pedantic(model.denoise, args=(noisy,), rounds=1, iterations=1, warmup_rounds=0)
    else:
        out = benchmark(model.denoise, noisy)
    assert out.shape == noisy.shape


def test_denoise_bm3d(benchmark, batch):
    pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    noisy, clean = (t[:4] for t in batch)
    model = DENOISERS.create("bm3d", sigma_scale=1.0).fit(noisy, clean)
    benchmark.group = "bm3d denoise, 4 x 1 x 28 x 28"
    benchmark.extra_info["images"] = len(noisy)
    out = benchmark.pedantic(model.denoise, args=(noisy,), rounds=1, iterations=1, warmup_rounds=0)
    assert out.shape == noisy.shape
