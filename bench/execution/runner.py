"""Runs a grid: cut its unfinished cells into units, hand them to an executor, store the rows.

The driver (this module) is the store's only writer: it commits each cell as its row comes
back, whichever executor computed it, so a run killed at any moment (even ``kill -9``) keeps
every finished cell and a rerun skips them. Classifiers are fitted first, one unit each, into
the shared fit cache (on a parallel executor, with the classical filters' fits beside them); then every
fit group (cells sharing a fitted denoiser) is one unit. A cell
that raises becomes a ``failed`` row; a unit whose worker died too often fails its cells with
the reason; the run goes on either way. What a worker does with a unit, and how it scores a
cell, is ``bench.execution.worker``; what it keeps between units is ``bench.execution.workspace``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.data import load
from bench.device import resolve_device
from bench.errors import one_line
from bench.execution import fits as fit_cache
from bench.execution.executors import ExecutorSpec, UnitFailure, make_executor
from bench.execution.rows import CellRow
from bench.execution.store import Store
from bench.execution.worker import ClassifierFit, DenoiserFit, FitGroup, failed_cell, needs_gpu
from bench.execution.workspace import RunContext, preload
from bench.grids import Cell, Grid
from bench.machine import machine, versions
from bench.registry import DENOISERS

__all__ = ["run_grid", "RunSummary", "plan_units"]


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    out_dir: Path | None = None
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.failed else 0


def plan_units(cells: list[Cell], *, gpu: bool = False) -> tuple[list[ClassifierFit], list[FitGroup]]:
    """The classifier fits the cells need, and the cells grouped by fit key (grid order kept)."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(fit_cache.fit_key(cell.fit_spec), []).append(cell)
    fits = {}
    for cell in cells:
        for name, params in cell.classifiers:
            fits.setdefault(
                (cell.dataset, name, params), ClassifierFit(cell.dataset, name, params, gpu and needs_gpu(name))
            )
    fit_groups = [FitGroup(tuple(group), gpu and needs_gpu(group[0].denoiser)) for group in groups.values()]
    return list(fits.values()), fit_groups


def _fits_ahead(cell: Cell) -> bool:
    """Whether the cell's denoiser is fitted beside the classifiers: a quick (not learned) fit that
    goes through the fit cache, so that its group reuses it."""
    try:
        if DENOISERS.entry(cell.denoiser).accelerated:
            return False
        return fit_cache.is_cacheable(cell.make_denoiser())
    except Exception:  # not here: its group builds it, and fails its cells with the reason
        return False


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", disable=not sys.stderr.isatty(), leave=False)


def _log_line(index: int, total: int, cell: Cell, row: CellRow) -> str:
    prefix = f"[{index}/{total}] {row.status:<6} {cell.label}"
    if row.status != "ok":
        return f"{prefix}: {row.error}"
    return f"{prefix}: PSNR {row.psnr:.2f} dB, SSIM {row.ssim:.3f}, {row.images_per_second:.0f} img/s, fit {row.fit_seconds:.1f} s"


def _wants_cuda(device: str, spec: ExecutorSpec) -> bool:
    if spec.remote:  # the driver need not have the cluster's GPUs
        return device.startswith("cuda")
    return resolve_device(device).type == "cuda"


def run_grid(
    grid: Grid,
    *,
    out_dir: str | Path = "results",
    data_dir=None,
    download: bool = False,
    device: str = "auto",
    argv: list[str] | None = None,
    log: Callable[[str], None] = print,
    executor: ExecutorSpec | None = None,
    cache_dir: str | Path | None = None,
    checkpoint_every: float | None = None,
    plugins: tuple[str, ...] = (),
    estimate: Callable[[RunContext, set[str]], str] | None = None,
    start_from: str | Path | None = None,
    write: bool = True,
) -> RunSummary:
    """Run every unfinished cell of ``grid`` into ``out_dir/<grid name>/``; write the outputs.

    ``write=False`` leaves the outputs (leaderboard, page) to the caller: a seed report runs many
    grids into one folder and rebuilds its page once, at the end.

    Bad input (data, device, an executor that cannot start) raises ValueError before anything
    is written. Ctrl-C stops cleanly: finished cells stay stored and ``interrupted`` is set.
    ``estimate(context, finished keys)``, once the executor is up, gives a line to print first.
    ``start_from`` is a run folder whose store a new run folder starts from (``--against``).
    """
    started = time.perf_counter()
    spec = executor or ExecutorSpec()
    run_dir = Path(out_dir) / grid.name
    gpu = _wants_cuda(device, spec)
    context = RunContext.for_grid(
        grid,
        run_dir,
        cache_dir=cache_dir,
        device=device,
        data_dir=data_dir,
        download=download,
        checkpoint_every=checkpoint_every,
        plugins=plugins,
    )
    if spec.name == "local" and spec.workers == 1:
        preload(context, grid.datasets)  # bad data fails here; the loaded sets are reused
    elif not spec.remote:
        for name in grid.datasets:
            load(name, data_dir=data_dir, download=download)
    summary = RunSummary(out_dir=run_dir)
    with make_executor(spec, gpu=gpu, log=log) as engine:
        if start_from is not None:
            from bench.report.against import start_from as copy_store

            copy_store(start_from, run_dir)
        if estimate is not None:
            log(_estimate(estimate, context, run_dir / "store.sqlite"))
        _run_store(grid, engine, context, gpu, run_dir, argv, summary, log, write)
    summary.seconds = time.perf_counter() - started
    return summary


