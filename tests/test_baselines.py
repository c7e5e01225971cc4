"""Classical denoisers: exactness against scipy / scikit-image, tuning, state, colour, errors."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest
import pywt
import scipy.ndimage as ndi
import torch
from skimage.restoration import denoise_tv_chambolle, denoise_wavelet, estimate_sigma

import baselines.filters as filters_module
import baselines.nlm as nlm_module
from baselines import dwt
from baselines.base import estimate_noise_sigma, tuning_subset
from baselines.bm3d_package import BM3D, bm3d_denoise
from baselines.classical import GaussianBlur, Median
from baselines.filters import _nonzero_median, gaussian_filter, median_filter, noise_sigma, tv_chambolle
from baselines.nlm import nl_means, skimage_nl_means
from baselines.wavelet import bayes_shrink
from bench.estimator import NotFittedError
from bench.metrics import psnr
from bench.noise import Noise
from bench.registry import DENOISERS

# Everything but bm3d, which is optional and slow (its own tests below).
FAST = ["identity", "median", "gaussian_blur", "tv_chambolle", "wavelet", "nlm"]
TUNED = FAST[1:]


def small(name: str, **params):
    """A registered denoiser with a small tuning set, so each fit takes well under a second."""
    return DENOISERS.create(name, **{"tune_images": 12, **params} if name != "identity" else params)


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """scikit-learn's 8x8 digits upsampled to 28x28: smooth, real images that need no files."""
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images[:96]).float().div(16.0).unsqueeze(1)
    return torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="module")
def gaussian_pairs(digits):
    noisy = Noise("gaussian", 0.1).apply(digits, seed=1)
    return noisy[:48], digits[:48], noisy[48:64], digits[48:64]


# --- exactness of the batched filters -------------------------------------------------------


@pytest.mark.parametrize("size", [3, 5, 7])
@pytest.mark.parametrize("shape", [(3, 2, 11, 9), (2, 1, 5, 6)])  # 5x6 is smaller than a 7x7 window
def test_median_filter_equals_scipy_reflect(size, shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(size))
    expected = ndi.median_filter(x.double().numpy(), size=(1, 1, size, size), mode="reflect")
    assert np.array_equal(median_filter(x, size=size).double().numpy(), expected)


@pytest.mark.parametrize("shape", [(4, 3, 28, 28), (2, 1, 1, 1), (2, 1, 2, 3), (1, 1, 5, 1)])
def test_median_3x3_shortcut_equals_scipy_with_ties_and_tiny_planes(shape):
    # The 3x3 window takes its own column-sort path: check it where ties are everywhere
    # (impulse-like values) and on planes narrower than the window.
    x = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(3)).float() / 2
    expected = ndi.median_filter(x.numpy(), size=(1, 1, 3, 3), mode="reflect")
    assert np.array_equal(median_filter(x, size=3).numpy(), expected)


def test_median_removes_isolated_salt_and_pepper_exactly():
    clean = torch.full((2, 1, 16, 16), 0.4)
    noisy = clean.clone()
    noisy[:, :, 1::4, 2::4] = 1.0  # isolated salt (3 pixels apart)
    noisy[:, :, 3::4, 0::4] = 0.0  # and pepper, never two in one 3x3 window
    model = Median(size=3).fit(noisy, clean)
    assert torch.equal(model.denoise(noisy), clean)


