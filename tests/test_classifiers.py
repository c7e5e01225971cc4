"""Classifiers: the SVM's seed-003 settings, learning, seeding, caching, shapes and the stacked AE modes."""

import json

import pytest
import torch

from baselines.svm import SVMRBF
from bench.estimator import NotFittedError
from bench.execution import fits as fit_cache
from bench.registry import CLASSIFIERS
from models.classifiers import alexnet_net, cnn_small_net, cross_validate, resnet18_net, vgg16_net
from models.engine.augment import random_shift
from models.stacked_classifier import StackedAESoftmax, few_label_indices

NAMES = CLASSIFIERS.names()


def squares(
    n: int, n_classes: int, *, channels: int = 1, size: int = 28, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dim noise with a bright 10x10 square in one of four quadrants, the class: trivially separable."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % n_classes
    images = torch.rand(n, channels, size, size, generator=generator) * 0.2
    for c in range(n_classes):
        row, col = 3 + 12 * (c % 2), 3 + 12 * (c // 2)
        images[labels == c, :, row : row + 10, col : col + 10] += 0.7
    return images, labels


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The test networks are tiny: a second thread only adds synchronisation (badly, on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(name: str, **params):
    return CLASSIFIERS.create(name, **{**CLASSIFIERS.entry(name).test_params, **params})


@pytest.fixture(scope="module")
def task():
    return squares(40, 2)


@pytest.fixture(scope="module")
def fitted(task):
    """One fit per classifier, shared by the tests below (fits are the slow part)."""
    images, labels = task
    return {name: make(name).fit(images, labels, seed=0) for name in NAMES}


def test_svm_uses_the_seed_settings():
    svc = SVMRBF().make_svc()
    assert (svc.C, svc.gamma, svc.kernel) == (5.0, 0.05, "rbf")
    assert SVMRBF().get_params()["C"] == 5.0 and SVMRBF().get_params()["gamma"] == 0.05


@pytest.mark.parametrize("n_classes", [2, 4])
def test_svm_torch_prediction_matches_sklearn(n_classes):
    images, labels = squares(80, n_classes)
    images = images + 0.3 * torch.rand(images.shape, generator=torch.Generator().manual_seed(1))  # some overlap
    model = SVMRBF(gamma=0.5).fit(images, labels)
    svc = model.make_svc().set_params(gamma=0.5).fit(images.flatten(1).double().numpy(), labels.numpy())
    test, _ = squares(60, n_classes, seed=2)
    assert model.predict(test).tolist() == svc.predict(test.flatten(1).double().numpy()).tolist()


def test_svm_max_train_subsamples(task):
    images, labels = task
    model = SVMRBF(max_train=10).fit(images, labels, seed=3)
    assert int(model.n_support_.sum()) <= 10


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_separable_task(name, task, fitted):
    images, labels = task
    model = fitted[name]
    predicted = model.predict(images)
    assert predicted.dtype == torch.int64 and predicted.shape == labels.shape
    assert (predicted == labels).float().mean() > 0.9
    assert model.n_parameters() > 0
    json.dumps(model.get_params())
    json.dumps(model.fitted_state())


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_fit(name, task, fitted):
    images, labels = task
    again = make(name).fit(images, labels, seed=0)
    first = fitted[name].fitted_tensors()
    second = again.fitted_tensors()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first), "same seed must give identical weights"


@pytest.mark.parametrize("name", NAMES)
def test_cache_round_trip_predicts_identically_without_fitting(name, task, fitted, tmp_path):
    images, _ = task
    fit_cache.save_fitted(fitted[name], tmp_path / name)
    fresh = make(name)
    fresh.fit = None  # loading must not train
    assert fit_cache.load_fitted(fresh, tmp_path / name, torch.device("cpu")) is not None
    assert torch.equal(fresh.predict(images), fitted[name].predict(images))


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name, task):
    with pytest.raises(NotFittedError, match="not fitted"):
        make(name).predict(task[0])


@pytest.mark.parametrize("name", NAMES)
def test_colour_32x32_inputs(name):
    images, labels = squares(40, 2, channels=3, size=32)
    model = make(name).fit(images, labels, seed=0)
    assert model.predict(images[:5]).shape == (5,)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(images[:5])
        assert proba.shape == (5, 2) and torch.allclose(proba.sum(1), torch.ones(5))


@pytest.mark.parametrize("builder", [cnn_small_net, vgg16_net, alexnet_net, resnet18_net])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_full_width_architectures_fit_small_images(builder, shape):
    net = builder(shape, 10, 1.0).eval()
    with torch.no_grad():
        assert net(torch.rand(2, *shape)).shape == (2, 10)


def test_wrong_input_shape_names_the_expected_one(fitted):
    with pytest.raises(ValueError, match="cnn_small: expected images of shape N x 1 x 28 x 28"):
        fitted["cnn_small"].predict(torch.rand(2, 3, 32, 32))


def test_random_shift_moves_each_image_within_the_bound_and_fills_zeros():
    images = torch.arange(1, 64 * 2 * 6 * 7 + 1, dtype=torch.float32).reshape(64, 2, 6, 7)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(3))
    assert torch.equal(shifted, random_shift(images, 2, torch.Generator().manual_seed(3)))
    assert random_shift(images, 0, torch.Generator()) is images
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets = set()
    for n in range(len(images)):  # the one offset whose crop of the padded image is the output
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(padded[n, :, dy : dy + 6, dx : dx + 7], shifted[n])
        ]
        assert len(found) == 1, f"image {n} is not a shift of its input by at most 2 pixels"
        offsets.add(found[0])
    assert len(offsets) > 15, "each image draws its own offset"


