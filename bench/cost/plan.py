"""``python -m bench plan``: what a grid costs, from a short probe on the chosen device.

Each entry is fitted at two small sizes of its work knob (after an untimed warm-up fit; the
larger grows fourfold until the two differ by ``PROBE_RESOLVED_S``) (optimizer steps for a network,
tuning images for a tuned filter, training images for the SVM) on the grid's own training
pairs; the two timings give a fixed cost and a cost per unit of work, which the entry's real
budget multiplies. One denoise (or predict) batch gives its images/s. Probes run with the CPU
threads each worker will have, so the figures hold for ``--workers N``; with one thread a
worker, they count CPU time (``_probe_seconds``), so a busy machine gives figures close to an
idle one's. The N-worker figure
schedules the units longest-first on N workers. Early stopping can only make a fit cheaper
than planned: the estimate is an upper bound on it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from bench.cost import timing
from bench.execution.classifier_pool import classifier_stem
from bench.execution.fits import fit_key, is_cached
from bench.execution.worker import ClassifierFit
from bench.execution.workspace import RunContext, Workspace, member_cells, preload, training_noise
from bench.files import write_text_atomic
from bench.grids import Cell, Grid
from bench.images import Images, image_sizes, map_batches
from bench.registry import CLASSIFIERS, DENOISERS

__all__ = ["Plan", "make_plan", "work_of"]

PROBE_BATCH = 64  # test images per probe denoise/predict batch, at most
#: Pixels per probe batch, at most (one image at least): 64 thumbnails, or a few photos, where
#: 64 BSD68 images through the bm3d package would make the probe itself take many minutes.
PROBE_PIXELS = 1_000_000
#: The least difference between the two probe fits' seconds that the estimate is built on.
PROBE_RESOLVED_S = 0.5
PROBE_METHOD = 8  # bump when the probe changes, so kept probe results are not reused


@dataclass
class Work:
    """How an estimator's fit cost scales: a knob, two probe values, and the real value."""

    knob: str | None  # None: no cheaper fit exists; the probe is the real fit
    probes: tuple[int, int] = (0, 0)
    real: float = 1.0
    power: float = 1.0  # fit seconds ~ fixed + per_unit * knob ** power
    budget: str = "one fit"


def work_of(model: Any, n_train: int) -> Work:
    """The work model of ``model``'s own fit on ``n_train`` images (see the module docstring):
    a warm restart's own stage only, since its members are costed as fits of their own."""
    params = model.get_params()
    if hasattr(model, "planned_stage_steps") and "max_steps" in params:
        # A probe at max_steps=k runs k steps in every stage, so the real fit is worth the
        # stages' mean planned steps (exact when their steps cost the same).
        before = sum(len(member.planned_stage_steps(n_train)) for member in _members(model))
        stages, batch = model.planned_stage_steps(n_train)[before:], model.recipe().batch_size
        steps = "+".join(f"{s:,}" for s in stages)
        return Work(
            "max_steps",
            (4, 12),
            sum(stages) / len(stages),
            budget=f"{steps} steps x {batch} = {sum(stages) * batch:,} images",
        )
    if "max_train" in params:  # the kernel SVM: libsvm's time grows about as n^2
        n = min(params["max_train"] or n_train, n_train)
        return Work("max_train", (250, 1000), n, power=2.0, budget=f"{n:,} training images")
    for knob in ("subsample", "tune_images"):
        if knob in params:
            n = min(params[knob], n_train)
            return Work(knob, (4, 12), n, budget=f"tuned on {n:,} images")
    return Work(None)


def _members(model: Any) -> list[Any]:
    """The entries ``model`` is built from (average_of's members, a restart's start), unfitted."""
    specs = model.member_specs() if hasattr(model, "member_specs") else []
    return [DENOISERS.create(name, **params) for name, params in specs]


def _probe_seconds(fn: Callable[[], Any], device) -> float:
    """Seconds of one probe call. On a CPU with one thread per worker, the process's CPU time:
    what the work takes on a core of its own, so that a plan taken while other work shares the
    machine comes close to an idle one's (wall time there can be off several-fold; shared caches
    and memory still slow a busy core somewhat).
    With more threads, or on a GPU, wall time: CPU time would add up the threads."""
    measured = timing.timed(fn, device)
    on_one_core = torch.device(device).type == "cpu" and torch.get_num_threads() == 1
    return measured.cpu if on_one_core else measured.wall


def _probe_fit(make: Callable[..., Any], fit: Callable[[Any], Any], work: Work, device) -> tuple[float, Any]:
    """Estimated seconds of the real fit, and a fitted (probe) model to time inference on."""
    if work.knob is None or work.real <= work.probes[1]:
        model = make()
        return _probe_seconds(lambda: fit(model), device), model
    low, high = work.probes

    def fit_seconds(value: int) -> tuple[float, Any]:
        model = make(**{work.knob: value})
        return _probe_seconds(lambda: fit(model), device), model

    fit_seconds(low)  # warms up (allocations, kernel choice): not timed
    times = [fit_seconds(low)[0]]
    high_seconds, model = fit_seconds(high)
    # Cheap units (a dense net's 10 ms steps) differ by less than the timer's noise over a few
    # of them: extrapolated a thousandfold, that noise was the estimate. Probe more units then.
    while high_seconds - times[0] < PROBE_RESOLVED_S and high * 4 < work.real:
        high *= 4
        high_seconds, model = fit_seconds(high)
    times.append(high_seconds)
    per_unit = max(times[1] - times[0], 0.0) / (high**work.power - low**work.power)
    fixed = max(times[0] - per_unit * low**work.power, 0.0)
    return fixed + per_unit * work.real**work.power, model


