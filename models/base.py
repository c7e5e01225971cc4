"""``NeuralDenoiser``: fit, denoise and caching for every neural denoiser.

A model is an ``nn.Module`` factory plus a few-line registered subclass::

    @register("conv_ae_fmnist", source="seed 001: ...", description="...", test_params={...})
    class ConvAEFashionMNIST(NeuralDenoiser):
        recipes = {"faithful": Recipe(...), "ours": Recipe(...)}
        def build(self, shape): return conv_ae_fmnist_net(shape[0])

``fit`` seeds the initialisation, builds the network for the data's C x H x W on the data's
device and hands it to the one training engine (``models.training.train`` wraps it for
noisy -> clean pairs). With ``checkpoint_path`` set (by the runner, a plain attribute), the
fit writes mid-fit checkpoints (``models.checkpoint``), resumes from them on a rerun and
deletes them once it has succeeded.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from bench.estimator import Denoiser, Rule, as_float_images, one_of
from bench.registry import DENOISERS
from models.checkpoint import Checkpoints
from models.training import Recipe, TrainResult, autocast, planned_steps, to_layout, train

__all__ = ["NeuralDenoiser", "LatentInterpolation", "register", "seeded"]

#: Images per forward pass in ``denoise``: on CPU small chunks keep activations in cache
#: (conv_ae_fmnist: 2,600 img/s per core at 32-64, 1,700 at 512); GPUs want large ones.
DENOISE_CHUNK = {"cpu": 64, "cuda": 1024}


def register(name: str, *, source: str, description: str, test_params: dict[str, Any] | None = None) -> Callable:
    """Register a ``NeuralDenoiser`` subclass in ``DENOISERS`` under ``name`` (and set its ``name``)."""

    def decorate(cls: type) -> type:
        cls.name = name
        return DENOISERS.register(name, source=source, description=description, test_params=test_params)(cls)

    return decorate


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's generator for ``device`` and restore the previous state afterwards."""
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        yield


def _check_images(what: str, images: Tensor) -> Tensor:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{what} must be a non-empty N x C x H x W tensor; got {shape}")
    return as_float_images(images)


def _dihedral(x: Tensor, k: int, *, undo: bool = False) -> Tensor:
    """The ``k``-th (0-7) flip/transpose of an image batch: bit 0 flips W, bit 1 flips H,
    bit 2 transposes (applied first); ``undo`` applies the inverse."""
    steps = [(k & 4, lambda t: t.transpose(-2, -1)), (k & 1, lambda t: t.flip(-1)), (k & 2, lambda t: t.flip(-2))]
    for wanted, step in reversed(steps) if undo else steps:
        x = step(x) if wanted else x
    return x


