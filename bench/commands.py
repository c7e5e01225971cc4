"""What each ``python -m bench`` subcommand does; ``bench.cli`` parses the arguments.

Every function takes the parsed ``argparse.Namespace`` and returns the exit status; bad input
raises ValueError (the CLI prints it as one line and exits 2).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

__all__ = [
    "command_run",
    "command_plan",
    "command_reproduce",
    "command_list",
    "command_scaling",
    "command_compare",
    "command_check_entry",
    "command_report",
    "command_env",
    "executor_spec",
    "default_workers",
]


def executor_spec(args: argparse.Namespace):
    """The ``ExecutorSpec`` the options ask for (ValueError on bad values)."""
    from bench.execution.executors import ExecutorSpec

    workers = args.workers if args.workers is not None else default_workers(args)
    return ExecutorSpec(
        name=args.executor,
        workers=workers,
        threads=getattr(args, "threads", None),
        scheduler=getattr(args, "scheduler", None),
        slurm_partition=getattr(args, "slurm_partition", None),
        slurm_time=getattr(args, "slurm_time", "04:00:00"),
        slurm_memory=getattr(args, "slurm_memory", "16GB"),
        gpus_per_job=getattr(args, "gpus_per_job", 0),
        jobs=getattr(args, "jobs", 1),
    )


def default_workers(args: argparse.Namespace) -> int:
    """``--workers`` left out: two local worker processes of one thread each for the quick grid
    on a CPU with two or more cores (its many small fits and cells run side by side, where one
    process gains little from a second thread on 28x28 images); else 1, in this process."""
    import os

    import torch

    if args.executor != "local" or getattr(args, "grid", None) != "quick" or getattr(args, "threads", None):
        return 1
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        return 1
    return min(2, len(os.sched_getaffinity(0)))


def _grid_from_args(args: argparse.Namespace):
    """The grid the options name, narrowed and seeded (ValueError on bad input)."""
    from bench.grids import resolve_grid

    grid = resolve_grid(args.grid, data_dir=args.data_dir)
    narrowed = grid.narrow(
        datasets=args.datasets,
        noises=args.noises,
        denoisers=args.denoisers,
        classifiers=args.classifiers,
        params=_settings(args.set),
        levels=args.levels,
        n_train=args.n_train,
        n_test=args.n_test,
    )
    if narrowed.datasets != grid.datasets:  # the named grid's description may no longer hold
        narrowed = replace(narrowed, description="")
    return narrowed if args.seed is None else replace(narrowed, seed=args.seed)


def command_run(args: argparse.Namespace) -> int:
    from bench.execution.runner import run_grid

    if args.grid == "seeds":
        return _run_seeds(args)
    from bench.device import tune_cpu_allocator

    grid = _grid_from_args(args)
    spec = executor_spec(args)
    if args.against:
        from bench.report.against import against_grid_name, check_matches, reference_spec

        check_matches(grid, reference_spec(args.against), args.against)
        grid = replace(grid, name=against_grid_name(grid))
    _check_device_and_data(grid, args, spec)
    tune_cpu_allocator()  # process-wide: this process is the benchmark
    cells = len(grid.cells())
    print(
        f"grid {grid.name}: {cells} cells ({len(grid.datasets)} datasets, {len(grid.denoisers)} denoisers) -> {args.out}/{grid.name}/"
    )
    if grid.description:
        print(f"  {grid.description}")
    for dataset in grid.datasets:
        for name, why in grid.left_out(dataset):
            print(f"  left out on {dataset}: {name}: {why}")
    summary = run_grid(
        grid,
        out_dir=args.out,
        data_dir=args.data_dir,
        download=args.download,
        device=args.device,
        argv=sys.argv[1:],
        executor=spec,
        cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every,
        estimate=_estimate_line(grid, spec) if _wants_estimate(args) else None,
        plugins=args.plugin,
        start_from=args.against,
    )
    if args.against:
        _rank_against(summary.out_dir, grid.denoisers)
    print(
        f"{'interrupted' if summary.interrupted else 'done'} in {summary.seconds:.1f} s: {summary.ok} ok, "
        f"{summary.failed} failed, {summary.skipped} already done; leaderboard: {summary.out_dir / 'leaderboard.csv'}"
    )
    return summary.exit_code


def _check_device_and_data(grid, args: argparse.Namespace, spec) -> None:
    """The device and every dataset of the grid, checked before the run's first line is printed
    (ValueError naming the bad one). A cluster's workers, not this machine, need them there."""
    from bench.data import load
    from bench.device import resolve_device

    if args.data_dir is not None and Path(args.data_dir).exists() and not Path(args.data_dir).is_dir():
        raise ValueError(f"--data-dir {args.data_dir} is a file; expected the folder that holds the dataset files")
    if spec.remote:
        return
    resolve_device(args.device)
    for name in grid.datasets:
        load(name, data_dir=args.data_dir, download=args.download)  # cached: the run reuses what this loads