def test_schedule_shift_and_precision_reach_the_fit(task):
    images, labels = task
    plain = make("cnn_small").fit(images, labels, seed=0)
    assert make("cnn_small", schedule="cosine", precision="bf16").recipe().schedule == "cosine"
    assert make("cnn_small", precision="bf16").recipe().precision == "bf16"
    for options in ({"shift": 2}, {"schedule": "cosine"}, {"precision": "bf16"}):
        model = make("cnn_small", **options).fit(images, labels, seed=0)
        assert (model.predict(images) == labels).float().mean() > 0.9, options
        weights, reference = model.fitted_tensors(), plain.fitted_tensors()
        assert any(not torch.equal(weights[k], reference[k]) for k in weights), f"{options} changed nothing"
        assert all(v.dtype != torch.bfloat16 for v in weights.values())
    for bad, expected in (
        ({"shift": -1}, "an integer >= 0"),
        ({"schedule": "linear"}, "one of"),
        ({"width": 0}, "> 0"),
    ):
        with pytest.raises(ValueError, match=expected):
            make("cnn_small", **bad).check_params()


def test_bad_arguments_raise_one_line_errors(task):
    bad = StackedAESoftmax(finetune="partial")  # constructors only store (the estimator convention)
    with pytest.raises(
        ValueError, match="stacked_ae_softmax': finetune='partial' is invalid; expected one of: full, frozen"
    ):
        bad.check_params()
    with pytest.raises(ValueError, match="labels must be integer of shape"):
        make("cnn_small").fit(task[0], task[1][:5])
    with pytest.raises(ValueError, match="class 1 has only 1 training images"):
        few_label_indices(torch.tensor([0, 0, 1]), 2, torch.Generator())


@pytest.mark.parametrize("per_class", [1, 5])
def test_few_label_mode_uses_exactly_k_labels_per_class(per_class):
    images, labels = squares(60, 3)
    model = make("stacked_ae_softmax", labels_per_class=per_class, finetune="frozen").fit(images, labels, seed=4)
    chosen = model.labelled_indices_
    assert len(chosen) == 3 * per_class and len(chosen.unique()) == len(chosen)
    assert torch.bincount(labels[chosen], minlength=3).tolist() == [per_class] * 3
    other = make("stacked_ae_softmax", labels_per_class=per_class, finetune="frozen").fit(images, labels, seed=5)
    assert not torch.equal(other.labelled_indices_, chosen), "the choice follows the seed"


def test_frozen_mode_keeps_the_pretrained_encoder(task):
    images, labels = task
    pretrained = make("stacked_ae_softmax", finetune="frozen").pretrain(images, seed=0).state_dict()
    frozen = make("stacked_ae_softmax", finetune="frozen").fit(images, labels, seed=0)
    full = make("stacked_ae_softmax", finetune="full").fit(images, labels, seed=0)
    assert all(torch.equal(v, frozen.net_.encoder.state_dict()[k]) for k, v in pretrained.items())
    assert not all(torch.equal(v, full.net_.encoder.state_dict()[k]) for k, v in pretrained.items())
    assert not torch.equal(frozen.net_.head.weight, full.net_.head.weight)


def test_stacked_dropout_regularises_training_only_and_the_report_variants_have_none(fitted, task):
    images = task[0]
    model = fitted["stacked_ae_softmax"]
    assert torch.equal(model.predict_proba(images), model.predict_proba(images))
    model.net_.train()
    try:
        assert not torch.equal(model.net_(images), model.net_(images))  # dropout 0.2 draws masks
    finally:
        model.net_.eval()
    for name in ("stacked_ae_softmax_frozen", "stacked_ae_softmax_1label", "stacked_ae_softmax_5labels"):
        assert CLASSIFIERS.create(name).dropout == 0.0, name


def test_max_seconds_stops_training(task):
    model = make("cnn_small", max_seconds=0.0, epochs=50).fit(*task, seed=0)
    assert len(model.history_) == 1


def test_max_steps_caps_every_training_stage(task):
    # 40 images at batch 20, no validation split below 100 images: 2 steps an epoch, scored after each of 3
    assert len(make("cnn_small", max_steps=3, epochs=50).fit(*task, seed=0).history_) == 3
    stacked = make("stacked_ae_softmax", max_steps=1, pretrain_epochs=50, epochs=50, batch_size=8)
    assert len(stacked.fit(*task, seed=0).history_) == 1


def test_cross_validate_reports_every_fold(task):
    result = cross_validate("cnn_small", *task, k=2, seed=0, **CLASSIFIERS.entry("cnn_small").test_params)
    assert len(result["folds"]) == 2 and 0.0 <= result["mean"] <= 1.0 and result["std"] >= 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_and_predicts_on_the_images_device(task):
    images, labels = (t.cuda() for t in task)
    model = make("cnn_small").fit(images, labels, seed=0)
    assert next(model.net_.parameters()).is_cuda and model.predict(images).is_cuda
