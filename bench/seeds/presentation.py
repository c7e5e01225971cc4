"""A seed table as a reader wants it: aligned text for ``reproduce``, display rows for the page.

Both show, per row: experiment, metric, published, ours, difference, tolerance, verdict, our
best entry on the same data (when some row has one), budget, and last the long texts (the
departures from the report's protocol, or why a row did not run / is not comparable), so that
the difference is never pushed off to the right.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.seeds.verdicts import NOT_COMPARABLE, NOT_RUN, format_difference, format_tolerance, format_value

__all__ = [
    "PAGE_COLUMNS",
    "display_rows",
    "format_table",
    "format_readings",
    "format_report",
    "why",
    "page_path",
    "DISPLAY_COLUMNS",
]

#: (column of :func:`display_rows`, header) in the order shown; ``best`` only when some row has one.
DISPLAY_COLUMNS = [
    ("experiment", "experiment"),
    ("metric", "metric"),
    ("published", "published"),
    ("ours", "ours"),
    ("difference", "difference"),
    ("tolerance", "tolerance"),
    ("verdict", "verdict"),
    ("best", "best of denoise-bench"),
    ("budget", "budget"),
    ("departs", "departs"),
    ("why", "deviations / why"),
]
#: The page adds the row's reading and its note (the measurement's details) after them.
PAGE_COLUMNS = [*DISPLAY_COLUMNS, ("reading", "reading"), ("note", "note")]


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def why(row: pd.Series) -> str:
    """The row's long text: why it did not run or is not comparable, then its deviations."""
    parts = []
    verdict, note = _text(row.get("verdict")), _text(row.get("protocol_note"))
    if verdict == NOT_RUN or note.startswith("not run"):
        parts.append(note)
    if verdict == NOT_COMPARABLE:
        parts.append(f"not comparable: {_text(row.get('not_comparable'))}")
    if _text(row.get("deviations")):
        parts.append(_text(row.get("deviations")))
    return "; ".join(p for p in parts if p)


def display_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """One dict of display strings per row of a seed table (keys: :data:`PAGE_COLUMNS`)."""
    rows = []
    for _, row in frame.iterrows():
        metric, published = _text(row.get("metric")), row.get("published")
        best_entry = _text(row.get("best_entry"))
        rows.append(
            {
                "experiment": _text(row.get("experiment")),
                "metric": metric,
                "published": format_value(published),
                "ours": format_value(row.get("ours")),
                "difference": format_difference(metric, row.get("difference"), published),
                "tolerance": format_tolerance(metric, row.get("tolerance"), published) if pd.notna(published) else "",
                "verdict": _text(row.get("verdict")) or "-",
                "best": f"{best_entry} {format_value(row.get('best_of_bench'))}" if best_entry else "",
                "budget": _text(row.get("budget")),
                "departs": "yes" if _text(row.get("deviations")) else "",
                "why": why(row),
                "reading": _text(row.get("reading")),
                # a "not run: ..." note is already the row's why
                "note": ""
                if _text(row.get("protocol_note")).startswith("not run")
                else _text(row.get("protocol_note")),
            }
        )
    return rows


def _columns(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key, head) for key, head in DISPLAY_COLUMNS if key != "best" or any(r["best"] for r in rows)]


def _say_once(rows: list[dict[str, str]]) -> None:
    """An experiment named on its first row only; a long text already given in it becomes '(as above)'."""
    experiment, said = None, set()
    for row in rows:
        if row["experiment"] == experiment:
            row["experiment"] = ""
        else:
            experiment, said = row["experiment"], set()
        if row["why"] in said:
            row["why"] = "(as above)"
        elif row["why"]:
            said.add(row["why"])


def format_table(frame: pd.DataFrame, *, title: str = "") -> str:
    """An aligned plain-text table of a seed table (each experiment named on its first row, a long
    text repeated within it given once; the long text column last, unpadded).

    >>> frame = pd.DataFrame({"experiment": ["ae"], "metric": ["val_mse"], "published": [0.01255], "ours": [0.0131],
    ...     "difference": [0.00055], "tolerance": [0.001255], "verdict": ["within"], "budget": ["tiny"]})
    >>> print(format_table(frame))
    experiment  metric   published  ours    difference        tolerance  verdict  budget  departs  deviations / why
    ae          val_mse  0.01255    0.0131  +0.00055 (+4.4%)  ±10%       within   tiny
    """
    rows = display_rows(frame)
    columns = _columns(rows)
    _say_once(rows)
    widths = {key: max([len(head)] + [len(r[key]) for r in rows]) for key, head in columns}
    lines = [title] if title else []
    for values in [dict((key, head) for key, head in columns), *rows]:
        cells = [values[key].ljust(widths[key]) for key, _ in columns[:-1]] + [values[columns[-1][0]]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_readings(frame: pd.DataFrame) -> list[str]:
    """'  experiment: reading' once per distinct reading (where the report is silent or contradicts itself)."""
    if "reading" not in frame:
        return []
    seen: dict[str, list[str]] = {}
    for experiment, reading in zip(frame["experiment"], frame["reading"], strict=True):
        if _text(reading):
            seen.setdefault(_text(reading), [])
            if experiment not in seen[_text(reading)]:
                seen[_text(reading)].append(str(experiment))
    return [f"  {', '.join(experiments)}: {reading}" for reading, experiments in seen.items()]


def _tally(frame: pd.DataFrame) -> str:
    counts = frame["verdict"].fillna("").value_counts() if "verdict" in frame else pd.Series(dtype=int)
    published = int(pd.to_numeric(frame["published"], errors="coerce").notna().sum())
    parts = [f"{counts[v]} {v}" for v in ("within", "outside", NOT_COMPARABLE, NOT_RUN) if counts.get(v)]
    return f"{published} published values: {', '.join(parts) or 'none compared'}"


def format_report(report: str, frame: pd.DataFrame, out_dir: str | Path) -> str:
    """What ``reproduce`` ends with for one report: a heading with the verdicts' tally, the
    aligned table, the readings chosen, and where the CSV and the page are."""
    budget = ", ".join(sorted({_text(b) for b in frame.get("budget", pd.Series(dtype=str)) if _text(b)})) or "-"
    lines = [f"seed {report} ({budget} budget): {_tally(frame)}", format_table(frame)]
    readings = format_readings(frame)
    if readings:
        lines += ["readings (where the report is silent or contradicts itself):", *readings]
    lines.append(f"table: {Path(out_dir) / 'seeds' / report}.csv; page: {page_path(out_dir, report)}")
    return "\n".join(lines)


def page_path(out_dir: str | Path, report: str) -> Path:
    """Where a seed report's page is: ``OUT/seed-SEED/report.html``."""
    return Path(out_dir) / f"seed-{report}" / "report.html"
