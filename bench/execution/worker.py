"""The worker side of a run: what one process does with a unit of work, whichever executor sent it.

A run is cut into units: first one ``ClassifierFit`` per (dataset, classifier), then one
``FitGroup`` per fit key (the cells that share a fitted denoiser, e.g. every level of a blind
fit). A unit carries only names and numbers; the worker rebuilds everything from them through
the registries, the data search path and the shared fit cache, so the same unit gives the same
numbers in the driver, in a worker process or on a cluster node. Workers never write the store:
they return rows, and the driver stores them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench import metrics

from bench.execution import fits as fit_cache
from bench.execution.classifier_pool import ClassifierPool
from bench.execution.rows import CellRow, ScoredCell
from bench.cost import timing
from bench.device import resolve_device
from bench.errors import one_line
from bench.machine import versions
from bench.data import load
from bench.estimator import as_float_images, check_images
from bench.grids import Cell
from bench.params import frozen_params
from bench.noise import Noise, TrainingNoise, derive_seed
from bench.registry import CLASSIFIERS, DENOISERS

__all__ = ["RunContext", "ClassifierFit", "DenoiserFit", "FitGroup", "CellRunner", "run_unit", "preload",
           "failed_cell", "needs_gpu", "member_cells"]  # fmt: skip

N_SAMPLES = 8  # test images kept per cell for the report's image grids


@dataclass(frozen=True)
class RunContext:
    """What every worker needs besides the unit: where data and fits live, and how to run."""

    base_seed: int
    n_train: int
    n_test: int
    cache_dir: str
    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    checkpoint_every: float | None = None
    plugins: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class ClassifierFit:
    """Fit one classifier on a dataset's clean training split, into the shared cache."""

    dataset: str
    classifier: str
    params: tuple[tuple[str, Any], ...]
    gpu: bool = False

    @property
    def label(self) -> str:
        return f"classifier {self.classifier} on {self.dataset}"

    def run(self, runner: CellRunner) -> dict[str, Any]:
        images, labels = runner.data(self.dataset)[:2]
        start = time.perf_counter()
        runner.classifiers.model(
            self.dataset, self.classifier, self.params, images, labels, seed=runner.context.base_seed
        )
        return {"seconds": time.perf_counter() - start}


@dataclass(frozen=True)
class DenoiserFit:
    """Fit the denoiser of a fit group into the shared cache ahead of its cells, so that a
    parallel run fits denoisers beside the classifiers instead of waiting for them."""

    cell: Cell
    gpu: bool = False

    @property
    def label(self) -> str:
        cell = self.cell
        return f"denoiser {cell.denoiser} for {cell.dataset} {cell.noise}, training level {cell.train_level}"

    def run(self, runner: CellRunner) -> dict[str, Any]:
        start = time.perf_counter()
        runner.fitted(self.cell)
        return {"seconds": time.perf_counter() - start}


@dataclass(frozen=True)
class FitGroup:
    """Cells that share one fitted denoiser: fitted (or loaded) once, then each cell scored."""

    cells: tuple[Cell, ...]
    gpu: bool = False
    #: classifier fits that already failed in the run: (dataset, name, params) -> reason
    classifier_errors: tuple[tuple[tuple, str], ...] = ()
    #: why the denoiser's fit ahead of the cells failed (None: it did not, or did not run)
    fit_error: str | None = None

    @property
    def label(self) -> str:
        first = self.cells[0]
        more = f" (+{len(self.cells) - 1} levels)" if len(self.cells) > 1 else ""
        return first.label + more

    def run(self, runner: CellRunner) -> list[ScoredCell]:
        if self.fit_error is not None:  # not fitted again: it would fail the same way
            return [failed_cell(cell, f"its fit failed: {self.fit_error}", str(runner.device)) for cell in self.cells]
        runner.classifiers.errors = dict(self.classifier_errors)
        return [runner.run_one(cell) for cell in self.cells]


def needs_gpu(name: str) -> bool:
    """Entries that declare ``accelerated`` (networks) ask executors for a GPU; the rest run anywhere."""
    registry = DENOISERS if name in DENOISERS else CLASSIFIERS
    return registry.entry(name).accelerated


