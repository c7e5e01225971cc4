"""Published results as data: the denoising literature's figures, each with its source, beside ours.

``published.csv`` holds one figure per row: the test set, noise and level, the method as the
paper names it, our denoisers that implement it (``denoisers``, space-separated), how the
published network was trained (``level``: at the test level, as DnCNN-S; ``blind``: one model
for every level, as DnCNN-B; empty: no training, or none the source states), the metric, the
value and where it is printed. A figure is added only where its source can be named exactly:
the repository, commit and file, and where in it (a table printed as an image, as FFDNet's and
DPIR's READMEs show theirs, is named as that image file).

``beside`` joins the figures to a leaderboard: each of our rows for the same method, set and
sigma gains the published PSNR and SSIM and our difference from them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = [
    "PUBLISHED_CSV",
    "published_table",
    "beside",
    "comparisons",
    "literature_frame",
    "PUBLISHED_COLUMNS",
    "published_excerpt",
    "has_published",
    "PUBLISHED_START",
    "PUBLISHED_END",
]

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
_FIELDS = ["dataset", "noise", "level", "method", "denoisers", "trained", "metric", "value", "source"]
#: What ``beside`` adds to a leaderboard row that has published figures.
PUBLISHED_COLUMNS = [
    "published_method",
    "published_psnr",
    "psnr_vs_published",
    "published_ssim",
    "ssim_vs_published",
    "published_source",
]


def published_table(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """The published figures, one row each; a malformed file is a one-line ValueError."""
    table = pd.read_csv(path, dtype={"denoisers": str, "trained": str}, keep_default_na=False)
    if list(table.columns) != _FIELDS:
        raise ValueError(f"{path}: columns {list(table.columns)}; expected {_FIELDS}")
    bad = table[~table["metric"].isin(["psnr", "ssim"]) | (table["source"].str.strip() == "")]
    if len(bad):
        raise ValueError(f"{path}: row {bad.index[0] + 2} needs metric psnr or ssim and a source")
    return table.astype({"level": float, "value": float})


def _figures(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (set, noise, level, method): its PSNR, SSIM and sources side by side."""
    keys = ["dataset", "noise", "level", "method", "denoisers", "trained"]
    wide = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    sources = table.groupby(keys)["source"].agg(lambda s: "; ".join(dict.fromkeys(s))).reset_index()
    wide = wide.merge(sources, on=keys)
    for metric in ("psnr", "ssim"):
        if metric not in wide:
            wide[metric] = float("nan")
    return wide


def _trained_as(row: pd.Series) -> str:
    """How a leaderboard row was trained, in the table's words: level, blind, or another level."""
    if str(row["train_level"]) == "blind":
        return "blind"
    train = pd.to_numeric(row["train_level"], errors="coerce")
    return "level" if abs(train - row["level"]) < 1e-9 else "other"


def _match(row: pd.Series, figures: pd.DataFrame) -> pd.Series | None:
    same = figures[
        (figures["dataset"] == row["dataset"])
        & (figures["noise"] == row["noise"])
        & ((figures["level"] - row["level"]).abs() < 1e-9)
        & figures["denoisers"].map(lambda names: row["denoiser"] in names.split())
        & figures["trained"].isin(["", _trained_as(row)])
    ]
    return None if same.empty else same.iloc[0]


