"""Seed-report reproductions: each report's experiments re-run under its own protocol.

``PROTOCOLS`` is a registry of one protocol per seed report (``s000`` ... ``s004``), each a
function ``run(*, budget, data_dir, device, seed, out_dir, log) -> pandas.DataFrame`` that
writes ``OUT/seeds/SEED.csv`` (columns seed, experiment, metric, published, ours, n_test,
protocol_note) and ``OUT/seeds/SEED.json`` (learning curves, sweeps, settings).

``python -m bench reproduce SEED [--budget tiny|quick|full]`` runs one (or ``all``);
``python -m bench run --grid seeds`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.registry import Registry
from bench.seeds.common import BUDGETS, Reproduction, check_budget, has_dataset

__all__ = ["PROTOCOLS", "protocol", "run", "run_all", "resolve_reports", "BUDGETS", "Reproduction"]

PROTOCOLS = Registry("seed protocol", autoload=tuple(f"bench.seeds.s00{i}" for i in range(5)))


def protocol(report: str, *, source: str, description: str, datasets: tuple[str, ...]) -> Callable:
    """Register a seed report's ``run`` function under ``report``; ``datasets`` are the real data it needs."""

    def decorate(fn: Callable) -> Callable:
        fn.datasets = datasets
        return PROTOCOLS.register(report, source=source, description=description)(fn)

    return decorate


def resolve_reports(report: str) -> list[str]:
    """``all`` -> every registered id; an id -> [id]; else a one-line ValueError with the choices."""
    names = PROTOCOLS.names()
    if report == "all":
        return names
    if report not in names:
        raise ValueError(f"unknown seed report {report!r}; expected one of: {', '.join(names)}, all")
    return [report]


def _check_data(reports: list[str], data_dir: Any) -> None:
    # Fail before anything runs, naming the dataset and the fix.
    for report in reports:
        for name in PROTOCOLS.entry(report).factory.datasets:
            if not has_dataset(name, data_dir):
                raise ValueError(
                    f"seed {report} needs the {name} dataset, not found on the data path; pass --data-dir DIR (or set BENCH_DATA_DIR)"
                )


def run(report: str, *, budget: str = "quick", data_dir: Any = None, device: str = "auto", seed: int = 0,
        out_dir: str | Path = "results", log: Callable[[str], None] = print) -> pd.DataFrame:  # fmt: skip
    """Run the protocol of one seed report; returns its "published vs ours" table."""
    from bench.core import resolve_device

    if report == "all":
        raise ValueError("run() takes one seed report; use run_all() for 'all'")
    [report] = resolve_reports(report)
    check_budget(budget)
    _check_data([report], data_dir)
    fn = PROTOCOLS.entry(report).factory
    return fn(
        budget=budget, data_dir=data_dir, device=resolve_device(device), seed=seed, out_dir=Path(out_dir), log=log
    )


def run_all(*, budget: str = "quick", data_dir: Any = None, device: str = "auto", seed: int = 0, out_dir: str | Path = "results",
            log: Callable[[str], None] = print, reports: list[str] | None = None) -> dict[str, pd.DataFrame | str]:  # fmt: skip
    """Run several protocols (default: all); a protocol that fails becomes its one-line error.

    Bad input (budget, report ids, missing data) raises before any protocol runs.
    """
    from bench.core import one_line

    reports = reports or PROTOCOLS.names()
    for report in reports:
        resolve_reports(report)
    check_budget(budget)
    _check_data(reports, data_dir)
    results: dict[str, pd.DataFrame | str] = {}
    for report in reports:
        try:
            results[report] = run(
                report, budget=budget, data_dir=data_dir, device=device, seed=seed, out_dir=out_dir, log=log
            )
        except Exception as err:  # one failing protocol must not lose the others' tables
            results[report] = one_line(err)
            log(f"[{report}] failed: {results[report]}")
    return results
