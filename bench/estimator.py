"""Base classes for denoisers and classifiers (scikit-learn style).

Constructors only store their keyword arguments, so ``get_params()`` is a JSON record of
the configuration; learned state ends in ``_`` and exists only after ``fit``.

The harness finds everything else it needs on these classes, declared here with defaults:
parameter rules (``param_rules``, ``check_params``), named-grid settings (``budgets``),
optional packages (``requires``), a test-set cap (``eval_images``), the learning curve
(``history_``), GPU placement (``accelerated``), image sizes (``fixed_input_size``), the fit-cache hooks (``fitted_tensors``, ``fitted_state``, ``load_fitted``,
``cacheable``) and mid-fit checkpoints (``checkpoint_path``, ``checkpoint_every``).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

__all__ = [
    "Estimator",
    "Denoiser",
    "Classifier",
    "NotFittedError",
    "Rule",
    "one_of",
    "POSITIVE",
    "NON_NEGATIVE",
    "NON_NEGATIVE_INT",
    "FRACTION",
    "POSITIVE_INT",
    "ODD_POSITIVE_INT",
    "TRAINING_RULES",
    "as_float_images",
    "check_images",
]


class NotFittedError(RuntimeError):
    """Raised when a model is used before ``fit``."""


@dataclass(frozen=True)
class Rule:
    """What one parameter may be: ``test(value)`` is true for allowed values; ``allowed`` says which.

    >>> POSITIVE_INT(3), POSITIVE_INT(0), POSITIVE_INT.or_none()(None)
    (True, False, True)
    """

    test: Callable[[Any], bool]
    allowed: str

    def __call__(self, value: Any) -> bool:
        return bool(self.test(value))

    def or_none(self, meaning: str = "") -> Rule:
        """The same rule, with None allowed too (``meaning`` says what None does)."""
        return Rule(lambda v: v is None or self.test(v), f"{self.allowed}, or None{f' ({meaning})' if meaning else ''}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


POSITIVE_INT = Rule(lambda v: _is_int(v) and v >= 1, "an integer >= 1")
ODD_POSITIVE_INT = Rule(lambda v: _is_int(v) and v >= 1 and v % 2 == 1, "an odd integer >= 1")
POSITIVE = Rule(lambda v: _is_number(v) and v > 0, "a finite number > 0")
NON_NEGATIVE = Rule(lambda v: _is_number(v) and v >= 0, "a finite number >= 0")
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "an integer >= 0")
FRACTION = Rule(lambda v: _is_number(v) and 0 <= v < 1, "a finite number in [0, 1)")


def one_of(*values: Any) -> Rule:
    """A rule allowing exactly ``values``."""
    return Rule(lambda v: v in values, f"one of: {', '.join(map(str, values))}")


#: Rules by parameter name for the training settings the neural entries share; they apply to
#: any estimator with a parameter of that name (a class's own ``param_rules`` take precedence).
TRAINING_RULES: dict[str, Rule] = {
    "epochs": POSITIVE_INT.or_none("the recipe's"),
    "max_steps": POSITIVE_INT.or_none("no cap"),
    "batch_size": POSITIVE_INT.or_none("the recipe's"),
    "lr": POSITIVE.or_none("the recipe's"),
    "max_seconds": POSITIVE.or_none("no cap"),
    "precision": one_of("auto", "fp32", "bf16"),
}


class Estimator:
    """Parameters are the constructor's keyword arguments, stored under the same names."""

    name: str = ""
    #: What the estimator is, for messages ("denoiser", "classifier").
    kind: ClassVar[str] = "estimator"
    #: Rules for constructor parameters; merged along the class hierarchy by ``check_params``.
    param_rules: ClassVar[dict[str, Rule]] = {"eval_images": POSITIVE_INT.or_none("all")}
    #: The entry's grid settings: what the named grids pass it, by grid name
    #: (``{"quick": {...}, "full": {...}}``; a seed protocol's ``--budget quick|full`` reads the
    #: same). An entry that declares some but no ``quick`` one is too slow for the quick grid;
    #: an entry with none at all runs everywhere with its defaults. Not to be confused with a
    #: seed protocol's scale (``--budget tiny|quick|full``) or with the training one fit does
    #: (``bench plan``'s "budget per fit").
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Optional modules the entry imports when used (named grids leave it out without them).
    requires: ClassVar[tuple[str, ...]] = ()
    #: Whether fits gain from a GPU (a torch network): executors give such work one where there is one.
    accelerated: ClassVar[bool] = False
    #: Whether the entry takes images of one size only, the C x H x W it was fitted on (networks
    #: with dense layers or a bottleneck built for one size). A grid whose images differ in size
    #: leaves such entries out; the others take images of any size.
    fixed_input_size: ClassVar[bool] = False
    #: Score only the first ``eval_images`` test images of a cell (slow methods); None: all.
    eval_images: int | None = None
    #: Parameters that change how a fitted model is used, not the fit: they stay out of the
    #: fit's cache key and of the cached fit's check, so cells that differ only in them share a fit.
    inference_params: ClassVar[tuple[str, ...]] = ("eval_images",)
    #: Per-epoch training record (dicts with ``epoch``, ``train_loss``, ``val_loss``, ...) set
    #: by ``fit`` of models that train in epochs; None for the others.
    history_: list[dict[str, Any]] | None = None
    #: Where a long fit writes its mid-fit checkpoint (None: no checkpoints), and how many
    #: seconds apart. Set by the harness, not constructor parameters: they do not change a result.
    checkpoint_path: Path | None = None
    checkpoint_every: float = 300.0

    def get_params(self) -> dict[str, Any]:
        """The keyword-only constructor arguments of this class and of its bases (which a
        subclass passes on as ``**common``), as a JSON-friendly dict."""
        params: dict[str, Any] = {}
        for cls in reversed(type(self).__mro__):
            if "__init__" in vars(cls) and issubclass(cls, Estimator):
                for key, parameter in inspect.signature(cls.__init__).parameters.items():
                    if parameter.kind is parameter.KEYWORD_ONLY:
                        params[key] = getattr(self, key)
        return params

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The constructor defaults of the parameters ``get_params`` lists (a subclass's own
        default wins over its base's)."""
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if "__init__" in vars(klass) and issubclass(klass, Estimator):
                for key, parameter in inspect.signature(klass.__init__).parameters.items():
                    if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty:
                        defaults[key] = parameter.default
        return defaults

    def set_params(self, **params: Any) -> Estimator:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}; expected one of: {', '.join(valid)}")
            setattr(self, key, value)
        return self

    def check_params(self) -> Estimator:
        """Raise ValueError for the first parameter that breaks its rule; returns self.

        Rules come from ``TRAINING_RULES`` and each class's ``param_rules`` (subclasses
        override their bases); a parameter without a rule is not checked. Grids call this
        before anything runs, so a bad value never reaches ``fit``. Subclasses with rules
        across parameters override it and call ``super().check_params()``.
        """
        rules = dict(TRAINING_RULES)
        for cls in reversed(type(self).__mro__):
            rules.update(vars(cls).get("param_rules", {}))
        for key, value in self.get_params().items():
            rule = rules.get(key)
            if rule is not None and not rule(value):
                raise ValueError(
                    f"bad parameters for {self.kind} {self._label()!r}: {key}={value!r} is invalid; expected {rule.allowed}"
                )
        return self

    def _label(self) -> str:
        return self.name or type(self).__name__

    def check_fitted(self) -> None:
        """Raise NotFittedError unless ``fit`` has set some learned state."""
        if not any(key.endswith("_") and not key.startswith("_") for key in vars(self)):
            raise NotFittedError(f"{self._label()} is not fitted; call fit() first")

    def n_parameters(self) -> int:
        """Learned parameter count (0 for classical methods)."""
        return 0

    # -- fit cache (bench.execution.fits) ---------------------------------------------------------
    @property
    def cacheable(self) -> bool:
        """Whether the class defines both ``fitted_state`` and ``load_fitted``, so a fit can be saved."""
        cls = type(self)
        return cls.fitted_state is not Estimator.fitted_state and cls.load_fitted is not Estimator.load_fitted

    def fitted_tensors(self) -> dict[str, Tensor]:
        """Learned tensors to store as safetensors ({} when there are none)."""
        return {}

    def fitted_state(self) -> dict[str, Any] | None:
        """JSON-able rest of the fitted state; None by default: the fit is not cacheable."""
        return None

    def load_fitted(self, tensors: dict[str, Tensor], state: dict[str, Any], device: Any) -> Estimator:
        """Restore a fit saved from ``fitted_tensors`` and ``fitted_state``; returns self."""
        # Not a stub: an estimator without its own load_fitted has no cached fit to restore.
        raise TypeError(f"{self._label()} is not cacheable: it defines no load_fitted")

    def seconds_trained(self) -> float:
        """Training seconds that the mid-fit checkpoints at ``checkpoint_path`` already hold (0
        without any): a fit resuming from them adds its own, so its seconds are its whole."""
        return 0.0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class Denoiser(Estimator, ABC):
    """Maps noisy images (float32 N x C x H x W in [0, 1]) to denoised ones.

    ``fit(noisy, clean, seed=..., noise=...)`` learns from training pairs; ``noise`` is the
    cell's training noise (a ``bench.noise.TrainingNoise``), for methods that redraw noise
    per batch. ``denoise`` is pure: same shape, device and range, no state kept.
    """

    kind = "denoiser"

    #: False for an entry whose members are its whole fit (``average_of``): a run fits the
    #: members and has nothing of the entry's own to train or cache.
    own_fit: ClassVar[bool] = True

    @abstractmethod
    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> Denoiser: ...

    @abstractmethod
    def denoise(self, noisy: Tensor) -> Tensor: ...

    def member_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """Other entries this one is built from, each (name, params): a run fits or loads each
        as its own cell and passes them to ``use_fitted`` before this entry's own fit."""
        return []

    def use_fitted(self, models: list[Denoiser]) -> Denoiser:
        """Take the fitted members, in the order of ``member_specs``; returns self."""
        if models:
            raise ValueError(f"{self._label()} has no members; got {len(models)} fitted models")
        return self