def _rank_against(run_dir: Path, denoisers) -> None:
    from bench.execution.store import Store
    from bench.report.against import format_ranking, ranking

    with Store(run_dir / "store.sqlite") as store:
        frame = ranking(store, list(denoisers))
    frame.to_csv(run_dir / "against.csv", index=False, float_format="%.6g")
    print(format_ranking(frame))
    print(f"ranking: {run_dir / 'against.csv'}; every row, the reference's too: {run_dir / 'report.html'}")


def _plan(args: argparse.Namespace, grid, spec):
    from bench.cost.plan import make_plan
    from bench.execution.store import Store
    from bench.execution.workspace import RunContext

    run_dir = Path(args.out) / grid.name
    store_path = run_dir / "store.sqlite"
    done = set()
    if store_path.is_file():
        with Store(store_path) as store:
            done = store.finished_keys()
    cache_dir = getattr(args, "cache_dir", None)
    context = RunContext.for_grid(grid, run_dir, cache_dir=cache_dir, device=args.device, data_dir=args.data_dir)
    return make_plan(grid, context=context, workers=spec.workers, threads=spec.cpu_threads(), done=done), store_path


def _wants_estimate(args: argparse.Namespace) -> bool:
    """``--estimate``/``--no-estimate``; by default every grid but ``quick``, which runs in minutes:
    there the probe (small fits of each of its 27 entries, about 35 s of one core) would add a fifth to the run."""
    return args.estimate if args.estimate is not None else args.grid != "quick"


def _estimate_line(grid, spec):
    """The plan's one-line estimate, for ``run`` to print once its executor is up."""
    from bench.cost.plan import make_plan
    from bench.cost.plan_table import summary_line

    def estimate(context, done) -> str:
        return summary_line(
            make_plan(grid, context=context, workers=spec.workers, threads=spec.cpu_threads(), done=done)
        )

    return estimate


def command_plan(args: argparse.Namespace) -> int:
    from bench.cost.plan_table import format_plan

    if args.grid == "seeds":
        raise ValueError("plan takes a grid of cells; the seed protocols ('--grid seeds') have no plan")
    grid = _grid_from_args(args)
    plan, store_path = _plan(args, grid, executor_spec(args))
    print(format_plan(plan, store_path))
    return 0