@pytest.mark.parametrize("sigma, truncate", [(0.3, 4.0), (1.0, 4.0), (2.5, 4.0), (1.5, 2.0)])
def test_gaussian_filter_equals_scipy(sigma, truncate):
    x = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    expected = ndi.gaussian_filter(x.double().numpy(), sigma=(0, 0, sigma, sigma), truncate=truncate, mode="reflect")
    np.testing.assert_allclose(gaussian_filter(x, sigma=sigma, truncate=truncate).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("path", ["compiled", "torch"])
def test_tv_chambolle_equals_skimage_per_channel_and_does_not_couple_images(path, monkeypatch):
    if path == "torch":  # the GPU path, run on the CPU
        monkeypatch.setattr(filters_module, "_COMPILED_TV", False)
    x = Noise("gaussian", 0.2).apply(torch.full((3, 2, 14, 12), 0.5), seed=0)
    x[1] = x[1] * 0.3  # a different image converges at a different iteration
    out = tv_chambolle(x, weight=0.1)
    for i in range(3):
        for c in range(2):
            expected = denoise_tv_chambolle(x[i, c].numpy(), weight=0.1)
            np.testing.assert_allclose(out[i, c].numpy(), expected, atol=1e-5)
        torch.testing.assert_close(tv_chambolle(x[i : i + 1], weight=0.1)[0], out[i], atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", [(64, 1, 28, 28), (2, 3, 13, 9), (1, 1, 150, 131)])
def test_tv_chambolle_compiled_cpu_path_equals_skimage_and_the_torch_path_on_thumbnails(digits, shape, monkeypatch):
    # The compiled kernel does scikit-image's float32 arithmetic in its order, the energy's
    # pairwise sums included: equal to it bit for bit. The torch path's sums can stop an
    # iteration apart where the energy change is within round-off of the threshold.
    n, c, h, w = shape
    source = torch.nn.functional.interpolate(digits[:n], size=(h, w), mode="bilinear").repeat(1, c, 1, 1)
    noisy = Noise("gaussian", 0.1).apply(source, seed=3)
    for weight in (0.04, 0.25):
        compiled = tv_chambolle(noisy, weight=weight)
        for i, j in itertools.product(range(min(n, 4)), range(c)):
            expected = denoise_tv_chambolle(noisy[i, j].numpy(), weight=weight)
            np.testing.assert_array_equal(compiled[i, j].numpy(), expected)
        if (h, w) == (28, 28):  # the thumbnails the grids use: as before, when the torch path ran them
            monkeypatch.setattr(filters_module, "_COMPILED_TV", False)
            torch.testing.assert_close(compiled, tv_chambolle(noisy, weight=weight), atol=1e-5, rtol=0)
            monkeypatch.setattr(filters_module, "_COMPILED_TV", True)


def test_noise_estimate_equals_skimage(digits):
    planes = Noise("gaussian", 0.1).apply(digits[:4], seed=0)[:, 0].double().numpy()
    expected = [estimate_sigma(p) for p in planes]
    np.testing.assert_allclose(estimate_noise_sigma(planes), expected, rtol=1e-10)
    assert estimate_noise_sigma(np.zeros((1, 8, 8)))[0] == 0.0  # a flat plane has no noise, not NaN


def test_torch_noise_estimate_equals_the_numpy_one(digits):
    noisy = Noise("gaussian", 0.1).apply(digits[:6].repeat(1, 3, 1, 1), seed=0)
    noisy[0] = 0.0  # no non-zero coefficient: 0
    for crop in [(28, 28), (27, 23), (5, 9)]:
        x = noisy[..., : crop[0], : crop[1]]
        np.testing.assert_allclose(noise_sigma(x).numpy(), estimate_noise_sigma(x.double().numpy()), atol=1e-6)


@pytest.mark.parametrize("zeros", [(0, 0, 0), (1, 1, 1), (0, 3, 10)])  # shared counts (even, odd), mixed
def test_nonzero_median_selects_what_a_sort_gives(zeros):
    values = torch.rand(3, 10, generator=torch.Generator().manual_seed(0)) + 0.5
    for row, count in enumerate(zeros):
        values[row, torch.randperm(10, generator=torch.Generator().manual_seed(row))[:count]] = 0.0
    expected = [np.median(row[row > 0]) if (row > 0).any() else 0.0 for row in values.numpy()]
    np.testing.assert_array_equal(_nonzero_median(values).view(-1).numpy(), np.float32(expected))


@pytest.mark.parametrize("shape", [(2, 1, 40, 30), (1, 2, 150, 140), (2, 1, 131, 7)])  # banded products, and not
@pytest.mark.parametrize("path", ["compiled", "torch in one block", "torch in blocks of 13 rows"])
def test_gaussian_filter_equals_scipy_on_every_path(shape, path, monkeypatch):
    if path != "compiled":  # the GPU path, run on the CPU
        monkeypatch.setattr(filters_module, "_COMPILED_GAUSSIAN", False)
        monkeypatch.setitem(filters_module._CHUNK_ELEMENTS, "cpu", 1 << 20 if path.endswith("block") else 1 << 12)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    expected = ndi.gaussian_filter(x.double().numpy(), sigma=(0, 0, 1.4, 1.4), mode="reflect")
    np.testing.assert_allclose(gaussian_filter(x, sigma=1.4).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize(
    "shape, patch_size, patch_distance",
    [
        ((4, 1, 28, 28), 5, 5),
        ((3, 3, 20, 17), 3, 4),
        ((3, 1, 12, 12), 4, 2),
        ((2, 2, 9, 9), 1, 3),
        ((2, 1, 5, 6), 7, 6),
        ((3, 1, 28, 28), 13, 3),  # a 12-pixel box: sums over 8 and 4 combined
    ],
)
@pytest.mark.parametrize("path", ["compiled", "torch"])
def test_nl_means_equals_skimage_fast_mode(digits, shape, patch_size, patch_distance, path, monkeypatch):
    if path == "torch":  # the GPU path, run on the CPU
        monkeypatch.setattr(nlm_module, "_fused_cpu", nlm_module._batched_torch)
    n, c, h, w = shape
    clean = digits[:n, :, :h, :w].repeat(1, c, 1, 1) * torch.linspace(0.6, 1.0, c).view(1, c, 1, 1)
    noisy = Noise("gaussian", 0.1).apply(clean, seed=2)
    ours = nl_means(noisy, patch_size=patch_size, patch_distance=patch_distance, h_scale=1.0)
    options = dict(patch_size=patch_size, patch_distance=patch_distance, h_scale=1.0)
    reference = torch.from_numpy(skimage_nl_means(noisy.double().numpy(), **options)).float()
    # scikit-image uses a fast approximation of exp: measured up to 0.037 dB on these cases.
    assert (psnr(ours, clean) - psnr(reference, clean)).abs().max() < 0.05
    assert (ours - reference).abs().max() < 0.01


def test_nl_means_batch_members_are_independent(digits, monkeypatch):
    noisy = Noise("gaussian", 0.1).apply(digits[:5], seed=3)
    together = nl_means(noisy, patch_size=3, patch_distance=3, h_scale=1.2)
    alone = torch.cat([nl_means(noisy[i : i + 1], patch_size=3, patch_distance=3, h_scale=1.2) for i in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)
    monkeypatch.setattr(nlm_module, "_CPU_CHUNK", 2)  # chunks of 2, 2 and 1 images
    chunked = nl_means(noisy, patch_size=3, patch_distance=3, h_scale=1.2)
    torch.testing.assert_close(chunked, together, atol=1e-6, rtol=0)
    monkeypatch.setitem(nlm_module._CHUNK_ELEMENTS, "cpu", 2 * 36 * 36)  # the torch path's chunks of 2
    monkeypatch.setattr(nlm_module, "_fused_cpu", nlm_module._batched_torch)
    torch.testing.assert_close(
        nl_means(noisy, patch_size=3, patch_distance=3, h_scale=1.2), together, atol=1e-6, rtol=0
    )


def test_nl_means_on_a_large_image_is_banded_without_changing_a_pixel(monkeypatch):
    # A large image goes through the compiled kernel alone, in bands of output rows; every
    # band size, down to one row, gives the same output, which equals the torch path's.
    generator = torch.Generator().manual_seed(4)
    clean = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 104, 90, generator=generator), 5, 1)
    noisy = Noise("gaussian", 0.1).apply(clean, seed=5)
    options = dict(patch_size=5, patch_distance=4, h_scale=1.1)
    monkeypatch.setattr(nlm_module, "_CPU_CHUNK_PIXELS", 100 * 100)  # one image per call
    whole = nl_means(noisy, **options)
    for band_elements in (1, 4 * 102 * 30):  # bands of one row and of 30 rows (102 padded columns)
        monkeypatch.setattr(nlm_module, "_CPU_BAND_ELEMENTS", band_elements)
        monkeypatch.setattr(nlm_module, "_band_floor", lambda size, distance: 1)
        torch.testing.assert_close(nl_means(noisy, **options), whole, atol=0, rtol=0)
    monkeypatch.setattr(nlm_module, "_fused_cpu", nlm_module._batched_torch)
    torch.testing.assert_close(nl_means(noisy, **options), whole, atol=2e-6, rtol=0)


@pytest.mark.parametrize(
    "shape, patch_size, patch_distance", [((9, 1, 28, 28), 5, 5), ((5, 3, 13, 17), 3, 4), ((4, 1, 8, 8), 1, 2)]
)
def test_the_compiled_cpu_path_equals_the_torch_path(shape, patch_size, patch_distance, monkeypatch):
    # Same weights, summed in another order and with a polynomial exp2: equal to float precision,
    # also when the chunks are spread over two threads.
    generator = torch.Generator().manual_seed(0)
    noisy = (torch.rand(shape, generator=generator) * 0.6 + 0.2 + 0.1 * torch.randn(shape, generator=generator)).clamp(
        0, 1
    )
    options = dict(patch_size=patch_size, patch_distance=patch_distance, h_scale=1.1)
    monkeypatch.setattr(nlm_module, "_CPU_CHUNK", 4)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        compiled = nl_means(noisy, **options)
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(nlm_module, "_fused_cpu", nlm_module._batched_torch)
    torch.testing.assert_close(compiled, nl_means(noisy, **options), atol=2e-6, rtol=0)


@pytest.mark.parametrize("wavelet, levels, mode", [("db1", 1, "soft"), ("db2", 2, "hard"), ("sym4", 1, "soft")])
def test_bayes_shrink_equals_skimage(digits, wavelet, levels, mode):
    planes = Noise("gaussian", 0.1).apply(digits[:3], seed=0)[:, 0].double().numpy()
    sigma = np.array([0.05, 0.1, 0.2])
    out = bayes_shrink(planes, sigma=sigma, wavelet=wavelet, levels=levels, mode=mode)
    for plane, s, result in zip(planes, sigma, out, strict=True):
        expected = denoise_wavelet(
            plane, sigma=s, wavelet=wavelet, wavelet_levels=levels, mode=mode, method="BayesShrink"
        )
        np.testing.assert_allclose(result, expected, atol=1e-10)


@pytest.mark.parametrize("wavelet", ["db2", "db1"])
def test_bayes_shrink_estimates_sigma_as_skimage_and_in_float32_as_in_float64(wavelet):
    # With no sigma given it is estimated per plane, as scikit-image's denoise_wavelet does;
    # float32 planes stay float32 and move by < 5e-6.
    generator = torch.Generator().manual_seed(2)
    clean = torch.nn.functional.avg_pool2d(torch.rand(2, 1, 140, 134, generator=generator), 5, 1)
    planes = Noise("gaussian", 0.1).apply(clean, seed=3)[:, 0].double().numpy()
    out = bayes_shrink(planes, sigma_scale=1.5, wavelet=wavelet, levels=2, mode="soft")
    for plane, result in zip(planes, out, strict=True):
        expected = denoise_wavelet(plane, sigma=1.5 * estimate_sigma(plane), wavelet=wavelet, wavelet_levels=2)
        np.testing.assert_allclose(result, expected, atol=1e-10)
    single = bayes_shrink(planes.astype(np.float32), sigma_scale=1.5, wavelet=wavelet, levels=2, mode="soft")
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, out, atol=5e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 28, 28), (1, 33, 64), (1, 512, 512)])
def test_contiguous_row_transforms_are_pywavelets_bit_for_bit(shape, dtype):
    # Same passes, same order, same arithmetic: equal exactly, not just close, so that which
    # coefficients are exactly zero (and so the noise estimate) cannot change.
    planes = np.random.default_rng(1).random(shape).astype(dtype)
    for wavelet in ("db1", "db2", "sym4"):
        levels = max(1, min(2, pywt.dwtn_max_level(shape[-2:], wavelet)))
        ours, theirs = dwt.wavedec2(planes, wavelet, levels), pywt.wavedec2(planes, wavelet, level=levels)
        assert np.array_equal(ours[0], theirs[0])
        for our_level, their_level in zip(ours[1:], theirs[1:], strict=True):
            assert all(np.array_equal(a, b) for a, b in zip(our_level, their_level, strict=True))
        assert np.array_equal(dwt.waverec2(ours, wavelet), pywt.waverec2(theirs, wavelet))
        assert np.array_equal(dwt.finest_diagonal(planes, wavelet), pywt.dwt2(planes, wavelet)[1][2])


