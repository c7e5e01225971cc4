"""Neural denoisers: architectures, shapes, seeding, interpolation, the fit cache, exact fast layers."""

import json

import pytest
import torch
import torch.nn.functional as F

from bench.estimator import NotFittedError
from bench.execution import fits as fit_cache
from bench.registry import DENOISERS
from models import neural_denoiser as base
from models.engine import denoising, training
from models.engine.augment import dihedral
from models.engine.layers import PatchConv2d, UpConv2d

# Every registered network (average_of, also in models/, trains none of its own).
NEURAL = [
    name
    for name in DENOISERS.names()
    if isinstance(DENOISERS.entry(name).factory, type)
    and issubclass(DENOISERS.entry(name).factory, base.NeuralDenoiser)
]
SMALL = {"epochs": 1, "batch_size": 8}


def make(name, **params):
    return DENOISERS.create(name, **{**DENOISERS.entry(name).test_params, **params})


def blobs(n=24, channels=1, side=28, seed=0):
    generator = torch.Generator().manual_seed(seed)
    clean = F.avg_pool2d(torch.rand(n, channels, side + 4, side + 4, generator=generator), 5, 1)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    return noisy, clean


def test_every_seed_model_is_registered():
    expected = {
        "conv_ae_fmnist",
        "cnn_denoiser_fmnist",
        "dense_dae",
        "stacked_dae",
        "conv_ae_small",
        "conv_ae_deep",
        "vgg16_ae",
        "alexnet_ae",
        "resnet18_ae",
        "bn_conv_ae",
        "dncnn",
        "unet",
    }
    assert expected <= set(NEURAL)


def test_conv_ae_fmnist_has_the_keras_summary_parameter_count():
    model = DENOISERS.create("conv_ae_fmnist")
    assert model.n_parameters() == 49_761
    noisy, clean = blobs(8)
    assert model.set_params(**SMALL).fit(noisy, clean).n_parameters() == 49_761


def test_cnn_comparator_matches_the_seed_code_parameter_count():
    # predict_cnn.py of seed 001's repository: 541,208 trainable parameters on 28x28x1.
    assert DENOISERS.create("cnn_denoiser_fmnist").n_parameters() == 541_208


@pytest.mark.parametrize("name", NEURAL)
def test_shapes_grey_28_and_colour_32(name):
    model = make(name, **SMALL)
    json.dumps(model.get_params())
    for channels, side in ((1, 28), (3, 32)):
        noisy, clean = blobs(12, channels, side)
        out = model.fit(noisy, clean, seed=0).denoise(noisy[:3])
        assert out.shape == (3, channels, side, side) and out.min() >= 0 and out.max() <= 1


def test_denoise_before_fit_and_wrong_shape_fail_clearly():
    model = make("dense_dae")
    with pytest.raises(NotFittedError, match="not fitted"):
        model.denoise(torch.rand(1, 1, 28, 28))
    model.fit(*blobs(8))
    with pytest.raises(ValueError, match="dense_dae was fitted on 1x28x28 images; got 3x32x32"):
        model.denoise(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="N x C x H x W"):
        model.denoise(torch.rand(28, 28))


@pytest.mark.parametrize("name", ["conv_ae_fmnist", "cnn_denoiser_fmnist", "stacked_dae"])
def test_same_seed_same_model_other_seed_other_model(name):
    noisy, clean = blobs(16)
    outputs = [make(name).fit(noisy, clean, seed=seed).denoise(noisy) for seed in (3, 3, 4)]
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


