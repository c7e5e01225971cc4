"""bm3d_torch: shapes and input checks, colour, devices, and PSNR against the bm3d package.

The quality cases: the first 200 test images of Fashion-MNIST (gaussian 0.1 and 0.2) and
MNIST (gaussian 0.2), and 200 generated smooth 32x32 colour images (gaussian 0.1). Each
method tunes its sigma multiplier on the same 16 seeded training pairs, as the harness
does. The package's PSNRs, slow to measure (about 3 images/s), are stored in
tests/data/bm3d_reference_psnr.json; ``python tests/test_bm3d_torch.py`` measures them
again. With the package installed a live test also compares on a few images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import baselines.bm3d_torch as bm3d_torch_module
from baselines import bm3d_matching
from baselines.bm3d_torch import bm3d_torch
from bench.metrics import psnr
from bench.noise import Noise
from bench.registry import DENOISERS

REFERENCE = Path(__file__).parent / "data" / "bm3d_reference_psnr.json"
CASES = {
    "fashion-mnist gaussian 0.1": ("fashion-mnist", 0.1),
    "fashion-mnist gaussian 0.2": ("fashion-mnist", 0.2),
    "mnist gaussian 0.2": ("mnist", 0.2),
    "colour 32x32 gaussian 0.1": ("colour", 0.1),
}
N_TEST, N_TUNE = 200, 16
#: Largest PSNR shortfall allowed against the package, in dB.
TOLERANCE_DB = 0.3


def smooth_colour_images(n: int, *, seed: int) -> torch.Tensor:
    """n x 3 x 32 x 32 images in [0, 1]: blurred colour noise plus a few sharp-edged rectangles.

    A stand-in for natural colour images (no CIFAR-10 here): smooth regions, edges, and
    correlated but distinct channels.
    """
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 40, 40, generator=generator)
    kernel = torch.exp(-0.5 * (torch.arange(-6, 7.0) / 3.0) ** 2)
    kernel = (kernel[:, None] * kernel[None, :] / kernel.sum() ** 2).expand(3, 1, 13, 13)
    smooth = torch.nn.functional.conv2d(base, kernel, groups=3)[..., :32, :32]
    low, high = smooth.amin((2, 3), keepdim=True), smooth.amax((2, 3), keepdim=True)
    images = 0.15 + 0.7 * (smooth - low) / (high - low)
    for _ in range(3):
        corner = torch.randint(0, 24, (n, 2), generator=generator)
        colour = torch.rand(n, 3, generator=generator)
        for i in range(n):
            y, x = corner[i].tolist()
            images[i, :, y : y + 8, x : x + 8] = colour[i].view(3, 1, 1)
    return images


def case_data(name: str, data_dir: Path | None) -> tuple[torch.Tensor, ...]:
    """(train noisy, train clean, test noisy, test clean) of one quality case."""
    source, level = CASES[name]
    if source == "colour":
        train_clean, test_clean = smooth_colour_images(N_TUNE, seed=1), smooth_colour_images(N_TEST, seed=2)
    else:
        from bench.data import load

        dataset = load(source, data_dir=data_dir)
        train_clean = dataset.train_images[:N_TUNE].float() / 255
        test_clean = dataset.test_images[:N_TEST].float() / 255
    noise = Noise("gaussian", level)
    return noise.apply(train_clean, seed=1), train_clean, noise.apply(test_clean, seed=0), test_clean


def scored(name: str, data: tuple[torch.Tensor, ...], n_test: int = N_TEST) -> float:
    """Mean PSNR of registry entry ``name`` tuned on the case's training pairs."""
    train_noisy, train_clean, test_noisy, test_clean = data
    params = {"subsample": N_TUNE} if name == "bm3d" else {"tune_images": N_TUNE}
    model = DENOISERS.create(name, **params).fit(train_noisy, train_clean, seed=0)
    return float(psnr(model.denoise(test_noisy[:n_test]), test_clean[:n_test]).mean())


