"""The seed reports' "published vs ours" table: row fields, verdicts, tolerances and presentation."""

from __future__ import annotations

import importlib
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.cli import main
from bench.report.excerpt import readme_block
from bench.seeds import run
from bench.seeds.common import COLUMNS, Reproduction
from bench.seeds.excerpt import SEEDS_END, SEEDS_START, has_seed_tables, seeds_excerpt
from bench.seeds.presentation import format_report
from bench.seeds.verdicts import VERDICTS


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


def _fabricated(tmp_path: Path) -> tuple[Reproduction, pd.DataFrame]:
    """A seed table with one row of each verdict, as a protocol writes it."""
    repro = _repro(tmp_path)
    with repro.experiment("conv_ae_fmnist (faithful)") as exp:
        exp.add(
            "val_mse",
            0.01255,
            0.0131,
            n_test=None,
            note="kept epoch 3 of 5",
            reading="validation = the held-out 20% (report's repository)",
        )
        exp.add(
            "val_psnr_of_mean_mse_db",
            19.01,
            18.40,
            n_test=None,
            deviations=("tiny budget: 256 of 48,000 training pairs",),
            best=("median", 20.31),
        )
        exp.add("test_psnr_of_mean_mse_db", 19.01, 20.3, n_test=10, not_comparable="published is the autoencoder's")
        exp.add("test_ssim", None, 0.8, n_test=10, deviations=("tiny budget: 256 of 48,000 training pairs",))
    repro.skip("cnn_denoiser_fmnist", {"val_mse": 0.0132}, "denoiser 'cnn_denoiser_fmnist' is not registered")
    return repro, repro.frame()


def test_reproduce_ends_with_an_aligned_table_and_names_the_page(tmp_path):
    _, frame = _fabricated(tmp_path)
    text = format_report("001", frame, tmp_path)
    lines = text.splitlines()
    assert lines[0] == "seed 001 (tiny budget): 4 published values: 1 within, 1 outside, 1 not comparable, 1 not run"
    header = lines[1]
    order = ["experiment", "metric", "published", "ours", "difference", "tolerance", "verdict"]
    order += ["best of denoise-bench", "budget", "departs", "deviations / why"]
    assert [header.index(h) for h in order] == sorted(header.index(h) for h in order), header
    rows = lines[2:7]
    starts = {h: header.index(h) for h in ("published", "difference", "verdict")}
    for row in rows:  # aligned: each column starts where its header does
        assert row[starts["published"] - 2 : starts["published"]] == "  "
    mse, psnr, unlike, ssim, skipped = rows
    assert mse[starts["difference"] :].startswith("+0.00055 (+4.4%)") and "within" in mse and "±10%" in mse
    assert psnr[starts["difference"] :].startswith("-0.61") and "±0.5 dB" in psnr and "outside" in psnr
    assert "median 20.31" in psnr and psnr.endswith("yes      tiny budget: 256 of 48,000 training pairs")
    assert ssim.endswith("yes      (as above)"), "a deviation repeated within an experiment is said once"
    assert "not comparable" in unlike and unlike.endswith("not comparable: published is the autoencoder's")
    assert ssim.split()[1:4] == ["-", "0.8", "-"] and mse.startswith("conv_ae_fmnist (faithful)  val_mse")
    assert psnr.startswith(" " * len("conv_ae_fmnist (faithful)  ") + "val_psnr")
    assert "not run" in skipped and skipped.endswith("not run: denoiser 'cnn_denoiser_fmnist' is not registered")
    assert "  conv_ae_fmnist (faithful): validation = the held-out 20% (report's repository)" in lines
    assert lines[-1] == f"table: {tmp_path}/seeds/001.csv; page: {tmp_path}/seed-001/report.html"


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("L", (6, 4), 128).save(path)
    return path


