"""A worker's workspace: the state one process keeps between the units of a run.

Loaded data, the noisy test sets every denoiser of a level shares, the last fitted denoiser
(a fit group's next levels reuse it) and the fitted classifiers. It is rebuilt in each
process from a :class:`RunContext` alone (names, numbers and paths), so the same unit gives
the same numbers in the driver, in a worker process or on a cluster node. Scoring a cell
with it is :func:`bench.execution.worker.score_cell`.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.data import load, training_split
from bench.device import resolve_device
from bench.execution import fits as fit_cache
from bench.execution.classifier_pool import ClassifierPool
from bench.folders import training_source
from bench.grids import Cell, Grid
from bench.images import put_images
from bench.machine import versions
from bench.noise import Noise, TrainingNoise, derive_seed
from bench.params import frozen_params
from bench.registry import DENOISERS

__all__ = [
    "RunContext",
    "Workspace",
    "workspace_for",
    "preload",
    "member_cells",
    "noise_seed",
    "training_noise",
    "worker_name",
]


@dataclass(frozen=True)
class RunContext:
    """What every worker needs besides the unit: where data and fits live, and how to run."""

    base_seed: int
    n_train: int
    n_test: int
    cache_dir: str
    device: str = "auto"
    data_dir: str | None = None
    download: bool = False
    checkpoint_every: float | None = None
    plugins: tuple[str, ...] = ()

    @classmethod
    def for_grid(
        cls,
        grid: Grid,
        run_dir: str | Path,
        *,
        cache_dir: str | Path | None = None,
        device: str = "auto",
        data_dir: str | Path | None = None,
        download: bool = False,
        checkpoint_every: float | None = None,
        plugins: Iterable[str] = (),
    ) -> RunContext:
        """The context of a run of ``grid`` into ``run_dir``: its fits in ``cache_dir`` (default
        ``run_dir/cache``). Every caller builds it here, so equal settings give an equal ``key``,
        and a process that ran the grid finds its loaded workspace again."""
        return cls(
            base_seed=grid.seed,
            n_train=grid.n_train,
            n_test=grid.n_test,
            cache_dir=str(Path(cache_dir) if cache_dir else Path(run_dir) / "cache"),
            device=device,
            data_dir=None if data_dir is None else str(data_dir),
            download=download,
            checkpoint_every=checkpoint_every,
            plugins=tuple(plugins),
        )

    @property
    def key(self) -> str:
        """What identifies the context (one workspace per key and process)."""
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Workspace:
    """One process's state for a run: loaded data, noisy test sets, the last fit and the classifiers."""

    context: RunContext
    gpu: bool = True
    _data: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = field(default_factory=dict)
    _n_classes: dict[str, int] = field(default_factory=dict)
    _networks_train: dict[str, bool] = field(default_factory=dict)
    _noisy: dict[tuple, Tensor] = field(default_factory=dict)
    _fits: dict[str, tuple[Any, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A classical unit on a CPU-only cluster worker runs on its CPU even in a CUDA run.
        cpu_only_here = not self.gpu and not torch.cuda.is_available()
        self.device = resolve_device("cpu" if cpu_only_here else self.context.device)
        self.cache_dir = Path(self.context.cache_dir)
        self.classifiers = ClassifierPool(self.cache_dir, self.device, checkpoint_every=self.context.checkpoint_every)
        self.versions = versions()

    def n_classes(self, name: str) -> int:
        """How many classes dataset ``name`` has (loading it if needed)."""
        self.data(name)
        return self._n_classes[name]

    def data(self, name: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(train images, train labels, test images, test labels) on the device, loaded once."""
        if name not in self._data:
            try:
                self.load(name)
            except ValueError as err:
                raise ValueError(f"worker {worker_name()}: {err}") from None
        return self._data[name]

    def load(self, name: str) -> None:
        """Load a dataset's training subset and test images onto the device (bad data raises)."""
        if name not in self._data:
            context = self.context
            ds = load(name, data_dir=context.data_dir, download=context.download)
            # A test set without a training split borrows one (bench.data.training_split).
            train_images, train_labels, self._networks_train[name] = training_split(
                ds, data_dir=context.data_dir, download=context.download
            )
            self._n_classes[name] = len(ds.classes)
            order = torch.randperm(
                len(train_images),
                # Seeded by the training data's name: test sets that train on one set draw one subset.
                generator=torch.Generator().manual_seed(
                    derive_seed(context.base_seed, training_source(name), "train-subset")
                ),
            )
            train = order[: context.n_train]
            on_device = lambda t: None if t is None else t.to(self.device)  # noqa: E731
            self._data[name] = (
                put_images(train_images[train], self.device),
                on_device(None if train_labels is None else train_labels[train]),
                put_images(ds.test_images[: context.n_test], self.device),
                on_device(None if ds.test_labels is None else ds.test_labels[: context.n_test]),
            )

    def test_set(self, cell: Cell) -> tuple[Tensor, Tensor]:
        """(clean, noisy) test images of the cell: every denoiser sees the same noisy images."""
        clean = self.data(cell.dataset)[2]
        key = (cell.dataset, cell.noise, cell.level)
        if key not in self._noisy:
            self._noisy[key] = Noise(cell.noise, cell.level).apply(clean, seed=noise_seed(cell))
        return clean, self._noisy[key]

    def training_pairs(self, cell: Cell) -> tuple[Tensor, Tensor]:
        """(noisy, clean) training images of the cell's fit, from its training noise and seed."""
        clean = self.data(cell.dataset)[0]
        train_noise = training_noise(cell)
        seed = derive_seed(cell.seed, training_source(cell.dataset), "train", cell.noise, cell.train_level)
        if train_noise.mode == "fixed":
            return train_noise.pick(None).apply(clean, seed=seed), clean
        # Blind/mixed pairs: chunks of the training set at levels (and kinds) drawn from one seed.
        generator = torch.Generator().manual_seed(seed)
        chunks = [train_noise.pick(generator).apply(c, seed=seed + i) for i, c in enumerate(clean.split(64))]
        return torch.cat(chunks), clean

    def fitted(self, cell: Cell) -> tuple[Any, float]:
        """The cell's fitted denoiser and its fit seconds; from memory, the disk cache, or a fresh fit.

        The seconds are those of every fit it is built from, each counted once (a member that
        two of average_of's members share was fitted once).
        """
        key = fit_cache.fit_key(cell.fit_spec)
        model = cell.make_denoiser()
        self.data(cell.dataset)
        if DENOISERS.entry(cell.denoiser).accelerated and not self._networks_train[cell.dataset]:
            raise ValueError(
                f"{cell.dataset} has no training images of its own colour for network {cell.denoiser!r}; "
                "expected a colour training set, e.g. cbsd68?train=folder:PATH"
            )
        if key in self._fits:  # fitted for a cell that may differ in inference-only parameters
            fitted, seconds = self._fits[key]
            own = model.get_params()
            fitted.set_params(**{name: own[name] for name in model.inference_params if name in own})
            return fitted, sum(seconds.values())
        seconds = self._fit_tree(cell, model, key)
        self._fits = {key: (model, seconds)}  # keep one: a group's next levels reuse it
        return model, sum(seconds.values())

    def _fit_tree(self, cell: Cell, model: Any, key: str) -> dict[str, float]:
        """Fit or load ``model`` and the entries it is built from; returns each fit's own seconds by fit key.

        Entries built from others (average_of's members, a network's warm restart) have each
        member fitted, or loaded, as its own cell first. A restart whose own fit is cached needs
        no member: its cache is read first. (A plugin's denoiser need not subclass Denoiser,
        so both hooks are optional.)
        """
        stem = self.cache_dir / key
        members = member_cells(cell, model)
        own_fit = getattr(model, "own_fit", True)
        if members and own_fit and fit_cache.is_cacheable(model):
            extra = fit_cache.load_fitted(model, stem, self.device)
            if extra is not None:
                return {**extra.get("member_seconds", {}), key: float(extra.get("fit_seconds", 0.0))}
        seconds: dict[str, float] = {}
        fitted = []
        for member in members:
            member_model = member.make_denoiser()
            seconds |= self._fit_tree(member, member_model, fit_cache.fit_key(member.fit_spec))
            fitted.append(member_model)
        if members:
            model.use_fitted(fitted)
        if own_fit:
            fit_seed = derive_seed(
                cell.seed, "fit", training_source(cell.dataset), cell.noise, cell.train_level, cell.denoiser
            )
            seconds[key] = fit_cache.fit_or_load(
                model,
                stem,
                lambda noisy, clean: model.fit(noisy, clean, seed=fit_seed, noise=training_noise(cell)),
                prepare=lambda: self.training_pairs(cell),
                device=self.device,
                checkpoint_every=self.context.checkpoint_every,
                extra={"member_seconds": dict(seconds)},
            )
        return seconds


_WORKSPACES: dict[str, Workspace] = {}


def workspace_for(context: RunContext, *, gpu: bool = True, setup: Callable[[], None] | None = None) -> Workspace:
    """This process's workspace for ``context``, made on first use (``setup`` runs just before)."""
    found = _WORKSPACES.get(context.key)
    if found is None:
        if setup is not None:
            setup()
        found = _WORKSPACES[context.key] = Workspace(context, gpu=gpu)
    return found


def preload(context: RunContext, datasets: Iterable[str]) -> Workspace:
    """This process's workspace for ``context`` with ``datasets`` loaded (bad data raises here)."""
    workspace = workspace_for(context)
    for name in datasets:
        workspace.load(name)
    return workspace


def worker_name() -> str:
    """Host and process, so a worker-side error says where it happened."""
    return f"{socket.gethostname()}:{os.getpid()}"


def member_cells(cell: Cell, model: Any) -> list[Cell]:
    """The cells of the entries ``model`` (``cell``'s denoiser) is built from: each fitted as a
    grid's cell of that entry would be, so a grid that also holds it shares its fit."""
    specs = model.member_specs() if hasattr(model, "member_specs") else []
    return [replace(cell, denoiser=name, params=frozen_params(params)) for name, params in specs]


def noise_seed(cell: Cell) -> int:
    """The seed of the cell's test noise: one per dataset, noise and level, whatever the denoiser."""
    return derive_seed(cell.seed, cell.dataset, "test", cell.noise, cell.level)


def training_noise(cell: Cell) -> TrainingNoise:
    """The noise the cell's denoiser is fitted on: its training level, or drawn (blind, mixed)."""
    if cell.train_level in ("blind", "mixed"):
        return TrainingNoise(cell.noise, mode=str(cell.train_level))
    return TrainingNoise(cell.noise, float(cell.train_level))