_RUNNERS: dict[str, CellRunner] = {}


def run_unit(context: RunContext, unit: ClassifierFit | DenoiserFit | FitGroup, threads: int | None = None) -> Any:
    """Worker entry point: the unit's result, with this process's runner for the context.

    ``threads`` sets torch's CPU threads first (CPU results depend on it: oneDNN splits its
    reductions by thread, so equal numbers across executors need equal threads per worker).
    """
    if threads:
        torch.set_num_threads(threads)
    runner = _RUNNERS.get(context.key)
    if runner is None:
        from bench.registry import import_plugin
        from bench.device import tune_cpu_allocator

        # A worker process is all benchmark: keep freed memory in the heap (Dask's nanny sets
        # MALLOC_TRIM_THRESHOLD_ low, which made every batch pay page faults: 2x slower cells).
        tune_cpu_allocator()

        for plugin in context.plugins:
            import_plugin(plugin)
        runner = _RUNNERS[context.key] = CellRunner(context, gpu=unit.gpu)
    return unit.run(runner)


def preload(context: RunContext, datasets) -> CellRunner:
    """This process's runner for ``context`` with ``datasets`` loaded (bad data raises here)."""
    runner = _RUNNERS.get(context.key) or _RUNNERS.setdefault(context.key, CellRunner(context))
    for name in datasets:
        runner.load(name)
    return runner


