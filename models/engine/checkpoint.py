"""Mid-fit checkpoints: the resume state of a training run, so that a killed fit goes on.

The runner sets ``model.checkpoint_path`` to a path stem beside the fit cache
(``<cache dir>/<fit key>.ckpt``) and may set ``model.checkpoint_every`` (seconds, default
300); tests set ``model.checkpoint_every_steps`` to write one every few optimizer steps.
None of these is a constructor parameter, so they never change a fit's cache key.

Each training stage of a fit (``fit``; ``pretrain layer 2``, ``fine-tune`` of multi-stage
models) keeps one file, ``<stem>.<stage>.pt``, replaced atomically (a temporary file, then
``os.replace``) at every checkpoint. When a stage finishes, its file keeps the final state,
so a rerun skips finished stages; the model's ``fit`` deletes every file once the whole fit
has succeeded. A file holds only tensors, numbers, strings, lists and dicts, and is read
with ``torch.load(..., weights_only=True)``: no object is ever unpickled. A header carries the
SHA-256 of what follows, checked before anything is loaded, so flipped bytes never resume a fit
from garbage.

What a checkpoint holds (see ``models.engine.training``): the weights, the optimizer state, the
learning-rate schedule's position, the RNG states (torch's CPU generator, CUDA's when it is
in use, and the loop's generator of batch orders and training noise), step, epoch, the
epoch in progress (its batch order and position), the training loss since the last validation
point, the best weights so far,
the patience and collapse-restart state and the history. On the CPU a resumed fit gives
bit-identical weights and losses to an uninterrupted one when its budget is in steps and
epochs; a wall-clock budget (``max_seconds``) starts afresh on resume and cannot be.

A damaged checkpoint (its checksum fails, it cannot be read, or its tensors do not fit the
network) is named in a one-line warning on ``bench.training``, moved aside to
``<file>.corrupt`` and the stage starts over; one that another fit wrote is ignored the same
way and left to be overwritten. A checkpoint that cannot be written (a full disk) is named in one
warning, and the fit goes on without checkpoints.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import io
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench.errors import one_line
from bench.files import write_atomic

__all__ = [
    "Checkpoints",
    "Best",
    "EpochInProgress",
    "DamagedCheckpoint",
    "capture",
    "resume",
    "save_state",
    "read_state",
    "load_state",
    "seconds_trained",
    "fractional_epoch",
]

log = logging.getLogger("bench.training")

FORMAT = 3
#: A checkpoint file is this line, the hex SHA-256 of the rest and a newline, then ``torch.save``'s bytes.
MAGIC = b"denoise-bench checkpoint\n"
_DIGEST_LENGTH = 64


class DamagedCheckpoint(ValueError):
    """A checkpoint file that fails its checksum, cannot be read or does not fit the network."""


@dataclass(frozen=True)
class Checkpoints:
    """Where and how often a fit writes its checkpoints.

    Parameters
    ----------
    stem : Path
        Path stem; stage ``name`` writes ``<stem>.<name>.pt``.
    every_seconds : float
        Wall-clock interval between checkpoints of a stage.
    every_steps : int or None
        Also write one every this many optimizer steps (for tests: no wall-clock timing).
    """

    stem: Path
    every_seconds: float = 300.0
    every_steps: int | None = None
    #: Set once a write has failed: the fit goes on without checkpoints (one warning, not one a step).
    failed: list[str] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.every_seconds > 0:
            raise ValueError(f"checkpoint_every must be a positive number of seconds; got {self.every_seconds!r}")
        if self.every_steps is not None and (not isinstance(self.every_steps, int) or self.every_steps < 1):
            raise ValueError(f"checkpoint_every_steps must be None or an int >= 1; got {self.every_steps!r}")

    @classmethod
    def of(cls, model: Any) -> Checkpoints | None:
        """The checkpoint settings a model carries as plain attributes; None without a path."""
        path = getattr(model, "checkpoint_path", None)
        if path is None:
            return None
        every = getattr(model, "checkpoint_every", 300.0)
        return cls(Path(path), float(every), getattr(model, "checkpoint_every_steps", None))

    def path(self, stage: str) -> Path:
        """The file of ``stage`` (its name reduced to letters, digits and dashes)."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", stage).strip("-") or "fit"
        return self.stem.with_name(f"{self.stem.name}.{slug}.pt")

    @property
    def writable(self) -> bool:
        """False once a write has failed."""
        return not self.failed

    def save(self, stage: str, state: dict[str, Any]) -> None:
        """Write ``stage``'s state; a write that fails (a full disk) warns once and turns checkpoints off."""
        if self.failed:
            return
        path = self.path(stage)
        try:
            save_state(path, state)
        except OSError as error:
            self.failed.append(str(path))
            log.warning("cannot write checkpoint %s (%s); the fit goes on without checkpoints", path, one_line(error))

    def clear(self) -> None:
        """Delete every checkpoint file of this stem (after the fit has succeeded); files moved
        aside as ``.corrupt`` stay, for whoever wants to look at them."""
        for file in self.files():
            file.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """The stages' files and any temporary file a killed write left (not ``.corrupt`` ones)."""
        found = self.stem.parent.glob(glob.escape(self.stem.name) + ".*.pt*")
        return [file for file in found if not file.name.endswith(".corrupt")]

    def seconds_trained(self) -> float:
        """The training seconds the stages' checkpoints hold: what a fit resuming from them has
        already run (0 without any; an unreadable file counts 0, as it will be ignored)."""
        total = 0.0
        for file in self.files():
            try:
                total += float(read_state(file).get("elapsed", 0.0))
            except Exception:  # a damaged file or a temporary one: the fit will warn and start over
                pass
        return total


