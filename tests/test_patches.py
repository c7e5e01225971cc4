"""Patch training (models/engine/patches.py) and networks on images of any size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.noise import TrainingNoise
from bench.registry import DENOISERS
from models.engine import inference
from models.engine.augment import dihedral
from models.engine.patches import PatchPlan, PatchSource
from models.neural_denoiser import NeuralDenoiser

NEURAL = [n for n in DENOISERS.names() if issubclass(type(DENOISERS.create(n)), NeuralDenoiser)]


def photos(sizes, seed: int = 0) -> list[torch.Tensor]:
    """Smooth grey images of the given (H, W) sizes, values in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return [F.avg_pool2d(torch.rand(1, 1, h + 4, w + 4, generator=generator), 5, 1)[0] for h, w in sizes]


def numbered(sizes) -> list[torch.Tensor]:
    """Images whose pixels are all distinct, so a patch tells where (and how turned) it was cut."""
    images, start = [], 0
    for h, w in sizes:
        images.append(torch.arange(start, start + h * w, dtype=torch.float32).view(1, h, w))
        start += h * w
    return images


def origin(patch: torch.Tensor, images: list[torch.Tensor]) -> tuple[int, int, int, int]:
    """(image, top, left, transform) of a patch cut from ``numbered`` images."""
    size = patch.shape[-1]
    for k in range(8):
        crop = dihedral(patch[None], k, undo=True)[0]
        corner = float(crop[0, 0, 0])
        for i, image in enumerate(images):
            hits = (image[0] == corner).nonzero()
            if len(hits):
                y, x = hits[0].tolist()
                if torch.equal(image[:, y : y + size, x : x + size], crop):
                    return i, y, x, k
    raise AssertionError("the patch is no flip or transpose of any crop")


def test_patches_are_crops_of_images_of_several_sizes_with_the_asked_shape():
    images = numbered([(20, 30), (25, 17), (12, 12)])
    clean, noisy = PatchSource(images, 12, augment=False).draw(40, torch.Generator().manual_seed(0))
    assert clean.shape == (40, 1, 12, 12) and noisy is None
    found = [origin(p, images) for p in clean]
    assert {k for *_, k in found} == {0}, "without augmentation patches keep their orientation"
    assert {i for i, *_ in found} == {0, 1}, "the 12x12 image (one position of 420) is all but never picked"


def test_augmentation_uses_all_eight_flips_and_transposes_and_keeps_pairs_aligned():
    images = numbered([(30, 30)])
    noisy = [image + 0.5 for image in images]
    clean, noisy_patches = PatchSource(images, 8, noisy=noisy).draw(200, torch.Generator().manual_seed(1))
    assert {origin(p, images)[3] for p in clean} == set(range(8))
    assert torch.equal(noisy_patches, clean + 0.5), "noisy and clean patches are cut and turned together"


