"""The Python API: ``bench.run`` a grid (with your own denoisers) and ``bench.load_results``.

>>> import bench
>>> callable(bench.run) and callable(bench.load_results)
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.estimator import Denoiser

__all__ = ["run", "load_results"]


def _entry_name(denoiser: Any) -> str:
    cls = denoiser if isinstance(denoiser, type) else type(denoiser)
    return getattr(cls, "name", "") or cls.__name__.lower()


def _register(denoiser: Any) -> tuple[str, dict[str, Any], str | None]:
    """(registry name, parameters, module workers must import) of a name, class or instance."""
    from bench.registry import DENOISERS

    if isinstance(denoiser, str):
        return denoiser, {}, None
    cls = denoiser if isinstance(denoiser, type) else type(denoiser)
    if not issubclass(cls, Denoiser):
        raise ValueError(f"denoiser {denoiser!r} is not a bench.estimator.Denoiser subclass or instance, nor a name")
    name = _entry_name(denoiser)
    if name not in DENOISERS:
        summary = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
        DENOISERS.register(name, source=f"{cls.__module__}.{cls.__qualname__}", description=summary)(cls)
    elif DENOISERS.entry(name).factory is not cls:
        raise ValueError(
            f"denoiser name {name!r} is taken by another entry; set a different `name` on {cls.__qualname__}"
        )
    params = {} if isinstance(denoiser, type) else denoiser.get_params()
    return name, params, None if cls.__module__ == "__main__" else cls.__module__


def _registered(denoisers: list[Any], params: dict, workers: int) -> tuple[list[str], dict, list[str]]:
    """(names, parameters per entry, modules workers import) of ``run``'s denoisers, registered."""
    names, settings, modules, in_main = [], dict(params), [], False
    for denoiser in denoisers:
        name, own, module = _register(denoiser)
        names.append(name)
        settings[name] = {**own, **settings.get(name, {})}
        modules += [module] if module else []
        in_main |= not isinstance(denoiser, str) and module is None
    if workers > 1 and in_main:
        raise ValueError(
            "denoisers defined in __main__ cannot reach worker processes; define them in a module or use workers=1"
        )
    return names, settings, modules


def run(
    grid: Any = "quick",
    *,
    denoisers: list[Any] | None = None,
    out: str | Path = "results",
    params: dict[str, dict[str, Any]] | None = None,
    workers: int = 1,
    log=print,
    **narrow: Any,
) -> pd.DataFrame:
    """Run a grid and return its leaderboard (one row per cell, as in ``leaderboard.csv``).

    Parameters
    ----------
    grid : str or bench.grids.Grid
        A named grid (``smoke``, ``quick``, ``full``, ``reference``...), a ``.toml`` file or a Grid.
    denoisers : list, optional
        Registered names, ``Denoiser`` classes or instances, mixed; a class or instance that is not
        registered is registered under its ``name`` (or its lower-cased class name), and an
        instance brings its parameters. None keeps the grid's denoisers.
    out : path
        Output folder; the run writes ``out/<grid name>/``.
    params : dict, optional
        ``{entry: {parameter: value}}``, as ``--set`` does.
    workers : int
        Worker processes (1: this process). Classes defined in ``__main__`` need ``workers=1``.
    **narrow
        ``datasets``, ``noises``, ``levels``, ``classifiers``, ``n_train``, ``n_test`` as on the
        command line, and ``device``, ``data_dir``, ``seed``.
    """
    from dataclasses import replace

    from bench.execution.executors import ExecutorSpec
    from bench.execution.runner import run_grid
    from bench.grids import Grid, resolve_grid

    options = {key: narrow.pop(key) for key in ("device", "data_dir", "seed") if key in narrow}
    grid = grid if isinstance(grid, Grid) else resolve_grid(str(grid), data_dir=options.get("data_dir"))
    names, settings, modules = _registered(denoisers or [], params or {}, workers)
    grid = grid.narrow(denoisers=names or None, params={k: v for k, v in settings.items() if v} or None, **narrow)
    if "seed" in options:
        grid = replace(grid, seed=options["seed"])
    summary = run_grid(
        grid,
        out_dir=out,
        device=options.get("device", "auto"),
        data_dir=options.get("data_dir"),
        executor=ExecutorSpec(workers=workers),
        plugins=tuple(dict.fromkeys(modules)),
        log=log,
    )
    return load_results(summary.out_dir)


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """The leaderboard of a run folder (``out/<grid>``), as ``leaderboard.csv`` holds it."""
    path = Path(run_dir) / "leaderboard.csv"
    if not path.is_file():
        raise ValueError(f"no leaderboard at {path}; expected a folder written by 'python -m bench run'")
    return pd.read_csv(path)
