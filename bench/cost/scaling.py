"""``python -m bench scaling``: one grid's wall time on each executor, as throughput ratios.

The same cells run four times into fresh folders: in this process with every thread (the
default), in this process on one thread (the reference: one worker, one thread), on
``--workers N`` local processes and on a Dask LocalCluster of N workers. Classifiers are left
out; by default only the classical denoisers of the grid run (the scaling of the harness, not
of oneDNN).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.cost import timing
from bench.execution.executors import ExecutorSpec
from bench.execution.runner import run_grid
from bench.grids import Grid
from bench.registry import DENOISERS

__all__ = ["classical_cells", "measure", "format_scaling"]


def classical_cells(grid: Grid) -> Grid:
    """The grid's classical (not accelerated) denoisers, without classifiers."""
    classical = [n for n in grid.denoisers if not DENOISERS.entry(n).accelerated]
    if not classical:
        raise ValueError(f"grid {grid.name!r} has no classical denoisers to time")
    return grid.narrow(denoisers=classical, classifiers=[])


@dataclass(frozen=True)
class Timing:
    label: str
    seconds: float
    cells: int

    @property
    def cells_per_second(self) -> float:
        return self.cells / self.seconds


def measure(grid: Grid, *, workers: int = 2, data_dir=None, dask: bool = True) -> list[Timing]:
    """Wall time of ``grid`` on each executor (fresh output folders, no shared cache)."""
    threads = torch.get_num_threads()
    setups = [
        ("in process, default threads", ExecutorSpec(threads=threads)),
        ("1 worker, 1 thread (reference)", ExecutorSpec(threads=1)),
        (f"--workers {workers}", ExecutorSpec(workers=workers)),
    ]
    if dask:
        setups.append((f"dask LocalCluster, {workers} workers", ExecutorSpec(name="dask", workers=workers)))
    timings = []
    for label, spec in setups:
        with tempfile.TemporaryDirectory() as out:
            run = timing.timed(
                lambda spec=spec: run_grid(
                    grid, out_dir=Path(out), data_dir=data_dir, executor=spec, log=lambda _: None
                )
            )
            summary, seconds = run.result, run.wall
        torch.set_num_threads(threads)  # the one-thread setup changed this process's count
        if summary.failed:
            raise RuntimeError(f"{summary.failed} cells failed under {label}; the timing would not compare")
        timings.append(Timing(label, seconds, summary.ok))
    return timings


def format_scaling(timings: list[Timing]) -> str:
    reference = next(t for t in timings if "(reference)" in t.label)
    default = timings[0]
    lines = [f"{'executor':<34} {'cells':>6} {'wall s':>8} {'cells/s':>8} {'vs 1x1':>7} {'vs default':>10}"]
    for t in timings:
        lines.append(
            f"{t.label:<34} {t.cells:>6} {t.seconds:>8.1f} {t.cells_per_second:>8.2f} "
            f"{reference.seconds / t.seconds:>6.2f}x {default.seconds / t.seconds:>9.2f}x"
        )
    return "\n".join(lines)
