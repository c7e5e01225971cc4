"""Command line: ``python -m bench run | list | report | reproduce | env``.

Bad input prints one line on stderr and exits 2 before anything runs; a run exits 0 when
every cell is ok and 1 when some failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

__all__ = ["main", "build_parser"]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _classifier_names(text: str) -> list[str]:
    return [] if text.strip() == "none" else _names(text)


def _setting(text: str) -> tuple[str, str, Any]:
    """``NAME.KEY=VALUE`` -> (name, key, value); the value is read as TOML (5000, 0.1, true, "x")."""
    target, sep, raw = text.partition("=")
    name, dot, key = target.strip().rpartition(".")
    if not (sep and dot and name and key):
        raise argparse.ArgumentTypeError(f"--set expects NAME.KEY=VALUE, e.g. dncnn.max_steps=5000; got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word is a string
    return name, key.strip(), value


def _levels(text: str) -> list[float]:
    try:
        return [float(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"levels must be comma-separated numbers, e.g. 0.1,0.3; got {text!r}"
        ) from None


class _Parser(argparse.ArgumentParser):
    """argparse with the house's bad-input rule: one line on stderr, exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _add_grid_options(command: argparse.ArgumentParser) -> None:
    """The options that choose and narrow a grid (``run`` and ``plan``)."""
    command.add_argument(
        "--grid", default="quick", help="smoke | quick | reference | full | seeds | PATH.toml (default: quick)"
    )
    command.add_argument("--datasets", type=_names, help="comma-separated dataset names (narrows the grid)")
    command.add_argument("--noises", type=_names, help="comma-separated noise kinds")
    command.add_argument("--denoisers", type=_names, help="comma-separated denoiser names")
    command.add_argument("--levels", type=_levels, help="comma-separated noise levels for every chosen noise")
    command.add_argument(
        "--classifiers",
        type=_classifier_names,
        help="comma-separated classifier names, or 'none' to skip classification",
    )
    command.add_argument("--set", type=_setting, action="append", default=[], metavar="NAME.KEY=VALUE",
                         help="a denoiser's or classifier's parameter, e.g. dncnn.max_steps=5000 (repeatable)")  # fmt: skip
    command.add_argument("--n-train", type=int, help="training images per fit (overrides the grid)")
    command.add_argument("--n-test", type=int, help="test images scored per cell (overrides the grid)")
    command.add_argument("--out", default="results", help="output folder (default: results/)")
    command.add_argument(
        "--data-dir",
        help="folder with dataset files (else $BENCH_DATA_DIR, ~/.cache/denoise-bench, /usr/share/datasets)",
    )
    command.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    command.add_argument("--seed", type=int, help="base seed of every random draw (default: the grid's, 0)")
    _add_plugin_option(command)
    command.add_argument("--executor", default="local", help="local | dask | slurm (default: local)")
    command.add_argument("--workers", type=int, default=1,
                         help="worker processes (local) or LocalCluster workers (dask); default 1: in this process")  # fmt: skip


def _add_plugin_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE.py",
                         help="import a module or file that registers your own entries first (repeatable)")  # fmt: skip


def _add_executor_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--threads", type=int, help="CPU threads per worker (default: cores / workers)")
    run.add_argument("--scheduler", help="join a running Dask cluster at tcp://HOST:PORT (--executor dask)")
    run.add_argument("--slurm-partition", help="SLURM partition of the worker jobs (--executor slurm)")
    run.add_argument("--slurm-time", default="04:00:00", help="wall time of each SLURM job (default: 04:00:00)")
    run.add_argument("--slurm-memory", default="16GB", help="memory of each SLURM job (default: 16GB)")
    run.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per SLURM job (default: 0)")
    run.add_argument("--jobs", type=int, default=1, help="SLURM jobs to start (default: 1)")
    run.add_argument("--cache-dir", help="fitted models (default: OUT/GRID/cache; a shared filesystem across machines)")
    run.add_argument(
        "--no-estimate", action="store_true", help="skip the plan's cost estimate (a short probe) before the run"
    )
    run.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                     help="seconds between mid-fit checkpoints of neural fits (default: 300)")  # fmt: skip