def test_patch_draws_are_seeded():
    source = PatchSource(photos([(40, 50), (33, 60)]), 16)
    first, _ = source.draw(8, torch.Generator().manual_seed(3))
    again, _ = source.draw(8, torch.Generator().manual_seed(3))
    other, _ = source.draw(8, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_an_image_smaller_than_the_patch_is_refused_with_one_line():
    with pytest.raises(ValueError, match=r"training image 1 is 1x10x50.*patch_size 16") as error:
        PatchSource(photos([(40, 50), (10, 50)]), 16)
    assert "\n" not in str(error.value)


def test_patches_per_epoch_defaults_to_one_pass_over_the_pixels():
    assert PatchPlan(40).epoch_patches([(180, 180)] * 400) == 400 * 16
    assert PatchPlan(40, per_epoch=128).epoch_patches([(180, 180)]) == 128


def tiny(name: str, **params) -> NeuralDenoiser:
    shape = {"dncnn": {"depth": 3, "width": 8}, "unet": {"width": 8, "levels": 3}}[name]
    settings = {"patch_size": 16, "patches_per_epoch": 96, "epochs": 2, "batch_size": 16, **shape}
    return DENOISERS.create(name, **settings | params)


@pytest.mark.parametrize("name", ["dncnn", "unet"])
def test_networks_train_on_patches_of_different_size_images_and_denoise_any_size(name):
    images = photos([(40, 52), (37, 45), (64, 30)])
    model = tiny(name).fit(images, images, seed=0, noise=TrainingNoise("gaussian", 0.1))
    assert model.shape_ == [1, 16, 16]
    # 2 epochs of 6 batches: fewer than 10 planned steps, but a point scores the three whole
    # images (5,665 pixels, 23 patches' worth: two batches of 16), so one every 2 steps, not
    # every step: a point costs no more than a third of the training between two points
    assert len(model.history_) == 6 and all(row["val_loss"] is not None for row in model.history_)
    assert [row["step"] for row in model.history_] == [2, 4, 6, 8, 10, 12]
    assert model.training_["patches"] == {"size": 16, "per_epoch": 96, "augment": True}
    for h, w in [(37, 53), (41, 29), (16, 16), (7, 9)]:  # odd sizes, and below the U-Net's stride
        noisy = photos([(h, w)], seed=h)[0][None]
        out = model.denoise(noisy)
        assert out.shape == noisy.shape and 0 <= out.min() and out.max() <= 1


def test_dncnn_denoises_whole_images_convolutionally():
    """A pixel's output depends only on its neighbourhood (7x7 for three layers), so an inner
    crop of a denoised image is the inner crop of the denoised surroundings."""
    images = photos([(40, 40), (50, 36)])
    model = tiny("dncnn").fit(images, images, seed=0, noise=TrainingNoise("gaussian", 0.1))
    whole = photos([(61, 47)], seed=9)[0][None]
    out = model.denoise(whole)
    part = model.denoise(whole[..., 10:40, 12:30])
    torch.testing.assert_close(part[..., 3:-3, 3:-3], out[..., 13:37, 15:27], atol=1e-5, rtol=0)


def test_patch_training_is_seeded_and_trains_on_fixed_noisy_pairs_too():
    clean = photos([(40, 52), (37, 45)])
    noisy = [(image + 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(2))) for image in clean]
    first = tiny("dncnn").fit(noisy, clean, seed=3)
    again = tiny("dncnn").fit(noisy, clean, seed=3)
    other = tiny("dncnn").fit(noisy, clean, seed=4)
    weights = lambda m: torch.cat([t.flatten() for t in m.fitted_tensors().values()])  # noqa: E731
    assert torch.equal(weights(first), weights(again))
    assert not torch.equal(weights(first), weights(other))


def test_whole_image_training_on_several_sizes_asks_for_patches():
    images = photos([(40, 52), (37, 45)])
    with pytest.raises(ValueError, match="patch_size"):
        DENOISERS.create("dncnn", depth=3, width=8, epochs=1).fit(images, images)


def test_planned_steps_of_patch_training_follow_patches_per_epoch():
    model = tiny("dncnn", batch_size=32)
    assert model.planned_stage_steps(n=400) == [2 * 3]  # 96 patches an epoch, all trained on


@pytest.mark.parametrize("name", NEURAL)
def test_fixed_size_entries_declare_it(name):
    """The declaration matches the network: a fixed-size one fails on, or resizes, other sizes."""
    model = DENOISERS.create(name, **(DENOISERS.entry(name).test_params or {}))
    net = model.build((1, 28, 28)).eval()
    takes_any_size = True
    for size in [(37, 53), (64, 48)]:
        try:
            with torch.no_grad():
                takes_any_size &= tuple(net(torch.rand(1, 1, *size)).shape[-2:]) == size
        except RuntimeError:
            takes_any_size = False
    assert model.fixed_input_size == (not takes_any_size)


def test_fixed_size_entries_refuse_another_size_in_one_line():
    images = photos([(28, 28)] * 4)
    batch = torch.stack(images)
    model = DENOISERS.create("dense_dae", **DENOISERS.entry("dense_dae").test_params).fit(batch, batch)
    with pytest.raises(ValueError, match="fitted on 1x28x28 images; got 1x30x28"):
        model.denoise(torch.rand(1, 1, 30, 28))


@pytest.mark.parametrize("name", ["dncnn", "unet"])
def test_large_images_are_denoised_in_tiles_with_the_same_result(name, monkeypatch):
    images = photos([(40, 40), (36, 44)])
    model = tiny(name).fit(images, images, seed=0, noise=TrainingNoise("gaussian", 0.1))
    noisy = photos([(150, 130)], seed=5)[0][None]
    whole = model.denoise(noisy)
    calls = []
    real = model.net_.forward
    monkeypatch.setattr(model.net_, "forward", lambda x: calls.append(tuple(x.shape[-2:])) or real(x))
    monkeypatch.setattr(inference, "TILE", 48)
    monkeypatch.setattr(inference, "TILE_MARGIN", 40)  # more than the U-Net's receptive radius (about 30)
    tiled = model.denoise(noisy)
    assert len(calls) == 12 and max(calls) <= (128, 128), "twelve tiles, each with at most 40 pixels around it"
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