def _settings(settings: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, key, value in settings:
        out.setdefault(name, {})[key] = value
    return out


def _seed_narrowing(args: argparse.Namespace) -> dict[str, Any]:
    """The grid options of ``run`` as the seed protocols take them (all but --set are rejected there)."""
    names = ("datasets", "noises", "denoisers", "levels", "classifiers", "n_train", "n_test")
    return {name: getattr(args, name, None) for name in names} | {"params": _settings(getattr(args, "set", []))}


def _run_seeds(args: argparse.Namespace) -> int:
    """``run --grid seeds``: every seed protocol, the full budget on CUDA and quick elsewhere."""
    from bench.device import resolve_device
    from bench.seeds import resolve_reports, run_experiments

    budget = "full" if resolve_device(args.device).type == "cuda" else "quick"
    print(
        f"grid seeds: every seed report's protocol, budget {budget} ('python -m bench reproduce all --budget ...' to choose) -> {args.out}/seeds/"
    )
    return run_experiments(
        resolve_reports("all"),
        budget,
        out_dir=args.out,
        data_dir=args.data_dir,
        device=args.device,
        seed=args.seed or 0,
        executor=executor_spec(args),
        cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every,
        narrowing=_seed_narrowing(args),
        argv=sys.argv[1:],
    )


def command_reproduce(args: argparse.Namespace) -> int:
    from bench.seeds import resolve_reports, run_experiments

    return run_experiments(
        resolve_reports(args.report),
        args.budget,
        out_dir=args.out,
        data_dir=args.data_dir,
        device=args.device,
        seed=args.seed,
        executor=executor_spec(args),
        cache_dir=args.cache_dir,
        checkpoint_every=args.checkpoint_every,
        narrowing=_seed_narrowing(args),
        argv=sys.argv[1:],
    )


def command_list(args: argparse.Namespace) -> int:
    from bench.grids.named import NAMED_GRIDS
    from bench.registry import CLASSIFIERS, DATASETS, DENOISERS, NOISES

    for title, registry in (
        ("denoisers", DENOISERS),
        ("classifiers", CLASSIFIERS),
        ("datasets", DATASETS),
        ("noises", NOISES),
    ):
        print(f"{title}:")
        for name in registry.names():
            entry = registry.entry(name)
            print(f"  {name:<22} {entry.description}  [{entry.source}]")
    print("grids:")
    for name, fn in NAMED_GRIDS.items():
        print(f"  {name:<22} {(fn.__doc__ or '').strip().splitlines()[0]}")
    print(
        f"  {'seeds':<22} each seed report's experiments under its own protocol, published vs ours (python -m bench reproduce)"
    )
    return 0


def command_scaling(args: argparse.Namespace) -> int:
    from bench.cost.scaling import classical_cells, format_scaling, measure
    from bench.grids import resolve_grid

    grid = classical_cells(resolve_grid(args.grid, data_dir=args.data_dir).narrow(datasets=args.datasets))
    print(f"grid {grid.name}: {len(grid.cells())} classical cells, no classifiers")
    print(format_scaling(measure(grid, workers=args.workers, data_dir=args.data_dir, dask=not args.no_dask)))
    return 0


def command_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import main_compare

    return main_compare(args.run_a, args.run_b)


def command_check_entry(args: argparse.Namespace) -> int:
    from bench.contract import check_entry

    checks = check_entry(args.name)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}" + (f": {check.message}" if check.message else ""))
    failed = sum(not c.ok for c in checks)
    print(
        f"{args.name}: {len(checks) - failed} of {len(checks)} checks passed"
        + ("" if failed else "; fit to be benchmarked")
    )
    return 1 if failed else 0


def _report_seeds(args: argparse.Namespace) -> int:
    """``report DIR`` on a folder of seed results: every seed run folder's page again, and the README's seed block."""
    from bench.report import rebuild
    from bench.report.excerpt import readme_block, update_readme
    from bench.seeds.excerpt import SEEDS_END, SEEDS_START, seeds_excerpt

    markers = (SEEDS_START, SEEDS_END)
    if args.readme:
        readme_block(args.readme, markers)  # a README without the block is refused before anything is rewritten
    folder = Path(args.run_dir)
    for run_dir in sorted({*folder.glob("seed-*/store.sqlite"), *folder.parent.glob("seed-*/store.sqlite")}):
        for path in rebuild(run_dir.parent):
            print(path)
    if args.readme:
        print(update_readme(args.readme, seeds_excerpt(folder, Path(args.readme).parent), markers))
    return 0


def command_report(args: argparse.Namespace) -> int:
    from bench.report import rebuild
    from bench.report.excerpt import END, START, readme_block, readme_excerpt, update_readme
    from bench.report.published import PUBLISHED_END, PUBLISHED_START, has_published, published_excerpt
    from bench.seeds.excerpt import has_seed_tables

    # A folder of seed reports' results (no store of its own) has its own README block.
    if not (Path(args.run_dir) / "store.sqlite").is_file() and has_seed_tables(args.run_dir):
        return _report_seeds(args)
    # A run with published figures beside its rows (natural images) has its own README block.
    literature = has_published(args.run_dir)
    markers, excerpt = (
        ((PUBLISHED_START, PUBLISHED_END), published_excerpt) if literature else ((START, END), readme_excerpt)
    )
    if args.readme:
        readme_block(args.readme, markers)  # a README without the block is refused before anything is rewritten
    for path in rebuild(args.run_dir):
        print(path)
    if args.readme:
        print(update_readme(args.readme, excerpt(args.run_dir), markers))
    return 0


def command_env(args: argparse.Namespace) -> int:
    import torch

    from bench.data import find, search_path
    from bench.device import resolve_device
    from bench.machine import versions
    from bench.registry import DATASETS

    for name, version in versions().items():
        print(f"{name:<14} {version}")
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    print(f"{'device':<14} {resolve_device('auto')} (CUDA: {cuda}; {torch.get_num_threads()} CPU threads)")
    print(f"{'data search':<14} {', '.join(str(p) for p in search_path(args.data_dir))}")
    for name in DATASETS.names():
        where = "embedded" if name == "digits" else (find(name, args.data_dir) or "not found (use --download)")
        print(f"  {name:<12} {where}")
    return 0
