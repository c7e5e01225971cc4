"""compare RUN_A RUN_B: B minus A per matched cell, flagged beyond its interval."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bench.execution.rows import CellRow, ClassifierRow
from bench.execution.store import Store
from bench.report.compare import compare_runs, format_comparison, main_compare

RNG = np.random.default_rng(0)
PSNR = RNG.normal(24.0, 2.0, 300).astype(np.float32)
SSIM = RNG.uniform(0.5, 0.9, 300).astype(np.float32)
RIGHT = RNG.random(300) < 0.8


def _row(key: str, denoiser: str, psnr, *, level: float = 0.2, per_image: bool = True, **changes) -> dict:
    psnr = np.asarray(psnr, dtype=np.float32)
    row = {
        "key": key,
        "dataset": "digits",
        "noise": "gaussian",
        "level": level,
        "train_level": str(level),
        "denoiser": denoiser,
        "denoiser_params": {"size": 3},
        "status": "ok",
        "n_test": len(psnr),
        "seed": 11,
        "base_seed": 0,
        "psnr": float(psnr.mean()),
        "psnr_ci_low": float(psnr.mean()) - 0.2,
        "psnr_ci_high": float(psnr.mean()) + 0.2,
        "ssim": float(SSIM.mean()),
        "ssim_ci_low": float(SSIM.mean()) - 0.01,
        "ssim_ci_high": float(SSIM.mean()) + 0.01,
    }
    if per_image:
        row["per_image"] = {"psnr": psnr, "ssim": SSIM[: len(psnr)]}
    return row | changes


def _run(folder: Path, rows: list[dict], correct: dict[str, np.ndarray] | None = None) -> str:
    with Store(folder / "store.sqlite") as store:
        for row in rows:
            right = (correct or {}).get(row["key"], RIGHT[: row["n_test"]])
            scores = [{"classifier": "cnn", "accuracy_denoised": float(right.mean())}]
            if "per_image" in row:  # stores from before per-image results have neither
                scores[0]["correct"] = right
            store.put_cell(CellRow(**row), [ClassifierRow(**score) for score in scores])
    return str(folder)


def _base_rows(**changes) -> list[dict]:
    return [
        _row("a1", "median", PSNR, **changes),
        _row("a2", "dncnn", PSNR + 1, **changes),
        _row("a3", "unet", PSNR + 2, level=0.3, **changes),
    ]


def test_a_run_against_itself_changes_nothing(tmp_path, capsys):
    run = _run(tmp_path / "a", _base_rows())
    comparison = compare_runs(run, run)
    frame = comparison.frame
    assert len(frame) == 3 and comparison.metrics == ["psnr", "ssim", "acc_cnn"]
    assert (frame[["d_psnr", "d_ssim", "d_acc_cnn"]] == 0).all().all()
    assert (frame[["psnr_flag", "ssim_flag", "acc_cnn_flag"]] == "").all().all()
    assert main_compare(run, run) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and "+0.00 [+0.00, +0.00]" in out[1]
    assert (
        out[-1]
        == "3 cells compared (B minus A); significantly better / worse: PSNR 0 / 0, SSIM 0 / 0, accuracy cnn 0 / 0"
    )


def test_per_image_differences_are_paired_and_flagged(tmp_path):
    a = _run(tmp_path / "a", _base_rows())
    better = RIGHT.copy()
    better[~RIGHT] = True  # every image the classifier missed in A is right in B
    b_rows = [
        _row("b1", "median", PSNR + 0.05),  # tiny but on every image: real
        _row("b2", "dncnn", RNG.permutation(PSNR + 1)),  # the same values on other images: nothing
        _row("b3", "unet", PSNR + 1.9, level=0.3),
        _row("b4", "identity", PSNR - 5),  # only in B
    ]
    b = _run(tmp_path / "b", b_rows, {"b1": better})
    comparison = compare_runs(a, b)
    frame = comparison.frame.set_index("denoiser")
    assert frame.loc["median", "d_psnr"] == pytest.approx(0.05, abs=1e-5)
    assert frame["psnr_flag"].to_dict() == {"median": "better", "dncnn": "", "unet": "worse"}
    assert frame.loc["median", "psnr_low"] == pytest.approx(0.05, abs=1e-5)  # a constant difference: a point
    assert frame["acc_cnn_flag"].to_dict() == {"median": "better", "dncnn": "", "unet": ""}
    assert comparison.counts("psnr") == (1, 1) and (comparison.only_a, comparison.only_b) == (0, 1)
    assert format_comparison(comparison).splitlines()[-1] == (
        "3 cells compared (B minus A, 0 only in A, 1 only in B); significantly better / worse: "
        "PSNR 1 / 1, SSIM 0 / 0, accuracy cnn 1 / 0"
    )


@pytest.mark.parametrize("a_rows", [_base_rows(per_image=False), _base_rows(seed=12)])
def test_without_paired_images_the_rows_intervals_decide(tmp_path, a_rows):
    # an old store (no per-image results), or other noisy test images: no pairing
    a = _run(tmp_path / "a", a_rows)
    b_rows = [
        _row("b1", "median", PSNR + 0.3),
        _row("b2", "dncnn", PSNR + 1.5),
        _row("b3", "unet", PSNR + 1.0, level=0.3),
    ]
    frame = compare_runs(a, _run(tmp_path / "b", b_rows)).frame.set_index("denoiser")
    assert frame["psnr_flag"].to_dict() == {"median": "", "dncnn": "better", "unet": "worse"}  # intervals ±0.2
    assert frame.loc["dncnn", "psnr_low"] == pytest.approx(0.1, abs=1e-5)  # 1.3 - 1.2: low B - high A
    assert frame.loc["dncnn", "psnr_high"] == pytest.approx(0.9, abs=1e-5)
    assert (frame["acc_cnn_flag"] == "").all() and frame["acc_cnn_low"].isna().all()  # no interval to use


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    run = _run(tmp_path / "a", _base_rows())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"^no run store at .*empty/store\.sqlite; expected a folder written by"):
        compare_runs(run, str(tmp_path / "empty"))


def test_runs_with_no_cell_in_common_are_refused(tmp_path):
    a = _run(tmp_path / "a", _base_rows())
    b = _run(tmp_path / "b", [_row("b1", "median", PSNR, level=0.5, denoiser_params={"size": 5})])  # other level
    with pytest.raises(
        ValueError, match=r"^runs .*a and .*b have no cell in common; cells match on dataset, noise, level, "
    ):
        main_compare(a, b)


def test_a_consistent_rounding_error_is_not_flagged(tmp_path):
    # a code change that moves every image by 1e-4 dB is paired-significant but not a change
    a = _run(tmp_path / "a", [_row("a1", "nlm", PSNR)])
    tiny = _run(tmp_path / "b", [_row("b1", "nlm", PSNR - 1e-4)])
    small = _run(tmp_path / "c", [_row("c1", "nlm", PSNR - 0.01)])
    assert compare_runs(a, tiny).frame.loc[0, "psnr_flag"] == ""
    assert compare_runs(a, small).frame.loc[0, "psnr_flag"] == "worse"


def test_a_cell_whose_parameters_changed_pairs_with_its_only_counterpart(tmp_path):
    a = _run(
        tmp_path / "a", [*_base_rows(), _row("a4", "nlm", PSNR), _row("a5", "nlm", PSNR, denoiser_params={"h": 1})]
    )
    b_rows = [
        _row("b1", "median", PSNR + 0.5, denoiser_params={"size": 5}),
        _row("b2", "dncnn", PSNR + 1),
        _row("b4", "nlm", PSNR, denoiser_params={"h": 2}),
    ]
    comparison = compare_runs(a, _run(tmp_path / "b", b_rows))
    frame = comparison.frame.set_index("denoiser")
    assert sorted(frame.index) == ["dncnn", "median"]  # two nlm cells in A: which one changed is not known
    assert frame.loc["median", "d_psnr"] == pytest.approx(0.5, abs=1e-5)
    assert (frame.loc["median", "params_a"], frame.loc["median", "params_b"]) == ('{"size": 3}', '{"size": 5}')
    assert (comparison.other_params, comparison.only_a, comparison.only_b) == (1, 3, 1)
    text = format_comparison(comparison)
    assert '{"size": 3} -> {"size": 5}' in text
    assert "2 cells compared (B minus A, 1 with other parameters, 3 only in A, 1 only in B)" in text


@pytest.mark.slow
def test_a_smoke_run_against_itself_with_one_parameter_set(tmp_path, capsys):
    from bench.cli import main

    common = ["run", "--grid", "smoke", "--denoisers", "identity,median", "--classifiers", "none", "--no-estimate"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--set", "median.size=5"]) == 0
    capsys.readouterr()
    assert main_compare(str(tmp_path / "a" / "smoke"), str(tmp_path / "b" / "smoke")) == 0
    lines = capsys.readouterr().out.splitlines()
    median = [line for line in lines if " median " in line]
    assert len(median) == 2 and all('{"tune_images": 8} -> {"size": 5, "tune_images": 8}' in line for line in median)
    assert lines[-1].startswith("4 cells compared (B minus A, 2 with other parameters); ")


def test_comparing_an_older_store_leaves_its_file_as_it_was(tmp_path):
    run = _run(tmp_path / "a", _base_rows())
    path = Path(run) / "store.sqlite"
    with sqlite3.connect(path) as db:  # a store written before the columns added since
        db.execute("ALTER TABLE cells DROP COLUMN below_noisy")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = path.read_bytes()
    comparison = compare_runs(run, run)
    assert len(comparison.frame) == 3
    assert path.read_bytes() == before  # a committed run is read, not migrated in place
    assert "below_noisy" not in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(cells)")}
