"""``NeuralDenoiser``: fit, denoise and caching for every neural denoiser.

A model is an ``nn.Module`` factory plus a few-line registered subclass::

    @register("conv_ae_fmnist", source="seed 001: ...", description="...", test_params={...})
    class ConvAEFashionMNIST(NeuralDenoiser):
        recipes = {"faithful": Recipe(...), "ours": Recipe(...)}
        def build(self, shape): return conv_ae_fmnist_net(shape[0])

``fit`` seeds the initialisation, builds the network for the data's C x H x W on the data's
device and hands it to the one training engine (``models.engine.denoising.train`` wraps it for
noisy -> clean pairs). With ``checkpoint_path`` set (by the runner, a plain attribute), the
fit writes mid-fit checkpoints (``models.engine.checkpoint``), resumes from them on a rerun and
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

from bench.estimator import NON_NEGATIVE_INT, POSITIVE_INT, Denoiser, Rule, as_float_images, check_images, one_of
from bench.registry import DENOISERS
from models.engine.augment import dihedral
from models.engine.checkpoint import Checkpoints, seconds_trained
from models.engine.denoising import train
from models.engine.inference import apply_net, chunk_images
from models.engine.layers import autocast
from models.engine.patches import PatchPlan, train_patches
from models.engine.restarts import RESTART_LR, continued
from models.engine.training import Recipe, TrainResult, planned_steps

__all__ = ["NeuralDenoiser", "register", "seeded"]


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
        Training autocast (``models.engine.recipe.PRECISIONS``): ``auto`` is bf16 on CUDA and float32
        on a CPU; ``bf16`` autocasts on a CPU too.
    ensemble : {1, 2, 4, 8}
        Geometric self-ensemble at denoise time: the mean of the network's outputs over this
        many flips and transposes of the input (8, the whole dihedral group, needs square
        images), each mapped back. It costs that many forward passes and changes no weights.
    restarts : int
        Warm restarts after the first training cycle. Each starts from the fitted weights of
        this entry with one restart fewer (a member, fitted as its own cell in a run, so a grid
        that holds it shares its fit) and runs ``restart_epochs`` more epochs of the recipe
        with a fresh optimizer and schedule, peaking at ``RESTART_LR`` times its rate. The
        seed is the member's, so both hold out the same validation images.
    restart_epochs : int
        Epochs of each warm restart.
    patch_size : int, optional
        Train on random ``patch_size`` x ``patch_size`` patches of the training images
        (``models.engine.patches``) instead of whole images: the way to train on images of
        several sizes, or on photos too large for whole-image batches. The fitted network then
        denoises images of any size (fully convolutional networks only). None: whole images.
    patches_per_epoch : int, optional
        Patches that make an epoch (None: as many as the training images' non-overlapping ones).
    augment : bool
        Each patch under a random one of the eight flips and transposes (patch training only).
    """

    recipes: ClassVar[dict[str, Recipe]] = {"ours": Recipe(), "faithful": Recipe()}
    #: Settings the named grids pass (see bench.grids), in optimizer steps rather than seconds
    #: so that a grid gives the same numbers on every machine. On a 2-core CPU the quick grid
    #: affords a few seconds per cell, where small batches learn most per second; a model whose
    #: ``budgets`` has no ``quick`` entry is too slow for that and left out of the quick grid.
    #: The full grid trains to convergence.
    budgets: ClassVar[dict[str, dict[str, Any]]] = {"quick": {"max_steps": 100, "batch_size": 8}, "full": {}}
    accelerated: ClassVar[bool] = True  # a network: executors give its cells a GPU
    param_rules: ClassVar[dict[str, Rule]] = {
        "ensemble": one_of(1, 2, 4, 8),
        "restarts": NON_NEGATIVE_INT,
        "restart_epochs": POSITIVE_INT,
        "patch_size": POSITIVE_INT.or_none("whole images"),
        "patches_per_epoch": POSITIVE_INT.or_none("one pass over the pixels"),
        "augment": one_of(True, False),
    }
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
        restarts: int = 0,
        restart_epochs: int = 8,
        patch_size: int | None = None,
        patches_per_epoch: int | None = None,
        augment: bool = True,
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
        self.restarts = restarts
        self.restart_epochs = restart_epochs
        self.patch_size = patch_size
        self.patches_per_epoch = patches_per_epoch
        self.augment = augment

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
        recipe = self.recipes[self.config].updated(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            val_fraction=self.val_fraction,
            max_steps=self.max_steps,
            precision=None if self.precision == "auto" else self.precision,
        )
        return recipe.updated(epochs=self.restart_epochs, lr=recipe.lr * RESTART_LR) if self.restarts else recipe

    def patch_plan(self) -> PatchPlan:
        """How patch training cuts its patches (``patch_size`` must be set)."""
        return PatchPlan(self.patch_size, self.patches_per_epoch, self.augment)

    def planned_stage_steps(self, n: int) -> list[int]:
        """Optimizer steps of each training stage on ``n`` pairs, before early stopping (``bench plan``).

        Patch training plans ``patches_per_epoch`` patches an epoch (``n`` when that is None).
        """
        before = [step for member in self._members() for step in member.planned_stage_steps(n)]
        if self.patch_size is not None:
            return [*before, planned_steps(self.recipe().updated(val_fraction=0.0), self.patches_per_epoch or n)]
        return [*before, planned_steps(self.recipe(), n)]

    # -- warm restarts -------------------------------------------------------------------
    def member_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """With ``restarts``: this entry with one restart fewer, whose fit this one starts from.

        Its parameters are those of this instance that differ from the defaults, so that the
        member of ``unet:width=48,restarts=1`` is the cell ``unet:width=48`` of a grid.
        """
        if not self.restarts:
            return []
        defaults = type(self).default_params()
        params = {k: v for k, v in self.get_params().items() if k not in defaults or v != defaults[k]}
        params["restarts"] = self.restarts - 1
        if not params["restarts"]:
            params = {k: v for k, v in params.items() if k not in ("restarts", "restart_epochs")}
        return [(self.name, params)]

    def _members(self) -> list[NeuralDenoiser]:
        return [DENOISERS.create(name, **params) for name, params in self.member_specs()]

    def use_fitted(self, models: list[Denoiser]) -> NeuralDenoiser:
        """Take the fitted member a warm restart starts from (a run fits it as its own cell)."""
        if len(models) != len(self.member_specs()):
            raise ValueError(f"{self.name} has {len(self.member_specs())} members; got {len(models)} fitted models")
        self._start = models[0] if models else None
        return self

    # -- fit / denoise ---------------------------------------------------------------------
    def _float_images(self, images: Any, what: str) -> Tensor:
        """``images`` (uint8 or float, at least one) as float32 in [0, 1]."""
        return as_float_images(check_images(images, f"{self._label()}: {what}", floating=False, non_empty=True))

    def _image_list(self, images: Any, what: str) -> list[Tensor]:
        """Training images as float C x H x W tensors in [0, 1]: from an N x C x H x W batch, or
        a sequence of C x H x W images of any sizes (``bench.images.ImageList`` is one)."""
        if isinstance(images, Tensor):
            return list(self._float_images(images, what))
        items = list(images) if isinstance(images, (list, tuple)) or hasattr(images, "__iter__") else []
        if not items or any(not isinstance(t, Tensor) or t.ndim != 3 for t in items):
            got = type(images).__name__
            raise ValueError(f"{self._label()}: {what} must be an N x C x H x W tensor or C x H x W images; got {got}")
        if len({(t.shape[0], t.device) for t in items}) > 1:
            raise ValueError(f"{self._label()}: {what} images must share their channel count and device")
        return [self._float_images(t[None], what)[0] for t in items]

    def _training_pairs(self, noisy: Any, clean: Any) -> tuple[Any, Any, tuple[int, int, int]]:
        """The pairs as the fit takes them, and the C x H x W the network is built for.

        Whole-image training takes one N x C x H x W batch (a list of same-size images is
        stacked); patch training takes images of any sizes, as lists of C x H x W images.
        """
        noisy, clean = self._image_list(noisy, "noisy"), self._image_list(clean, "clean")
        if [(t.shape, t.device) for t in noisy] != [(t.shape, t.device) for t in clean]:
            raise ValueError(
                f"noisy and clean must match in number, sizes and device; got {len(noisy)} and {len(clean)} images"
            )
        if self.patch_size is not None:
            return noisy, clean, (int(clean[0].shape[0]), self.patch_size, self.patch_size)
        if len({tuple(t.shape) for t in clean}) > 1:
            raise ValueError(
                f"{self.name} trains on whole images, which must share one size; got several sizes; "
                "expected patch_size (e.g. 40) to train on patches"
            )
        return torch.stack(noisy), torch.stack(clean), tuple(int(s) for s in clean[0].shape)

    def fit(self, noisy: Any, clean: Any, *, seed: int = 0, noise: Any = None) -> NeuralDenoiser:
        """Train on (noisy, clean) pairs on their device; with ``noise``, redraw inputs per batch.

        The pairs are N x C x H x W batches or, with ``patch_size``, C x H x W images of any sizes.
        """
        given = noisy, clean
        noisy, clean, shape = self._training_pairs(noisy, clean)
        device = clean[0].device
        recipe = self.recipe()
        deadline = None if self.max_seconds is None else time.monotonic() + float(self.max_seconds)

        if (self.restarts or self.patch_size) and type(self)._train is not NeuralDenoiser._train:
            what = f"restarts={self.restarts}" if self.restarts else f"patch_size={self.patch_size}"
            raise ValueError(f"{self.name} trains in stages of its own, so it takes no restarts or patches; got {what}")
        start = getattr(self, "_start", None)
        if self.restarts and start is None:  # outside a run: fit the member here, on the same pairs and seed
            start = self._members()[0].fit(*given, seed=seed, noise=noise)

        def make_net(net_seed: int) -> nn.Module:
            with seeded(net_seed, device):
                net = self.build(shape)
            if start is not None:
                try:
                    net.load_state_dict(start.net_.state_dict())
                except RuntimeError as error:
                    first = str(error).strip().splitlines()[0]
                    raise ValueError(f"{self.name} restarts from {start!r}, whose network differs: {first}") from None
            return net

        checkpoints = Checkpoints.of(self)
        # A recipe that keeps the given noisy pairs (``redraw_noise=False``) never sees the noise model.
        noise = noise if recipe.redraw_noise else None
        options = {"recipe": recipe, "seed": seed, "noise": noise, "deadline": deadline, "checkpoints": checkpoints}
        with seeded(seed, device):  # dropout draws from the global generator
            if self.patch_size is not None:
                result = train_patches(make_net, noisy, clean, plan=self.patch_plan(), **options)
            else:
                result = self._train(make_net, noisy, clean, **options)
        history, info = (result.history, result.info) if start is None else continued(start, result)
        self.net_, self.history_, self.training_, self.shape_ = result.net, history, info, list(shape)
        self._start = None
        if checkpoints is not None:
            checkpoints.clear()
        return self

    def _check_shape(self, images: Tensor) -> None:
        """Entries with ``fixed_input_size`` only take the C x H x W they were fitted on; all take its C."""
        shape = list(images.shape[1:])
        fixed = self.fixed_input_size
        if (fixed and shape != self.shape_) or shape[0] != self.shape_[0]:
            want = "x".join(map(str, self.shape_ if fixed else self.shape_[:1] + ["H", "W"]))
            raise ValueError(f"{self.name} was fitted on {want} images; got {'x'.join(map(str, shape))}")

    def denoise(self, noisy: Tensor) -> Tensor:
        """Denoised copy of ``noisy``: same shape and device, values in [0, 1]."""
        self.check_fitted()
        x = self._float_images(noisy, "noisy")
        self._check_shape(x)
        if self.ensemble == 8 and x.shape[-1] != x.shape[-2]:
            raise ValueError(
                f"{self.name} ensemble 8 transposes the images, so they must be square; got {x.shape[-2]}x{x.shape[-1]}"
            )
        net = self._net_on(x.device)
        out = torch.empty_like(x)
        size = chunk_images(x.device, x.shape[-2], x.shape[-1])
        with torch.no_grad(), autocast(x.device):
            for start in range(0, len(x), size):
                chunk = x[start : start + size]
                total = sum(
                    dihedral(apply_net(net, dihedral(chunk, k), tiled=not self.fixed_input_size), k, undo=True)
                    for k in range(self.ensemble)
                )
                out[start : start + size] = total.div_(self.ensemble).clamp_(0.0, 1.0)
        return out

    def _net_on(self, device: torch.device) -> nn.Module:
        first = next(self.net_.parameters())
        if first.device != device:
            self.net_.to(device)
        return self.net_.eval()

    seconds_trained = seconds_trained  # the Estimator hook, read from this model's checkpoints

    def n_parameters(self) -> int:
        """Learned parameters of the fitted network (before fit: built for 1 x 28 x 28)."""
        if hasattr(self, "net_"):
            net = self.net_
        else:
            with seeded(0, torch.device("cpu")):
                net = self.build((1, 28, 28))
        return sum(p.numel() for p in net.parameters())

    # -- caching hooks used by the runner (bench/execution/fits.py writes them to disk) --------------
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
