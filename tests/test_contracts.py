"""Contract tests generated from the registries: every entry is checked the moment it is registered.

The checks themselves live in ``bench.contract`` (``python -m bench check-entry NAME`` runs them too).
"""

import pytest
import torch

from bench.contract import check_classifier, check_denoiser, check_entry
from bench.estimator import Denoiser
from bench.registry import CLASSIFIERS, DENOISERS, Entry


def _skip_missing(registry, name):
    for module in registry.entry(name).requires:
        pytest.importorskip(module, reason=f"{name} needs the optional package {module!r}")


def _failures(checks) -> str:
    return "; ".join(f"{c.name}: {c.message}" for c in checks if not c.ok)


@pytest.mark.parametrize("name", DENOISERS.names())
def test_denoiser_contract(name):
    _skip_missing(DENOISERS, name)
    checks = check_denoiser(name)
    assert len(checks) == 8 and not _failures(checks), _failures(checks)


@pytest.mark.parametrize("name", CLASSIFIERS.names())
def test_classifier_contract(name):
    _skip_missing(CLASSIFIERS, name)
    checks = check_classifier(name)
    assert len(checks) == 3 and not _failures(checks), _failures(checks)


class InPlace(Denoiser):
    """Breaks purity: clamps its input in place and returns it."""

    def fit(self, noisy, clean, *, seed=0, noise=None):
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        self.check_fitted()
        return noisy.mul_(0.5)


def test_the_contract_catches_a_denoiser_that_modifies_its_input(monkeypatch):
    DENOISERS.names()
    monkeypatch.setitem(DENOISERS._entries, "inplace", Entry("inplace", InPlace, "tests", "modifies its input"))
    failed = {c.name: c.message for c in check_entry("inplace") if not c.ok}
    assert failed == {"pure: input untouched, repeated calls equal": "denoise modified its input"}


def test_check_entry_of_an_unknown_name_suggests_one():
    with pytest.raises(ValueError, match=r"unknown denoiser or classifier 'medain' \(did you mean median\?\)"):
        check_entry("medain")


def test_checks_use_cpu_tensors():
    from bench.contract import denoiser_pairs

    noisy, clean = denoiser_pairs()
    assert noisy.shape == clean.shape == (48, 1, 28, 28) and noisy.device == torch.device("cpu")