@dataclass
class Best:
    """Best score so far, its weights, and the (fractional) epoch and step it was scored at;
    patience counts the steps since."""

    loss: float = math.inf
    state: dict[str, Tensor] | None = None
    epoch: float = 0
    step: int = 0

    def update(self, net: nn.Module, loss: float, epoch: float, step: int) -> None:
        if loss < self.loss:
            self.loss, self.epoch, self.step = loss, epoch, step
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}


@dataclass
class EpochInProgress:
    """An epoch under way: its batch order and the batches done."""

    order: Tensor
    position: int = 0


def fractional_epoch(step: int, per_epoch: int) -> float | int:
    """Epochs done after ``step`` steps of ``per_epoch``: an int at an epoch's end, else 3 decimals.

    >>> fractional_epoch(564, 282), fractional_epoch(120, 282)
    (2, 0.426)
    """
    whole, rest = divmod(step, per_epoch)
    return whole if rest == 0 else round(step / per_epoch, 3)


#: The engine's plain attributes a checkpoint carries besides tensors and RNG states.
_SCALARS = ("step", "epoch", "last_step", "schedule_step", "lr", "loss_count")


def fingerprint(engine: Any) -> str:
    """What a checkpoint must have been written by: stage, recipe, pool size, seed, parameter shapes."""
    shapes = [[name, list(t.shape)] for name, t in engine.net.state_dict().items()]
    record = {"stage": engine.stage_name, "recipe": asdict(engine.recipe), "n": engine.n, "seed": engine.seed}
    return json.dumps(record | {"tensors": shapes}, sort_keys=True, default=str)


def capture(engine: Any, *, done: bool) -> dict[str, Any]:
    """The whole resume state of a ``models.engine.training`` engine (``done``: its stage has finished)."""
    now = engine.current
    return {
        "fingerprint": fingerprint(engine),
        "done": done,
        "net": engine.net.state_dict(),
        "optimizer": engine.optimizer.state_dict(),
        "rng": rng_state(engine.generator),
        "scalars": {name: getattr(engine, name) for name in _SCALARS},
        "best": dict(vars(engine.best)),  # vars, not asdict: no deep copy of the weights
        "history": engine.history,
        "info": engine.info,
        "epoch_in_progress": None if now is None else dict(vars(now)),
        "loss_sum": engine.loss_sum,
        "elapsed": time.monotonic() - engine.start,  # seconds trained in this stage, across resumes
    }


def resume(engine: Any, path: Path, what: str) -> bool:
    """Load ``path`` into ``engine`` if it is a usable checkpoint of this stage; True if the stage had finished."""
    state = load_state(path, fingerprint(engine))
    if state is None:
        return False
    fresh = (copy.deepcopy(engine.net.state_dict()), copy.deepcopy(engine.optimizer.state_dict()))
    fresh_rng = rng_state(engine.generator)
    try:
        _apply(engine, state)
    except Exception as error:  # a damaged file must never stop the fit: start over from the fresh state
        set_aside(path, error)
        engine.net.load_state_dict(fresh[0])
        engine.optimizer.load_state_dict(fresh[1])
        set_rng_state(fresh_rng, engine.generator)
        return False
    done = bool(state["done"])
    verb = "restoring the finished stage" if done else "resuming"
    log.info("%s: %s from checkpoint %s at step %d (epoch %d)", what, verb, path, engine.step, engine.epoch)
    return done


