"""Small helpers every part of the harness uses: the device, one-line errors, versions, the
machine, sync."""

from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path

import torch

__all__ = ["resolve_device", "one_line", "versions", "machine", "sync"]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device {device!r} is unknown; expected auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    return torch.device(device)


def one_line(err: BaseException) -> str:
    """``TypeName: first line of the message``, at most 500 characters.

    >>> one_line(ValueError("bad value\\nmore detail"))
    'ValueError: bad value'
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:500]


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on (stored with every row)."""
    import numpy
    import skimage
    import sklearn

    from bench import __version__

    return {
        "denoise-bench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "numpy": numpy.__version__, "scikit-image": skimage.__version__, "scikit-learn": sklearn.__version__,
    }  # fmt: skip


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 2**30, 1)


def machine() -> dict[str, object]:
    """What the numbers of a run were measured on (kept with each run, beside its command).

    >>> sorted(machine())
    ['cpu', 'cpu_cores', 'gpus', 'memory_gib', 'os']
    """
    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {
        "os": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": gpus,
    }


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def show_training_progress(prefix: str = "") -> None:
    """Print the long fits' lines (``models.training.Progress`` epochs, checkpoint resumes) on
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