def probe_count(images: Images) -> int:
    """Images in a probe batch: the first ``PROBE_BATCH`` or fewer, within ``PROBE_PIXELS`` (at least one).

    >>> probe_count(torch.zeros(100, 1, 28, 28)), probe_count(torch.zeros(68, 1, 321, 481))
    (64, 6)
    """
    sizes = [h * w for h, w in image_sizes(images[:PROBE_BATCH])]
    within = [total <= PROBE_PIXELS for total in itertools.accumulate(sizes)]
    return max(1, sum(within))


def _inference_seconds(fn: Callable[[Images], Any], images: Images, n: int, device) -> float:
    """Seconds for ``n`` images like ``images``, from one warm batch of its first ``probe_count`` images."""
    batch = images[: probe_count(images)]
    fn(batch)
    return _probe_seconds(lambda: fn(batch), device) * n / len(batch)


@dataclass
class EntryCost:
    kind: str
    name: str
    units: int = 0
    cells: int = 0
    budget: str = ""
    fit_total: float = 0.0  # of its units' fits still to run (a cached fit costs nothing)
    cell_seconds: float = 0.0  # per cell: denoise passes, metrics, classifier predictions
    cached: int = 0  # units whose fit the fit cache already holds

    @property
    def fit_seconds(self) -> float:
        """Mean seconds per fit."""
        return self.fit_total / self.units if self.units else 0.0

    @property
    def total(self) -> float:
        return self.fit_total + self.cells * self.cell_seconds

    def add(self, fit_seconds: float, cells: int, cached: bool) -> float:
        """Count one unit; returns its seconds."""
        self.units, self.cells, self.cached = self.units + 1, self.cells + cells, self.cached + cached
        self.fit_total += fit_seconds
        return fit_seconds + cells * self.cell_seconds


@dataclass
class Plan:
    grid: Grid
    cells: int
    done: int
    fits: int
    classifier_fits: int
    workers: int
    threads: int
    device: str
    probe_seconds: float = 0.0
    entries: list[EntryCost] = field(default_factory=list)
    unit_seconds: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.unit_seconds)

    @property
    def cached(self) -> int:
        """Units whose fit the fit cache already holds."""
        return sum(e.cached for e in self.entries)

    def makespan(self, workers: int) -> float:
        """Longest-first scheduling of the units on ``workers`` (classifier fits come first in a run)."""
        loads = [0.0] * workers
        for seconds in sorted(self.unit_seconds, reverse=True):
            loads[loads.index(min(loads))] += seconds
        return max(loads, default=0.0)


def _probe_denoiser(runner: Workspace, cell: Cell, node: Callable[[Cell], dict]) -> dict:
    """One fit's probe: its own fit seconds (not its members': each is a fit of its own, see
    ``_fit_seconds``), its denoise passes in one cell, and the share of test images it scores."""
    clean, noisy = runner.test_set(cell)
    template = cell.make_denoiser()
    share = min(len(clean), template.eval_images or len(clean)) / max(len(clean), 1)
    members = member_cells(cell, template)
    if not template.own_fit:  # average_of: its members' denoise passes (a whole fit would take hours)
        found = [node(member) for member in members]
        return {
            "fit": 0.0,
            "cell": sum(f["cell"] for f in found),
            "budget": " + ".join(f["budget"] for f in found),
            "eval": share,
        }
    pairs, noise = runner.training_pairs(cell), training_noise(cell)
    # A warm restart goes on from its member, fitted here on the probe's smallest budget
    # (untimed): only the restart's own stage is timed.
    starts = [_cheap_fit(member, pairs, noise) for member in members]
    work = work_of(template, len(pairs[0]))

    def make(**knob: Any) -> Any:
        model = cell.make_denoiser(**knob)
        return model.use_fitted(starts) if starts else model

    fit, model = _probe_fit(make, lambda m: m.fit(*pairs, seed=0, noise=noise), work, runner.device)
    n_eval = round(share * len(clean))
    once = _inference_seconds(partial(map_batches, model.denoise), noisy, n_eval, runner.device)
    # The runner warms up once, then makes the timed passes its rule allows.
    return {"fit": fit, "cell": once * (timing.planned_passes(once) + 1), "budget": work.budget, "eval": share}


def _cheap_fit(cell: Cell, pairs: tuple, noise) -> Any:
    """``cell``'s denoiser fitted at the low probe value of its work knob."""
    model = cell.make_denoiser()
    work = work_of(model, len(pairs[0]))
    if work.knob is not None:
        model = cell.make_denoiser(**{work.knob: work.probes[0]})
    return model.fit(*pairs, seed=0, noise=noise)


