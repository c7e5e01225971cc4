"""The README's "Seed reports" excerpt, made from the seed tables of a results folder.

A results folder is what ``python -m bench reproduce SEED --out DIR`` writes: ``DIR/seeds/SEED.csv``
and the run folder ``DIR/seed-SEED/`` (its ``seed-SEED.csv`` and ``report.html``); the folder
given may also be ``DIR/seeds`` itself. The excerpt has one summary row per seed (budget,
published values and how many are within, outside, not comparable, not run, and its page),
then each seed's published rows in a collapsed block (a report that publishes no number:
our measured rows instead).

``python -m bench report DIR --readme README.md`` rewrites the block between ``SEEDS_START`` and
``SEEDS_END``; a test checks that the committed block matches the committed results.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bench.seeds.presentation import display_rows
from bench.seeds.verdicts import NOT_COMPARABLE, NOT_RUN, OUTSIDE, WITHIN

__all__ = ["SEEDS_START", "SEEDS_END", "seed_tables_in", "has_seed_tables", "seeds_excerpt"]

SEEDS_START = "<!-- seeds-excerpt: start (python -m bench report results/seeds --readme README.md writes it) -->"
SEEDS_END = "<!-- seeds-excerpt: end -->"
_TABLE_COLUMNS = {"seed", "experiment", "metric", "published", "ours", "verdict", "protocol_note"}
_SHOWN = [
    "experiment",
    "metric",
    "published",
    "ours",
    "difference",
    "tolerance",
    "verdict",
    "best",
    "budget",
    "departs",
]


def _candidates(folder: Path) -> list[Path]:
    return sorted({*folder.glob("*.csv"), *folder.glob("seeds/*.csv"), *folder.glob("seed-*/seed-*.csv")})


def seed_tables_in(folder: str | Path) -> dict[str, tuple[pd.DataFrame, Path]]:
    """{seed: (its table, its CSV)} of the seed tables under ``folder`` (the first found of each seed)."""
    found: dict[str, tuple[pd.DataFrame, Path]] = {}
    for path in _candidates(Path(folder)):
        try:
            frame = pd.read_csv(path, dtype={"seed": str, "verdict": str}, keep_default_na=False, na_values=[""])
        except (OSError, ValueError, pd.errors.ParserError):
            continue
        if _TABLE_COLUMNS <= set(frame.columns) and frame["seed"].nunique() == 1:
            found.setdefault(str(frame["seed"].iloc[0]), (frame, path))
    return dict(sorted(found.items()))


def has_seed_tables(folder: str | Path) -> bool:
    """Whether ``folder`` holds seed tables (and so gets the seed block of the README)."""
    return bool(seed_tables_in(folder))


def _page(folder: Path, seed: str) -> Path | None:
    for candidate in (folder / f"seed-{seed}", folder.parent / f"seed-{seed}"):
        if (candidate / "report.html").is_file():
            return candidate / "report.html"
    return None


def _link(path: Path | None, base: Path) -> str:
    if path is None:
        return "no page"
    relative = Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    return f"[{relative}]({relative})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or " "


def _summary_row(seed: str, frame: pd.DataFrame, page: str) -> str:
    verdicts = frame["verdict"].fillna("")
    published = int(frame["published"].notna().sum())
    budgets = ", ".join(sorted(frame["budget"].dropna().astype(str).unique())) if "budget" in frame else "-"
    counts = [int((verdicts == v).sum()) for v in (WITHIN, OUTSIDE, NOT_COMPARABLE, NOT_RUN)]
    return f"| {seed} | {budgets} | {published} | {' | '.join(map(str, counts))} | {page} |"


def _details(seed: str, frame: pd.DataFrame) -> list[str]:
    published = frame[frame["published"].notna()]
    if len(published):
        rows = display_rows(published)
        shown = [c for c in _SHOWN if c != "best" or any(r["best"] for r in rows)]
        title = f"Seed {seed}: {len(rows)} published values"
    else:  # a report that publishes no number (seed 002: images and a pick): our measurements, so the block is not empty
        rows = display_rows(frame[frame["ours"].notna()])
        shown = ["experiment", "metric", "ours", "budget", "departs"]
        title = f"Seed {seed}: no published values; our {len(rows)} measurements"
    lines = ["", f"<details><summary>{title}</summary>", ""]
    lines += [f"| {' | '.join(c if c != 'best' else 'best of denoise-bench' for c in shown)} |"]
    lines += [f"|{'---|' * len(shown)}"]
    lines += [f"| {' | '.join(_cell(r[c]) for c in shown)} |" for r in rows]
    return [*lines, "", "</details>"]


def seeds_excerpt(folder: str | Path, base: str | Path = ".") -> str:
    """The markdown block (without its markers) for the results ``folder``; page links are
    relative to ``base`` (the README's folder). A one-line ValueError when it has no seed table."""
    folder = Path(folder)
    tables = seed_tables_in(folder)
    if not tables:
        raise ValueError(f"{folder} has no seed table; expected SEED.csv files written by 'python -m bench reproduce'")
    lines = [
        "Each seed report's published values beside ours (same model, same protocol); tolerance ±1 point "
        "for an accuracy, ±0.5 dB for a PSNR, ±10% for an MSE unless the protocol gives its own. "
        "Each page lists every row with its deviations from the report's protocol.",
        "",
        "| seed | budget | published values | within | outside | not comparable | not run | page |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [_summary_row(seed, frame, _link(_page(folder, seed), Path(base))) for seed, (frame, _) in tables.items()]
    for seed, (frame, _) in tables.items():
        lines += _details(seed, frame)
    return "\n".join(lines)