def test_bayes_shrink_in_float32_keeps_the_float64_sigma_on_flat_images():
    # Flat 0 and 1 regions (digits under salt-and-pepper): which detail coefficients are
    # exactly zero, and so left out of the sigma estimate, depends on the precision; the
    # estimate is made in float64 so float32 work moves the output by round-off only.
    generator = torch.Generator().manual_seed(4)
    clean = (torch.rand(16, 1, 28, 28, generator=generator) > 0.7).double()
    planes = Noise("salt_pepper", 0.3).apply(clean, seed=5)[:, 0].numpy()
    double = bayes_shrink(planes, sigma_scale=1.0, wavelet="db1", levels=2, mode="soft")
    single = bayes_shrink(planes.astype(np.float32), sigma_scale=1.0, wavelet="db1", levels=2, mode="soft")
    np.testing.assert_allclose(single, double, atol=5e-6)


# --- tuning ----------------------------------------------------------------------------------


def test_tuning_picks_a_larger_median_window_at_higher_salt_pepper_density(digits):
    sizes = {}
    for density in (0.05, 0.5):
        noisy = Noise("salt_pepper", density).apply(digits, seed=2)
        sizes[density] = Median(tune_images=64).fit(noisy, digits, seed=0).best_params_["size"]
    assert sizes[0.05] == 3 and sizes[0.5] > 3, sizes