def executor_spec(args: argparse.Namespace):
    """The ``ExecutorSpec`` the options ask for (ValueError on bad values)."""
    from bench.executors import ExecutorSpec

    return ExecutorSpec(
        name=args.executor, workers=args.workers, threads=getattr(args, "threads", None),
        scheduler=getattr(args, "scheduler", None), slurm_partition=getattr(args, "slurm_partition", None),
        slurm_time=getattr(args, "slurm_time", "04:00:00"), slurm_memory=getattr(args, "slurm_memory", "16GB"),
        gpus_per_job=getattr(args, "gpus_per_job", 0), jobs=getattr(args, "jobs", 1),
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="Benchmark image denoisers and what they do for classifiers.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a grid and write results/<grid>/leaderboard.csv")
    _add_grid_options(run)
    run.add_argument("--download", action="store_true", help="download missing datasets with torchvision")
    run.add_argument("--against", metavar="RUN_DIR",
                     help="rank the grid's denoisers among a stored run's rows (e.g. results/reference) without rerunning it")  # fmt: skip
    _add_executor_options(run)

    plan = commands.add_parser("plan", help="cells, fits, budgets and estimated cost of a grid, from a short probe")
    _add_grid_options(plan)
    plan.add_argument("--threads", type=int, help="CPU threads per worker (default: cores / workers)")
    scaling = commands.add_parser("scaling", help="one grid's wall time on each executor, as throughput ratios")
    scaling.add_argument("--grid", default="quick", help="a named grid or .toml file (default: quick)")
    scaling.add_argument("--workers", type=int, default=2, help="workers of the parallel executors (default: 2)")
    scaling.add_argument("--datasets", type=_names, help="comma-separated dataset names (narrows the grid)")
    scaling.add_argument("--data-dir", help="folder with dataset files")
    scaling.add_argument("--no-dask", action="store_true", help="leave the Dask LocalCluster out")
    listing = commands.add_parser("list", help="every registered denoiser, classifier, dataset, noise and grid")
    _add_plugin_option(listing)
    check = commands.add_parser("check-entry", help="run the registry contract on one denoiser or classifier")
    check.add_argument("name", help="a registered name (with --plugin for your own)")
    _add_plugin_option(check)
    report = commands.add_parser("report", help="rebuild the CSVs and HTML of a run folder from its store")
    report.add_argument("run_dir", help="a folder written by 'run', e.g. results/quick")
    compare = commands.add_parser(
        "compare", help="per-cell PSNR, SSIM and accuracy differences of two run folders (B minus A)"
    )
    compare.add_argument("run_a", metavar="RUN_A", help="a folder written by 'run', e.g. results/quick")
    compare.add_argument("run_b", metavar="RUN_B", help="the run folder compared with RUN_A")
    commands.add_parser("speed", help="throughput of metrics against scikit-image's per-image loop, as ratios")
    reproduce = commands.add_parser(
        "reproduce", help="re-run a seed report's experiments: results/seeds/SEED.csv, published vs ours"
    )
    reproduce.add_argument("report", help="000 | 001 | 002 | 003 | 004 | all")
    reproduce.add_argument(
        "--budget",
        default="quick",
        help="tiny (seconds) | quick (minutes on a CPU) | full (the report's protocol, a GPU); default quick",
    )
    reproduce.add_argument(
        "--out", default="results", help="output folder; tables go to OUT/seeds/ (default: results/)"
    )
    reproduce.add_argument(
        "--data-dir",
        help="folder with dataset files (else $BENCH_DATA_DIR, ~/.cache/denoise-bench, /usr/share/datasets)",
    )
    reproduce.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    reproduce.add_argument("--seed", type=int, default=0, help="base seed of every random draw (default: 0)")
    env = commands.add_parser("env", help="versions, device and where data was found")
    env.add_argument("--data-dir", help="also search this folder")
    return parser


def _grid_from_args(args: argparse.Namespace):
    """The grid the options name, narrowed and seeded (ValueError on bad input)."""
    from bench.grids import resolve_grid

    grid = resolve_grid(args.grid, data_dir=args.data_dir)
    narrowed = grid.narrow(
        datasets=args.datasets, noises=args.noises, denoisers=args.denoisers, classifiers=args.classifiers, params=_settings(args.set),
        levels=args.levels, n_train=args.n_train, n_test=args.n_test,
    )  # fmt: skip
    if narrowed.datasets != grid.datasets:  # the named grid's description may no longer hold
        narrowed = replace(narrowed, description="")
    return narrowed if args.seed is None else replace(narrowed, seed=args.seed)


def _command_run(args: argparse.Namespace) -> int:
    from bench.runner import run_grid

    if args.grid == "seeds":
        return _run_seeds(args)
    from models.training import tune_cpu_allocator

    grid = _grid_from_args(args)
    spec = executor_spec(args)
    if args.against:
        from bench.against import against_grid_name, check_matches, reference_spec

        check_matches(grid, reference_spec(args.against), args.against)
        grid = replace(grid, name=against_grid_name(grid))
    tune_cpu_allocator()  # process-wide: this process is the benchmark
    cells = len(grid.cells())
    print(
        f"grid {grid.name}: {cells} cells ({len(grid.datasets)} datasets, {len(grid.denoisers)} denoisers) -> {args.out}/{grid.name}/"
    )
    if grid.description:
        print(f"  {grid.description}")
    summary = run_grid(
        grid, out_dir=args.out, data_dir=args.data_dir, download=args.download, device=args.device, argv=sys.argv[1:],
        executor=spec, cache_dir=args.cache_dir, checkpoint_every=args.checkpoint_every,
        estimate=None if args.no_estimate else _estimate_line(grid, spec), plugins=args.plugin,
        start_from=args.against,
    )  # fmt: skip
    if args.against:
        _rank_against(summary.out_dir, grid.denoisers)
    print(
        f"{'interrupted' if summary.interrupted else 'done'} in {summary.seconds:.1f} s: {summary.ok} ok, "
        f"{summary.failed} failed, {summary.skipped} already done; leaderboard: {summary.out_dir / 'leaderboard.csv'}"
    )
    return summary.exit_code


