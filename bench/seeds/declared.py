"""Seed reports as declared experiments: grids run by the normal runner, then a table step.

A seed module declares the grids of its protocol for a budget (every grid of a report is
named ``seed-SEED``, so its cells share one run folder, store, fit cache and report.html)
and a table step that reads the stored cells back through :class:`Results` and writes its
"published vs ours" rows with :class:`~bench.seeds.common.Reproduction`. What no cell can
express (a calibration, a latent interpolation, a cross-validation) uses the cached fits
through the run's own :class:`~bench.execution.workspace.Workspace`: the same data, noise and seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.grids import Cell, Grid
from bench.seeds.common import Reproduction, model_params

__all__ = ["Launch", "Results", "grid_name", "entry_params", "NARROWING_FLAGS"]

#: Options of ``run`` that narrow a named grid; a seed protocol fixes all of them but ``--set``.
NARROWING_FLAGS = {
    "datasets": "--datasets",
    "noises": "--noises",
    "denoisers": "--denoisers",
    "levels": "--levels",
    "classifiers": "--classifiers",
    "n_train": "--n-train",
    "n_test": "--n-test",
}


def grid_name(report: str) -> str:
    """The run folder (and grid name) of a seed report's cells: ``seed-000`` ..."""
    return f"seed-{report}"


def entry_params(registry: Any, names: list[str], budget: str, **overrides: Any) -> dict[str, dict[str, Any]]:
    """{name: constructor parameters for ``budget`` plus the ``overrides`` it takes} (see ``model_params``)."""
    return {name: model_params(registry, name, budget, **overrides)[0] for name in names}


@dataclass(frozen=True)
class Launch:
    """How the grids run: the executor, fit cache and device options of ``run``, and ``--set``."""

    executor: Any = None
    cache_dir: str | None = None
    checkpoint_every: float | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    argv: tuple[str, ...] = ()