class Classifier(Estimator, ABC):
    """Maps images (float32 N x C x H x W in [0, 1]) to int64 labels."""

    kind = "classifier"

    @abstractmethod
    def fit(self, images: Tensor, labels: Tensor, *, seed: int = 0) -> Classifier: ...

    @abstractmethod
    def predict(self, images: Tensor) -> Tensor: ...


def check_images(images: Any, what: str, *, floating: bool = True, non_empty: bool = False) -> Tensor:
    """Return ``images`` if it is an N x C x H x W tensor (float unless ``floating`` is False,
    with at least one image if ``non_empty``), else raise a one-line ValueError naming ``what``.

    >>> check_images(torch.zeros(2, 1, 4, 4), "noisy").shape
    torch.Size([2, 1, 4, 4])
    >>> check_images(torch.zeros(4, 4), "noisy")
    Traceback (most recent call last):
    ValueError: noisy must be a float N x C x H x W tensor in [0, 1]; got torch.float32 tensor of shape (4, 4)
    """
    is_tensor = isinstance(images, Tensor)
    if not (
        is_tensor
        and images.ndim == 4
        and (images.is_floating_point() or not floating)
        and (len(images) > 0 or not non_empty)
    ):
        got = f"{images.dtype} tensor of shape {tuple(images.shape)}" if is_tensor else type(images).__name__
        kind = "float N x C x H x W tensor in [0, 1]" if floating else "N x C x H x W tensor"
        article = "a non-empty" if non_empty else ("a" if floating else "an")
        raise ValueError(f"{what} must be {article} {kind}; got {got}")
    return images


def as_float_images(images: Tensor) -> Tensor:
    """uint8 or float N x C x H x W -> float32 in [0, 1] on the same device."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()
