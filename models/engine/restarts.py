"""Warm restarts of a neural fit: the restart's peak learning rate, and how its learning curve
and weights continue from the fit it starts from (``NeuralDenoiser``'s ``restarts``)."""

from __future__ import annotations

from typing import Any

from models.engine.training import TrainResult

__all__ = ["RESTART_LR", "continued"]

#: A warm restart's peak learning rate, as a share of the recipe's: a restart at the full rate
#: throws away much of what the first cycle's annealing gained before it can gain more.
RESTART_LR = 0.25


def continued(start: Any, result: TrainResult) -> tuple[list[dict], dict]:
    """The history and info of a fit restarted from ``start``: the learning curve runs on from
    the start's epochs and steps, and a restart that never beats its start keeps the start's
    weights (``result.net`` is reloaded in place)."""
    last = start.history_[-1] if start.history_ else {}
    done, done_steps = last.get("epoch", 0), last.get("step", 0)
    history = [
        *(start.history_ or []),
        *(
            {**h, "epoch": h["epoch"] + done} | ({"step": h["step"] + done_steps} if "step" in h else {})
            for h in result.history
        ),
    ]
    info = {**result.info, "restarted_from": start.training_}
    # Same seed, same held-out images and noise: the scores compare, and a restart
    # that never beats its start gives the start back rather than something worse.
    before, after = start.training_.get("best_val_loss"), info.get("best_val_loss")
    if before is not None and after is not None and before <= after:
        result.net.load_state_dict(start.net_.state_dict())
        info["kept"] = "the start's weights: no restart epoch scored better on validation"
    return history, info