@pytest.mark.parametrize("name", TUNED)
def test_each_tuned_denoiser_beats_identity_on_gaussian_noise(name, gaussian_pairs):
    train_noisy, train_clean, test_noisy, test_clean = gaussian_pairs
    model = small(name).fit(train_noisy, train_clean, seed=0)
    assert set(model.best_params_) == set(type(model).param_grid)
    gain = psnr(model.denoise(test_noisy), test_clean).mean() - psnr(test_noisy, test_clean).mean()
    assert gain > 1.0, f"{name} {model.best_params_}: {float(gain):.2f} dB over identity"


def test_a_fixed_parameter_is_not_tuned_and_a_bad_one_fails_at_fit(gaussian_pairs):
    noisy, clean = gaussian_pairs[:2]
    model = Median(size=5).fit(noisy, clean)
    assert model.best_params_ == {"size": 5} and model.tuning_scores_ == []
    with pytest.raises(ValueError, match="median window size 4 is invalid; expected an odd integer"):
        Median(size=4).fit(noisy, clean)
    with pytest.raises(ValueError, match="gaussian sigma -1.0 is invalid"):
        GaussianBlur(sigma=-1.0).fit(noisy, clean)


def test_tuning_subset_is_seeded_and_sized(gaussian_pairs):
    noisy, clean = gaussian_pairs[:2]
    assert torch.equal(tuning_subset(100, 10, seed=3), tuning_subset(100, 10, seed=3))
    assert not torch.equal(tuning_subset(100, 10, seed=3), tuning_subset(100, 10, seed=4))
    assert GaussianBlur(tune_images=10).fit(noisy, clean).tuning_size_ == 10
    assert GaussianBlur(tune_images=1000).fit(noisy, clean).tuning_size_ == len(noisy)
    with pytest.raises(ValueError, match="tuning subset size 0 is invalid"):
        GaussianBlur(tune_images=0).fit(noisy, clean)


