"""Registries of everything a user can name: denoisers, classifiers, datasets, noises.

An entry is registered next to its code with a decorator::

    @DENOISERS.register("median", source="classical", description="3x3 median filter")
    class Median(Denoiser): ...

The denoiser and classifier registries import ``baselines`` and ``models`` the first
time they are asked for names, so callers never import those packages themselves.

Users' own entries arrive as plugins: an ordinary Python module that registers entries on import
(``@DENOISERS.register``); its entries are then validated, contract-tested, cached and reported
like ours. ``--plugin`` takes a module name (``mypkg.denoisers``) or a file (``mine.py``); an
installed package can declare one in the ``denoise_bench.plugins`` entry-point group, and
``bench list`` shows it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.errors import one_line

__all__ = [
    "Entry",
    "Registry",
    "DENOISERS",
    "CLASSIFIERS",
    "DATASETS",
    "NOISES",
    "load_plugins",
    "import_plugin",
    "load_entry_points",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "denoise_bench.plugins"


@dataclass(frozen=True)
class Entry:
    """One registered name: the factory that builds it and where it comes from."""

    name: str
    factory: Callable[..., Any]
    source: str
    description: str
    #: Small, fast parameters for contract tests and the smoke grid.
    test_params: dict[str, Any] = field(default_factory=dict)

    @property
    def requires(self) -> tuple[str, ...]:
        """The optional modules the entry imports (``Estimator.requires``)."""
        return tuple(self._declared("requires", ()))

    @property
    def budgets(self) -> dict[str, dict[str, Any]]:
        """The entry's named-grid settings (``Estimator.budgets``)."""
        return dict(self._declared("budgets", {}))

    @property
    def accelerated(self) -> bool:
        """Whether the entry's fits want a GPU (``Estimator.accelerated``)."""
        return bool(self._declared("accelerated", False))

    def _declared(self, hook: str, default: Any) -> Any:
        # Classes declare their hooks on bench.estimator.Estimator; a factory function (a
        # registered variant) carries the ones it sets as attributes of the function.
        return getattr(self.factory, hook, default)

    @property
    def missing_packages(self) -> list[str]:
        """The optional modules the factory ``requires`` that are not installed."""
        return [module for module in self.requires if not _installed(module)]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


class Registry:
    """A named collection of factories (classes or functions).

    Parameters
    ----------
    kind : str
        What the entries are ("denoiser", "noise", ...); used in error messages.
    autoload : tuple of str
        Modules imported on first lookup so that their entries register themselves.
    """

    def __init__(self, kind: str, *, autoload: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._autoload = autoload
        self._loaded = not autoload
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, *, source: str, description: str, test_params: dict[str, Any] | None = None
    ) -> Callable:
        """Decorator adding ``name``; registering a name twice raises ValueError.

        ``test_params`` are small settings that make the entry fast enough for tests.
        """

        def decorate(factory: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = Entry(name, factory, source, description, dict(test_params or {}))
            return factory

        return decorate

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._autoload:
                importlib.import_module(module)
            if self.kind in ("denoiser", "classifier"):
                load_entry_points()  # installed packages' entries, after ours

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        """The entry for ``name``; an unknown name raises ValueError with suggestions."""
        self._load()
        if name not in self._entries:
            raise ValueError(self.unknown_message(name))
        return self._entries[name]

    def create(self, name: str, **params: Any) -> Any:
        """Build the entry ``name`` with ``params``."""
        return self.entry(name).factory(**params)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def suggestions(self, name: str, *, limit: int = 3) -> list[str]:
        """Registered names ``name`` may have meant: those it starts, then those containing it,
        then close spellings (case ignored).

        >>> r = Registry("widget")
        >>> for n in ("tv_chambolle", "median", "gaussian_blur"):
        ...     _ = r.register(n, source="", description="")(object)
        >>> r.suggestions("tv"), r.suggestions("blur"), r.suggestions("medain")
        (['tv_chambolle'], ['gaussian_blur'], ['median'])
        """
        self._load()
        wanted = name.lower()
        names = sorted(self._entries)
        prefixed = [n for n in names if n.lower().startswith(wanted)] if wanted else []
        # Substrings of two characters or fewer match too much to help.
        inside = [n for n in names if len(wanted) > 2 and wanted in n.lower() and n not in prefixed]
        lowered = {n.lower(): n for n in names}
        close = [lowered[n] for n in difflib.get_close_matches(wanted, lowered, n=limit, cutoff=0.6)]
        return list(dict.fromkeys(prefixed + inside + close))[:limit]

    def unknown_message(self, name: str) -> str:
        close = self.suggestions(name)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; expected one of: {', '.join(sorted(self._entries))}"


DENOISERS = Registry("denoiser", autoload=("baselines", "models"))
CLASSIFIERS = Registry("classifier", autoload=("baselines", "models"))
DATASETS = Registry("dataset", autoload=("bench.data",))
NOISES = Registry("noise", autoload=("bench.noise",))


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
    DENOISERS.names()  # our own entries first, so that a clash is the plugin's
    loaded = []
    for plugin in plugins:
        target = str(Path(plugin).resolve()) if plugin.endswith(".py") else plugin
        try:
            import_plugin(target)
        except (Exception, SystemExit) as err:  # a plugin that calls sys.exit() is a plugin that failed
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
