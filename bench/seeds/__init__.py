"""Seed-report reproductions: each report's experiments declared as grids run by the runner.

``PROTOCOLS`` is a registry of one protocol per seed report (``s000`` ... ``s004``), each a
function ``run(repro, results) -> pandas.DataFrame``: it runs its grids with
``results.run(grid)`` (the normal runner, store, fit cache, executors and report, in
``OUT/seed-SEED/``), reads the cells back and writes ``OUT/seeds/SEED.csv`` (the columns of
``bench.seeds.common.COLUMNS``: published, ours, difference, tolerance, verdict, ...) and
``OUT/seeds/SEED.json``; the table also goes to ``OUT/seed-SEED/seed-SEED.csv``, which that
folder's report.html shows first. ``reproduce`` ends with each report's aligned table
(:mod:`bench.seeds.presentation`).

``python -m bench reproduce SEED [--budget tiny|quick|full]`` runs one (or ``all``);
``python -m bench run --grid seeds`` runs them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.registry import CLASSIFIERS, DENOISERS, Registry
from bench.seeds.common import BUDGETS, Reproduction, check_budget, has_dataset
from bench.seeds.declared import NARROWING_FLAGS, Launch, Results
from bench.seeds.presentation import format_report

__all__ = [
    "PROTOCOLS",
    "protocol",
    "run",
    "run_all",
    "run_experiments",
    "resolve_reports",
    "check_narrowing",
    "BUDGETS",
    "Reproduction",
    "Launch",
]

PROTOCOLS = Registry("seed protocol", autoload=tuple(f"bench.seeds.s00{i}" for i in range(5)))


def protocol(
    report: str, *, source: str, description: str, datasets: tuple[str, ...], entries: Callable[[str], set[str]]
) -> Callable:
    """Register a seed report's ``run`` under ``report``.

    ``datasets`` are the real data it needs; ``entries(budget)`` the denoisers and classifiers
    its grids run (what ``--set`` may name).
    """

    def decorate(fn: Callable) -> Callable:
        fn.datasets, fn.entries = datasets, entries
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


def check_narrowing(narrowing: dict[str, Any] | None, reports: list[str], budget: str) -> dict[str, dict[str, Any]]:
    """The ``--set`` parameters ({name: {key: value}}) of ``narrowing``; every other flag is a ValueError.

    A seed protocol fixes its datasets, noises, levels, entries and sizes (they are what the
    report used); ``--set`` changes a parameter of an entry that some chosen report runs.
    """
    narrowing = dict(narrowing or {})
    params = narrowing.pop("params", None) or {}
    for key, value in narrowing.items():
        if key not in NARROWING_FLAGS:
            raise ValueError(f"unknown narrowing {key!r}; expected one of: {', '.join(NARROWING_FLAGS)}, params")
        if value is not None:
            raise ValueError(
                f"{NARROWING_FLAGS[key]} cannot narrow the seed protocols: each fixes the datasets, noises, levels, "
                "entries and sizes its report used; choose with 'reproduce SEED --budget tiny|quick|full', change a parameter with --set"
            )
    used = set().union(*(PROTOCOLS.entry(r).factory.entries(budget) for r in reports))
    for name in params:
        if name not in DENOISERS and name not in CLASSIFIERS:
            raise ValueError(f"--set names {name!r}: {DENOISERS.unknown_message(name)}")
        if name not in used:
            raise ValueError(
                f"--set names {name!r}: no chosen seed report runs it; expected one of: {', '.join(sorted(used))}"
            )
    return params


def _check_data(reports: list[str], data_dir: Any) -> None:
    # Fail before anything runs, naming the dataset and the fix.
    for report in reports:
        for name in PROTOCOLS.entry(report).factory.datasets:
            if not has_dataset(name, data_dir):
                raise ValueError(
                    f"seed {report} needs the {name} dataset, not found on the data path; pass --data-dir DIR (or set BENCH_DATA_DIR)"
                )


def run(
    report: str,
    *,
    budget: str = "quick",
    data_dir: Any = None,
    device: str = "auto",
    seed: int = 0,
    out_dir: str | Path = "results",
    log: Callable[[str], None] = print,
    launch: Launch | None = None,
) -> pd.DataFrame:
    """Run the protocol of one seed report; returns its "published vs ours" table."""
    from bench.device import resolve_device

    if report == "all":
        raise ValueError("run() takes one seed report; use run_all() for 'all'")
    [report] = resolve_reports(report)
    check_budget(budget)
    _check_data([report], data_dir)
    launch = launch or Launch()
    repro = Reproduction(report, budget, resolve_device(device), seed, Path(out_dir), log, data_dir)
    results = Results(repro, launch)
    frame = PROTOCOLS.entry(report).factory(repro, results)
    if results.grids:
        repro.extra["run_folder"] = str(results.publish(frame))
        repro.write()
    return frame


def run_all(
    *,
    budget: str = "quick",
    data_dir: Any = None,
    device: str = "auto",
    seed: int = 0,
    out_dir: str | Path = "results",
    log: Callable[[str], None] = print,
    reports: list[str] | None = None,
    executor: Any = None,
    cache_dir: str | None = None,
    checkpoint_every: float | None = None,
    narrowing: dict[str, Any] | None = None,
    argv: list[str] | tuple[str, ...] = (),
) -> dict[str, pd.DataFrame | str]:
    """Run several protocols (default: all); a protocol that fails becomes its one-line error.

    Bad input (budget, report ids, narrowing flags, missing data) raises before any protocol runs.
    ``executor`` (a ``bench.execution.executors.ExecutorSpec``), ``cache_dir`` and ``checkpoint_every`` go to
    the runner; ``narrowing`` holds ``run``'s grid options (see :func:`check_narrowing`).
    """
    from bench.errors import one_line

    reports = reports or PROTOCOLS.names()
    for report in reports:
        resolve_reports(report)
    check_budget(budget)
    params = check_narrowing(narrowing, reports, budget)
    _check_data(reports, data_dir)
    launch = Launch(executor, cache_dir, checkpoint_every, params, tuple(argv))
    results: dict[str, pd.DataFrame | str] = {}
    for report in reports:
        try:
            results[report] = run(
                report,
                budget=budget,
                data_dir=data_dir,
                device=device,
                seed=seed,
                out_dir=out_dir,
                log=log,
                launch=launch,
            )
        except Exception as err:  # one failing protocol must not lose the others' tables
            results[report] = one_line(err)
            log(f"[{report}] failed: {results[report]}")
    return results


def run_experiments(
    reports: list[str],
    budget: str,
    *,
    out_dir: str | Path = "results",
    log: Callable[[str], None] = print,
    **options: Any,
) -> int:
    """:func:`run_all`, then each report's table (:func:`~bench.seeds.presentation.format_report`) or
    its one-line error, and a total; the exit code (0 ok, 1 if any failed)."""
    import time

    start = time.perf_counter()
    results = run_all(reports=reports, budget=budget, out_dir=out_dir, log=log, **options)
    for report, result in results.items():
        log("")
        log(f"seed {report}: failed: {result}" if isinstance(result, str) else format_report(report, result, out_dir))
    failed = sum(isinstance(r, str) for r in results.values())
    log(f"done in {time.perf_counter() - start:.1f} s: {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0
