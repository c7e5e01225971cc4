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
