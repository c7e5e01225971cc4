"""Small helpers every part of the harness uses: the device, one-line errors, versions, sync."""

from __future__ import annotations

import sys

import torch

__all__ = ["resolve_device", "one_line", "versions", "sync"]


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


def sync(device: torch.device) -> None:
    """Wait for queued CUDA work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
