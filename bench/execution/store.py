"""The run store: one SQLite file per grid, one row per finished cell.

WAL mode and one short ``BEGIN IMMEDIATE`` transaction per finished cell: a run killed at
any moment keeps every cell it had finished, and a rerun skips them. Only the driver
process writes.

Any fault of the file, at open or later (a page damaged mid-file, a full disk, damaged stored
samples), raises ``StoreError``: one line naming the file, what failed and what to do. A cell
whose write fails is rolled back whole; every cell committed before it stays.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import sqlite3
import tempfile
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.execution.rows import CELL_IDENTITY, CellRow, ClassifierRow, columns, csv_columns, sql_kind

__all__ = [
    "Store",
    "open_run",
    "StoreError",
    "CELL_COLUMNS",
    "LEADERBOARD_COLUMNS",
    "CLASSIFIER_COLUMNS",
    "PER_IMAGE_METRICS",
    "CORRECT_PREFIX",
]

#: leaderboard.csv, in this order (the store keeps a few more): the ``csv`` fields of a cell row.
LEADERBOARD_COLUMNS = csv_columns(CellRow)
#: The cells table: every stored field of a cell row.
CELL_COLUMNS = columns(CellRow)
#: The classifier_results table: a classifier row under its cell's identity and key.
CLASSIFIER_COLUMNS = [*CELL_IDENTITY, *columns(ClassifierRow), "key"]
_KINDS = {c: sql_kind(CellRow, c) for c in CELL_COLUMNS} | {
    c: sql_kind(ClassifierRow, c) for c in columns(ClassifierRow)
}
_JSON_COLUMNS = {c for c, kind in _KINDS.items() if kind == "JSON"}
_INTEGER_COLUMNS = {c for c, kind in _KINDS.items() if kind == "INTEGER"}
#: Cell columns added after stores were first written: an older store gains them when opened.
_ADDED_COLUMNS = ("psnr_uint8", "below_noisy")


# A failed cell `c` for which an ok cell of the same settings exists under another key.
_SUPERSEDED = """c.status IS NOT 'ok' AND EXISTS (
    SELECT 1 FROM cells AS o WHERE o.status = 'ok' AND o.key != c.key AND o.dataset IS c.dataset
    AND o.noise IS c.noise AND o.level IS c.level AND o.train_level IS c.train_level
    AND o.denoiser IS c.denoiser AND o.denoiser_params IS c.denoiser_params)"""


def _sql_type(column: str) -> str:
    return "TEXT" if _KINDS[column] == "JSON" else _KINDS[column]


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT, grid TEXT, spec TEXT, argv TEXT, device TEXT,
    versions TEXT, started REAL, finished REAL, cells_ok INTEGER, cells_failed INTEGER, machine TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    {", ".join(f"{c} {_sql_type(c)}" for c in CELL_COLUMNS if c != "key")},
    key TEXT PRIMARY KEY, samples BLOB
);
CREATE TABLE IF NOT EXISTS classifier_results (
    {", ".join(f"{c} {_sql_type(c)}" for c in CLASSIFIER_COLUMNS)},
    PRIMARY KEY (key, classifier)
);
CREATE TABLE IF NOT EXISTS per_image (
    key TEXT NOT NULL, name TEXT NOT NULL, dtype TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (key, name)
);
"""

#: Per-image arrays kept for paired tests: ``psnr`` and ``ssim`` (float32) of every cell, and
#: ``correct:<classifier>`` (bool) per classifier; one value per scored test image, in order.
PER_IMAGE_METRICS = ("psnr", "ssim")
CORRECT_PREFIX = "correct:"


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS:
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _pack_samples(samples: dict[str, np.ndarray] | None) -> bytes | None:
    if not samples:
        return None
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **samples)
    return buffer.getvalue()


def _per_image_arrays(row: CellRow, classifier_rows: Sequence[ClassifierRow]) -> dict[str, np.ndarray]:
    """The arrays of one cell by stored name; all of one length (the images scored)."""
    arrays = {name: np.asarray(v, dtype="<f4") for name, v in (row.per_image or {}).items()}
    for result in classifier_rows:
        if result.correct is not None:
            arrays[CORRECT_PREFIX + result.classifier] = np.asarray(result.correct, dtype=bool)
    lengths = {name: a.size for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"per-image results of cell {row.key} differ in length ({lengths}); expected one per image")
    return arrays


class StoreError(ValueError):
    """A run store that cannot be read or written: the file, what failed, why and what to do."""

    def __init__(self, path: Path, what: str, err: BaseException) -> None:
        if isinstance(err, pd.errors.DatabaseError) and err.__cause__ is not None:
            err = err.__cause__  # sqlite's own error, without the SQL pandas puts before it
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if isinstance(err, (zipfile.BadZipFile, zlib.error, EOFError)):
            reason = f"{type(err).__name__}: {reason}"
        if "full" in reason:  # SQLITE_FULL: "database or disk is full"
            advice = "free disk space and rerun the same command: every cell stored so far is kept"
        elif "locked" in reason or "busy" in reason:
            advice = "another process is writing it: wait for it to finish or pass another --out"
        else:
            advice = "move it away or pass another --out"
        super().__init__(f"run store {path} {what} ({reason}); {advice}")


