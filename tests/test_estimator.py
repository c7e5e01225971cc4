"""Estimator's declared hooks and parameter checks, on the real registry entries."""

from __future__ import annotations

import pytest
import torch

from bench.estimator import POSITIVE_INT, Denoiser, Estimator, NotFittedError, Rule
from bench.execution import fits as fit_cache
from bench.registry import CLASSIFIERS, DENOISERS


class Plain(Denoiser):
    """A denoiser that declares nothing beyond what it must."""

    def __init__(self, *, size: int = 3, label: str = "x") -> None:
        self.size = size
        self.label = label

    def fit(self, noisy, clean, *, seed=0, noise=None):
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        return noisy.clone()


class Ruled(Plain):
    param_rules = {"size": POSITIVE_INT}


class Stricter(Ruled):
    param_rules = {"size": Rule(lambda v: v in (3, 5), "3 or 5")}


def test_check_params_checks_nothing_without_rules_and_merges_rules_down_the_hierarchy():
    assert Plain(size=-7, label=None).check_params().size == -7
    with pytest.raises(
        ValueError, match=r"^bad parameters for denoiser 'Ruled': size=0 is invalid; expected an integer >= 1$"
    ):
        Ruled(size=0).check_params()
    Ruled(size=4).check_params()
    with pytest.raises(ValueError, match="size=4 is invalid; expected 3 or 5"):
        Stricter(size=4).check_params()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("median", {"size": -3}, "'median': size=-3 is invalid; expected an odd integer >= 1, or None"),
        ("median", {"size": 4}, "size=4 is invalid; expected an odd integer >= 1"),
        ("median", {"size": "abc"}, "size='abc' is invalid"),
        ("median", {"size": True}, "size=True is invalid"),
        ("median", {"tune_images": 0}, "tune_images=0 is invalid; expected an integer >= 1"),
        ("gaussian_blur", {"sigma": -1.0}, "sigma=-1.0 is invalid; expected a finite number > 0"),
        ("gaussian_blur", {"truncate": float("nan")}, "truncate=nan is invalid"),
        ("tv_chambolle", {"max_num_iter": 0}, "max_num_iter=0 is invalid"),
        ("wavelet", {"wavelet": "db99"}, "wavelet='db99' is invalid; expected a discrete PyWavelets name"),
        ("wavelet", {"mode": "medium"}, "mode='medium' is invalid; expected one of: soft, hard"),
        ("nlm", {"patch_size": 0}, "patch_size=0 is invalid"),
        ("bm3d", {"nf": 0}, "nf=0 is invalid"),
        ("bm3d", {"eval_images": 0}, "eval_images=0 is invalid; expected an integer >= 1, or None (all)"),
        ("conv_ae_fmnist", {"epochs": 0}, "'conv_ae_fmnist': epochs=0 is invalid; expected an integer >= 1"),
        ("dncnn", {"max_steps": -5}, "max_steps=-5 is invalid"),
        ("unet", {"batch_size": 2.5}, "batch_size=2.5 is invalid"),
        ("dncnn", {"lr": 0}, "lr=0 is invalid; expected a finite number > 0"),
    ],
)
def test_entries_reject_what_their_fit_or_denoise_would(name, params, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DENOISERS.create(name, **params).check_params()


def test_the_values_denoise_accepts_pass():
    for name, params in [
        ("median", {"size": 5}),
        ("median", {"size": None}),
        ("gaussian_blur", {"sigma": 2}),
        ("wavelet", {"wavelet": "sym4", "mode": "hard"}),
        ("dncnn", {"lr": 1e-3, "max_steps": None}),
        ("tv_chambolle", {"eps": 0.0}),
    ]:
        DENOISERS.create(name, **params).check_params()
    median = DENOISERS.create("median", size=5, tune_images=4).fit(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8))
    assert median.best_params_ == {"size": 5}


@pytest.mark.parametrize(("registry", "name"), [(r, n) for r in (DENOISERS, CLASSIFIERS) for n in r.names()])
def test_every_entry_passes_its_checks_with_defaults_test_and_budget_settings(registry, name):
    entry = registry.entry(name)
    for params in ({}, entry.test_params, *entry.budgets.values()):
        registry.create(name, **params).check_params()