def _rank_against(run_dir: Path, denoisers) -> None:
    from bench.against import format_ranking, ranking
    from bench.store import Store

    with Store(run_dir / "store.sqlite") as store:
        frame = ranking(store, list(denoisers))
    frame.to_csv(run_dir / "against.csv", index=False, float_format="%.6g")
    print(format_ranking(frame))
    print(f"ranking: {run_dir / 'against.csv'}; every row, the reference's too: {run_dir / 'report.html'}")


def _plan(args: argparse.Namespace, grid, spec):
    from bench.plan import make_plan
    from bench.store import Store
    from bench.work import RunContext

    run_dir = Path(args.out) / grid.name
    store_path = run_dir / "store.sqlite"
    done = set()
    if store_path.is_file():
        with Store(store_path) as store:
            done = store.finished_keys()
    context = RunContext(
        base_seed=grid.seed, n_train=grid.n_train, n_test=grid.n_test, device=args.device,
        cache_dir=str(run_dir / "cache"), data_dir=args.data_dir,
    )  # fmt: skip
    return make_plan(grid, context=context, workers=spec.workers, threads=spec.cpu_threads(), done=done), store_path


def _estimate_line(grid, spec):
    """The plan's one-line estimate, for ``run`` to print once its executor is up."""
    from bench.plan import make_plan, summary_line

    def estimate(context, done) -> str:
        return summary_line(
            make_plan(grid, context=context, workers=spec.workers, threads=spec.cpu_threads(), done=done)
        )

    return estimate


def _command_plan(args: argparse.Namespace) -> int:
    from bench.plan import format_plan

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


def _run_seeds(args: argparse.Namespace) -> int:
    """``run --grid seeds``: every seed protocol, the full budget on CUDA and quick elsewhere."""
    from bench.core import resolve_device

    budget = "full" if resolve_device(args.device).type == "cuda" else "quick"
    print(
        f"grid seeds: every seed report's protocol, budget {budget} ('python -m bench reproduce all --budget ...' to choose) -> {args.out}/seeds/"
    )
    args = argparse.Namespace(
        report="all", budget=budget, out=args.out, data_dir=args.data_dir, device=args.device, seed=args.seed or 0
    )
    return _command_reproduce(args)


def _command_reproduce(args: argparse.Namespace) -> int:
    import time

    from bench.seeds import resolve_reports, run_all

    start = time.perf_counter()
    results = run_all(reports=resolve_reports(args.report), budget=args.budget, data_dir=args.data_dir, device=args.device,
                      seed=args.seed, out_dir=args.out, log=print)  # fmt: skip
    for report, result in results.items():
        print(
            f"seed {report}: "
            + (
                f"failed: {result}"
                if isinstance(result, str)
                else f"{len(result)} rows -> {args.out}/seeds/{report}.csv"
            )
        )
    failed = sum(isinstance(r, str) for r in results.values())
    print(f"done in {time.perf_counter() - start:.1f} s: {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0


def _command_list(args: argparse.Namespace) -> int:
    from bench.named_grids import NAMED_GRIDS
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


def _command_scaling(args: argparse.Namespace) -> int:
    from bench.grids import resolve_grid
    from bench.scaling import classical_cells, format_scaling, measure

    grid = classical_cells(resolve_grid(args.grid, data_dir=args.data_dir).narrow(datasets=args.datasets))
    print(f"grid {grid.name}: {len(grid.cells())} classical cells, no classifiers")
    print(format_scaling(measure(grid, workers=args.workers, data_dir=args.data_dir, dask=not args.no_dask)))
    return 0


def _command_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import main_compare

    return main_compare(args.run_a, args.run_b)


def _command_check_entry(args: argparse.Namespace) -> int:
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


def _command_report(args: argparse.Namespace) -> int:
    from bench.report import rebuild

    for path in rebuild(args.run_dir):
        print(path)
    return 0


def _command_env(args: argparse.Namespace) -> int:
    import torch

    from bench.core import resolve_device, versions
    from bench.data import find, search_path
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


def _command_speed(args: argparse.Namespace) -> int:
    from bench.speed import main as speed_main

    return speed_main()


_COMMANDS = {
    "run": _command_run, "plan": _command_plan, "list": _command_list, "check-entry": _command_check_entry, "scaling": _command_scaling, "compare": _command_compare, "report": _command_report, "env": _command_env, "speed": _command_speed,
    "reproduce": _command_reproduce,
}  # fmt: skip


def _show_training_progress() -> None:
    """Long fits log an epoch line every half minute (models.training.Progress): print them."""
    logger = logging.getLogger("bench.training")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("  %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _show_training_progress()
    try:
        if hasattr(args, "plugin"):
            from bench.plugins import load_plugins

            args.plugin = load_plugins(args.plugin)  # before any grid is built or name looked up
        return _COMMANDS[args.command](args)
    except (ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
