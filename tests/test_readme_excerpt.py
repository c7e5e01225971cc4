"""The README's leaderboard excerpt: made from a run's CSVs, and the committed one matches them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.execution.rows import CellRow, ClassifierRow
from bench.execution.store import Store
from bench.report import rebuild
from bench.report.excerpt import END, START, readme_block, readme_excerpt, update_readme

RNG = np.random.default_rng(3)
BASE = RNG.normal(22.0, 1.5, 200).astype(np.float32)


def _cell(key, denoiser, psnr, *, noise="gaussian", level=0.2, train_level=None) -> dict:
    psnr = np.asarray(psnr, dtype=np.float32)
    return {
        "key": key,
        "dataset": "digits",
        "noise": noise,
        "level": level,
        "train_level": str(level) if train_level is None else train_level,
        "denoiser": denoiser,
        "denoiser_params": {},
        "status": "ok",
        "n_test": len(psnr),
        "n_train": 500,
        "seed": 5,
        "base_seed": 0,
        "psnr": float(psnr.mean()),
        "ssim": 0.8,
        "psnr_noisy": 15.0,
        "ssim_noisy": 0.4,
        "per_image": {"psnr": psnr, "ssim": np.full(len(psnr), 0.8, np.float32)},
    }


def _scores(denoised: float) -> list[dict]:
    common = {"accuracy_clean": 0.99, "accuracy_noisy": 0.5, "accuracy_denoised": denoised}
    return [{"classifier": "cnn", **common}, {"classifier": "svm", **common, "accuracy_clean": 0.9}]


@pytest.fixture
def run_dir(tmp_path) -> Path:
    rows = [
        (_cell("g1", "median", BASE, level=0.1), 0.6),
        (_cell("g2", "median", BASE), 0.7),
        (_cell("g3", "dncnn", BASE + 1.0), 0.9),
        (_cell("g4", "unet", BASE + 3.0, train_level="blind"), 0.95),  # blind: not in the excerpt
        (_cell("g5", "unet", BASE + 5.0, level=0.3), 0.97),  # not the middle level
        (_cell("s1", "median", BASE, noise="salt_pepper"), 0.8),
        (_cell("s2", "nlm", BASE + RNG.normal(0.0, 0.5, 200), noise="salt_pepper"), 0.81),
    ]
    with Store(tmp_path / "store.sqlite") as store:
        for row, accuracy in rows:
            store.put_cell(CellRow(**row), [ClassifierRow(**score) for score in _scores(accuracy)])
    rebuild(tmp_path)
    return tmp_path


def test_the_excerpt_picks_the_best_cell_trained_at_the_middle_level(run_dir):
    lines = readme_excerpt(run_dir).splitlines()
    gaussian = next(line for line in lines if "| gaussian 0.2 |" in line)
    assert "| dncnn |" in gaussian and "median +1.00 dB" in gaussian and "not distinguishable" not in gaussian
    # the classifier best on clean images, noisy -> denoised accuracy of that very cell
    assert "cnn: 50.0% → **90.0%** (clean 99.0%)" in gaussian
    assert f"| {BASE.mean() + 1:.2f} (15.00) |" in gaussian
    salt = next(line for line in lines if "| salt_pepper 0.2 |" in line)
    assert "not distinguishable" in salt
    assert len([line for line in lines if line.startswith("| digits")]) == 2


def test_update_readme_rewrites_only_the_block(run_dir, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{START}\nold table\n{END}\nafter\n")
    update_readme(readme, readme_excerpt(run_dir))
    head, block, tail = readme_block(readme)
    assert head == "# title\n\nbefore\n" and tail == "\nafter\n"
    assert block == readme_excerpt(run_dir) and "old table" not in readme.read_text()


def test_report_readme_without_the_block_is_refused_before_anything_is_written(run_dir, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n")
    (run_dir / "leaderboard.csv").unlink()
    assert main(["report", str(run_dir), "--readme", str(readme)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no leaderboard excerpt block" in err[0]
    assert not (run_dir / "leaderboard.csv").exists() and readme.read_text() == "# no block here\n"


def test_a_set_shown_under_another_name_is_shown_so_in_the_csv_and_the_excerpt(run_dir, tmp_path):
    import pandas as pd

    assert "dataset_label" not in pd.read_csv(run_dir / "leaderboard.csv").columns  # thumbnail runs keep their shape
    crops = tmp_path / "kodak"
    with Store(crops / "store.sqlite") as store:
        for key, denoiser, psnr in (("k1", "median", BASE), ("k2", "nlm", BASE + 1.0)):
            store.put_cell(CellRow(**_cell(key, denoiser, psnr, noise="awgn", level=25.0) | {"dataset": "kodak24"}))
    rebuild(crops)
    board = pd.read_csv(crops / "leaderboard.csv")
    assert list(board.columns[:2]) == ["dataset", "dataset_label"]
    assert set(board["dataset"]) == {"kodak24"} and set(board["dataset_label"]) == {"Kodak24 (crops)"}
    assert "| Kodak24 (crops) | awgn 25 | nlm |" in readme_excerpt(crops)
