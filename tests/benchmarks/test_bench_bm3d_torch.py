"""bm3d_torch beside the bm3d package on one photo-sized image, at a known sigma of 25/255.

``pytest tests/benchmarks/test_bench_bm3d_torch.py --benchmark-enable --benchmark-group-by=group``
times one round of each on the same seeded 256 x 256 image (unclipped noise) on one thread,
as the literature's known-sigma setting runs them; the ratio of the two times is the
speed-up per image. (The 28x28 batch comparison is in test_bench_baselines.py.)
"""

import numpy as np
import pytest
import torch

from baselines.bm3d_torch import bm3d_torch

SIZE, SIGMA = 256, 25 / 255
GROUP = f"bm3d_torch vs bm3d package, {SIZE}x{SIZE} grey, sigma 25/255"


@pytest.fixture(scope="module")
def noisy():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(1, 1, SIZE + 4, SIZE + 4, generator=generator), 5, 1)
    return clean + SIGMA * torch.randn(clean.shape, generator=generator)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bm3d_torch(benchmark, noisy):
    benchmark.group = GROUP
    out = benchmark.pedantic(bm3d_torch, args=(noisy,), kwargs={"sigma": SIGMA}, rounds=1, warmup_rounds=1)
    assert out.shape == noisy.shape


def test_bm3d_package(benchmark, noisy):
    bm3d = pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    profile = bm3d.BM3DProfile()
    profile.num_threads = 1
    image = noisy[0, 0].double().numpy()
    benchmark.group = GROUP
    out = benchmark.pedantic(bm3d.bm3d, args=(image, SIGMA), kwargs={"profile": profile}, rounds=1, warmup_rounds=0)
    assert np.shape(out) == image.shape