def _apply(engine: Any, state: dict[str, Any]) -> None:
    reference = engine.net.state_dict()
    check_tensors(state["net"], reference, "saved weights")
    best = state["best"]
    if best["state"] is not None:
        check_tensors(best["state"], reference, "saved best weights")
    scalars = {name: state["scalars"][name] for name in _SCALARS}
    history, info, now = list(state["history"]), dict(state["info"]), state["epoch_in_progress"]
    engine.optimizer.load_state_dict(state["optimizer"])
    engine.net.load_state_dict(state["net"])
    set_rng_state(state["rng"], engine.generator)
    engine.best = Best(float(best["loss"]), best["state"], best["epoch"], int(best["step"]))
    engine.loss_sum = state["loss_sum"].to(engine.device)
    for name, value in scalars.items():
        setattr(engine, name, value)
    engine.history, engine.info = history, info
    engine.start = time.monotonic() - float(state.get("elapsed", 0.0))  # info["seconds"] spans the resumes
    if now is not None:
        device = engine.device
        now = EpochInProgress(now["order"].to(device), int(now["position"]))
    engine.current = now


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain values only) to ``path`` atomically, under its checksum."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)  # in memory: a full disk fails below, as an OSError
    payload = buffer.getvalue()
    header = MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: tmp.write_bytes(header + payload))


def read_state(path: Path) -> dict[str, Any]:
    """The state saved at ``path``; DamagedCheckpoint unless its checksum holds and it loads."""
    raw = path.read_bytes()
    start = len(MAGIC) + _DIGEST_LENGTH + 1
    if not raw.startswith(MAGIC) or raw[start - 1 : start] != b"\n":
        raise DamagedCheckpoint("no checksum header; not a checkpoint of this version")
    payload = raw[start:]
    if hashlib.sha256(payload).hexdigest().encode() != raw[len(MAGIC) : start - 1]:
        raise DamagedCheckpoint(f"checksum mismatch over its {len(payload)} bytes")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:
        raise DamagedCheckpoint(f"cannot be loaded ({one_line(error)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DamagedCheckpoint(f"not a format-{FORMAT} checkpoint")
    return state


def load_state(path: Path, expected: str) -> dict[str, Any] | None:
    """The state saved at ``path`` by the fit ``expected`` describes, or None: absent, damaged
    (moved aside, with a warning) or another fit's (ignored, with a warning)."""
    if not path.is_file():
        return None
    try:
        state = read_state(path)
    except Exception as error:  # a partial or damaged file must never stop the fit
        set_aside(path, error)
        return None
    if state.get("fingerprint") != expected:
        log.warning(
            "ignoring checkpoint %s (written by another fit: recipe, data size, seed or network differ); "
            "the stage starts over",
            path,
        )
        return None
    return state


def set_aside(path: Path, error: BaseException) -> None:
    """Name a damaged checkpoint in one warning line and move it to ``<file>.corrupt``."""
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
        where = f"moved to {aside.name}"
    except OSError:  # it could not be moved: gone is as good, the stage rewrites it
        path.unlink(missing_ok=True)
        where = "removed"
    log.warning("checkpoint %s is damaged (%s); %s, the stage starts over", path, one_line(error), where)


def check_tensors(saved: Any, reference: dict[str, Tensor], what: str) -> None:
    """Raise ValueError unless ``saved`` has exactly ``reference``'s names, shapes and dtypes."""
    if not isinstance(saved, dict) or saved.keys() != reference.keys():
        raise ValueError(f"{what} does not have the network's tensors")
    for name, tensor in reference.items():
        other = saved[name]
        if not isinstance(other, Tensor) or other.shape != tensor.shape or other.dtype != tensor.dtype:
            raise ValueError(f"{what} tensor {name} does not match the network")


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """torch's CPU generator, CUDA's (once initialised) and the loop's ``generator``."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": list(cuda), "loop": generator.get_state()}


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    """Restore what ``rng_state`` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["loop"])


def seconds_trained(model: Any) -> float:
    """``Estimator.seconds_trained`` for a model that checkpoints through ``Checkpoints.of``: the
    seconds its stages' checkpoints hold (0 without a path). Classes assign it as their method."""
    checkpoints = Checkpoints.of(model)
    return 0.0 if checkpoints is None else checkpoints.seconds_trained()