def test_the_page_shows_the_seed_table_first_with_verdicts_marks_and_figures(tmp_path):
    from bench.execution.store import Store
    from bench.report.page import render_report

    repro, frame = _fabricated(tmp_path)
    run_dir = tmp_path / "seed-001"
    run_dir.mkdir()
    frame.to_csv(run_dir / "seed-001.csv", index=False)
    png = _png(tmp_path / "seeds" / "002_interpolation.png")
    repro.extra.update(
        vgg16_cv={"folds_pct": [97.0, 98.0, 96.5, 97.5, 98.5], "n_images": 600},
        calibration={
            "reading": "clipped",
            "target": 13.68,
            "evaluations": [{"x": 0.3, "f": 60.0}, {"x": 3.0, "f": 11.0}, {"x": 1.6, "f": 20.0}],
        },
        # The second reading's sigma is on the 0-255 scale: drawn on the same 0-1 axis.
        calibration_unclipped={
            "reading": "unclipped",
            "sigma_scale": 255.0,
            "target": 13.68,
            "evaluations": [{"x": 25.5, "f": 80.0}, {"x": 2040.0, "f": 10.0}],
        },
        dae_cost_sweeps={
            "hidden 100": {"0.01": {"cost": 30.0}, "0.1": {"cost": 12.0}},
            "lr 0.1": {"100": {"cost": 9.0}},
        },
        interpolation_png=str(png),
    )
    (run_dir / "seed-001.json").write_text(repro.detail_json())
    with Store(run_dir / "store.sqlite") as store:
        html = render_report(store, run_dir)
    assert html.index('id="seed-reports"') < html.index('id="summary"'), "the seed table comes first"
    section = html[html.index('id="seed-reports"') : html.index('id="summary"')]
    assert "<h3>Seed 001</h3>" in section
    header = section[section.index("<thead>") : section.index("</thead>")]
    columns = [h.split(">")[-1] for h in header.split("</th>")[:-1]]
    assert columns == [
        "experiment",
        "metric",
        "published",
        "ours",
        "difference",
        "tolerance",
        "verdict",
        "best of denoise-bench",
        "budget",
        "departs",
        "deviations / why",
        "reading",
        "note",
    ]
    assert (
        section.count('<td class="verdict within">within</td>') == 1
        and '<td class="long">kept epoch 3 of 5</td>' in section
    )
    assert section.count('<td class="verdict outside">outside</td>') == 1
    assert section.count('class="verdict not-comparable"') == 1 and section.count('class="verdict not-run"') == 1
    assert section.count('<tr class="departs"') == 2, "the rows departing from the protocol are marked"
    assert "Cross-validation folds (vgg16, 5 folds over 600 images): mean 97.50%" in section
    assert "Calibration: accuracy on noisy images against sigma, clipped and unclipped (5 evaluations)" in section
    assert "Cost sweeps" in section and "Latent interpolation: decoded codes" in section
    assert section.count("data:image/png;base64,") == 3


def test_both_calibrations_share_the_0_1_sigma_axis():
    from bench.report.seed_page import calibration_curves

    detail = {
        "calibration": {
            "reading": "clipped",
            "target": 13.68,
            "evaluations": [{"x": 1.6, "f": 20.0}, {"x": 0.3, "f": 60.0}],
        },
        "calibration_unclipped": {
            "reading": "unclipped",
            "sigma_scale": 255.0,
            "target": 13.68,
            "evaluations": [{"x": 51.0, "f": 80.0}, {"x": 25.5, "f": 90.0}, {"x": 76.5, "f": None}],
        },
        "classifier_history": [1, 2],
    }
    assert calibration_curves(detail) == {
        "clipped": ([(0.3, 60.0), (1.6, 20.0)], 13.68),
        "unclipped": ([(0.1, 90.0), (0.2, 80.0)], 13.68),
    }


def test_the_page_says_a_shared_reading_once_and_folds_long_texts(tmp_path):
    from bench.report.seed_page import FOLD_AFTER, seed_report_table

    _, frame = _fabricated(tmp_path)
    long_note = "a measurement's details " * 10
    frame = frame.assign(reading="the report's split, read as written", protocol_note=long_note)
    table = seed_report_table(frame)
    assert table["reading"] == "the report's split, read as written" and "reading" not in table["columns"]
    notes = [row[table["columns"].index("note")] for row in table["rows"]]
    folded = [c for c in notes if c["short"]]
    assert folded and all(c["text"] == long_note.strip() or c["text"] == long_note for c in folded)
    assert all(len(c["short"]) <= FOLD_AFTER + 2 and c["short"].endswith(" …") for c in folded)
    short = seed_report_table(frame.assign(protocol_note="kept epoch 3 of 5"))
    assert all(row[short["columns"].index("note")]["short"] is None for row in short["rows"])
    # Readings that differ between rows stay in their column.
    mixed = seed_report_table(frame.assign(reading=["a", "b", "a", "a", "a"][: len(frame)]))
    assert mixed["reading"] == "" and "reading" in mixed["columns"]


def test_a_seed_number_read_back_keeps_its_zeros(tmp_path):
    from bench.report.seed_page import seed_report_tables
    from bench.report.tables import load_seed_frames

    _, frame = _fabricated(tmp_path)
    frame.assign(seed=4).to_csv(tmp_path / "old.csv", index=False)  # an old table whose seed was written as 4
    titles = [t["title"] for t in seed_report_tables(load_seed_frames(tmp_path))]
    assert titles == ["Seed 001", "Seed 004"]


# --- the README's seed block ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _results(tmp_path: Path) -> Path:
    """A results folder as 'reproduce 001 --out DIR' leaves it: DIR/seeds/001.csv and DIR/seed-001/report.html."""
    _fabricated(tmp_path)
    (tmp_path / "seed-001").mkdir()
    (tmp_path / "seed-001" / "report.html").write_text("<!doctype html>")
    return tmp_path / "seeds"