def test_shapes_devices_and_checks():
    x = torch.rand(3, 2, 9, 13)
    assert bm3d_torch(x).shape == x.shape
    assert bm3d_torch(torch.rand(2, 1, 5, 6)).shape == (2, 1, 5, 6)  # smaller than a block
    black = torch.zeros(1, 3, 16, 16)
    assert torch.equal(bm3d_torch(black), black)  # sigma estimate 0: unchanged
    flat = torch.full((1, 1, 16, 16), 0.5)
    assert torch.allclose(bm3d_torch(flat), flat, atol=1e-5)
    with pytest.raises(ValueError, match="power of two"):
        bm3d_torch(x, group_ht=12)
    with pytest.raises(ValueError, match="sigma_scale"):
        bm3d_torch(x, sigma_scale=0)
    with pytest.raises(ValueError, match="N x C x H x W"):
        bm3d_torch(torch.rand(8, 8))


def test_batch_members_are_independent():
    x = Noise("gaussian", 0.1).apply(smooth_colour_images(5, seed=3), seed=0)
    together = bm3d_torch(x)
    alone = torch.cat([bm3d_torch(x[i : i + 1]) for i in range(len(x))])
    assert torch.allclose(together, alone, atol=1e-5)


def brute_force_match(features: torch.Tensor, rows: int, cols: int, size: int) -> torch.Tensor:
    """Every reference's nearest blocks over the whole image, those beyond the 39x39 window masked."""
    y, x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    y, x = y.flatten(), x.flatten()
    ref_y, ref_x = (torch.tensor(bm3d_matching.reference_starts(n)) for n in (rows, cols))
    refs = (ref_y[:, None] * cols + ref_x[None, :]).flatten()
    distance = torch.cdist(features[refs], features).square()
    distance[((y[None] - y[refs, None]).abs() > 19) | ((x[None] - x[refs, None]).abs() > 19)] = torch.inf
    distance[torch.arange(len(refs)), refs] = -1.0
    return distance.topk(size, dim=1, largest=False).indices


@pytest.mark.parametrize("rows, cols, side", [(21, 21, 8), (70, 61, 3), (70, 61, 9), (2, 90, 4), (45, 45, 20)])
def test_tiled_matching_equals_matching_over_the_whole_image(rows, cols, side):
    # float64 features without ties: the tiles must find exactly the brute force's groups, in order.
    features = torch.randn(1, rows * cols, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(rows))
    norms = features.square().sum(-1)
    tiles = list(bm3d_matching.tiles(rows, cols, side, torch.device("cpu")))
    found = torch.cat([bm3d_matching.match(features, norms, tile, 16) for tile in tiles], dim=1)[0]
    refs = torch.cat([tile.refs for tile in tiles])
    expected = brute_force_match(features[0], rows, cols, 16)
    order = refs.argsort()
    assert len(refs) == len(expected) and torch.equal(refs[order].unique(), refs.sort().values)
    assert torch.equal(found[order], expected)


def test_interior_tiles_take_the_strided_window_path():
    # (70, 61, 3) above is checked against brute force: it must hold tiles of both kinds.
    tiles = list(bm3d_matching.tiles(70, 61, 3, torch.device("cpu")))
    regular = [tile for tile in tiles if tile.regular is not None]
    assert regular and len(regular) < len(tiles)
    assert all(tile.regular == (3, 3) and tile.shape == (45, 45) for tile in regular)


def test_plan_bounds_a_chunk_at_any_size_and_batches_small_images():
    budget = 1 << 20
    assert bm3d_matching.plan(21, 21, 32 * 64, budget) == (8, 8)  # 28x28: one tile, eight images a chunk
    assert bm3d_matching.plan(21, 21, 32 * 64, 1 << 27)[1] > 8  # a larger (GPU) budget takes more images
    for size in (57, 505, 4000):
        side, images = bm3d_matching.plan(size, size, 32 * 3 * 64, budget)
        tile = next(bm3d_matching.tiles(size, size, side, torch.device("cpu")))
        candidates = size * size if tile.candidates is None else len(tile.candidates)
        assert images == 1 and len(tile.refs) * max(32 * 3 * 64, candidates) <= budget, (size, side)