def _estimate(estimate, context: RunContext, store_path: Path) -> str:
    done = set()
    if store_path.is_file():
        with Store(store_path) as store:
            done = store.finished_keys()
    try:
        return estimate(context, done)
    except Exception as err:  # an estimate is advice: it must never stop the run
        return f"estimate: unavailable ({one_line(err)})"


def _run_store(
    grid: Grid, engine, context: RunContext, gpu: bool, run_dir: Path, argv, summary: RunSummary, log, write: bool
) -> None:
    from bench.report import write_outputs

    with Store(run_dir / "store.sqlite") as store:
        done = store.finished_keys()
        cells = grid.cells()
        todo = [c for c in cells if c.key not in done]
        summary.skipped = len(cells) - len(todo)
        if summary.skipped:
            log(f"{summary.skipped} of {len(cells)} cells already in {run_dir / 'store.sqlite'}; running {len(todo)}")
        log(f"executor: {engine.description}")
        run_id = store.start_run(
            grid=grid.name,
            spec=grid.to_dict(),
            argv=argv or [],
            device=context.device,
            versions=versions(),
            machine=machine(),
        )
        try:
            _run_units(engine, context, todo, gpu, store, run_id, summary, log)
        except KeyboardInterrupt:
            summary.interrupted = True
            log(f"interrupted: {summary.ok + summary.failed} cells stored; rerun the same command to resume")
        store.finish_run(run_id, ok=summary.ok, failed=summary.failed)
        if write:
            write_outputs(store, run_dir)


def _run_units(engine, context, todo, gpu, store, run_id, summary, log) -> None:
    """Classifier fits first (their failures are passed on, not refitted per cell), then fit groups.

    Side by side (a parallel executor), the classical filters' fits (their tuning) join the
    classifier fits, so that no worker idles while a long classifier trains; the groups then load
    them from the fit cache. Networks fit in their own groups, whose cells are scored and stored as
    soon as each network is fitted: fitted ahead, they held back every cell until the last
    network was fitted, hours into a long run, and a run stopped before then had stored nothing.
    """
    fits, groups = plan_units(todo, gpu=gpu)
    side_by_side = fits and engine.parallel
    ahead = [DenoiserFit(g.cells[0], g.gpu) for g in groups if _fits_ahead(g.cells[0])] if side_by_side else []
    errors, fit_errors = {}, {}
    for unit, result in engine.map(context, [*fits, *ahead]):
        if isinstance(result, UnitFailure):
            if isinstance(unit, DenoiserFit):
                fit_errors[unit.cell] = result.reason
            else:
                errors[(unit.dataset, unit.classifier, unit.params)] = result.reason
            log(f"  failed {unit.label}: {result.reason}")
        elif result["seconds"] > 1:
            log(f"  fitted {unit.label} in {result['seconds']:.1f} s")
    groups = [replace(g, classifier_errors=tuple(errors.items()), fit_error=fit_errors.get(g.cells[0])) for g in groups]
    finished = 0
    with _progress(len(todo)) as bar:
        for unit, result in engine.map(context, groups):
            if isinstance(result, UnitFailure):
                result = [failed_cell(cell, result.reason, context.device) for cell in unit.cells]
            for scored in result:
                row = replace(scored.row, run_id=run_id)
                store.put_cell(row, scored.classifiers, scored.samples)
                summary.ok += row.status == "ok"
                summary.failed += row.status != "ok"
                finished += 1
                bar.update()
                cell = next(c for c in unit.cells if c.key == row.key)
                (bar.write if not bar.disable else log)(_log_line(finished, len(todo), cell, row))