def test_fit_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make("conv_ae_small").fit(*blobs(8), seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", ["conv_ae_small", "dense_dae"])
def test_interpolate_runs_from_one_reconstruction_to_the_other(name):
    noisy, clean = blobs(16)
    model = make(name).fit(noisy, clean)
    path = model.interpolate(clean[0], clean[1:2], steps=5)
    assert path.shape == (5, 1, 28, 28)
    assert torch.allclose(path[0], model.denoise(clean[:1])[0], atol=1e-5)
    assert torch.allclose(path[-1], model.denoise(clean[1:2])[0], atol=1e-5)
    with pytest.raises(ValueError, match="steps"):
        model.interpolate(clean[0], clean[1], steps=1)


def test_stacked_dae_records_greedy_pretraining():
    model = make("stacked_dae").fit(*blobs(16))
    stages = [row.get("stage") for row in model.history_]
    assert stages == ["pretrain layer 1", "pretrain layer 2", "pretrain layer 3", "fine-tune"]
    assert len(model.training_["pretraining"]) == 3


@pytest.mark.parametrize("name", ["conv_ae_fmnist", "stacked_dae", "resnet18_ae"])
def test_cached_fit_round_trip_does_not_train(name, tmp_path, monkeypatch):
    noisy, clean = blobs(16)
    model = make(name).fit(noisy, clean, seed=1)
    fit_cache.save_fitted(model, tmp_path / "cell")
    assert (tmp_path / "cell.safetensors").is_file() and (tmp_path / "cell.json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("loading must not train")

    monkeypatch.setattr(base, "train", no_training)
    monkeypatch.setattr(denoising, "train", no_training)
    monkeypatch.setattr(training, "run_training", no_training)
    again = make(name)
    assert fit_cache.load_fitted(again, tmp_path / "cell", torch.device("cpu")) is not None
    assert type(again) is type(model) and again.get_params() == model.get_params()
    assert torch.equal(again.denoise(noisy), model.denoise(noisy))
    assert again.history_ == model.history_


def test_fit_cache_refuses_a_changed_file(tmp_path):
    model = make("dense_dae").fit(*blobs(8))
    fit_cache.save_fitted(model, tmp_path / "m")
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    assert fit_cache.load_fitted(make("dense_dae"), tmp_path / "m", torch.device("cpu")) is None


def test_load_fitted_rejects_weights_of_another_architecture():
    small = make("dense_dae").fit(*blobs(8))
    other = make("dense_dae", hidden=7)
    with pytest.raises(ValueError, match="cached weights do not fit"):
        other.load_fitted(small.fitted_tensors(), small.fitted_state())


@pytest.mark.parametrize("padding", [0, 1])
def test_upconv_equals_upsample_then_conv(padding):
    torch.manual_seed(0)
    layer = UpConv2d(5, 6, padding=padding)
    x = torch.randn(2, 5, 7, 6)
    reference = F.conv2d(F.interpolate(x, scale_factor=2), layer.weight, layer.bias, padding=padding)
    assert torch.allclose(layer(x), reference, atol=1e-5)


@pytest.mark.parametrize("channels,padding,bias", [(1, 1, True), (3, 1, False), (3, 0, True)])
def test_patch_conv_equals_conv_and_its_weight_gradient(channels, padding, bias):
    torch.manual_seed(0)
    layer = PatchConv2d(channels, 8, padding=padding, bias=bias)
    x = torch.rand(3, channels, 9, 7)
    reference = F.conv2d(x, layer.weight, layer.bias, padding=padding)
    out = layer(x)
    assert torch.allclose(out, reference, atol=1e-5)
    grad = torch.randn_like(reference)
    expected = torch.autograd.grad(reference, layer.weight, grad)[0]
    assert torch.allclose(torch.autograd.grad(out, layer.weight, grad)[0], expected, atol=1e-4)


def test_alexnet_faithful_resize_mode_runs_at_224():
    model = make("alexnet_ae", resize=224, width=0.0625).fit(*blobs(4))
    assert model.denoise(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="resize 32 is too small"):
        make("alexnet_ae", resize=32).fit(*blobs(4))


@pytest.mark.parametrize("name", ["vgg16_ae", "alexnet_ae"])
def test_deep_seed000_autoencoders_learn_instead_of_collapsing(name, real_data_dir):
    # Trained with MSE through their sigmoid, both settled on a constant image within these
    # 150 steps on MNIST (the gradient vanishes as the output saturates); their recipe uses BCE.
    from bench.data import load
    from bench.noise import Noise

    clean = load("mnist", data_dir=real_data_dir).train_images[:2000].float() / 255
    noisy = Noise("impulse", 0.25).apply(clean, seed=0)
    model = DENOISERS.create(name, width=0.0625, max_steps=150, batch_size=32).fit(noisy, clean)
    assert model.training_["collapse"] == []
    assert model.denoise(noisy).std() > 0.1


def test_stock_speed_reference_is_conv_ae_fmnist_written_plainly():
    # bench.cost.neural_speed reports conv_ae_fmnist's speed as a ratio to StockConvAE: it must be the same work.
    from bench.cost.neural_speed import StockConvAE
    from models.seed001 import ConvAEFashionMNISTNet

    ours, stock = ConvAEFashionMNISTNet(1), StockConvAE()
    stock.load_state_dict(ours.state_dict())
    x = blobs(4)[0]
    with torch.no_grad():
        torch.testing.assert_close(stock(x), ours(x), rtol=1e-4, atol=1e-5)


def test_self_ensemble_is_equivariant_and_changes_nothing_at_one():
    noisy, clean = blobs(16)
    model = make("unet").fit(noisy, clean, seed=0)
    x = noisy[:4]
    with torch.no_grad():
        plain = model.net_.eval()(x).clamp(0, 1)
    assert torch.equal(model.denoise(x), plain)  # ensemble 1: the network's output as before
    model.ensemble = 8
    out = model.denoise(x)
    assert not torch.allclose(out, plain, atol=1e-4)  # the other seven passes count
    # Averaging over the whole group, correctly mapped back, makes the result equivariant:
    # denoising a flipped or transposed batch gives the flipped or transposed result.
    for k in range(8):
        torch.testing.assert_close(model.denoise(dihedral(x, k)), dihedral(out, k), atol=2e-6, rtol=0)


def test_self_ensemble_of_eight_needs_square_images_and_is_checked():
    noisy, clean = blobs(8, side=28)
    model = make("unet", ensemble=8).fit(noisy, clean, seed=0)
    with pytest.raises(ValueError, match="unet ensemble 8 transposes the images, so they must be square; got 28x32"):
        model.denoise(torch.rand(2, 1, 28, 32))
    model.ensemble = 4  # flips only: any shape
    assert model.denoise(torch.rand(2, 1, 28, 32)).shape == (2, 1, 28, 32)
    with pytest.raises(ValueError, match="ensemble"):
        make("unet", ensemble=3).check_params()


def test_dncnn_starts_as_its_authors_code_does_near_the_identity():
    from models.residual import DNCNN_SCALE_MIN, DnCNNNet

    torch.manual_seed(1)
    net = DnCNNNet(1)
    std = (2.0 / (9 * 64)) ** 0.5
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    middle = torch.cat([m.weight.flatten() for m in convs[1:-1]])
    assert middle.std().item() == pytest.approx(std, rel=0.05) and all(
        m.bias is None or not m.bias.any() for m in convs
    )
    scales = torch.cat([m.weight for m in norms])
    assert scales.abs().min().item() >= DNCNN_SCALE_MIN and scales.abs().max().item() < 0.4
    assert not torch.cat([m.bias for m in norms]).any()
    # The small scales keep the untrained noise branch below sigma 25's noise (PyTorch's
    # defaults change the image by about 0.33 rms: a network that must first unlearn that).
    x = torch.rand(8, 1, 40, 40)
    with torch.no_grad():
        change = (net(x) - x).pow(2).mean().sqrt().item()
    assert change < 25 / 255
    # The initialisation is a parameter: PyTorch's own is kept as a choice, and keys its fits apart.
    torch.manual_seed(1)
    default = DnCNNNet(1, init="pytorch")
    assert torch.cat([m.weight for m in default.modules() if isinstance(m, torch.nn.BatchNorm2d)]).eq(1).all()
    from bench.execution.fits import fit_key

    specs = [DENOISERS.create("dncnn", init=init).get_params() for init in ("authors", "pytorch")]
    assert fit_key(specs[0]) != fit_key(specs[1])
    with pytest.raises(ValueError, match="init='he' is invalid"):
        DENOISERS.create("dncnn", init="he").check_params()