# --- interface -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAST)
def test_colour_and_small_images_work(name, digits):
    # Colour: each channel a different intensity map of the digit, so channels differ.
    clean = torch.cat([digits[:24], 1 - digits[:24], 0.5 * digits[:24]], dim=1)
    noisy = Noise("gaussian", 0.1).apply(clean, seed=5)
    model = small(name).fit(noisy[:16], clean[:16])
    out = model.denoise(noisy[16:])
    assert out.shape == (8, 3, 28, 28) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    if name != "identity":
        assert psnr(out, clean[16:]).mean() > psnr(noisy[16:], clean[16:]).mean()
    tiny, tiny_clean = noisy[:4, :, 6:14, 6:14], clean[:4, :, 6:14, 6:14]  # 8x8
    assert small(name).fit(tiny, tiny_clean).denoise(tiny).shape == (4, 3, 8, 8)


@pytest.mark.parametrize("name", FAST)
def test_denoise_before_fit_raises_not_fitted(name, gaussian_pairs):
    with pytest.raises(NotFittedError, match=f"{name} is not fitted; call fit\\(\\) first"):
        small(name).denoise(gaussian_pairs[0][:2])


@pytest.mark.parametrize("name", FAST)
def test_fitted_state_round_trip_reproduces_the_output(name, gaussian_pairs):
    train_noisy, train_clean, test_noisy, _ = gaussian_pairs
    model = small(name).fit(train_noisy, train_clean, seed=1)
    state = json.loads(json.dumps(model.fitted_state()))
    restored = small(name).load_fitted_state(state)
    assert torch.equal(restored.denoise(test_noisy), model.denoise(test_noisy))
    cached = small(name).load_fitted({}, state, "cpu")  # the bench.execution.fits hook
    assert cached.best_params_ == model.best_params_


