"""Users' own entries: plugin modules and files, and installed packages' entry points.

A plugin is an ordinary Python module that registers entries on import (``@DENOISERS.register``);
its entries are then validated, contract-tested, cached and reported like ours. ``--plugin``
takes a module name (``mypkg.denoisers``) or a file (``mine.py``); an installed package can
declare one in the ``denoise_bench.plugins`` entry-point group, and ``bench list`` shows it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from bench.core import one_line

__all__ = ["load_plugins", "import_plugin", "load_entry_points", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "denoise_bench.plugins"


def import_plugin(plugin: str) -> None:
    """Import a module by name, or a ``.py`` file by path (its entries register on import).

    A file imports under its stem as module name, once per process, so that a run's worker
    processes (which import it again) and the driver see the same entries.
    """
    if not plugin.endswith(".py"):
        importlib.import_module(plugin)
        return
    path = Path(plugin)
    if not path.is_file():
        raise FileNotFoundError(f"no such file {plugin}")
    name = path.stem
    if getattr(sys.modules.get(name), "__file__", None) == str(path.resolve()):
        return
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def load_plugins(plugins: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Import each plugin; files are returned as absolute paths (for worker processes).

    A plugin that fails to import, or registers a name that exists, raises ValueError naming it.
    """
    from bench.registry import DENOISERS

    DENOISERS.names()  # our own entries first, so that a clash is the plugin's
    loaded = []
    for plugin in plugins:
        target = str(Path(plugin).resolve()) if plugin.endswith(".py") else plugin
        try:
            import_plugin(target)
        except Exception as err:
            raise ValueError(f"plugin {plugin!r} could not be loaded: {one_line(err)}") from None
        loaded.append(target)
    return tuple(loaded)


def load_entry_points() -> None:
    """Import every installed ``denoise_bench.plugins`` entry point (the registries call this once)."""
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as err:
            raise ValueError(
                f"plugin {point.name!r} ({point.value}, an installed entry point) could not be loaded: {one_line(err)}"
            ) from None