#: What a damaged or full store raises: sqlite's errors, pandas' wrapping of them.
_FAULTS = (sqlite3.Error, pd.errors.DatabaseError)


def _guarded(what: str, also: tuple[type[BaseException], ...] = ()):
    """Turn a store fault raised by the method into a StoreError saying ``what`` failed."""

    def wrap(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except (*_FAULTS, *also) as err:
                raise StoreError(self.path, f"failed while {what}", err) from None

        return guarded

    return wrap


class Store:
    """A SQLite run store at ``path`` (created with its folder if missing).

    ``read_only=True`` reads a private copy, so that commands which only read a run (``compare``,
    ``--against``) never rewrite its file: opening a store in WAL mode, or giving an older store
    the columns added since, would otherwise change a committed ``store.sqlite`` in place.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._copy = None
        if read_only:
            self._copy = tempfile.TemporaryDirectory(prefix="bench-store-")
            opened = Path(self._copy.name) / "store.sqlite"
            for suffix in ("", "-wal"):  # a run killed mid-write leaves committed cells in its -wal
                if Path(f"{self.path}{suffix}").is_file():
                    shutil.copyfile(f"{self.path}{suffix}", f"{opened}{suffix}")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            opened = self.path
        self._db = sqlite3.connect(opened, isolation_level=None, timeout=30)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._check_columns()
        except sqlite3.DatabaseError as err:  # not a database, a damaged one, another program's, a full disk
            self.close()
            raise StoreError(self.path, "cannot be used", err) from None

    def _check_columns(self) -> None:
        # A database that is not a run store of this version would fail on the first cell.
        have = {row[1] for row in self._db.execute("PRAGMA table_info(cells)")}
        # Stores written before a metric existed gain its column (empty for their cells).
        for column in (c for c in _ADDED_COLUMNS if c not in have):
            self._db.execute(f"ALTER TABLE cells ADD COLUMN {column} {_sql_type(column)}")
            have.add(column)
        missing = [c for c in CELL_COLUMNS if c not in have]
        if missing:
            raise sqlite3.DatabaseError(f"its cells table lacks {', '.join(missing)}")
        # Stores written before runs kept their machine gain the column (empty for those runs).
        if "machine" not in {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}:
            self._db.execute("ALTER TABLE runs ADD COLUMN machine TEXT")

    def close(self) -> None:
        self._db.close()
        if self._copy is not None:
            self._copy.cleanup()
            self._copy = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self, statements: list[tuple[str, tuple]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self._db.execute(sql, args)
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does): only what is left, and
            # never let a failed rollback hide the error that caused it.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    @_guarded("recording the run's start")
    def start_run(
        self, *, grid: str, spec: dict, argv: list[str], device: str, versions: dict, machine: dict | None = None
    ) -> int:
        """Record a run's start: its grid, command line (``argv`` after ``python -m bench``), device,
        package versions and machine (``bench.machine.machine``); returns its run id."""
        cursor = self._db.execute(
            "INSERT INTO runs (grid, spec, argv, device, versions, started, machine) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (grid, json.dumps(spec), json.dumps(argv), device, json.dumps(versions), time.time(), json.dumps(machine)),
        )
        return int(cursor.lastrowid)

    @_guarded("recording the run's end")
    def finish_run(self, run_id: int, *, ok: int, failed: int) -> None:
        self._db.execute(
            "UPDATE runs SET finished = ?, cells_ok = ?, cells_failed = ? WHERE run_id = ?",
            (time.time(), ok, failed, run_id),
        )

    @_guarded("reading the finished cells")
    def finished_keys(self) -> set[str]:
        """Keys of cells that finished ok (failed cells are retried)."""
        return {row[0] for row in self._db.execute("SELECT key FROM cells WHERE status = 'ok'")}

    @_guarded("storing a finished cell")
    def put_cell(self, row: CellRow, classifier_rows: Sequence[ClassifierRow] = (), samples=None) -> None:
        """Write one finished cell, its classifier rows and its per-image arrays in one transaction.

        ``row.run_id`` (from ``start_run``) ties the cell to its run; see ``run_cells``.
        """
        if (
            row.run_id is not None
            and not self._db.execute("SELECT 1 FROM runs WHERE run_id = ?", (row.run_id,)).fetchone()
        ):
            raise ValueError(f"run_id {row.run_id!r} is not a run of {self.path}; expected an id from start_run")
        cell = {c: _encode(c, getattr(row, c)) for c in CELL_COLUMNS} | {
            "finished": time.time(),
            "samples": _pack_samples(samples),
        }
        statements = [
            (
                f"INSERT OR REPLACE INTO cells ({', '.join(cell)}) VALUES ({', '.join('?' * len(cell))})",
                tuple(cell.values()),
            ),
            ("DELETE FROM classifier_results WHERE key = ?", (row.key,)),
            ("DELETE FROM per_image WHERE key = ?", (row.key,)),
        ]
        for name, values in _per_image_arrays(row, classifier_rows).items():
            statements.append(
                (
                    "INSERT INTO per_image (key, name, dtype, data) VALUES (?, ?, ?, ?)",
                    (row.key, name, values.dtype.str, values.ravel().tobytes()),
                )
            )
        own = set(columns(ClassifierRow))
        for result in classifier_rows:
            values = {c: _encode(c, getattr(result if c in own else row, c)) for c in CLASSIFIER_COLUMNS}
            statements.append(
                (
                    f"INSERT INTO classifier_results ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                    tuple(values.values()),
                )
            )
        self._transaction(statements)

    @_guarded("reading its results")
    def _frame(self, sql: str, columns: list[str]) -> pd.DataFrame:
        frame = pd.read_sql_query(sql, self._db)
        for column in _JSON_COLUMNS:
            if column in frame:
                frame[column] = frame[column].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        for column in _INTEGER_COLUMNS & set(frame.columns):
            frame[column] = frame[column].astype("Int64")  # failed rows leave them empty
        return frame[[c for c in columns if c in frame]]

    def cells(self, *, superseded: bool = False) -> pd.DataFrame:
        """Every cell, ordered by dataset, noise, level, training level, denoiser.

        A failed cell is superseded once a cell of the same dataset, noise, level, training
        level, denoiser and parameters finished ok under another key (other test images,
        another code version): it is left out unless ``superseded`` is true. The failure
        stays in the store; it no longer describes what these settings do.
        """
        where = "" if superseded else f"WHERE NOT ({_SUPERSEDED})"
        order = "ORDER BY dataset, noise, level, train_level, denoiser"
        return self._frame(f"SELECT {', '.join(CELL_COLUMNS)} FROM cells AS c {where} {order}", CELL_COLUMNS)

    def run_cells(self) -> pd.DataFrame:
        """Cells joined with the run that wrote them: the cell columns plus ``run_grid``,
        ``run_argv``, ``run_started`` and ``run_finished`` (empty for cells without a run id)."""
        extra = {"grid": "run_grid", "argv": "run_argv", "started": "run_started", "finished": "run_finished"}
        sql = (
            f"SELECT {', '.join(f'c.{c}' for c in CELL_COLUMNS)}, {', '.join(f'r.{a} AS {b}' for a, b in extra.items())} "
            "FROM cells AS c LEFT JOIN runs AS r ON c.run_id = r.run_id ORDER BY c.run_id, c.finished"
        )
        frame = self._frame(sql, [*CELL_COLUMNS, *extra.values()])
        frame["run_argv"] = frame["run_argv"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        return frame

    def classifier_results(self) -> pd.DataFrame:
        order = "ORDER BY dataset, noise, level, train_level, denoiser, classifier"
        return self._frame(f"SELECT * FROM classifier_results {order}", CLASSIFIER_COLUMNS)

    @_guarded("reading its runs")
    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY run_id", self._db)

    @_guarded("reading per-image results")
    def per_image(self, keys=None) -> dict[str, dict[str, np.ndarray]]:
        """{cell key: {"psnr": float32[n], "ssim": float32[n], "correct:<classifier>": bool[n]}}.

        Only cells that have them (stores written before they were kept have none); ``keys``
        limits the answer to those cells.
        """
        out: dict[str, dict[str, np.ndarray]] = {}
        wanted = None if keys is None else set(keys)
        for key, name, dtype, data in self._db.execute("SELECT key, name, dtype, data FROM per_image ORDER BY key"):
            if wanted is None or key in wanted:
                out.setdefault(key, {})[name] = np.frombuffer(data, dtype=np.dtype(dtype))
        return out

    @_guarded("reading stored sample images", also=(zipfile.BadZipFile, zlib.error, EOFError))
    def samples(self, key: str) -> dict[str, np.ndarray]:
        """The few images kept for the report: clean, noisy and denoised uint8 arrays."""
        row = self._db.execute("SELECT samples FROM cells WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] is None:
            return {}
        with np.load(io.BytesIO(row[0])) as data:
            return {name: data[name] for name in data.files}


def open_run(run_dir: str | Path, *, read_only: bool = False) -> Store:
    """The store of a run folder; a folder without one is a one-line ValueError. ``read_only``
    reads a copy and leaves the folder's file untouched (see ``Store``)."""
    path = Path(run_dir) / "store.sqlite"
    if not path.is_file():
        raise ValueError(f"no run store at {path}; expected a folder written by 'python -m bench run'")
    return Store(path, read_only=read_only)
