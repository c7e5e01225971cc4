"""Whether a fit converged, read from its validation curve (a cell's ``history``).

The rule: a fit converged when the last fifth of its validation points lowered the best
validation loss by less than ``CONVERGED_BELOW`` (1%), relative to the best reached by the
point at or before 80% of the recorded points. The training engine scores a fit at equal
numbers of steps (once an epoch, and every ``steps // 10`` steps when that is more often, at
most as often as scoring stays under a third of the training:
``models.engine.split.validation_interval``), so a fit's curve has at least 10 points its
budget allowing and points stand for steps; older histories have one point an epoch. Only
the last training stage counts (a pre-training stage is not the fit scored), and a curve
with fewer than two validation points cannot tell (None).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["converged", "CONVERGED_BELOW", "LAST_FRACTION"]

#: Relative improvement of the best validation loss, over the last fraction, below which a fit converged.
CONVERGED_BELOW = 0.01
#: The closing share of training the rule looks at.
LAST_FRACTION = 0.2


def _last_stage_losses(history: list[dict[str, Any]]) -> list[float]:
    last = history[-1].get("stage")
    losses = [entry.get("val_loss") for entry in history if entry.get("stage") == last]
    return [float(v) for v in losses if v is not None and math.isfinite(float(v))]


def converged(history: Any) -> bool | None:
    """True/False by the module's rule; None without a validation curve of two points or more.

    >>> converged([{"epoch": e, "val_loss": v} for e, v in enumerate([1.0, 0.5, 0.4, 0.399, 0.398], 1)])
    True
    >>> converged([{"epoch": e, "val_loss": v} for e, v in enumerate([1.0, 0.5, 0.4, 0.35, 0.3], 1)])
    False
    """
    if not isinstance(history, list) or not history:
        return None
    losses = _last_stage_losses(history)
    if len(losses) < 2:
        return None
    # the last point at or before the start of the closing fifth (at least the first point)
    start = max(1, math.floor(len(losses) * (1 - LAST_FRACTION) + 1e-9))
    before, after = min(losses[:start]), min(losses)
    return bool((before - after) < CONVERGED_BELOW * abs(before))