class Results:
    """One seed report's run folder: runs its grids and reads their cells back for the table."""

    def __init__(self, repro: Reproduction, launch: Launch) -> None:
        self.repro, self.launch = repro, launch
        self.run_dir = Path(repro.out_dir) / grid_name(repro.report)
        self.cache_dir = Path(launch.cache_dir) if launch.cache_dir else self.run_dir / "cache"
        self.grids: list[Grid] = []
        self.cells = pd.DataFrame()
        self.classifier_rows = pd.DataFrame()

    def run(self, grid: Grid) -> Grid:
        """Run ``grid`` (with the ``--set`` parameters of its entries) and reread the store."""
        from bench.execution.runner import run_grid

        entries = set(grid.denoisers) | set(grid.classifiers)
        params = {name: values for name, values in self.launch.params.items() if name in entries}
        grid = grid.narrow(params=params) if params else grid
        log = self.repro.log
        summary = run_grid(
            grid,
            out_dir=self.repro.out_dir,
            data_dir=self.repro.data_dir,
            device=str(self.repro.device),
            argv=list(self.launch.argv),
            log=lambda line: log(f"  {grid.name}: {line}"),
            executor=self.launch.executor,
            cache_dir=self.cache_dir,
            checkpoint_every=self.launch.checkpoint_every,
            # Each grid's outputs would cover the whole folder's store (over a minute each for
            # seed 003's dozens of grids, even on a resume that runs nothing): publish() rebuilds
            # the page once, and `bench report` does for a run stopped before it.
            write=False,
        )
        if summary.interrupted:
            raise KeyboardInterrupt
        self.grids.append(grid)
        self.repro.extra.setdefault("grids", []).append(grid.to_dict())
        self._reload()
        return grid

    def set_note(self, name: str) -> str:
        """'; --set NAME.KEY=VALUE ...' for the ``--set`` parameters of entry ``name`` ('' for none), for a row's note."""
        values = self.launch.params.get(name, {})
        return f"; --set {' '.join(f'{name}.{k}={v}' for k, v in sorted(values.items()))}" if values else ""

    def _reload(self) -> None:
        from bench.execution.store import Store

        with Store(self.run_dir / "store.sqlite") as store:
            self.cells = store.cells(superseded=True).set_index("key", drop=False)
            self.classifier_rows = store.classifier_results()

    def cell(
        self,
        grid: Grid,
        denoiser: str,
        *,
        level: float | None = None,
        dataset: str | None = None,
        train_level: float | str | None = None,
    ) -> Cell:
        """The one cell of ``grid`` for ``denoiser`` (at ``level`` / on ``dataset`` / trained at ``train_level``
        when the grid has several)."""
        where = {"level": level, "dataset": dataset, "train_level": train_level}
        found = [
            c
            for c in grid.cells()
            if c.denoiser == denoiser and all(v is None or getattr(c, k) == v for k, v in where.items())
        ]
        if len(found) != 1:
            raise ValueError(f"grid {grid.name!r} has {len(found)} cells for {denoiser} at {where}")
        return found[0]

    def row(self, cell: Cell) -> dict[str, Any]:
        """The stored row of ``cell`` (any status)."""
        return self.cells.loc[cell.key].to_dict()

    def failure(self, *cells: Cell) -> str | None:
        """'cell LABEL failed: ERROR' for the first of ``cells`` that did not finish ok, else None."""
        for cell in cells:
            row = self.row(cell)
            if row["status"] != "ok":
                return f"cell {cell.label} failed: {row['error']}"
        return None

    def missing(self, grid: Grid, denoiser: str, **where: Any) -> str | None:
        """Why ``grid`` has no result for ``denoiser`` (not registered, or its cell failed), else None."""
        if denoiser not in grid.denoisers:
            return f"denoiser {denoiser!r} is not registered"
        return self.failure(self.cell(grid, denoiser, **where))

    def accuracy(self, cell: Cell, classifier: str) -> dict[str, Any]:
        """The classifier row of ``cell`` (accuracies as fractions, or an ``error``)."""
        rows = self.classifier_rows
        found = rows[(rows["key"] == cell.key) & (rows["classifier"] == classifier)]
        if found.empty:
            return {"error": f"no {classifier} result for cell {cell.label}"}
        return found.iloc[0].to_dict()

    def runner(self, grid: Grid):
        """The ``Workspace`` of the run's context: the grid's data, noise and cached fits."""
        from bench.execution.workspace import preload

        # The context run_grid built: in process, the workspace that ran the grid (its data loaded).
        return preload(self._context(grid), ())

    def _context(self, grid: Grid):
        """The context ``run`` gives ``run_grid`` for ``grid`` (one place, so that the two agree)."""
        from bench.execution.workspace import RunContext

        return RunContext.for_grid(
            grid,
            self.run_dir,
            cache_dir=self.cache_dir,
            device=str(self.repro.device),
            data_dir=self.repro.data_dir,
            checkpoint_every=self.launch.checkpoint_every,
        )

    def fitted(self, grid: Grid, cell: Cell) -> Any:
        """The cell's fitted denoiser, from the fit cache (a model the cache cannot hold is refitted)."""
        return self.runner(grid).fitted(cell)[0]

    def classifier(self, grid: Grid, dataset: str, name: str) -> Any:
        """A grid classifier fitted on the clean training split, from the fit cache."""
        runner = self.runner(grid)
        images, labels = runner.data(dataset)[:2]
        params = grid.cell_params(name)
        return runner.classifiers.model(dataset, name, params, images, labels, seed=grid.seed)

    def publish(self, frame: pd.DataFrame) -> Path:
        """Put the table and its detail (``seed-SEED.csv`` and ``.json``) beside the run's outputs
        and rebuild its report.html, which shows them first."""
        from bench.files import write_text_atomic
        from bench.report import rebuild

        path = self.run_dir / f"{grid_name(self.repro.report)}.csv"
        write_text_atomic(path, frame.to_csv(index=False, float_format="%.6g"))
        write_text_atomic(path.with_suffix(".json"), self.repro.detail_json())
        rebuild(self.run_dir)
        return path


def collapse_warning(row: dict[str, Any]) -> str:
    """'; training collapsed: ...' when the stored training summary says so, else ''."""
    training = (row.get("fit_state") or {}).get("training") or {}
    if not training.get("collapsed"):
        return ""
    reasons = [c.get("reason", "") for c in training.get("collapse", [])]
    return f"; training collapsed: {reasons[-1] if reasons else 'constant output'}"


def scores(row: dict[str, Any]) -> dict[str, float]:
    """Mean per-image MSE, PSNR and SSIM of a stored cell row, and the PSNR of its mean MSE."""
    from bench.seeds.common import psnr_of_mse

    return {
        "mse": float(row["mse"]),
        "psnr": float(row["psnr"]),
        "ssim": float(row["ssim"]),
        "psnr_of_mean_mse": psnr_of_mse(float(row["mse"])),
    }


def percent_of(row: dict[str, Any], column: str) -> float | None:
    """A stored accuracy (fraction) in percent; None when the classifier failed."""
    value = row.get(column)
    return None if value is None or pd.isna(value) else 100.0 * float(value)
