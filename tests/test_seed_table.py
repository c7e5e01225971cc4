"""The seed reports' "published vs ours" table: row fields, verdicts, tolerances and presentation."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.seeds.common import COLUMNS, Reproduction


def _repro(tmp_path: Path, lines: list[str] | None = None) -> Reproduction:
    log = lines.append if lines is not None else (lambda line: None)
    return Reproduction("001", "tiny", torch.device("cpu"), 0, tmp_path, log)


def test_rows_carry_the_reading_and_the_deviations(tmp_path):
    repro = _repro(tmp_path)
    with repro.experiment("model") as exp:
        exp.add(
            "val_mse",
            0.01255,
            0.0131,
            n_test=None,
            reading="validation = held-out 20% of training pairs (the report's repository)",
            deviations=("noise redrawn per batch", "tiny budget: 256 training pairs"),
        )
        exp.add("test_mse", None, 0.02, n_test=10)
    repro.skip("other", {"val_mse": 0.0132}, "not registered", deviations=("no such model",))
    on_disk = pd.read_csv(tmp_path / "seeds" / "001.csv", keep_default_na=False)
    assert list(on_disk.columns) == COLUMNS
    assert on_disk.reading.tolist() == ["validation = held-out 20% of training pairs (the report's repository)", "", ""]
    assert on_disk.deviations.tolist() == [
        "noise redrawn per batch; tiny budget: 256 training pairs",
        "",
        "no such model",
    ]


def test_every_published_value_gets_a_difference_tolerance_and_verdict(tmp_path):
    repro = _repro(tmp_path)
    with repro.experiment("conv_ae_fmnist") as exp:
        exp.add("val_mse", 0.01255, 0.0131, n_test=None)  # +4.4%: within the default 10%
        exp.add("train_mse", 0.0182373, 0.0231, n_test=None)  # +27%: outside
        exp.add("val_psnr_of_mean_mse_db", 19.01, 18.40, n_test=None)  # -0.61 dB: outside +-0.5 dB
        exp.add("accuracy_denoised_pct", 96.10, 93.5, n_test=100, tolerance=5.0)  # the protocol's own tolerance
        exp.add("test_psnr_of_mean_mse_db", 19.01, 20.3, n_test=10, not_comparable="published is another model's")
        exp.add("test_ssim", None, 0.8, n_test=10, best=("median", 0.85))
        exp.add("best_hidden", 1000, 1000, n_test=None)
    repro.skip("cnn_denoiser_fmnist", {"val_mse": 0.0132}, "denoiser 'x' is not registered")
    table = pd.read_csv(tmp_path / "seeds" / "001.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == COLUMNS and set(table.budget) == {"tiny"}
    assert table.verdict.fillna("").tolist() == [
        "within",
        "outside",
        "outside",
        "within",
        "not comparable",
        "",
        "within",
        "not run",
    ]
    assert table.tolerance.tolist()[:4] == pytest.approx([0.001255, 0.00182373, 0.5, 5.0])
    assert table.difference.tolist()[:3] == pytest.approx([0.00055, 0.0048627, -0.61])
    assert math.isnan(table.difference[4]), "a difference between unlike things is left blank"
    assert table.best_entry[5] == "median" and table.best_of_bench[5] == pytest.approx(0.85)
    assert table.protocol_note[7].startswith("not run: denoiser 'x'")
