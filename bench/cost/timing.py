"""The one timer: synchronized passes, medians, and the runner's pass rule.

Every timed figure the benchmark reports (a cell's images/s and fit seconds, ``bench plan``'s
estimates, ``bench speed`` and the neural speed table) is measured here, so they all mean the
same thing: wall seconds of the work itself, with queued CUDA work waited for before the clock
starts and before it stops (a timer must not measure only the launch).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from bench.device import sync

__all__ = ["Pass", "timed", "seconds", "median_pass", "runner_passes", "planned_passes", "MAX_PASSES", "PASS_BUDGET_S"]

#: The runner times a cell's denoising with up to ``MAX_PASSES`` passes while their total stays
#: under ``PASS_BUDGET_S`` seconds (one pass for a slow method, the median of three for a fast one).
MAX_PASSES = 3
PASS_BUDGET_S = 2.0


@dataclass(frozen=True)
class Pass:
    """One timed call: its wall and process-CPU seconds and what it returned."""

    wall: float
    cpu: float
    result: Any


def timed(fn: Callable[[], Any], device: torch.device | None = None) -> Pass:
    """Call ``fn()`` once, synchronized with ``device`` (CUDA) on both sides of the clock.

    >>> timed(lambda: 2 + 2).result
    4
    """
    if device is not None:
        sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if device is not None:
        sync(device)
    return Pass(time.perf_counter() - wall, time.process_time() - cpu, result)


def seconds(fn: Callable[[], Any], device: torch.device | None = None) -> float:
    """Wall seconds of one synchronized call of ``fn()``.

    >>> seconds(lambda: None) >= 0
    True
    """
    return timed(fn, device).wall


def median_pass(fn: Callable[[], Any], repeats: int, device: torch.device | None = None) -> Pass:
    """Median wall and CPU seconds of ``repeats`` calls after one untimed warm-up call.

    The warm-up pays for allocations, kernel choice and CUDA initialisation, which a warm
    benchmark does not; ``result`` is the last call's.

    >>> median_pass(lambda: "done", repeats=3).result
    'done'
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats!r}")
    fn()
    passes = [timed(fn, device) for _ in range(repeats)]
    return _median(passes)


def runner_passes(fn: Callable[[], Any], device: torch.device | None = None) -> Pass:
    """The runner's rule: up to ``MAX_PASSES`` timed calls while their total is under
    ``PASS_BUDGET_S``; the median wall seconds and the last call's result (no warm-up here:
    the caller warms up on what it chooses).

    >>> runner_passes(lambda: 1).result
    1
    """
    passes: list[Pass] = []
    while len(passes) < MAX_PASSES and sum(p.wall for p in passes) < PASS_BUDGET_S:
        passes.append(timed(fn, device))
    return _median(passes)


def _median(passes: list[Pass]) -> Pass:
    """The median wall and CPU seconds of ``passes``, and the last one's result."""
    return Pass(statistics.median(p.wall for p in passes), statistics.median(p.cpu for p in passes), passes[-1].result)


def planned_passes(pass_seconds: float) -> int:
    """How many timed passes ``runner_passes`` makes when each takes ``pass_seconds``.

    >>> planned_passes(0.1), planned_passes(0.9), planned_passes(5.0)
    (3, 3, 1)
    >>> planned_passes(1.5)
    2
    """
    return min(MAX_PASSES, max(1, math.ceil(PASS_BUDGET_S / max(pass_seconds, 1e-9))))