def test_a_large_image_in_many_tiles_equals_one_tile(monkeypatch):
    clean = smooth_colour_images(1, seed=5).mean(1, keepdim=True)
    noisy = Noise("gaussian", 0.1).apply(torch.nn.functional.interpolate(clean, size=(72, 80)), seed=0)
    whole = bm3d_torch(noisy, sigma=0.1)
    monkeypatch.setitem(bm3d_torch_module._CHUNK_ELEMENTS, "cpu", 20_000)
    assert bm3d_matching.plan(65, 73, 32 * 64, 20_000)[0] < 5
    tiled = bm3d_torch(noisy, sigma=0.1)
    # Only rounding differs (it can swap blocks at equal distance): a shifted or missing tile would not be close.
    assert float((tiled - whole).abs().mean()) < 1e-4 and float((tiled - whole).abs().max()) < 0.05


def test_known_sigma():
    clean = smooth_colour_images(4, seed=6)
    noisy = Noise("gaussian", 0.1).apply(clean, seed=0)
    known = bm3d_torch(noisy, sigma=0.1)
    assert not torch.allclose(known, bm3d_torch(noisy, sigma=0.05), atol=1e-3)
    assert torch.allclose(bm3d_torch(noisy, sigma=0.05, sigma_scale=2.0), known)
    model = DENOISERS.create("bm3d_torch", sigma=0.1, sigma_scale=1.0).fit(noisy, clean)
    assert torch.allclose(model.denoise(noisy), known.clamp(0, 1))
    with pytest.raises(ValueError, match="sigma"):
        bm3d_torch(noisy, sigma=-1.0)


def test_denoises_colour_better_than_per_channel_noise():
    clean = smooth_colour_images(8, seed=4)
    noisy = Noise("gaussian", 0.1).apply(clean, seed=0)
    gain = psnr(bm3d_torch(noisy).clamp(0, 1), clean) - psnr(noisy, clean)
    assert bool((gain > 5).all()), gain


def test_colour_case_against_stored_package_psnr():
    reference = json.loads(REFERENCE.read_text())["colour 32x32 gaussian 0.1"]
    ours = scored("bm3d_torch", case_data("colour 32x32 gaussian 0.1", None))
    assert ours >= reference["bm3d"] - TOLERANCE_DB, (ours, reference)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][0] != "colour"])
def test_real_data_against_stored_package_psnr(name, real_data_dir):
    reference = json.loads(REFERENCE.read_text())[name]
    ours = scored("bm3d_torch", case_data(name, real_data_dir))
    assert ours >= reference["bm3d"] - TOLERANCE_DB, (ours, reference)


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_against_the_package_live():
    pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    data = case_data("colour 32x32 gaussian 0.1", None)
    data = (*data[:2], data[2][:12], data[3][:12])
    assert scored("bm3d_torch", data) >= scored("bm3d", data) - TOLERANCE_DB


def measure(data_dir: Path) -> dict:
    """Both methods' PSNR on every case (minutes: the package runs about 3 images/s)."""
    out = {}
    for name in CASES:
        data = case_data(name, data_dir)
        out[name] = {"bm3d": round(scored("bm3d", data), 3), "bm3d_torch": round(scored("bm3d_torch", data), 3)}
        out[name]["n_test"] = N_TEST
        print(name, out[name], flush=True)
    return out


if __name__ == "__main__":
    import os

    torch.set_num_threads(2)
    results = measure(Path(os.environ.get("BENCH_DATA_DIR", "")) or None)
    results["_about"] = (
        "mean PSNR (dB) on the first 200 test images, each method's sigma multiplier tuned on the "
        "same 16 training pairs; bm3d package at its default profile (one thread), colour via the "
        "opponent transform; written by python tests/test_bm3d_torch.py"
    )
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(results, indent=2) + "\n")
