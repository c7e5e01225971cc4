"""Grids: which datasets x noises x levels x denoisers to run, expanded into cells.

A ``Grid`` is validated when it is built, before anything runs. Named grids (``smoke``,
``quick``, ``reference``, ``full``) live in ``bench.grids.named``; TOML files use the same fields::

    name = "mine"
    datasets = ["mnist"]
    denoisers = ["median", "dncnn"]
    n_train = 2000          # training images each denoiser fits on
    n_test = 1000           # first N test images scored
    train_levels = "same"   # "same" | "blind" | "matrix" (every training level x every test level) | "auto"
                            # or a list of levels, e.g. [0.2, 0.7]: fits at those levels tested at every level
    classifiers = []
    [noises]
    gaussian = [0.1, 0.3]
    [params.dncnn]
    epochs = 3
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import data
from bench.folders import training_source
from bench.noise import Noise
from bench.params import fit_params, frozen_entries, hashable
from bench.registry import CLASSIFIERS, DENOISERS, NOISES
from bench.version import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Cell", "Grid", "load_grid_file", "TRAIN_LEVEL_MODES"]

TRAIN_LEVEL_MODES = ("same", "blind", "matrix", "auto")
#: Noise kinds whose blind network fits ``train_levels = "auto"`` relies on (one blind fit tested
#: at every level, plus a fit at the middle level):
#: - salt_pepper, measured (README, "Training levels"): on Fashion-MNIST at 400 steps, blind U-Net
#:   and DnCNN fits beat the level-specific ones at 0.05 / 0.1 / 0.3 by 0.3 to 1.6 dB, and trailed
#:   them at clipped gaussian 0.1 and 0.5 by 1.0 to 2.7 dB;
#: - awgn, the literature's unclipped noise, on the literature's evidence: DnCNN-B (one fit over
#:   sigma 0-55) is within 0.1 dB of DnCNN-S (a fit per sigma) on BSD68 at 15, 25 and 50 (cszn/DnCNN's
#:   README); the natural grid measures ours at sigma 25, where it has both fits.
#: The other kinds are not measured, so they get a fit per level.
BLIND_SERVES_EVERY_LEVEL: frozenset[str] = frozenset({"salt_pepper", "awgn"})


@dataclass(frozen=True)
class Cell:
    """One (dataset, noise kind, test level, training level, denoiser) job."""

    dataset: str
    noise: str
    level: float
    train_level: float | str  # a level, or "blind"
    denoiser: str
    params: tuple[tuple[str, Any], ...] = ()
    n_train: int = 1000
    n_test: int = 500
    seed: int = 0
    classifiers: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    def make_denoiser(self, **changes: Any) -> Any:
        """A new, unfitted instance of the cell's denoiser: its parameters (``changes`` replacing
        some) leave their frozen form only here, where an estimator is built."""
        return DENOISERS.create(self.denoiser, **{**dict(self.params), **changes})

    def spec(self) -> dict[str, Any]:
        """Canonical JSON-able description of the cell."""
        return {**asdict(self), "params": dict(self.params), "classifiers": {n: dict(p) for n, p in self.classifiers}}

    @property
    def key(self) -> str:
        """sha256 of the canonical spec and the code version: equal keys mean equal results."""
        text = json.dumps({"cell": self.spec(), "version": __version__}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def fit_spec(self) -> dict[str, Any]:
        """What the fitted denoiser depends on (not the test level): cells sharing it share a fit.

        Its ``dataset`` is the data the fit trains on (:func:`bench.folders.training_source`):
        BSD68's and Set12's cells share their Train400 fits; a set with its own training split
        keeps its name, so its keys are those it always had.
        """
        spec = self.spec()
        for test_only in ("level", "n_test", "classifiers"):
            spec.pop(test_only)
        spec["dataset"] = training_source(self.dataset)
        factory = DENOISERS.entry(self.denoiser).factory if self.denoiser in DENOISERS else None
        spec["params"] = _without_defaults(factory, fit_params(factory, spec["params"]))
        return spec

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.noise} {self.level:g} (train {self.train_level}) {self.denoiser}"


def _without_defaults(factory: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without those equal to the entry's defaults: ``unet.width = 32`` written out
    fits the same model as leaving it out, so both get one fit key (and keys of grids that
    leave defaults out stay as they were)."""
    defaults = factory.default_params() if hasattr(factory, "default_params") else {}
    return {k: v for k, v in params.items() if k not in defaults or hashable(v) != hashable(defaults[k])}


