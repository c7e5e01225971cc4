"""The long fits' progress lines on stdout (epochs, checkpoint resumes)."""

from __future__ import annotations

import logging
import sys

__all__ = ["show_training_progress", "shows_training_progress"]


def show_training_progress(prefix: str = "") -> None:
    """Print the long fits' lines (``models.engine.training.Progress`` epochs, checkpoint resumes) on
    stdout, each after ``prefix``: the CLI does it, and each of its local workers with its name."""
    logger = logging.getLogger("bench.training")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(f"  {prefix}%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def shows_training_progress() -> bool:
    """Whether :func:`show_training_progress` is in effect in this process."""
    return bool(logging.getLogger("bench.training").handlers)
