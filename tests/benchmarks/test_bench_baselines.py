"""Denoise timings of the classical entries, each in one group with its reference.

``pytest tests/benchmarks/test_bench_baselines.py --benchmark-enable --benchmark-group-by=group``
prints, per entry, our ``denoise`` and the library a user would otherwise call (scipy.ndimage
on the same batch, scikit-image's per-image loop, the bm3d package) on a fixed, seeded batch
of 28x28 images, and again on four 256x256 photograph crops (``bench.cost.speed_sizes``); the
ratio of their images/s is the speed-up (``python -m bench speed`` and ``python -m bench speed
--sizes 28,64,256,512`` print the same comparisons as tables). Parameters are fixed (``bench.cost.references.FIXED``) so
that only ``denoise`` is timed. Slow calls get one timed round instead of calibration.
"""

import numpy as np
import pytest
import torch

from bench.cost.references import FIXED
from bench.cost.references import references as _references
from bench.cost.speed_sizes import photo_batch
from bench.noise import Noise
from bench.registry import DENOISERS

N_IMAGES = 256
#: Seconds-per-call entries and references: one round each.
SLOW = {"nlm", "bm3d_torch", "wavelet"}


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(N_IMAGES, 1, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.1).apply(clean, seed=1), clean


def _run(benchmark, fn, arg, slow):
    if slow:
        return benchmark.pedantic(fn, args=(arg,), rounds=1, iterations=1, warmup_rounds=1)
    return benchmark(fn, arg)


@pytest.mark.parametrize("name", ["identity", *sorted(FIXED)])
def test_denoise(benchmark, batch, name):
    noisy, clean = batch
    model = DENOISERS.create(name, **FIXED.get(name, {})).fit(noisy[:8], clean[:8])
    benchmark.group = f"{name} vs reference, 28x28"
    benchmark.extra_info["images"] = len(noisy)
    out = _run(benchmark, model.denoise, noisy, name in SLOW)
    assert out.shape == noisy.shape


@pytest.mark.parametrize("name", sorted(FIXED))
def test_reference(benchmark, batch, name):
    label, reference, n_images = _references()[name]
    if reference is None:
        pytest.skip(f"{label} is not installed (pip install 'denoise-bench[bm3d]')")
    planes = batch[0][: min(n_images, N_IMAGES)].numpy().astype(np.float32)
    benchmark.group = f"{name} vs reference, 28x28"
    benchmark.extra_info["images"] = len(planes)
    benchmark.extra_info["reference"] = label
    _run(benchmark, reference, planes, name in SLOW or label == "skimage loop")


@pytest.fixture(scope="module")
def photos():
    return photo_batch(256)[0]  # 4 noisy 256x256 crops of a Set12 photograph (synthesised without the data)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_denoise_photos(benchmark, photos, name):
    model = DENOISERS.create(name, **FIXED[name]).fit(photos[:1], photos[:1])
    benchmark.group = f"{name} vs reference, 256x256"
    benchmark.extra_info["images"] = len(photos)
    out = _run(benchmark, model.denoise, photos, name in SLOW)
    assert out.shape == photos.shape


@pytest.mark.parametrize("name", sorted(FIXED))
def test_reference_photos(benchmark, photos, name):
    label, reference, _ = _references()[name]
    if reference is None:
        pytest.skip(f"{label} is not installed (pip install 'denoise-bench[bm3d]')")
    benchmark.group = f"{name} vs reference, 256x256"
    benchmark.extra_info["images"] = len(photos)
    benchmark.extra_info["reference"] = label
    _run(benchmark, reference, photos.numpy(), name in SLOW or label == "skimage loop")


def test_denoise_bm3d(benchmark, batch):
    pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    noisy, clean = (t[:4] for t in batch)
    model = DENOISERS.create("bm3d", sigma_scale=1.0).fit(noisy, clean)
    benchmark.group = "bm3d denoise, 4 x 1 x 28 x 28"
    benchmark.extra_info["images"] = len(noisy)
    out = benchmark.pedantic(model.denoise, args=(noisy,), rounds=1, iterations=1, warmup_rounds=0)
    assert out.shape == noisy.shape
