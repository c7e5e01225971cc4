"""Entries built from other entries: the ``"name:key=value,..."`` spelling of a member.

``average_of`` names its members so: ``"unet:width=48,precision=bf16"``, values read as in
``--set``. A run fits each member exactly as that entry would be: as its own cell, through
that cell's fit cache and seed, so a grid that also holds the member shares its fit.
"""

from __future__ import annotations

import sys
from typing import Any

from bench.registry import DENOISERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["parse_member", "is_member"]


def parse_member(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key=value"`` -> (name, params); each value is read as TOML, a bare word as a string."""
    name, _, settings = str(spec).partition(":")
    params: dict[str, Any] = {}
    for setting in filter(None, (part.strip() for part in settings.split(","))):
        key, sep, raw = setting.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"member {spec!r}: expected NAME:KEY=VALUE,...; got {setting!r}")
        try:
            params[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = raw.strip()
    return name.strip(), params


def is_member(spec: Any, *, excluding: str | None = None) -> bool:
    """Whether ``spec`` parses and names a registered denoiser other than ``excluding``."""
    if not isinstance(spec, str):
        return False
    try:
        name, _ = parse_member(spec)
    except ValueError:
        return False
    return name in DENOISERS and name != excluding
