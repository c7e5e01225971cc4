"""What a run's numbers were measured with: package versions and the machine."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch

__all__ = ["versions", "machine"]


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on (stored with every row)."""
    import numpy
    import skimage
    import sklearn

    from bench.version import __version__

    return {
        "denoise-bench": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scikit-image": skimage.__version__,
        "scikit-learn": sklearn.__version__,
    }


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
