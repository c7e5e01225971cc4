"""What a worker does: run one unit of work, whichever executor sent it, and score a cell.

A run is cut into units: first one ``ClassifierFit`` per (dataset, classifier), then one
``FitGroup`` per fit key (the cells that share a fitted denoiser, e.g. every level of a blind
fit). A unit carries only names and numbers; the worker rebuilds everything else in its
:class:`~bench.execution.workspace.Workspace` (data, noise, fits), and scores each cell with
:func:`score_cell`. Workers never write the store: they return rows, and the driver stores them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bench import images as image_sets
from bench import metrics
from bench.cost import timing
from bench.errors import one_line
from bench.estimator import check_images
from bench.execution.rows import CellRow, ScoredCell
from bench.execution.workspace import RunContext, Workspace, noise_seed, workspace_for
from bench.grids import Cell
from bench.images import Images, map_batches, sample_crops
from bench.registry import CLASSIFIERS, DENOISERS

__all__ = [
    "ClassifierFit",
    "DenoiserFit",
    "FitGroup",
    "run_unit",
    "needs_gpu",
    "score_cell",
    "score_or_fail",
    "failed_cell",
]

N_SAMPLES = 8  # test images kept per cell for the report's image grids


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

    def run(self, workspace: Workspace) -> dict[str, Any]:
        images, labels = workspace.data(self.dataset)[:2]
        start = time.perf_counter()
        workspace.classifiers.model(
            self.dataset, self.classifier, self.params, images, labels, seed=workspace.context.base_seed
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

    def run(self, workspace: Workspace) -> dict[str, Any]:
        start = time.perf_counter()
        workspace.fitted(self.cell)
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
        # A shared fit serves other levels and, for the test sets that train on one set
        # (BSD68 and Set12 on Train400), other datasets: "cells", not "levels".
        more = f" (+{len(self.cells) - 1} more cells)" if len(self.cells) > 1 else ""
        return first.label + more

    def run(self, workspace: Workspace) -> list[ScoredCell]:
        if self.fit_error is not None:  # not fitted again: it would fail the same way
            return [
                failed_cell(cell, f"its fit failed: {self.fit_error}", str(workspace.device)) for cell in self.cells
            ]
        workspace.classifiers.errors = dict(self.classifier_errors)
        return [score_or_fail(workspace, cell) for cell in self.cells]


def needs_gpu(name: str) -> bool:
    """Entries that declare ``accelerated`` (networks) ask executors for a GPU; the rest run anywhere."""
    registry = DENOISERS if name in DENOISERS else CLASSIFIERS
    return registry.entry(name).accelerated


def run_unit(context: RunContext, unit: ClassifierFit | DenoiserFit | FitGroup, threads: int | None = None) -> Any:
    """Worker entry point: the unit's result, with this process's workspace for the context.

    ``threads`` sets torch's CPU threads first (CPU results depend on it: oneDNN splits its
    reductions by thread, so equal numbers across executors need equal threads per worker).
    """
    if threads:
        torch.set_num_threads(threads)
    return unit.run(workspace_for(context, gpu=unit.gpu, setup=lambda: _set_up_worker(context)))


def _set_up_worker(context: RunContext) -> None:
    from bench.device import tune_cpu_allocator
    from bench.registry import import_plugin

    # A worker process is all benchmark: keep freed memory in the heap (Dask's nanny sets
    # MALLOC_TRIM_THRESHOLD_ low, which made every batch pay page faults: 2x slower cells).
    tune_cpu_allocator()
    for plugin in context.plugins:
        import_plugin(plugin)


def score_cell(workspace: Workspace, cell: Cell) -> ScoredCell:
    """Fit (or load) the cell's denoiser, denoise its noisy test images, check and score them.

    Returns the cell's row, one row per classifier and a few sample images; raises on failure.
    """
    clean, noisy = workspace.test_set(cell)
    model, fit_seconds = workspace.fitted(cell)
    labels = workspace.data(cell.dataset)[3]
    # Slow methods (BM3D) may score only the first `eval_images` test images; n_test says so.
    n_eval = min(len(clean), model.eval_images or len(clean))
    clean, noisy = clean[:n_eval], noisy[:n_eval]
    labels = None if labels is None else labels[:n_eval]
    denoised, images_per_second = timed_denoise(model, noisy, workspace.device, cell.denoiser)
    # Images of several sizes are scored batch by batch (bench.images.per_image), in order.
    per_image = {
        name: image_sets.per_image(fn, denoised, clean)
        for name, fn in (("psnr", metrics.psnr), ("psnr_uint8", metrics.psnr_uint8), ("ssim", metrics.ssim))
    }
    psnr = metrics.mean_ci(per_image["psnr"], seed=cell.seed)
    ssim = metrics.mean_ci(per_image["ssim"], seed=cell.seed)
    psnr_noisy = float(image_sets.per_image(metrics.psnr, noisy, clean).mean())
    row = CellRow(
        **{**cell_identity(cell), "n_test": n_eval},
        psnr=psnr[0],
        psnr_ci_low=psnr[1],
        psnr_ci_high=psnr[2],
        psnr_uint8=float(per_image["psnr_uint8"].mean()),
        ssim=ssim[0],
        ssim_ci_low=ssim[1],
        ssim_ci_high=ssim[2],
        mse=float(image_sets.per_image(metrics.mse, denoised, clean).mean()),
        psnr_noisy=psnr_noisy,
        below_noisy=bool(psnr[0] < psnr_noisy),
        ssim_noisy=float(image_sets.per_image(metrics.ssim, noisy, clean).mean()),
        fit_seconds=fit_seconds,
        images_per_second=images_per_second,
        params=int(model.n_parameters()),
        device=str(workspace.device),
        seed=noise_seed(cell),
        status="ok",
        history=model.history_,
        versions=workspace.versions,
        fit_state=model.fitted_state() if model.cacheable else None,
        # float32 numpy arrays, one value per test image: what paired tests compare
        per_image={name: values.float().cpu().numpy() for name, values in per_image.items()},
    )
    samples = sample_crops(clean, noisy, denoised, n=N_SAMPLES)
    classifier_rows = workspace.classifiers.score(
        cell, workspace.data(cell.dataset)[:2], (clean, noisy, denoised, labels), workspace.n_classes(cell.dataset)
    )
    return ScoredCell(row, tuple(classifier_rows), samples)


def score_or_fail(workspace: Workspace, cell: Cell) -> ScoredCell:
    """``score_cell``, with a failure turned into a failed row: one cell never kills a run."""
    try:
        return score_cell(workspace, cell)
    except (Exception, SystemExit) as err:  # a plugin's sys.exit() fails its cell, not the run
        return failed_cell(cell, one_line(err), str(workspace.device))


def timed_denoise(model: Any, noisy: Images, device: torch.device, name: str = "") -> tuple[Images, float]:
    """Denoised images, each same-size batch checked, and warm images/s (the runner's rule:
    median of up to 3 timed passes, after a warm-up on the first images)."""

    def denoise(batch: Tensor) -> Tensor:
        return check_output(model.denoise(batch), batch, name or getattr(model, "name", ""))

    map_batches(denoise, noisy[: warm_up_count(noisy)])
    passes = timing.runner_passes(lambda: map_batches(denoise, noisy), device)
    return passes.result, len(noisy) / max(passes.wall, 1e-9)


#: The warm-up pass before timing: up to 16 images and about 2^18 pixels (one photo, or 16 thumbnails).
_WARM_UP_IMAGES, _WARM_UP_PIXELS = 16, 2**18


def warm_up_count(images: Images) -> int:
    """How many leading images warm a denoiser up: a BM3D pass over 16 photos would cost minutes."""
    pixels = int(images[0].shape[-1] * images[0].shape[-2])
    return max(1, min(len(images), _WARM_UP_IMAGES, _WARM_UP_PIXELS // max(pixels, 1)))


def failed_cell(cell: Cell, error: str, device: str) -> ScoredCell:
    """A cell that did not finish: its row says why; no scores, classifier rows or samples."""
    return ScoredCell(
        CellRow(**cell_identity(cell), status="failed", error=error, device=device, seed=noise_seed(cell))
    )


def check_output(denoised: Tensor, noisy: Tensor, name: str) -> Tensor:
    """``denoised`` when it is a valid output for ``noisy``, else a one-line ValueError."""
    check_images(denoised, f"denoiser {name!r}'s output", floating=False)
    if denoised.shape != noisy.shape:
        raise ValueError(f"denoiser {name!r} returned {tuple(denoised.shape)}; expected shape {tuple(noisy.shape)}")
    if not torch.isfinite(denoised).all():
        raise ValueError(f"denoiser {name!r} returned NaN or infinite values")
    if denoised.min() < -1e-4 or denoised.max() > 1 + 1e-4:
        raise ValueError(
            f"denoiser {name!r} returned values outside [0, 1]: [{float(denoised.min()):.3g}, {float(denoised.max()):.3g}]"
        )
    return denoised


def cell_identity(cell: Cell) -> dict[str, Any]:
    """The columns of a cell's row that say which cell it is (the same whether it failed or not)."""
    return {
        "key": cell.key,
        "dataset": cell.dataset,
        "noise": cell.noise,
        "level": cell.level,
        "train_level": str(cell.train_level),
        "denoiser": cell.denoiser,
        "denoiser_params": dict(cell.params),
        "n_train": cell.n_train,
        "n_test": cell.n_test,
        "base_seed": cell.seed,
    }
