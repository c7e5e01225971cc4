"""Atomic file writes: the one way every output, cache entry and checkpoint is written.

A file is written beside its target, under a name no other writer uses
(``<name>.<random>.tmp``), and renamed over it, so a reader, or a run killed mid-write, never
sees half a file, and processes writing one target at once (runs sharing a ``--cache-dir``)
never write into or rename each other's temporary file: the last rename wins, whole. A write
that fails leaves the target as it was and removes its temporary file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomic", "write_text_atomic"]


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it to ``path``.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> write_atomic(target, lambda tmp: tmp.write_text("x")).read_text()
    'x'
    """
    path = Path(path)
    # In the target's folder, so that the rename stays on one filesystem (atomic); created by
    # ``write`` itself, so the file gets the mode any new file gets (mkstemp's is owner-only).
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None and err.filename in (None, str(tmp)):
            err.filename = str(path)  # a full disk names the file the user knows, not our temporary
        raise
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (``write_atomic``)."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