def _probe_classifier(runner: Workspace, unit: ClassifierFit) -> dict:
    """The classifier's fit cost, and its predict seconds on the test set."""
    images, labels, test_images, _ = runner.data(unit.dataset)
    template = CLASSIFIERS.create(unit.classifier, **dict(unit.params))
    work = work_of(template, len(images))
    make = lambda **knob: CLASSIFIERS.create(unit.classifier, **{**dict(unit.params), **knob})  # noqa: E731
    fit, model = _probe_fit(make, lambda m: m.fit(images, labels, seed=0), work, runner.device)
    predict = _inference_seconds(model.predict, test_images, len(test_images), runner.device)
    return {"fit": fit, "budget": work.budget, "predict": predict}


def _fit_seconds(cell: Cell, node: Callable[[Cell], dict], planned: set[str], cache_dir: Path) -> float:
    """Seconds of the fits ``cell`` still needs: its own and its members', each fit once in a
    plan, none that the fit cache holds (a warm restart whose own fit is cached needs no member)."""
    key = fit_key(cell.fit_spec)
    if key in planned or is_cached(cache_dir / key):
        return 0.0
    planned.add(key)
    members = member_cells(cell, cell.make_denoiser())
    return node(cell)["fit"] + sum(_fit_seconds(member, node, planned, cache_dir) for member in members)


def make_plan(grid: Grid, *, context: RunContext, workers: int, threads: int, done: set[str] = frozenset()) -> Plan:
    """Probe every entry of ``grid`` (once per dataset shape) and cost its unfinished units."""
    from bench.execution.runner import plan_units

    started = time.perf_counter()
    torch.set_num_threads(threads)
    runner = preload(context, ())  # the run's own loaded data when it runs in this process
    cells = grid.cells()
    todo = [c for c in cells if c.key not in done]
    classifier_units, groups = plan_units(todo)
    plan = Plan(
        grid,
        len(cells),
        len(cells) - len(todo),
        len(groups),
        len(classifier_units),
        workers,
        threads,
        str(runner.device),
    )
    cache_dir = Path(context.cache_dir)
    probes = _Probes(cache_dir / "probes.json", (str(runner.device), threads, grid.n_train, grid.n_test))
    costs: dict[str, EntryCost] = {}
    predict: dict[str, float] = {}  # dataset -> seconds of every classifier's predictions on its test set
    for unit in classifier_units:
        images = runner.data(unit.dataset)[0]
        key = probes.key("classifier", unit.classifier, unit.params, images.shape)
        found = probes.get(key, lambda u=unit: _probe_classifier(runner, u))
        cached = is_cached(
            classifier_stem(cache_dir, unit.dataset, unit.classifier, unit.params, len(images), context.base_seed)
        )
        cost = costs.setdefault(key, EntryCost("classifier", unit.classifier, budget=found["budget"]))
        plan.unit_seconds.append(cost.add(0.0 if cached else found["fit"], 0, cached))
        predict[unit.dataset] = predict.get(unit.dataset, 0.0) + found["predict"]

    def node(cell: Cell) -> dict:
        key = probes.key("denoiser", cell.denoiser, cell.params, runner.data(cell.dataset)[0].shape)
        return probes.get(key, lambda: _probe_denoiser(runner, cell, node))

    planned: set[str] = set()  # fit keys already costed: a member shared by two units is fitted once
    for group in groups:
        first = group.cells[0]
        found = node(first)
        cached = is_cached(cache_dir / fit_key(first.fit_spec))
        key = probes.key("denoiser", first.denoiser, first.params, runner.data(first.dataset)[0].shape)
        cell_seconds = found["cell"] + predict.get(first.dataset, 0.0) * found["eval"]
        cost = costs.setdefault(
            key, EntryCost("denoiser", first.denoiser, budget=found["budget"], cell_seconds=cell_seconds)
        )
        fit = _fit_seconds(first, node, planned, cache_dir)
        plan.unit_seconds.append(cost.add(fit, len(group.cells), cached))
    plan.entries = list(costs.values())
    plan.probe_seconds = time.perf_counter() - started
    return plan


class _Probes:
    """Probe results kept beside the fit cache, so a second plan (or run) of a grid is instant.

    Each result is written as soon as it is measured (atomically), so a plan or run killed
    during its probe keeps what it had measured.
    """

    def __init__(self, path: Path, setting: tuple) -> None:
        self.path, self.setting = path, setting
        try:
            self.found = json.loads(path.read_text())
        except (OSError, ValueError):
            self.found = {}
        if not isinstance(self.found, dict):  # a damaged file: measured again
            self.found = {}

    def key(self, kind: str, name: str, params, shape) -> str:
        from bench.version import __version__

        spec = [kind, name, params, list(shape), self.setting, __version__, PROBE_METHOD]
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def get(self, key: str, probe: Callable[[], dict]) -> dict:
        if not isinstance(self.found.get(key), dict):
            self.found[key] = probe()
            self.save()
        return self.found[key]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.found, indent=1))