@dataclass(frozen=True)
class Grid:
    """A validated experiment grid; ``cells()`` expands it."""

    name: str
    datasets: tuple[str, ...]
    noises: tuple[tuple[str, tuple[float, ...]], ...]
    denoisers: tuple[str, ...]
    n_train: int = 1000
    n_test: int = 500
    train_levels: str | tuple[float, ...] = "same"
    classifiers: tuple[str, ...] = ()
    params: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def build(cls, *, noises: dict[str, list[float]], params: dict[str, dict] | None = None, **fields: Any) -> Grid:
        """A Grid from plain lists and dicts (as in a TOML file)."""
        frozen_noises = tuple((kind, tuple(float(v) for v in levels)) for kind, levels in noises.items())
        tuples = {k: tuple(v) for k, v in fields.items() if isinstance(v, list)}
        return cls(noises=frozen_noises, params=frozen_entries(params or {}), **{**fields, **tuples})

    def denoiser_params(self, name: str) -> dict[str, Any]:
        """The grid's parameters for a denoiser or classifier name ({} when none)."""
        return dict(dict(self.params).get(name, ()))

    def cell_params(self, name: str) -> tuple[tuple[str, Any], ...]:
        """The grid's parameters for an entry as its cells hold them (``()`` when none)."""
        return dict(self.params).get(name, ())

    def cells(self) -> list[Cell]:
        """Every cell, in a stable order (dataset, noise, level, training level, denoiser)."""
        out = []
        classifiers = tuple((name, self.cell_params(name)) for name in self.classifiers)
        for dataset in self.datasets:
            # Unlabelled sets (image folders) get no classifier columns, and networks skip a colour
            # set that names no colour training set (bench.data); neither is a failure.
            scored_by = classifiers if data.labelled(dataset) else ()
            skipped = dict(self.left_out(dataset))
            for kind, levels in self.noises:
                for level in levels:
                    for name in self.denoisers:
                        if name in skipped:
                            continue
                        for train_level in self._train_levels(level, levels, name, kind):
                            params = self.cell_params(name)
                            out.append(
                                Cell(
                                    dataset,
                                    kind,
                                    level,
                                    train_level,
                                    name,
                                    params,
                                    self.n_train,
                                    self.n_test,
                                    self.seed,
                                    scored_by,
                                )
                            )
        return out

    def left_out(self, dataset: str) -> list[tuple[str, str]]:
        """(denoiser, why) for the grid's denoisers that do not run on ``dataset``: networks on a
        colour set without a colour training set, and entries of one fixed input size on folders
        of images (their sizes vary). Neither fails a cell: ``cells`` leaves them out."""
        out = []
        for name in self.denoisers:
            entry = DENOISERS.entry(name)
            if entry.accelerated and not data.networks_train_on(dataset):
                out.append((name, f"no colour training set for {dataset} (name one with {dataset}?train=folder:PATH)"))
            elif getattr(entry.factory, "fixed_input_size", False) and not data.labelled(dataset):
                out.append((name, f"it takes one fixed input size, and {dataset}'s images vary in size"))
        return out

    def _train_levels(self, level: float, levels: tuple[float, ...], name: str, kind: str) -> tuple[float | str, ...]:
        if isinstance(self.train_levels, tuple):  # "train at 20%, test at 70%": fixed training levels
            return self.train_levels
        if self.train_levels == "blind":
            return ("blind",)
        if self.train_levels == "auto":
            # Tuned filters: tuned per level. Networks: a fit per level, except for the kinds whose
            # blind fits serve every level (BLIND_SERVES_EVERY_LEVEL): one blind fit tested at every
            # level, plus a fit at the middle level (what fixed-level training adds).
            if not DENOISERS.entry(name).accelerated or kind not in BLIND_SERVES_EVERY_LEVEL:
                return (level,)
            return ("blind", level) if level == levels[len(levels) // 2] else ("blind",)
        if self.train_levels == "matrix":
            return levels
        return (level,)

    def narrow(
        self,
        *,
        datasets=None,
        noises=None,
        denoisers=None,
        levels=None,
        n_train=None,
        n_test=None,
        classifiers=None,
        params=None,
    ) -> Grid:
        """A copy restricted to the given names/levels (each None keeps the grid's own).

        ``params`` ({name: {key: value}}) is merged into the grid's per-entry parameters; every
        name must be one of the (narrowed) grid's denoisers or classifiers.
        """
        grid_noises = self.noises
        if noises is not None:
            _check_names(noises, NOISES)
            own = dict(self.noises)
            grid_noises = tuple((kind, own.get(kind, ())) for kind in noises)
        if levels is not None:
            grid_noises = tuple((k, tuple(float(v) for v in levels)) for k, _ in grid_noises)
        changes = {"noises": grid_noises}
        for name, value in (("datasets", datasets), ("denoisers", denoisers), ("classifiers", classifiers)):
            if value is not None:
                changes[name] = tuple(value)
        for name, value in (("n_train", n_train), ("n_test", n_test)):
            if value is not None:
                changes[name] = int(value)
        if params:
            entries = set(changes.get("denoisers", self.denoisers)) | set(changes.get("classifiers", self.classifiers))
            for name in params:
                if name not in entries:
                    raise ValueError(
                        f"parameters given for {name!r}, which is not in the grid; expected one of: {', '.join(sorted(entries))}"
                    )
            merged = {name: self.denoiser_params(name) for name, _ in self.params}
            for name, values in params.items():
                merged[name] = {**_without_rival_stop(merged.get(name, {}), values), **values}
            changes["params"] = frozen_entries(merged)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the TOML file's shape) for storing with the run."""
        return {
            **asdict(self),
            "noises": {k: list(v) for k, v in self.noises},
            "params": {k: dict(v) for k, v in self.params},
        }


#: Stopping rules that cap each other: a user's one replaces the grid budget's other one.
_RIVAL_STOPS = {"epochs": "max_steps", "max_steps": "epochs"}


def _without_rival_stop(budget: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The grid's settings less the stopping rule a user's ``epochs`` or ``max_steps`` replaces.

    Otherwise ``--set conv_ae_fmnist.epochs=4`` on the quick grid would still stop at the
    budget's 200 steps; ``denoiser_params`` then records what applies.

    >>> _without_rival_stop({"max_steps": 200, "batch_size": 8}, {"epochs": 4})
    {'batch_size': 8}
    """
    dropped = {_RIVAL_STOPS[k] for k in given if k in _RIVAL_STOPS and _RIVAL_STOPS[k] not in given}
    return {k: v for k, v in budget.items() if k not in dropped}


def _check_names(names, registry) -> None:
    for name in names:
        if name not in registry:
            raise ValueError(registry.unknown_message(name))


def _validate(grid: Grid) -> None:
    if not grid.name or not all(c.isalnum() or c in "-_." for c in grid.name):
        raise ValueError(f"grid name {grid.name!r} is invalid; expected letters, digits, '-', '_' or '.'")
    if not grid.datasets:
        raise ValueError(f"grid {grid.name!r} has no datasets; expected at least one")
    for name in grid.datasets:
        data.check_spec(name)
    for what, names, registry in (
        ("denoiser", grid.denoisers, DENOISERS),
        ("classifier", grid.classifiers, CLASSIFIERS),
    ):
        if what != "classifier" and not names:
            raise ValueError(f"grid {grid.name!r} has no {what}s; expected at least one")
        _check_names(names, registry)
    if not grid.noises:
        raise ValueError(f"grid {grid.name!r} has no noises; expected e.g. gaussian = [0.1]")
    for kind, levels in grid.noises:
        if not levels:
            raise ValueError(
                f"noise {kind!r} in grid {grid.name!r} has no levels; pass --levels or list them in the grid"
            )
        for level in levels:
            Noise(kind, level)
    _check_train_levels(grid)
    for field_name in ("n_train", "n_test"):
        if not isinstance(getattr(grid, field_name), int) or getattr(grid, field_name) < 1:
            raise ValueError(f"{field_name} must be a positive integer; got {getattr(grid, field_name)!r}")
    given = dict(grid.params)
    for name in given:
        if name not in DENOISERS and name not in CLASSIFIERS:
            raise ValueError(DENOISERS.unknown_message(name))
    # Every entry that runs is checked, with its defaults too: a bad default fails here, not in a cell.
    for registry, names in ((DENOISERS, grid.denoisers), (CLASSIFIERS, grid.classifiers)):
        for name in names:
            _check_params(registry, name, dict(given.get(name, ())))


def _check_train_levels(grid: Grid) -> None:
    """A mode name, or a non-empty tuple of levels valid for every noise kind of the grid."""
    levels = grid.train_levels
    if not isinstance(levels, tuple):
        if levels not in TRAIN_LEVEL_MODES:
            raise ValueError(
                f"train_levels {levels!r} is unknown; expected one of: {', '.join(TRAIN_LEVEL_MODES)} or a list of levels"
            )
        return
    if not levels or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels):
        raise ValueError(f"train_levels {list(levels)!r} must be a non-empty list of numbers, e.g. [0.2, 0.7]")
    object.__setattr__(grid, "train_levels", tuple(float(v) for v in levels))  # 1 and 1.0 give one cell key
    for kind, _ in grid.noises:
        for level in grid.train_levels:
            try:
                Noise(kind, level)
            except ValueError as err:
                raise ValueError(f"train_levels: {err}") from None


def _check_params(registry, name: str, params: dict[str, Any]) -> None:
    """Build the entry with ``params`` and apply its own checks (``Estimator.check_params``)."""
    try:
        model = registry.create(name, **params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bad parameters for {registry.kind} {name!r}: {err}") from None
    model.check_params()  # its message names the entry, as the one above does


def folder_datasets(tables: dict[str, Any], base: Path) -> list[str]:
    """Dataset specs from a grid file's ``[datasets.NAME]`` tables: ``path`` (a folder of images,
    relative to the grid file) and an optional ``train`` (the dataset its networks train on).

    >>> folder_datasets({"photos": {"path": "/p"}, "bsd68": {}}, Path("/g"))
    ['photos=folder:/p', 'bsd68']
    """
    specs = []
    for name, table in tables.items():
        if not isinstance(table, dict) or set(table) - {"path", "train"}:
            raise ValueError(f"[datasets.{name}]: expected a table with keys path and train; got {table!r}")
        spec = f"{name}=folder:{(base / table['path']).resolve()}" if "path" in table else name
        specs.append(spec + (f"?train={table['train']}" if "train" in table else ""))
    return specs


def load_grid_file(path: str | os.PathLike) -> Grid:
    """A Grid from a TOML file; unknown keys and bad values raise ValueError naming the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"grid file {path}: {err}") from None
    allowed = {f for f in Grid.__dataclass_fields__} | {"noises", "params"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(
            f"grid file {path}: unknown keys {', '.join(unknown)}; expected some of: {', '.join(sorted(allowed))}"
        )
    data.setdefault("name", path.stem)
    try:
        if isinstance(data.get("datasets"), dict):
            data["datasets"] = folder_datasets(data["datasets"], path.parent)
        return Grid.build(**data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"grid file {path}: {err}") from None
