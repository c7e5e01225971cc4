"""The committed reference run: its README excerpt, its files and its provenance agree."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.report.excerpt import readme_block, readme_excerpt

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"


def test_the_readme_excerpt_matches_the_reference_csvs():
    _, block, _ = readme_block(ROOT / "README.md")
    assert block == readme_excerpt(REFERENCE), (
        "the README excerpt is stale: python -m bench report results/reference --readme README.md"
    )


def test_the_reference_files_agree_with_each_other():
    board = pd.read_csv(REFERENCE / "leaderboard.csv")
    provenance = json.loads((REFERENCE / "run.json").read_text())
    assert provenance["cells_ok"] == int((board["status"] == "ok").sum())
    assert provenance["cells_ok"] + provenance["cells_failed"] == len(board)
    assert provenance["runs"][0]["command"].startswith("python -m bench run --grid reference")
    assert all(run["machine"] and run["versions"] for run in provenance["runs"])
    assert set(board["dataset"]) >= {"mnist", "fashion-mnist"}
    assert board.groupby("noise")["level"].nunique().eq(3).all() and board["noise"].nunique() == 6
    assert (REFERENCE / "report.html").stat().st_size < 5 * 2**20
    per_image = pd.read_csv(REFERENCE / "per_image.csv.gz", usecols=["denoiser", "psnr"])
    assert len(per_image) == int(board.loc[board["status"] == "ok", "n_test"].sum())