def test_the_seed_excerpt_summarises_each_seed_and_lists_its_published_rows(tmp_path):
    folder = _results(tmp_path)
    lines = seeds_excerpt(folder, base=tmp_path).splitlines()
    assert "| seed | budget | published values | within | outside | not comparable | not run | page |" in lines
    assert "| 001 | tiny | 4 | 1 | 1 | 1 | 1 | [seed-001/report.html](seed-001/report.html) |" in lines
    start = lines.index("<details><summary>Seed 001: 4 published values</summary>")
    table = lines[start + 2 : lines.index("</details>", start) - 1]
    assert table[0].startswith("| experiment | metric | published | ours | difference | tolerance | verdict |")
    assert table[0].endswith("| budget | departs |")
    assert len(table) == 2 + 4, "one row per published value, none of ours alone"
    assert "| val_mse | 0.01255 | 0.0131 | +0.00055 (+4.4%) | ±10% | within |" in table[2]
    with pytest.raises(ValueError, match="has no seed table; expected SEED.csv files"):
        seeds_excerpt(tmp_path / "seed-001")


def test_a_seed_without_published_values_lists_our_measurements(tmp_path):
    _, frame = _fabricated(tmp_path)
    frame.assign(published=float("nan")).to_csv(tmp_path / "seeds" / "001.csv", index=False)
    lines = seeds_excerpt(tmp_path / "seeds", base=tmp_path).splitlines()
    measured = int(frame["ours"].notna().sum())
    start = lines.index(f"<details><summary>Seed 001: no published values; our {measured} measurements</summary>")
    table = lines[start + 2 : lines.index("</details>", start) - 1]
    assert table[0] == "| experiment | metric | ours | budget | departs |" and len(table) == 2 + measured


def test_report_on_seed_results_rewrites_only_the_seed_block(tmp_path, capsys):
    folder = _results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{SEEDS_START}\nold\n{SEEDS_END}\nafter\n")
    assert main(["report", str(folder), "--readme", str(readme)]) == 0
    assert readme.read_text() == f"# title\n{SEEDS_START}\n{seeds_excerpt(folder, tmp_path)}\n{SEEDS_END}\nafter\n"
    readme.write_text("# no block\n")
    assert main(["report", str(folder), "--readme", str(readme)]) == 2
    assert "has no excerpt block" in capsys.readouterr().err and readme.read_text() == "# no block\n"


def test_the_committed_seed_block_matches_the_committed_results():
    _, block, _ = readme_block(ROOT / "README.md", (SEEDS_START, SEEDS_END))
    folder = ROOT / "results" / "seeds"
    if not has_seed_tables(folder):
        assert block.startswith("Not generated yet: no seed results are committed.")
        return
    assert block == seeds_excerpt(folder, ROOT), (
        "the README's seed block is stale: python -m bench report results/seeds --readme README.md"
    )


# --- no published number disappears -------------------------------------------------------------

#: Each report's published numbers, as its protocol module declares them (dict values, tuples, numbers).
PUBLISHED_CONSTANTS = {
    "000": ("PAIRS", "ALEXNET_FIG21", "VGG_FOLDS"),
    "001": ("PUBLISHED",),
    "002": (),
    "003": ("TABLE1", "TABLES_2_3", "TABLE4", "SVM_PUBLISHED", "STACKED_PUBLISHED"),
    "004": ("PUBLISHED",),
}


def _numbers(value: object) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in _numbers(v)]
    return [float(value)] if isinstance(value, (int, float)) else []


def published_numbers(report: str) -> Counter:
    """How often each number is published in ``report`` (rounded to 4 decimals), from its module's constants."""
    module = importlib.import_module(f"bench.seeds.s{report}")
    return Counter(round(n, 4) for name in PUBLISHED_CONSTANTS[report] for n in _numbers(getattr(module, name)))


def test_published_numbers_are_read_from_the_protocols():
    assert sum(published_numbers("003").values()) == 10 + 8 + 12 + 2, "Table 1's 10, Tables 2-3's 8, Table 4's 12, SVM"
    assert published_numbers("001") == Counter({0.0182: 1, 0.0126: 1, 0.0187: 1, 0.0132: 1})


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("report", ["000", "001", "002", "003", "004"])
def test_at_tiny_every_published_number_keeps_its_row_with_a_verdict(report, real_data_dir, tmp_path):
    frame = run(report, budget="tiny", data_dir=real_data_dir, device="cpu", out_dir=tmp_path, log=lambda line: None)
    shown = Counter(round(float(v), 4) for v in frame["published"].dropna())
    assert not published_numbers(report) - shown, "published numbers without a row at the tiny budget"
    rows = frame[frame["published"].notna()]
    assert set(rows["verdict"]) <= set(VERDICTS), "every published value has a verdict"
    skipped = rows[rows["verdict"] == "not run"]
    assert skipped["protocol_note"].str.match(r"not run: \S").all(), "a row not run says why"