def test_declared_hooks_have_defaults_that_mean_not_there():
    model = Plain()
    assert (Plain.budgets, Plain.requires, model.eval_images, model.history_) == ({}, (), None, None)
    assert not Plain.accelerated and not DENOISERS.entry("median").accelerated
    assert (model.checkpoint_path, model.checkpoint_every) == (None, 300.0)
    assert model.get_params() == {"size": 3, "label": "x"}  # hooks are not parameters: keys stay
    with pytest.raises(NotFittedError):  # a declared history_ is not learned state
        model.check_fitted()
    assert not model.cacheable and not fit_cache.is_cacheable(model)
    assert (model.fitted_state(), model.fitted_tensors()) == (None, {})
    with pytest.raises(TypeError, match="Plain is not cacheable"):
        model.load_fitted({}, {}, "cpu")
    assert not fit_cache.is_cacheable(object())


def test_declared_hooks_are_what_entries_set():
    assert DENOISERS.entry("bm3d").requires == ("bm3d",) and DENOISERS.create("bm3d", eval_images=7).eval_images == 7
    assert "quick" in DENOISERS.entry("nlm").budgets and DENOISERS.entry("median").budgets == {}
    assert "quick" in CLASSIFIERS.entry("stacked_ae_softmax_1label").budgets  # a factory function's own
    for name in ("median", "identity", "dncnn"):
        assert DENOISERS.create(name).cacheable and fit_cache.is_cacheable(DENOISERS.create(name))
    assert fit_cache.is_cacheable(CLASSIFIERS.create("svm_rbf"))


def test_a_cacheable_fit_round_trips_through_the_cache(tmp_path):
    clean = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    noisy = (clean + 0.2 * torch.randn(6, 1, 10, 10, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    model = DENOISERS.create("median", tune_images=6).fit(noisy, clean)
    fit_cache.save_fitted(model, tmp_path / "fit", extra={"fit_seconds": 1.5})
    again = DENOISERS.create("median", tune_images=6)
    assert fit_cache.load_fitted(again, tmp_path / "fit", torch.device("cpu")) == {"fit_seconds": 1.5}
    assert torch.equal(again.denoise(noisy), model.denoise(noisy))
    assert not (tmp_path / "fit.safetensors").exists()  # no tensors: the sidecar holds the fit


def test_a_fit_cached_before_a_parameter_existed_matches_only_at_its_default(tmp_path):
    clean = torch.rand(6, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    model = DENOISERS.create("median", tune_images=6).fit(clean, clean)
    fit_cache.save_fitted(model, tmp_path / "fit", extra={"fit_seconds": 1.5})
    sidecar = tmp_path / "fit.json"
    record = fit_cache.read_sidecar(sidecar)
    record["config"].pop("tune_images")  # as if written before tune_images existed
    fit_cache.write_sidecar(sidecar, record)
    defaults = type(model).default_params()
    assert defaults["tune_images"] != 6
    assert fit_cache.load_fitted(DENOISERS.create("median"), tmp_path / "fit", torch.device("cpu")) is not None
    assert (
        fit_cache.load_fitted(DENOISERS.create("median", tune_images=6), tmp_path / "fit", torch.device("cpu")) is None
    )


def test_default_params_are_the_constructor_defaults_with_subclasses_winning():
    class Base(Estimator):
        def __init__(self, *, size: int = 3, label: str = "x") -> None:
            self.size, self.label = size, label

    class Child(Base):
        def __init__(self, *, size: int = 5, **common) -> None:
            super().__init__(size=size, **common)

    assert Child.default_params() == {"size": 5, "label": "x"} == Child().get_params()


def test_estimator_itself_declares_every_hook_the_harness_reads():
    for hook in (
        "budgets",
        "requires",
        "accelerated",
        "eval_images",
        "history_",
        "checkpoint_path",
        "checkpoint_every",
        "fitted_state",
        "fitted_tensors",
        "load_fitted",
        "cacheable",
        "check_params",
    ):
        assert hook in vars(Estimator), hook
