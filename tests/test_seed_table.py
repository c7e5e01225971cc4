"""The seed reports' "published vs ours" table: row fields, verdicts, tolerances and presentation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
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