def worker_name() -> str:
    """Host and process, so a worker-side error says where it happened."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _to_uint8(images: Tensor):
    return images[:N_SAMPLES].mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


@dataclass
class CellRunner:
    """One process's state for a run: loaded data, noisy test sets and the last fit."""

    context: RunContext
    gpu: bool = True
    _data: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = field(default_factory=dict)
    _n_classes: dict[str, int] = field(default_factory=dict)
    _noisy: dict[tuple, Tensor] = field(default_factory=dict)
    _fits: dict[str, tuple[Any, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A classical unit on a CPU-only cluster worker runs on its CPU even in a CUDA run.
        cpu_only_here = not self.gpu and not torch.cuda.is_available()
        self.device = resolve_device("cpu" if cpu_only_here else self.context.device)
        self.cache_dir = Path(self.context.cache_dir)
        self.classifiers = ClassifierPool(self.cache_dir, self.device, checkpoint_every=self.context.checkpoint_every)
        self.versions = versions()

    def data(self, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(train images, train labels, test images, test labels) on the device, loaded once."""
        if name not in self._data:
            try:
                self.load(name)
            except ValueError as err:
                raise ValueError(f"worker {worker_name()}: {err}") from None
        return self._data[name]

    def load(self, name: str) -> None:
        """Load a dataset's training subset and test images onto the device (bad data raises)."""
        if name not in self._data:
            ds = load(name, data_dir=self.context.data_dir, download=self.context.download)
            self._n_classes[name] = len(ds.classes)
            order = torch.randperm(
                len(ds.train_images),
                generator=torch.Generator().manual_seed(derive_seed(self.context.base_seed, name, "train-subset")),
            )
            train = order[: self.context.n_train]
            put = lambda t: as_float_images(t).to(self.device)  # noqa: E731
            n_test = self.context.n_test
            self._data[name] = (
                put(ds.train_images[train]), ds.train_labels[train].to(self.device),
                put(ds.test_images[:n_test]), ds.test_labels[:n_test].to(self.device),
            )  # fmt: skip

    def test_set(self, cell: Cell) -> tuple[Tensor, Tensor]:
        """(clean, noisy) test images of the cell: every denoiser sees the same noisy images."""
        clean = self.data(cell.dataset)[2]
        key = (cell.dataset, cell.noise, cell.level)
        if key not in self._noisy:
            self._noisy[key] = Noise(cell.noise, cell.level).apply(clean, seed=noise_seed(cell))
        return clean, self._noisy[key]

    def training_pairs(self, cell: Cell) -> tuple[Tensor, Tensor]:
        clean = self.data(cell.dataset)[0]
        train_noise = training_noise(cell)
        seed = derive_seed(cell.seed, cell.dataset, "train", cell.noise, cell.train_level)
        if train_noise.mode == "fixed":
            return train_noise.pick(None).apply(clean, seed=seed), clean
        # Blind/mixed pairs: chunks of the training set at levels (and kinds) drawn from one seed.
        generator = torch.Generator().manual_seed(seed)
        chunks = [train_noise.pick(generator).apply(c, seed=seed + i) for i, c in enumerate(clean.split(64))]
        return torch.cat(chunks), clean

    def fitted(self, cell: Cell) -> tuple[Any, float]:
        """The cell's fitted denoiser and its fit seconds; from memory, the disk cache, or a fresh fit.

        The seconds are those of every fit it is built from, each counted once (a member that
        two of average_of's members share was fitted once).
        """
        key = fit_cache.fit_key(cell.fit_spec)
        model = DENOISERS.create(cell.denoiser, **dict(cell.params))
        if key in self._fits:  # fitted for a cell that may differ in inference-only parameters
            fitted, seconds = self._fits[key]
            own = model.get_params()
            fitted.set_params(**{name: own[name] for name in model.inference_params if name in own})
            return fitted, sum(seconds.values())
        seconds = self._fit_tree(cell, model, key)
        self._fits = {key: (model, seconds)}  # keep one: a group's next levels reuse it
        return model, sum(seconds.values())

    def _fit_tree(self, cell: Cell, model: Any, key: str) -> dict[str, float]:
        """Fit or load ``model`` and the entries it is built from; returns each fit's own seconds by fit key.

        Entries built from others (average_of's members, a network's warm restart) have each
        member fitted, or loaded, as its own cell first. A restart whose own fit is cached needs
        no member: its cache is read first. (A plugin's denoiser need not subclass Denoiser,
        so both hooks are optional.)
        """
        stem = self.cache_dir / key
        members = member_cells(cell, model)
        own_fit = getattr(model, "own_fit", True)
        if members and own_fit and fit_cache.is_cacheable(model):
            extra = fit_cache.load_fitted(model, stem, self.device)
            if extra is not None:
                return {**extra.get("member_seconds", {}), key: float(extra.get("fit_seconds", 0.0))}
        seconds: dict[str, float] = {}
        fitted = []
        for member in members:
            member_model = DENOISERS.create(member.denoiser, **dict(member.params))
            seconds |= self._fit_tree(member, member_model, fit_cache.fit_key(member.fit_spec))
            fitted.append(member_model)
        if members:
            model.use_fitted(fitted)
        if own_fit:
            fit_seed = derive_seed(cell.seed, "fit", cell.dataset, cell.noise, cell.train_level, cell.denoiser)
            seconds[key] = fit_cache.fit_or_load(
                model,
                stem,
                lambda noisy, clean: model.fit(noisy, clean, seed=fit_seed, noise=training_noise(cell)),
                prepare=lambda: self.training_pairs(cell),
                device=self.device,
                checkpoint_every=self.context.checkpoint_every,
                extra={"member_seconds": dict(seconds)},
            )
        return seconds

    def timed_denoise(self, model: Any, noisy: Tensor) -> tuple[Tensor, float]:
        """Denoised images and warm images/s (the runner's rule: median of up to 3 timed passes)."""
        model.denoise(noisy[: min(len(noisy), 16)])
        passes = timing.runner_passes(lambda: model.denoise(noisy), self.device)
        return passes.result, len(noisy) / max(passes.wall, 1e-9)

    def run_cell(self, cell: Cell) -> ScoredCell:
        """Row, classifier rows and sample images of one cell; raises on failure."""
        clean, noisy = self.test_set(cell)
        model, fit_seconds = self.fitted(cell)
        test_labels = self.data(cell.dataset)[3]
        # Slow methods (BM3D) may score only the first `eval_images` test images; n_test says so.
        n_eval = min(len(clean), model.eval_images or len(clean))
        clean, noisy, test_labels = clean[:n_eval], noisy[:n_eval], test_labels[:n_eval]
        denoised, images_per_second = self.timed_denoise(model, noisy)
        check_output(denoised, noisy, cell.denoiser)
        per_image = {"psnr": metrics.psnr(denoised, clean), "ssim": metrics.ssim(denoised, clean)}
        psnr = metrics.mean_ci(per_image["psnr"], seed=cell.seed)
        ssim = metrics.mean_ci(per_image["ssim"], seed=cell.seed)
        row = CellRow(
            **{**cell_columns(cell), "n_test": n_eval},
            psnr=psnr[0], psnr_ci_low=psnr[1], psnr_ci_high=psnr[2],
            ssim=ssim[0], ssim_ci_low=ssim[1], ssim_ci_high=ssim[2],
            mse=float(metrics.mse(denoised, clean).mean()),
            psnr_noisy=float(metrics.psnr(noisy, clean).mean()), ssim_noisy=float(metrics.ssim(noisy, clean).mean()),
            fit_seconds=fit_seconds, images_per_second=images_per_second,
            params=int(model.n_parameters()), device=str(self.device), seed=noise_seed(cell),
            status="ok", history=model.history_, versions=self.versions,
            fit_state=model.fitted_state() if model.cacheable else None,
            # float32 numpy arrays, one value per test image: what paired tests compare
            per_image={name: values.float().cpu().numpy() for name, values in per_image.items()},
        )  # fmt: skip
        samples = {"clean": _to_uint8(clean), "noisy": _to_uint8(noisy), "denoised": _to_uint8(denoised)}
        train_images, train_labels = self.data(cell.dataset)[:2]
        classifier_rows = self.classifiers.score(
            cell, (train_images, train_labels), (clean, noisy, denoised, test_labels), self._n_classes[cell.dataset]
        )
        return ScoredCell(row, tuple(classifier_rows), samples)

    def run_one(self, cell: Cell) -> ScoredCell:
        """``run_cell``, with a failure turned into a failed row: one cell never kills a run."""
        try:
            return self.run_cell(cell)
        except (Exception, SystemExit) as err:  # a plugin's sys.exit() fails its cell, not the run
            return failed_cell(cell, one_line(err), str(self.device))


def member_cells(cell: Cell, model: Any) -> list[Cell]:
    """The cells of the entries ``model`` (``cell``'s denoiser) is built from: each fitted as a
    grid's cell of that entry would be, so a grid that also holds it shares its fit."""
    specs = model.member_specs() if hasattr(model, "member_specs") else []
    return [replace(cell, denoiser=name, params=frozen_params(params)) for name, params in specs]


def noise_seed(cell: Cell) -> int:
    return derive_seed(cell.seed, cell.dataset, "test", cell.noise, cell.level)


def training_noise(cell: Cell) -> TrainingNoise:
    if cell.train_level in ("blind", "mixed"):
        return TrainingNoise(cell.noise, mode=str(cell.train_level))
    return TrainingNoise(cell.noise, float(cell.train_level))


def failed_cell(cell: Cell, error: str, device: str) -> ScoredCell:
    """A cell that did not finish: its row says why; no scores, classifier rows or samples."""
    return ScoredCell(CellRow(**cell_columns(cell), status="failed", error=error, device=device, seed=noise_seed(cell)))


def check_output(denoised: Tensor, noisy: Tensor, name: str) -> None:
    check_images(denoised, f"denoiser {name!r}'s output", floating=False)
    if denoised.shape != noisy.shape:
        raise ValueError(f"denoiser {name!r} returned {tuple(denoised.shape)}; expected shape {tuple(noisy.shape)}")
    if not torch.isfinite(denoised).all():
        raise ValueError(f"denoiser {name!r} returned NaN or infinite values")
    if denoised.min() < -1e-4 or denoised.max() > 1 + 1e-4:
        raise ValueError(
            f"denoiser {name!r} returned values outside [0, 1]: [{float(denoised.min()):.3g}, {float(denoised.max()):.3g}]"
        )


def cell_columns(cell: Cell) -> dict[str, Any]:
    return {
        "key": cell.key, "dataset": cell.dataset, "noise": cell.noise, "level": cell.level,
        "train_level": str(cell.train_level), "denoiser": cell.denoiser, "denoiser_params": dict(cell.params),
        "n_train": cell.n_train, "n_test": cell.n_test, "base_seed": cell.seed,
    }  # fmt: skip