def test_bad_state_and_bad_input_fail_with_one_clear_line(gaussian_pairs):
    with pytest.raises(ValueError, match="fitted state of median is invalid; expected .* keys \\['size'\\]"):
        Median().load_fitted_state({"best_params": {"sigma": 1.0}})
    model = Median(size=3).fit(*gaussian_pairs[:2])
    with pytest.raises(ValueError, match="noisy must be a float N x C x H x W tensor in \\[0, 1\\]; got ndarray"):
        model.denoise(np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValueError, match="noisy and clean must be non-empty and of one shape"):
        Median().fit(gaussian_pairs[0], gaussian_pairs[1][:3])


def test_denoise_keeps_dtype_and_does_not_touch_its_input(gaussian_pairs):
    noisy = gaussian_pairs[2].double()
    before = noisy.clone()
    out = Median(size=3).fit(*gaussian_pairs[:2]).denoise(noisy)
    assert out.dtype == torch.float64 and torch.equal(noisy, before)


# --- bm3d (optional) -------------------------------------------------------------------------


def test_bm3d_without_the_package_names_the_extra(monkeypatch, gaussian_pairs):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes `import bm3d` raise ImportError
    with pytest.raises(ImportError, match=r"bm3d needs the optional extra: pip install 'denoise-bench\[bm3d\]'"):
        BM3D(sigma_scale=1.0).fit(*gaussian_pairs[:2])


def test_bm3d_tunes_on_a_subsample_and_beats_identity(gaussian_pairs):
    pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    train_noisy, train_clean, test_noisy, test_clean = gaussian_pairs
    model = BM3D(nf=8, subsample=2).fit(train_noisy, train_clean, seed=0)
    assert model.subsample_size_ == 2 and len(model.tuning_scores_) == len(BM3D.param_grid["sigma_scale"])
    out = model.denoise(test_noisy[:3])
    assert psnr(out, test_clean[:3]).mean() > psnr(test_noisy[:3], test_clean[:3]).mean() + 1.0
    # The bm3d binary crashes on 8x8 input (the wrapper pads small images), and bm3d_rgb
    # returns NaN for a grey image stored as RGB (the wrapper does its own colour transform).
    grey_rgb = test_noisy[:2, :, 6:14, 6:14].repeat(1, 3, 1, 1)
    out = model.denoise(grey_rgb)
    assert out.shape == (2, 3, 8, 8) and torch.isfinite(out).all()


def test_bm3d_known_sigma_replaces_the_estimate(gaussian_pairs):
    # sigma is the known noise level (the literature's setting); sigma_scale still multiplies it.
    pytest.importorskip("bm3d", reason="bm3d is an optional extra: pip install 'denoise-bench[bm3d]'")
    noisy = gaussian_pairs[2][:2].double().numpy()
    known = bm3d_denoise(noisy, sigma_scale=1.0, nf=8, sigma=0.1)
    assert np.array_equal(bm3d_denoise(noisy, sigma_scale=2.0, nf=8, sigma=0.05), known)
    assert not np.allclose(bm3d_denoise(noisy, sigma_scale=1.0, nf=8, sigma=0.05), known, atol=1e-3)
    with pytest.raises(ValueError, match="bm3d sigma"):
        bm3d_denoise(noisy, sigma_scale=1.0, sigma=0.0)
    model = BM3D(sigma=0.1, sigma_scale=1.0, nf=8).fit(*gaussian_pairs[:2])
    # The entry clamps its output to [0, 1] and returns float32.
    expected = torch.from_numpy(known).float().clamp(0, 1)
    torch.testing.assert_close(model.denoise(gaussian_pairs[2][:2]), expected, atol=0, rtol=0)


# --- real data -------------------------------------------------------------------------------


def test_tuned_median_on_fashion_mnist_salt_pepper_reaches_20_db(real_data_dir):
    from bench.data import load

    data = load("fashion-mnist", data_dir=real_data_dir)
    train, test = data.train_images[:1000].float() / 255, data.test_images[:1000].float() / 255
    noise = Noise("salt_pepper", 0.1)
    model = Median().fit(noise.apply(train, seed=1), train, seed=0)
    score = float(psnr(model.denoise(noise.apply(test, seed=2)), test).mean())
    assert model.best_params_ == {"size": 3} and 19.5 < score < 20.5, score
