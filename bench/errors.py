"""The one-line form every error of the harness is reported in."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(err: BaseException) -> str:
    """``TypeName: first line of the message``, at most 500 characters.

    >>> one_line(ValueError("bad value\\nmore detail"))
    'ValueError: bad value'
    """
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:500]
