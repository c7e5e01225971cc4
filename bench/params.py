"""Parameter values, once: ``KEY=VALUE`` reading, the member spelling, freezing, fit-only params.

- ``--set NAME.KEY=VALUE`` and a member's ``"name:key=value,..."`` read values alike
  (``parse_assignment``): as TOML (``5000``, ``0.1``, ``true``, ``[1, 2]``), a bare word as a string.
- A cell holds an entry's parameters frozen (``frozen_params``): sorted (key, value) pairs with
  lists as tuples, so cells stay hashable; JSON writes tuples and lists alike, so keys do not
  depend on which one a value came as.
- ``fit_params`` drops an entry's ``inference_params``: what a fit depends on, for its cache key
  and the cached fit's check.
- ``average_of`` names its members ``"unet:width=48,precision=bf16"`` (``parse_member``). A run
  fits each member exactly as that entry would be: as its own cell, through that cell's fit
  cache and seed, so a grid that also holds the member shares its fit.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.registry import DENOISERS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "parse_value",
    "parse_assignment",
    "parse_member",
    "is_member",
    "frozen_params",
    "frozen_entries",
    "hashable",
    "fit_params",
    "stored_fit_params",
]

#: One entry's parameters as a cell holds them.
Frozen = tuple[tuple[str, Any], ...]


def parse_value(raw: str) -> Any:
    """A value as ``--set`` reads it: TOML, or a bare word as a string.

    >>> parse_value("5000"), parse_value("1e-3"), parse_value("[1, 2]"), parse_value("bf16")
    (5000, 0.001, [1, 2], 'bf16')
    """
    try:
        return tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return raw.strip()


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` -> (key, value), the value read by ``parse_value``.

    >>> parse_assignment(" dncnn.max_steps = 5000")
    ('dncnn.max_steps', 5000)
    >>> parse_assignment("width")
    Traceback (most recent call last):
    ValueError: expected KEY=VALUE; got 'width'
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE; got {text!r}")
    return key.strip(), parse_value(raw)


def parse_member(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key=value"`` -> (name, params); each value read as in ``--set``.

    >>> parse_member("unet:width=48,precision=bf16")
    ('unet', {'width': 48, 'precision': 'bf16'})
    """
    name, _, settings = str(spec).partition(":")
    params: dict[str, Any] = {}
    for setting in filter(None, (part.strip() for part in settings.split(","))):
        try:
            key, value = parse_assignment(setting)
        except ValueError:
            raise ValueError(f"member {spec!r}: expected NAME:KEY=VALUE,...; got {setting!r}") from None
        params[key] = value
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


def hashable(value: Any) -> Any:
    """A list (from TOML or --set) as a tuple, so that cells holding it stay hashable.

    >>> hashable([1, [2, 3]])
    (1, (2, 3))
    """
    return tuple(hashable(v) for v in value) if isinstance(value, list | tuple) else value


def frozen_params(params: dict[str, Any]) -> Frozen:
    """One entry's parameters as a cell holds them: sorted (key, value) pairs, lists as tuples.

    >>> frozen_params({"width": 48, "members": ["a", "b"]})
    (('members', ('a', 'b')), ('width', 48))
    """
    return tuple(sorted((k, hashable(v)) for k, v in params.items()))


def frozen_entries(params: dict[str, dict[str, Any]]) -> tuple[tuple[str, Frozen], ...]:
    """A grid's parameters of every entry, frozen: sorted (name, ``frozen_params``) pairs."""
    return tuple(sorted((name, frozen_params(p)) for name, p in params.items()))


def fit_params(owner: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the ``inference_params`` of ``owner`` (an estimator or its class):
    what a fit depends on, for its cache key and the cached fit's check."""
    inference = getattr(owner, "inference_params", ())
    return {k: v for k, v in params.items() if k not in inference}


def stored_fit_params(owner: Any, params: dict[str, Any]) -> dict[str, Any]:
    """``fit_params`` as a fit cache's JSON sidecar gives them back (tuples as lists, other
    objects as strings), so a recorded fit and a model's parameters compare alike.

    >>> stored_fit_params(None, {"members": ("a", "b")})
    {'members': ['a', 'b']}
    """
    return json.loads(json.dumps(fit_params(owner, params), default=str))
