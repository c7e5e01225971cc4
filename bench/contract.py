"""The registry contract: what every denoiser and classifier must do to be benchmarked.

``check_denoiser`` and ``check_classifier`` run the checks on one entry and return one result
per check; the test suite runs them on every registered entry, and ``python -m bench
check-entry NAME`` on one (a plugin's, say).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from bench.errors import one_line
from bench.estimator import NotFittedError
from bench.noise import Noise, TrainingNoise
from bench.registry import CLASSIFIERS, DENOISERS, Registry

__all__ = ["Check", "check_denoiser", "check_classifier", "check_entry", "denoiser_pairs"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str = ""


class ContractError(AssertionError):
    """A broken promise of the contract."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def denoiser_pairs(n: int = 48, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random 1 x 28 x 28 images and their gaussian-0.15 noisy copies."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(n, 1, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.15).apply(clean, seed=seed + 1), clean


def _make(registry: Registry, name: str):
    return registry.create(name, **registry.entry(name).test_params)


def _params_record(registry: Registry, name: str) -> None:
    model = _make(registry, name)
    params = model.get_params()
    json.dumps(params)  # a JSON record of the configuration
    # scikit-learn's clone rule: the class rebuilt from get_params() has the same parameters.
    rebuilt = type(model)(**params).get_params()
    _require(rebuilt == params, f"get_params() does not round-trip: {params} -> {rebuilt}")


def _denoiser_checks(name: str, noisy: torch.Tensor, clean: torch.Tensor) -> Iterator[tuple[str, Callable[[], None]]]:
    noise = TrainingNoise("gaussian", 0.15)
    test = noisy[32:].clone()
    state: dict = {}

    def unfitted():
        try:
            _make(DENOISERS, name).denoise(noisy[:2])
        except NotFittedError:
            return
        raise ContractError("denoise before fit must raise NotFittedError")

    def fit():
        model = _make(DENOISERS, name)
        _require(model.fit(noisy[:32], clean[:32], seed=0, noise=noise) is model, "fit must return self")
        state["model"] = model

    def output():
        out = state["model"].denoise(test)
        _require(
            isinstance(out, torch.Tensor) and out.shape == test.shape,
            f"output shape {getattr(out, 'shape', None)}; expected {tuple(test.shape)}",
        )
        _require(
            out.dtype == torch.float32 and out.device == test.device,
            f"output is {out.dtype} on {out.device}; expected float32 on {test.device}",
        )
        _require(bool(torch.isfinite(out).all()), "output has NaN or infinite values")
        _require(
            float(out.min()) >= 0 and float(out.max()) <= 1,
            f"output outside [0, 1]: [{float(out.min()):.3g}, {float(out.max()):.3g}]",
        )
        state["out"] = out

    def purity():
        _require(torch.equal(test, noisy[32:]), "denoise modified its input")
        _require(
            torch.equal(state["model"].denoise(test), state["out"]), "two denoise calls differ: denoise must be pure"
        )

    def seeding():
        again = _make(DENOISERS, name).fit(noisy[:32], clean[:32], seed=0, noise=noise)
        _require(torch.equal(again.denoise(test), state["out"]), "two fits with the same seed give different outputs")

    def colour():
        colour_noisy, colour_clean = noisy[:16].repeat(1, 3, 1, 1), clean[:16].repeat(1, 3, 1, 1)
        model = _make(DENOISERS, name).fit(colour_noisy, colour_clean, seed=0, noise=noise)
        shape = tuple(model.denoise(colour_noisy[:4]).shape)
        _require(shape == (4, 3, 28, 28), f"colour output shape {shape}; expected (4, 3, 28, 28)")

    yield "parameters are a JSON record that round-trips", lambda: _params_record(DENOISERS, name)
    yield "denoise before fit raises NotFittedError", unfitted
    yield "fit returns self", fit
    yield "output: same shape, float32, same device, finite, in [0, 1]", output
    yield "pure: input untouched, repeated calls equal", purity
    yield "seeded: same seed, same result", seeding
    yield "colour images (3 channels)", colour
    yield "n_parameters() >= 0", lambda: _require(state["model"].n_parameters() >= 0, "n_parameters() is negative")


#: Checks whose failure leaves the later ones nothing to check (no fitted model, no output).
_GATES = ("fit returns self", "output: same shape, float32, same device, finite, in [0, 1]")


def _run(checks: Iterator[tuple[str, Callable[[], None]]]) -> list[Check]:
    results, blocked = [], ""
    for title, check in checks:
        if blocked:
            results.append(Check(title, False, f"not run: {blocked!r} failed"))
            continue
        try:
            check()
            results.append(Check(title, True))
        except Exception as err:  # a broken entry is reported, never crashes the checker
            results.append(Check(title, False, str(err) if isinstance(err, ContractError) else one_line(err)))
            blocked = title if title in _GATES else ""
    return results


def check_denoiser(name: str) -> list[Check]:
    """Run the contract on the registered denoiser ``name`` (with its ``test_params``)."""
    noisy, clean = denoiser_pairs()
    return _run(_denoiser_checks(name, noisy, clean))


def check_classifier(name: str) -> list[Check]:
    """Run the contract on the registered classifier ``name`` (with its ``test_params``)."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(40) % 2
    images = torch.rand(40, 1, 28, 28, generator=generator) * 0.2
    images[labels == 1, :, 8:20, 8:20] += 0.7  # a bright square marks class 1
    state: dict = {}

    def fit():
        model = _make(CLASSIFIERS, name)
        _require(model.fit(images, labels, seed=0) is model, "fit must return self")
        state["model"] = model

    def predict():
        predicted = state["model"].predict(images)
        _require(
            predicted.dtype == torch.int64 and predicted.shape == labels.shape,
            f"predict gave {predicted.dtype} {tuple(predicted.shape)}; expected int64 {tuple(labels.shape)}",
        )
        _require(torch.equal(state["model"].predict(images), predicted), "two predict calls differ")

    checks = [
        ("parameters are a JSON record that round-trips", lambda: _params_record(CLASSIFIERS, name)),
        ("fit returns self", fit),
        ("predict: int64 labels, repeatable", predict),
    ]
    return _run(iter(checks))


def check_entry(name: str) -> list[Check]:
    """The contract of the denoiser or classifier ``name`` (unknown names raise ValueError)."""
    if name in DENOISERS:
        return check_denoiser(name)
    if name in CLASSIFIERS:
        return check_classifier(name)
    raise ValueError(DENOISERS.unknown_message(name).replace("unknown denoiser", "unknown denoiser or classifier"))