def beside(board: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """``board`` with ``PUBLISHED_COLUMNS`` filled where a published figure matches its row.

    The columns are added only when some row matches, so runs on other data keep their shape.
    """
    figures = _figures(published_table() if table is None else table)
    found = {i: _match(row, figures) for i, row in board.iterrows() if row.get("status", "ok") == "ok"}
    found = {i: f for i, f in found.items() if f is not None}
    if not found:
        return board
    out = board.copy()
    for column in PUBLISHED_COLUMNS:
        out[column] = pd.Series(dtype=object if column in ("published_method", "published_source") else float)
    for i, figure in found.items():
        out.loc[i, ["published_method", "published_source"]] = [figure["method"], figure["source"]]
        out.loc[i, ["published_psnr", "published_ssim"]] = [figure["psnr"], figure["ssim"]]
        out.loc[i, "psnr_vs_published"] = board.loc[i, "psnr"] - figure["psnr"]
        out.loc[i, "ssim_vs_published"] = board.loc[i, "ssim"] - figure["ssim"]
    return out


def comparisons(board: pd.DataFrame) -> list[dict]:
    """The rows of a (``beside``-joined) leaderboard that have published figures, as plain dicts
    ordered by set, level and method: what the page and the README excerpt show."""
    if "published_method" not in board:
        return []
    rows = board[board["published_method"].notna()].sort_values(["dataset", "noise", "level", "published_method"])
    return [row.to_dict() for _, row in rows.iterrows()]


def literature_frame(cells: pd.DataFrame) -> pd.DataFrame | None:
    """The page's "published vs ours" table of a run's cells: one row per matched figure and
    metric (set, sigma, method, our entry, metric, published, ours, source); None without any."""
    from bench.data import display_name

    rows, matched = [], comparisons(beside(cells))
    for row in matched:
        for metric in ("psnr", "ssim"):
            if pd.notna(row[f"published_{metric}"]):
                rows.append(
                    {
                        "set": display_name(row["dataset"]),
                        "sigma": f"{row['noise']} {row['level']:g}",
                        "method": row["published_method"],
                        "ours": row["denoiser"],
                        "train": row["train_level"],
                        "metric": metric.upper(),
                        "published": row[f"published_{metric}"],
                        "ours_value": row[metric],
                        "source": row["published_source"],
                    }
                )
    if not rows:
        return None
    frame = pd.DataFrame(rows).rename(columns={"ours": "entry", "ours_value": "ours"})
    note = _training_note(matched)
    frame.attrs["name"] = "The literature's figures beside ours (same method, set and sigma)" + (
        f".{note}" if note else ""
    )
    return frame


PUBLISHED_START = "<!-- published-excerpt: start (python -m bench report RUN_DIR --readme README.md writes it) -->"
PUBLISHED_END = "<!-- published-excerpt: end -->"


def has_published(run_dir: str | Path) -> bool:
    """Whether a run folder's cells have published figures beside them (read from its store, so
    the answer holds before its CSVs are written)."""
    from bench.execution.store import open_run

    with open_run(run_dir, read_only=True) as store:
        cells = store.cells()
    return len(cells) > 0 and literature_frame(cells) is not None


def published_excerpt(run_dir: str | Path) -> str:
    """The README's "published beside ours" block, from a run folder's leaderboard.csv."""
    from bench.data import display_name

    run_dir = Path(run_dir)
    board = pd.read_csv(run_dir / "leaderboard.csv", dtype={"train_level": str})
    rows = comparisons(board)
    if not rows:
        raise ValueError(f"{run_dir / 'leaderboard.csv'} has no row with a published figure beside it")
    sources = list(dict.fromkeys(s for row in rows for s in row["published_source"].split("; ")))
    label = f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}"
    lines = [
        f"Published figures beside ours for the same method, set and sigma, from `{label}/` "
        "(unclipped Gaussian noise, PSNR on the output clipped to [0, 1]; in brackets the PSNR of the "
        "output rounded to 8 bits). Difference = ours − published; a published figure is the mean over "
        "the whole set, ours over the `images` scored." + _training_note(rows),
        "",
        "| set | sigma | method | ours (training) | images | published PSNR | our PSNR | difference | published SSIM | our SSIM | difference | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        refs = ", ".join(f"[{sources.index(s) + 1}]" for s in row["published_source"].split("; "))
        lines.append(
            f"| {display_name(row['dataset'])} | {row['level']:g} | {row['published_method']} "
            f"| {row['denoiser']} ({row['train_level']}) | {int(row['n_test'])} "
            f"| {row['published_psnr']:.2f} | {row['psnr']:.2f} ({_text(row.get('psnr_uint8'), 2)}) "
            f"| {row['psnr_vs_published']:+.2f} | {_text(row['published_ssim'], 4)} | {row['ssim']:.4f} "
            f"| {_signed(row['ssim_vs_published'], 4)} | {refs} |"
        )
    lines += ["", *(f"[{i + 1}] {source}" for i, source in enumerate(sources))]
    return "\n".join(lines)


def _training_note(rows: list[dict]) -> str:
    """How our networks' training differs from the published ones', where a network row is shown."""
    from bench.noise import LEVEL_RANGES
    from bench.registry import DENOISERS

    if not any(DENOISERS.entry(row["denoiser"]).accelerated for row in rows if row["denoiser"] in DENOISERS):
        return ""
    low, high = LEVEL_RANGES["awgn"]
    return (
        " Our networks train at this run's budget (its `run.json`; the `natural` grid's CPU budget is about one "
        "of the 50 epochs the published DnCNN trained on a GPU), and a blind fit draws sigma from "
        f"{low:g} to {high:g} (DnCNN-B: 0 to 55)."
    )


def _text(value, digits: int) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _signed(value, digits: int) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:+.{digits}f}"
