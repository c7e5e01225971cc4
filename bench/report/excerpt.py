"""The README's leaderboard excerpt, made from a run folder's CSVs and never typed by hand.

For each dataset and noise kind, at the kind's middle level: the best denoiser among the cells
whose training level is that level (every classical filter tuned there, every network trained
there), its PSNR and SSIM beside the noisy input's, its lead over the runner-up with the
paired test's 95% interval, and the accuracy one classifier (the one with the best accuracy on
clean images for that dataset) gets on the noisy and on the denoised images.

``python -m bench report RUN_DIR --readme README.md`` rewrites the block between
``START`` and ``END`` in the README; a test checks that the block matches the CSVs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.data import display_name
from bench.files import write_text_atomic
from bench.report.significance import full_size

__all__ = ["readme_excerpt", "readme_block", "update_readme", "START", "END"]

START = "<!-- leaderboard-excerpt: start (python -m bench report RUN_DIR --readme README.md writes it) -->"
END = "<!-- leaderboard-excerpt: end -->"


def _read(run_dir: Path, name: str) -> pd.DataFrame:
    path = run_dir / name
    if not path.is_file():
        raise ValueError(f"{path} is missing; expected a run folder written by 'python -m bench run'")
    return pd.read_csv(path, dtype={"train_level": str})


def _same_level(frame: pd.DataFrame) -> pd.Series:
    train = pd.to_numeric(frame["train_level"], errors="coerce")
    return (train - frame["level"]).abs() < 1e-9


def _classifier(classifiers: pd.DataFrame, dataset: str) -> str | None:
    mine = classifiers[(classifiers["dataset"] == dataset) & classifiers["accuracy_clean"].notna()]
    if mine.empty:
        return None
    return mine.groupby("classifier")["accuracy_clean"].mean().sort_values(ascending=False, kind="stable").index[0]


def _lead(row: pd.Series) -> str:
    if pd.isna(row.get("vs_runner_up")):
        return "no runner-up"
    interval = f"[{row['vs_runner_up_ci_low']:+.2f}, {row['vs_runner_up_ci_high']:+.2f}]"
    verdict = "" if row["distinguishable"] in (True, "True") else ", not distinguishable"
    return f"{row['vs_runner_up']} {row['vs_runner_up_delta']:+.2f} dB {interval}{verdict}"


def _accuracy(classifiers: pd.DataFrame, row: pd.Series, name: str | None) -> str:
    if name is None:
        return "-"
    match = classifiers[
        (classifiers["dataset"] == row["dataset"])
        & (classifiers["noise"] == row["noise"])
        & ((classifiers["level"] - row["level"]).abs() < 1e-9)
        & (classifiers["train_level"] == row["train_level"])
        & (classifiers["denoiser"] == row["denoiser"])
        & (classifiers["classifier"] == name)
    ]
    if match.empty or pd.isna(match["accuracy_denoised"].iloc[0]):
        return "-"
    acc = match.iloc[0]
    return (
        f"{name}: {acc['accuracy_noisy']:.1%} → **{acc['accuracy_denoised']:.1%}** (clean {acc['accuracy_clean']:.1%})"
    )


def _best_rows(board: pd.DataFrame) -> list[pd.Series]:
    ok = board[(board["status"] == "ok") & _same_level(board)]
    ok = ok[full_size(ok, ["dataset", "noise", "level"])]
    rows = []
    for (_, _), group in ok.groupby(["dataset", "noise"], sort=True):
        levels = sorted(group["level"].unique())
        middle = group[group["level"] == levels[len(levels) // 2]]
        rows.append(middle.sort_values("psnr", ascending=False, kind="stable").iloc[0])
    return rows


def readme_excerpt(run_dir: str | Path) -> str:
    """The markdown block (without its markers) for the run folder ``run_dir``."""
    run_dir = Path(run_dir)
    board, classifiers = _read(run_dir, "leaderboard.csv"), _read(run_dir, "classifiers.csv")
    rows = _best_rows(board)
    if not rows:
        raise ValueError(f"{run_dir / 'leaderboard.csv'} has no ok cell tuned or trained at its test level")
    n_test, n_train = int(board["n_test"].max()), int(board["n_train"].max())
    label = f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}"  # the same wherever it is read from
    lines = [
        f"Best denoiser per dataset and noise kind at the kind's middle level, from `{label}/` "
        f"({n_test:,} test images, networks trained on {n_train:,}; every entry tuned or trained at that level). "
        "PSNR and SSIM in brackets are the noisy input's; the lead is over the runner-up, with the paired "
        "test's 95% interval; accuracy is on the noisy, then the denoised test images.",
        "",
        "| dataset | noise | best denoiser | PSNR dB | SSIM | lead over runner-up | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        name = _classifier(classifiers, row["dataset"])
        lines.append(
            f"| {display_name(row['dataset'])} | {row['noise']} {row['level']:g} | {row['denoiser']} "
            f"| {row['psnr']:.2f} ({row['psnr_noisy']:.2f}) | {row['ssim']:.3f} ({row['ssim_noisy']:.3f}) "
            f"| {_lead(row)} | {_accuracy(classifiers, row, name)} |"
        )
    return "\n".join(lines)


def readme_block(readme: str | Path, markers: tuple[str, str] = (START, END)) -> tuple[str, str, str]:
    """``(before, block, after)`` of the README's block between ``markers`` (the leaderboard
    excerpt's by default); a one-line ValueError without one."""
    path, (start, end) = Path(readme), markers
    what = "leaderboard excerpt" if markers == (START, END) else "excerpt"
    text = path.read_text() if path.is_file() else None
    if text is None or start not in text or end not in text.split(start, 1)[1]:
        raise ValueError(f"{path} has no {what} block; expected the lines {start!r} and {end!r}")
    head, rest = text.split(start, 1)
    block, tail = rest.split(end, 1)
    return head, block.strip("\n"), tail


def update_readme(readme: str | Path, excerpt: str, markers: tuple[str, str] = (START, END)) -> Path:
    """Replace the block between ``markers`` (the leaderboard excerpt's by default) in ``readme``."""
    path = Path(readme)
    head, _, tail = readme_block(path, markers)
    return write_text_atomic(path, f"{head}{markers[0]}\n{excerpt}\n{markers[1]}{tail}")