class NeuralDenoiser(Denoiser):
    """Base of the neural denoisers: one training loop, pure batched ``denoise``, caching.

    Parameters
    ----------
    config : {'ours', 'faithful'}
        Training recipe: ``faithful`` is the seed report's (or paper's) optimizer, loss,
        epochs and batch size; ``ours`` is our stronger default.
    epochs, batch_size, lr : int, int, float, optional
        Override the recipe.
    max_seconds : float, optional
        Wall-clock training budget; training stops after the batch that exceeds it. A resumed
        fit starts this clock afresh, so only step and epoch budgets resume bit-identically.
    max_steps : int, optional
        Optimizer-step budget (overrides the recipe): the machine-independent cap the named
        grids use, so a grid gives the same numbers on a slow and a fast machine.
    patience : int, optional
        Early-stopping patience in epochs (overrides the recipe).
    val_fraction : float, optional
        Held-out share of the training pairs (overrides the recipe, usually 0.1).
    precision : {'auto', 'fp32', 'bf16'}
        Training autocast (``models.recipe.PRECISIONS``): ``auto`` is bf16 on CUDA and float32
        on a CPU; ``bf16`` autocasts on a CPU too.
    ensemble : {1, 2, 4, 8}
        Geometric self-ensemble at denoise time: the mean of the network's outputs over this
        many flips and transposes of the input (8, the whole dihedral group, needs square
        images), each mapped back. It costs that many forward passes and changes no weights.
    """

    recipes: ClassVar[dict[str, Recipe]] = {"ours": Recipe(), "faithful": Recipe()}
    #: Settings the named grids pass (see bench.grids), in optimizer steps rather than seconds
    #: so that a grid gives the same numbers on every machine. On a 2-core CPU the quick grid
    #: affords a few seconds per cell, where small batches learn most per second; a model whose
    #: ``budgets`` has no ``quick`` entry is too slow for that and left out of the quick grid.
    #: The full grid trains to convergence.
    budgets: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"max_steps": 200, "batch_size": 8}, "full": {}}
    accelerated: ClassVar[bool] = True  # a network: executors give its cells a GPU
    param_rules: ClassVar[dict[str, Rule]] = {"ensemble": one_of(1, 2, 4, 8)}
    inference_params: ClassVar[tuple[str, ...]] = (*Denoiser.inference_params, "ensemble")

    def __init__(
        self,
        *,
        config: str = "ours",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        max_seconds: float | None = None,
        max_steps: int | None = None,
        patience: int | None = None,
        val_fraction: float | None = None,
        precision: str = "auto",
        ensemble: int = 1,
    ) -> None:
        self.config = config
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_seconds = max_seconds
        self.max_steps = max_steps
        self.patience = patience
        self.val_fraction = val_fraction
        self.precision = precision
        self.ensemble = ensemble

    # -- what subclasses provide -------------------------------------------------------
    @abstractmethod
    def build(self, shape: tuple[int, int, int]) -> nn.Module:
        """The untrained network for images of ``shape`` = (C, H, W)."""

    def _train(self, make_net: Callable[[int], nn.Module], noisy: Tensor, clean: Tensor, **kwargs: Any) -> TrainResult:
        """Hook for multi-stage training (stacked_dae pretrains here); default: the loop."""
        return train(make_net, noisy, clean, **kwargs)

    # -- parameters ----------------------------------------------------------------------
    def recipe(self) -> Recipe:
        """The training recipe: ``recipes[config]`` with this instance's overrides."""
        if self.config not in self.recipes:
            raise ValueError(
                f"{self.name} config {self.config!r} is unknown; expected one of: {', '.join(sorted(self.recipes))}"
            )
        return self.recipes[self.config].updated(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            val_fraction=self.val_fraction,
            max_steps=self.max_steps,
            precision=None if self.precision == "auto" else self.precision,
        )

    def planned_stage_steps(self, n: int) -> list[int]:
        """Optimizer steps of each training stage on ``n`` pairs, before early stopping (``bench plan``)."""
        return [planned_steps(self.recipe(), n)]

    # -- fit / denoise ---------------------------------------------------------------------
    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> NeuralDenoiser:
        """Train on (noisy, clean) pairs on their device; with ``noise``, redraw inputs per batch."""
        noisy, clean = _check_images("noisy", noisy), _check_images("clean", clean)
        if noisy.shape != clean.shape or noisy.device != clean.device:
            raise ValueError(
                f"noisy and clean must match in shape and device; got {tuple(noisy.shape)} on {noisy.device} and {tuple(clean.shape)} on {clean.device}"
            )
        shape = tuple(int(s) for s in clean.shape[1:])
        recipe = self.recipe()
        deadline = None if self.max_seconds is None else time.monotonic() + float(self.max_seconds)

        def make_net(net_seed: int) -> nn.Module:
            with seeded(net_seed, clean.device):
                return self.build(shape)

        checkpoints = Checkpoints.of(self)
        # A recipe that keeps the given noisy pairs (``redraw_noise=False``) never sees the noise model.
        noise = noise if recipe.redraw_noise else None
        options = {"recipe": recipe, "seed": seed, "noise": noise, "deadline": deadline, "checkpoints": checkpoints}
        with seeded(seed, clean.device):  # dropout draws from the global generator
            result = self._train(make_net, noisy, clean, **options)
        self.net_, self.history_, self.training_, self.shape_ = result.net, result.history, result.info, list(shape)
        if checkpoints is not None:
            checkpoints.clear()
        return self

    def _check_shape(self, images: Tensor) -> None:
        """Networks with dense layers (or ``fixed_size = True``) only take the C x H x W they were fitted on."""
        shape = list(images.shape[1:])
        fixed = getattr(self.net_, "fixed_size", False) or any(isinstance(m, nn.Linear) for m in self.net_.modules())
        if (fixed and shape != self.shape_) or shape[0] != self.shape_[0]:
            want = "x".join(map(str, self.shape_ if fixed else self.shape_[:1] + ["H", "W"]))
            raise ValueError(f"{self.name} was fitted on {want} images; got {'x'.join(map(str, shape))}")

    def denoise(self, noisy: Tensor) -> Tensor:
        """Denoised copy of ``noisy``: same shape and device, values in [0, 1]."""
        self.check_fitted()
        x = _check_images("noisy", noisy)
        self._check_shape(x)
        if self.ensemble == 8 and x.shape[-1] != x.shape[-2]:
            raise ValueError(
                f"{self.name} ensemble 8 transposes the images, so they must be square; got {x.shape[-2]}x{x.shape[-1]}"
            )
        net = self._net_on(x.device)
        out = torch.empty_like(x)
        size = DENOISE_CHUNK.get(x.device.type, 256)
        with torch.no_grad(), autocast(x.device):
            for start in range(0, len(x), size):
                chunk = x[start : start + size]
                total = sum(
                    _dihedral(net(to_layout(_dihedral(chunk, k))).float(), k, undo=True) for k in range(self.ensemble)
                )
                out[start : start + size] = total.div_(self.ensemble).clamp_(0.0, 1.0)
        return out

    def _net_on(self, device: torch.device) -> nn.Module:
        first = next(self.net_.parameters())
        if first.device != device:
            self.net_.to(device)
        return self.net_.eval()

    def n_parameters(self) -> int:
        """Learned parameters of the fitted network (before fit: built for 1 x 28 x 28)."""
        if hasattr(self, "net_"):
            net = self.net_
        else:
            with seeded(0, torch.device("cpu")):
                net = self.build((1, 28, 28))
        return sum(p.numel() for p in net.parameters())

    # -- caching hooks used by the runner (bench/cache.py writes them to disk) --------------
    def fitted_tensors(self) -> dict[str, Tensor]:
        """The state dict as contiguous CPU tensors (what safetensors stores)."""
        self.check_fitted()
        return {k: v.detach().to("cpu").contiguous() for k, v in self.net_.state_dict().items()}

    def fitted_state(self) -> dict[str, Any]:
        """JSON-able record of the fit: parameters, image shape, history, training summary."""
        self.check_fitted()
        return {
            "name": self.name,
            "params": self.get_params(),
            "shape": self.shape_,
            "history": self.history_,
            "training": self.training_,
        }

    def load_fitted(self, tensors: dict[str, Tensor], state: dict[str, Any], device: Any = "cpu") -> NeuralDenoiser:
        """Rebuild the network for ``state['shape']`` and load ``tensors``; no training."""
        device = torch.device(device)
        shape = tuple(int(s) for s in state["shape"])
        with seeded(0, device):
            net = self.build(shape)
        try:
            net.load_state_dict(tensors)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise ValueError(f"{self.name}: cached weights do not fit {self!r}: {first}") from None
        self.net_ = net.to(device).to(memory_format=torch.channels_last).eval()
        self.history_, self.training_, self.shape_ = (
            list(state.get("history", [])),
            dict(state.get("training", {})),
            list(shape),
        )
        return self


class LatentInterpolation:
    """``interpolate(a, b, steps)`` for autoencoders whose network has ``encode``/``decode``."""

    def interpolate(self, a: Tensor, b: Tensor, steps: int = 8) -> Tensor:
        """Decode ``steps`` points on the line between the codes of images ``a`` and ``b``.

        ``a`` and ``b`` are C x H x W (or 1 x C x H x W) images on one device; the result is
        ``steps x C x H x W``, from ``a``'s reconstruction to ``b``'s (seed 002).
        """
        self.check_fitted()
        if steps < 2:
            raise ValueError(f"interpolate steps {steps!r} is too small; expected an int >= 2")
        pair = torch.stack([as_float_images(t.reshape(-1, *t.shape[-3:]))[0] for t in (a, b)])
        self._check_shape(pair)
        net = self._net_on(pair.device)
        with torch.no_grad():
            za, zb = net.encode(to_layout(pair)).float()
            weights = torch.linspace(0.0, 1.0, steps, device=pair.device).view(-1, *[1] * za.ndim)
            return net.decode(za + weights * (zb - za)).float().clamp_(0.0, 1.0)
