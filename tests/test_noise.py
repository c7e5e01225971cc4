import pytest
import torch

from bench.noise import LEVEL_RANGES, MIXED_KINDS, Noise, TrainingNoise, derive_seed


def grey(n=64, value=0.5, c=1, size=32):
    return torch.full((n, c, size, size), value)


def test_gaussian_has_nominal_sigma_away_from_the_clip():
    noisy = Noise("gaussian", 0.1).apply(grey(), seed=1)
    delta = noisy - 0.5
    assert abs(float(delta.mean())) < 2e-3
    assert float(delta.std()) == pytest.approx(0.1, rel=0.01)


def test_gaussian_is_clipped_to_unit_range():
    noisy = Noise("gaussian", 2.0).apply(grey(), seed=1)
    assert float(noisy.min()) == 0.0 and float(noisy.max()) == 1.0


def test_salt_pepper_hits_fraction_p_half_salt_half_pepper():
    noisy = Noise("salt_pepper", 0.2).apply(grey(), seed=2)
    salt, pepper = (noisy == 1).float().mean(), (noisy == 0).float().mean()
    assert float(salt + pepper) == pytest.approx(0.2, abs=0.005)
    assert float(salt) == pytest.approx(0.1, abs=0.005)
    assert bool(((noisy == 0) | (noisy == 1) | (noisy == 0.5)).all())


def test_masking_sets_fraction_p_to_zero():
    noisy = Noise("masking", 0.3).apply(grey(), seed=3)
    assert float((noisy == 0).float().mean()) == pytest.approx(0.3, abs=0.005)
    assert bool(((noisy == 0) | (noisy == 0.5)).all())


def test_impulse_replaces_fraction_p_with_uniform_values():
    noisy = Noise("impulse", 0.4).apply(grey(), seed=4)
    replaced = noisy[noisy != 0.5]
    assert len(replaced) / noisy.numel() == pytest.approx(0.4, abs=0.005)
    assert float(replaced.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(replaced.std()) == pytest.approx((1 / 12) ** 0.5, abs=0.01)


def test_poisson_mean_and_variance():
    peak = 20.0
    noisy = Noise("poisson", peak).apply(grey(value=0.25), seed=5)
    assert float(noisy.mean()) == pytest.approx(0.25, abs=0.003)
    assert float(noisy.var()) == pytest.approx(0.25 / peak, rel=0.03)


def test_speckle_scales_with_the_signal():
    noisy = Noise("speckle", 0.2).apply(grey(value=0.25), seed=6)
    assert float((noisy - 0.25).std()) == pytest.approx(0.25 * 0.2, rel=0.02)
    assert bool((Noise("speckle", 0.5).apply(grey(value=0.0), seed=6) == 0).all())


@pytest.mark.parametrize("kind", ["salt_pepper", "masking", "impulse"])
def test_colour_masks_are_shared_by_the_channels(kind):
    noisy = Noise(kind, 0.3).apply(grey(n=8, c=3), seed=7)
    hit = noisy != 0.5
    assert bool((hit == hit[:, :1]).all())


def test_additive_noise_is_drawn_per_channel():
    noisy = Noise("gaussian", 0.1).apply(grey(n=8, c=3), seed=7)
    assert not torch.equal(noisy[:, 0], noisy[:, 1])


def test_same_seed_same_noise_and_seeds_derive_from_names():
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(Noise("gaussian", 0.2).apply(x, seed=9), Noise("gaussian", 0.2).apply(x, seed=9))
    assert not torch.equal(Noise("gaussian", 0.2).apply(x, seed=9), Noise("gaussian", 0.2).apply(x, seed=10))
    assert derive_seed(0, "mnist", "test", "gaussian", 0.2) == derive_seed(0, "mnist", "test", "gaussian", 0.2)
    assert derive_seed(0, "mnist", "test", "gaussian", 0.2) != derive_seed(0, "mnist", "train", "gaussian", 0.2)
    assert 0 <= derive_seed(123, "x") < 2**63


def test_noise_does_not_modify_its_input_and_keeps_dtype_device():
    x = torch.rand(4, 1, 28, 28)
    before = x.clone()
    out = Noise("masking", 0.5).apply(x, seed=0)
    assert torch.equal(x, before) and out.dtype == torch.float32 and out.device == x.device


@pytest.mark.parametrize(
    ("kind", "level", "message"),
    [
        ("gaussian", -0.1, "out of range"),
        ("salt_pepper", 1.5, r"expected a number in \[0.0, 1.0\]"),
        ("blur", 0.1, "unknown noise 'blur'"),
    ],
)
def test_bad_noise_is_a_clear_error(kind, level, message):
    with pytest.raises(ValueError, match=message):
        Noise(kind, level)


def test_training_noise_modes():
    g = torch.Generator().manual_seed(0)
    x = grey(n=4)
    assert torch.equal(
        TrainingNoise("masking", 0.3).sample(x, g), Noise("masking", 0.3).draw(x, torch.Generator().manual_seed(0))
    )
    blind_levels = {TrainingNoise("gaussian", mode="blind").pick(g).level for _ in range(20)}
    low, high = LEVEL_RANGES["gaussian"]
    assert len(blind_levels) == 20 and all(low <= v <= high for v in blind_levels)
    kinds = {TrainingNoise("gaussian", mode="mixed").pick(g).kind for _ in range(60)}
    assert kinds == set(MIXED_KINDS)
    with pytest.raises(ValueError, match="training noise mode 'sometimes'"):
        TrainingNoise("gaussian", 0.1, mode="sometimes")


def test_awgn_is_unclipped_gaussian_at_sigma_over_255():
    clean = torch.full((4, 1, 64, 64), 0.98)  # near the top: clipping would show
    noisy = Noise("awgn", 25).apply(clean, seed=3)
    residual = noisy - clean
    assert abs(float(residual.std()) - 25 / 255) < 0.002 and abs(float(residual.mean())) < 0.002
    assert float(noisy.max()) > 1.1 and float(noisy.min()) < 0.9  # not clipped to [0, 1]
    assert torch.equal(noisy, Noise("awgn", 25.0).apply(clean, seed=3))


def test_images_of_different_sizes_each_draw_their_own_seeded_noise():
    from bench.images import ImageList

    images = ImageList([torch.rand(1, 8, 12), torch.rand(1, 12, 8), torch.rand(1, 8, 12)])
    noisy = Noise("awgn", 15).apply(images, seed=7)
    assert [tuple(n.shape) for n in noisy] == [(1, 8, 12), (1, 12, 8), (1, 8, 12)]
    first = Noise("awgn", 15).apply(images[0][None], seed=derive_seed(7, "image", 0))[0]
    assert torch.equal(noisy[0], first)
    assert torch.equal(Noise("awgn", 15).apply(images[:1], seed=7)[0], first)  # whatever the other images are
    assert not torch.equal(noisy[0] - images[0], noisy[2] - images[2])
    assert all(torch.equal(a, b) for a, b in zip(noisy, Noise("awgn", 15).apply(images, seed=7)))


def test_mixed_training_keeps_drawing_from_the_thumbnail_kinds():
    assert "awgn" in LEVEL_RANGES and "awgn" not in MIXED_KINDS and "gaussian" in MIXED_KINDS
    generator = torch.Generator().manual_seed(0)
    kinds = {TrainingNoise("gaussian", mode="mixed").pick(generator).kind for _ in range(300)}
    assert kinds == set(MIXED_KINDS)
