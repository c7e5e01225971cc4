"""Command line: ``python -m bench run | plan | list | check-entry | report | compare | reproduce | speed | scaling | env``.

Bad input prints one line on stderr and exits 2 before anything runs; a run exits 0 when
every cell is ok and 1 when some failed. A fault of the run store or a full disk, whenever it
happens, is one line on stderr too, and exit 2: every cell stored before it is kept.
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
from typing import Any

from bench import commands
from bench.commands import _settings  # noqa: F401 - --set's parsing, tested beside _setting
from bench.logs import show_training_progress
from bench.params import parse_assignment

__all__ = ["main", "build_parser"]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _classifier_names(text: str) -> list[str]:
    return [] if text.strip() == "none" else _names(text)


def _setting(text: str) -> tuple[str, str, Any]:
    """``NAME.KEY=VALUE`` -> (name, key, value); the value is read as TOML (5000, 0.1, true, "x")."""
    try:
        target, value = parse_assignment(text)
    except ValueError:
        target, value = "", None
    name, dot, key = target.rpartition(".")
    if not (dot and name and key):
        raise argparse.ArgumentTypeError(f"--set expects NAME.KEY=VALUE, e.g. dncnn.max_steps=5000; got {text!r}")
    return name, key.strip(), value


def _levels(text: str) -> list[float]:
    try:
        return [float(part) for part in _names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"levels must be comma-separated numbers, e.g. 0.1,0.3; got {text!r}"
        ) from None


def _seconds(text: str) -> float:
    """A positive, finite number of seconds (``--checkpoint-every``)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, e.g. 300; got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with the house's bad-input rule: one line on stderr, exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _add_grid_options(command: argparse.ArgumentParser) -> None:
    """The options that choose and narrow a grid (``run`` and ``plan``)."""
    command.add_argument(
        "--grid",
        default="quick",
        help="smoke | quick | reference | full | natural | seeds | PATH.toml (default: quick)",
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
    command.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="a denoiser's or classifier's parameter, e.g. dncnn.max_steps=5000 (repeatable)",
    )
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
    command.add_argument(
        "--workers",
        type=int,
        help="worker processes (local) or LocalCluster workers (dask); default: 2 local processes of one thread "
        "for the quick grid on a CPU of 2+ cores, else 1, in this process",
    )


def _add_plugin_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE.py",
        help="import a module or file that registers your own entries first (repeatable)",
    )


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
        "--estimate",
        action=argparse.BooleanOptionalAction,
        help="print the plan's cost estimate (a short probe) before the run (default: yes, except on the quick "
        "grid, whose probe would add a fifth to the run)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=_seconds,
        metavar="SECONDS",
        help="seconds between mid-fit checkpoints of neural fits (default: 300)",
    )


def _add_reproduce(commands) -> None:
    """``reproduce SEED``: a seed report's declared experiments, published numbers beside ours."""
    reproduce = commands.add_parser(
        "reproduce", help="re-run a seed report's experiments: results/seeds/SEED.csv, published vs ours"
    )
    reproduce.add_argument("report", help="000 | 001 | 002 | 003 | 004 | all")
    reproduce.add_argument(
        "--budget",
        default="quick",
        help=(
            "every budget runs the report's own protocol; tiny (seconds) and quick (minutes on a CPU) cut"
            " data and epochs, and each row says what was cut; full runs all of it (hours on a CPU; 000 needs"
            " a GPU); default quick"
        ),
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
    reproduce.add_argument(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="a parameter of an entry the seed's grids run, e.g. median.tune_images=4 (repeatable)",
    )
    reproduce.add_argument("--executor", default="local", help="local | dask | slurm (default: local)")
    reproduce.add_argument(
        "--workers", type=int, default=1, help="worker processes (local) or LocalCluster workers (dask)"
    )
    _add_executor_options(reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description="Benchmark image denoisers and what they do for classifiers.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a grid and write results/<grid>/leaderboard.csv")
    _add_grid_options(run)
    run.add_argument(
        "--download", action="store_true", help="download missing datasets (torchvision; the natural sets from GitHub)"
    )
    run.add_argument(
        "--against",
        metavar="RUN_DIR",
        help="rank the grid's denoisers among a stored run's rows (e.g. results/reference) without rerunning it",
    )
    _add_executor_options(run)

    plan = commands.add_parser("plan", help="cells, fits, budgets and estimated cost of a grid, from a short probe")
    _add_grid_options(plan)
    plan.add_argument("--threads", type=int, help="CPU threads per worker (default: cores / workers)")
    plan.add_argument(
        "--cache-dir", help="fitted models, as the run would use (default: OUT/GRID/cache): cached fits cost nothing"
    )
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
    report.add_argument(
        "run_dir", help="a folder written by 'run', e.g. results/quick, or one of seed results (results/seeds)"
    )
    report.add_argument(
        "--readme",
        metavar="PATH",
        help="also rewrite this README's excerpt block (leaderboard, published or seeds) from the folder's CSVs",
    )
    compare = commands.add_parser(
        "compare", help="per-cell PSNR, SSIM and accuracy differences of two run folders (B minus A)"
    )
    compare.add_argument("run_a", metavar="RUN_A", help="a folder written by 'run', e.g. results/quick")
    compare.add_argument("run_b", metavar="RUN_B", help="the run folder compared with RUN_A")
    # `speed` parses its own options (bench.cost.speed: --device, --n-images, --repeats, --threads, --quick).
    commands.add_parser("speed", help="every classical entry's and metric's images/s beside its reference, as ratios")
    _add_reproduce(commands)
    env = commands.add_parser("env", help="versions, device and where data was found")
    env.add_argument("--data-dir", help="also search this folder")
    return parser


_COMMANDS = {
    "run": commands.command_run,
    "plan": commands.command_plan,
    "list": commands.command_list,
    "check-entry": commands.command_check_entry,
    "scaling": commands.command_scaling,
    "compare": commands.command_compare,
    "report": commands.command_report,
    "env": commands.command_env,
    "reproduce": commands.command_reproduce,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["speed"]:
        from bench.cost.speed import main as speed_main

        return speed_main(argv[1:])
    args = build_parser().parse_args(argv)
    show_training_progress()
    try:
        if hasattr(args, "plugin"):
            from bench.registry import load_plugins

            args.plugin = load_plugins(args.plugin)  # before any grid is built or name looked up
        return _COMMANDS[args.command](args)
    except (ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f"writing {err.filename}" if err.filename else "writing"
        advice = "free disk space and rerun the same command: every cell stored so far is kept"
        print(f"error: {where} failed: no space left on the device ({err.strerror}); {advice}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
