"""Seed-report protocols: registration, the helpers they rely on, tiny real runs and the CLI hooks."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from bench.cli import main
from bench.registry import CLASSIFIERS, DENOISERS
from bench.seeds import PROTOCOLS, Launch, check_narrowing, resolve_reports, run, run_all
from bench.seeds.common import COLUMNS, bisect, psnr_of_mse
from bench.seeds.s003 import possible_accuracy

REPORTS = ["000", "001", "002", "003", "004"]


def _missing(*names: str) -> list[str]:
    return [n for n in names if n not in DENOISERS and n not in CLASSIFIERS]


def test_every_seed_report_has_a_protocol():
    assert PROTOCOLS.names() == REPORTS
    assert resolve_reports("all") == REPORTS
    for report in REPORTS:
        entry = PROTOCOLS.entry(report)
        assert entry.source.startswith(f"seeds/{report}_") and entry.description
        assert set(entry.factory.datasets) <= {"mnist", "fashion-mnist"}  # cifar10 is optional (seed 002)
    with pytest.raises(ValueError, match="unknown seed report '999'; expected one of: 000, 001, 002, 003, 004, all"):
        resolve_reports("999")


def test_svm_accuracy_impossible_on_500_test_images():
    # Seed 003 prints 84.32% on "500 testing samples": 0.8432 * 500 = 421.6 images.
    assert not possible_accuracy(84.32, 500)
    assert possible_accuracy(84.32, 10000) and possible_accuracy(84.32, 2500)
    assert possible_accuracy(85.80, 500) and possible_accuracy(76.40, 500) and possible_accuracy(78.0, 500)
    assert not possible_accuracy(50.30, 500) and possible_accuracy(50.30, 1000)
    assert possible_accuracy(33.33, 3) and not possible_accuracy(33.34, 3)  # 1/3 prints as 33.33
    with pytest.raises(ValueError, match="n must be a positive number of test images"):
        possible_accuracy(50.0, 0)


def test_bisection_finds_a_known_root():
    def decreasing(x: float) -> float:  # like accuracy against sigma: 13.68 at x = ln(100 / 13.68)
        return 100.0 * math.exp(-x)

    x, history = bisect(decreasing, 13.68, 0.3, 3.0, iterations=40)
    assert x == pytest.approx(math.log(100 / 13.68), abs=1e-9)
    assert len(history) == 42 and history[0]["x"] == 0.3 and history[1]["x"] == 3.0
    x, history = bisect(lambda v: v**3, 8.0, 0.0, 5.0, iterations=6, tol=0.5)  # increasing; stops once within tol
    assert abs(x**3 - 8.0) <= 0.5 and len(history) < 8
    assert bisect(decreasing, 1.0, 0.3, 3.0, iterations=5)[0] == 3.0  # target out of reach: the nearer end
    with pytest.raises(ValueError, match="bisect needs lo < hi"):
        bisect(decreasing, 1.0, 3.0, 0.3, iterations=5)


def test_psnr_implied_by_a_published_mse():
    assert psnr_of_mse(0.01255) == pytest.approx(19.013, abs=1e-3)
    assert psnr_of_mse(0.0) == pytest.approx(100.0)


def test_reproduce_unknown_report_exits_2_with_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "reproduce", "999"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown seed report '999'") and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["001", "--budget", "huge"], "budget 'huge' is unknown; expected one of: tiny, quick, full"),
        (
            ["004", "--data-dir", "/nonexistent"],
            "seed 004 needs the mnist dataset, not found on the data path; pass --data-dir DIR",
        ),
        (["all", "--data-dir", "/nonexistent"], "seed 000 needs the mnist dataset"),
    ],
)
def test_reproduce_bad_input_exits_2_before_running(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    assert main(["reproduce", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("narrowing", "message"),
    [
        ({"datasets": ["mnist"]}, "--datasets cannot narrow the seed protocols: each fixes the datasets"),
        ({"levels": [0.1], "params": {}}, "--levels cannot narrow the seed protocols"),
        ({"n_train": 5}, "--n-train cannot narrow"),
        ({"classifiers": []}, "--classifiers cannot narrow"),
        ({"params": {"dncnn": {"depth": 3}}}, "--set names 'dncnn': no chosen seed report runs it; expected one of: "),
        ({"params": {"dncnnn": {"depth": 3}}}, "--set names 'dncnnn': unknown denoiser 'dncnnn'"),
        ({"shuffle": True}, "unknown narrowing 'shuffle'"),
    ],
)
def test_narrowing_flags_are_rejected_before_anything_runs(tmp_path, narrowing, message):
    with pytest.raises(ValueError, match=message):
        check_narrowing(narrowing, ["001"], "tiny")
    with pytest.raises(ValueError, match=message):
        run_all(reports=["001"], budget="tiny", out_dir=tmp_path, narrowing=narrowing)
    assert not list(tmp_path.iterdir())


def test_set_parameters_reach_the_seeds_that_run_the_entry():
    assert check_narrowing({"params": {"median": {"tune_images": 4}}, "datasets": None}, ["001"], "tiny") == {
        "median": {"tune_images": 4}
    }
    assert check_narrowing({"params": {"unet": {"depth": 3}}}, ["004"], "full") == {"unet": {"depth": 3}}


def test_run_grid_seeds_dispatches_to_every_protocol(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_run_all(**kwargs):
        calls.append(kwargs)
        return {report: pd.DataFrame({"published": [1.0], "ours": [1.0]}) for report in kwargs["reports"]}

    monkeypatch.setattr("bench.seeds.run_all", fake_run_all)
    assert main(["run", "--grid", "seeds", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert calls[0]["reports"] == REPORTS and calls[0]["budget"] == "quick" and calls[0]["out_dir"] == str(tmp_path)
    printed = capsys.readouterr().out
    assert "grid seeds" in printed and "seed 004 (" in printed and "seed-004/report.html" in printed
    assert main(["list"]) == 0 and "  seeds " in capsys.readouterr().out


# --- tiny runs on real data ---------------------------------------------------------------


def _tiny(report: str, data_dir, out_dir) -> tuple[pd.DataFrame, list[str]]:
    lines: list[str] = []
    frame = run(report, budget="tiny", data_dir=data_dir, device="cpu", out_dir=out_dir, log=lines.append)
    return frame, lines


@pytest.fixture(scope="module")
def seed001(real_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds001")
    return _tiny("001", real_data_dir, out), out


@pytest.fixture(scope="module")
def seed004(real_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds004")
    return _tiny("004", real_data_dir, out), out


def _check_written(frame: pd.DataFrame, lines: list[str], out, report: str) -> pd.DataFrame:
    """The CSV on disk equals the returned table, has the agreed columns, and each experiment logged once."""
    on_disk = pd.read_csv(out / "seeds" / f"{report}.csv", dtype={"seed": str})
    assert list(on_disk.columns) == COLUMNS and set(on_disk.seed) == {report}
    assert len(on_disk) == len(frame) and not list(out.glob("seeds/*.tmp"))
    own = [line for line in lines if not line.startswith(f"  seed-{report}: ")]  # the rest are the runner's
    assert len(own) == on_disk.experiment.nunique() and all(line.startswith(f"[{report}] ") for line in own)
    detail = json.loads((out / "seeds" / f"{report}.json").read_text())
    assert detail["seed"] == report and detail["budget"] == "tiny"
    # The runner's folder: its store, leaderboard, and a report.html that shows the same table.
    run_dir = out / f"seed-{report}"
    assert (run_dir / "store.sqlite").is_file() and (run_dir / "leaderboard.csv").is_file()
    assert {grid["name"] for grid in detail["grids"]} == {f"seed-{report}"}
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / f"seed-{report}.csv", dtype={"seed": str}), on_disk)
    page = (run_dir / "report.html").read_text()
    assert "Published vs ours" in page and f"<h3>Seed {report}</h3>" in page and "deviations / why" in page
    ran = on_disk[~on_disk.protocol_note.str.startswith("not run")]
    assert len(ran) and ran.ours.map(math.isfinite).all(), ran[~ran.ours.map(math.isfinite)]
    return on_disk


def _published(table: pd.DataFrame, experiment: str, metric: str) -> list[float]:
    return table[(table.experiment == experiment) & (table.metric == metric)].published.tolist()


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed001_tiny_run_writes_published_vs_ours(seed001):
    (frame, lines), out = seed001
    table = _check_written(frame, lines, out, "001")
    noisy = table[table.experiment == "noisy input (no denoising)"].set_index("metric").ours
    cells = pd.read_csv(out / "seed-001" / "leaderboard.csv").set_index("denoiser")
    assert noisy["test_psnr_db"] == pytest.approx(cells.loc["identity", "psnr_noisy"], abs=1e-5)
    text = (out / "seeds" / "001.csv").read_text()
    for number in ("0.0182373", "0.01255", "0.0187", "0.0132", "19.01"):
        assert f",{number}," in text
    median = table[table.experiment == "median (tuned window)"]
    assert set(median.metric) >= {"test_mse", "test_psnr_db", "test_psnr_of_mean_mse_db"}
    assert median.protocol_note.str.contains("the median (?:beats|does not beat) it by").any()
    # The report published no median: the AE's 19.01 dB is not set beside it as its published value.
    assert median[median.metric == "test_psnr_of_mean_mse_db"].published.isna().all()
    # Faithful at every budget: the report's 80/20 split, all of the 20% held out, and the budget's cut stated.
    val = table[(table.experiment == "conv_ae_fmnist (faithful)") & (table.metric == "val_mse")]
    assert val.protocol_note.str.contains(r"the held-out 51 of 256 training pairs \(20%\)").all() and len(val) == 1
    assert val.deviations.str.contains("tiny budget").all() and val.reading.str.contains("80/20").all()
    psnr = table[(table.experiment == "conv_ae_fmnist (faithful)") & (table.metric == "val_psnr_of_mean_mse_db")]
    assert psnr.best_entry.tolist() == ["median"]  # the median sits in its own column beside the AE's 19.01


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed001_rerun_skips_stored_cells_and_honours_set(seed001, real_data_dir, tmp_path):
    _, out = seed001
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    lines: list[str] = []
    launch = Launch(params={"median": {"tune_images": 4}})
    frame = run(
        "001", budget="tiny", data_dir=real_data_dir, device="cpu", out_dir=tmp_path, log=lines.append, launch=launch
    )
    assert any("already in" in line for line in lines)  # only the median's cell is new
    ran = [line for line in lines if " ok " in line]
    assert len(ran) == 1 and "median" in ran[0]
    cells = pd.read_csv(tmp_path / "seed-001" / "leaderboard.csv")
    median = cells[(cells.denoiser == "median") & cells.denoiser_params.str.contains('"tune_images": 4')]
    ours = frame[(frame.experiment == "median (tuned window)") & (frame.metric == "test_mse")].ours
    assert len(median) == 1 and ours.iloc[0] == pytest.approx(median.mse.iloc[0], rel=1e-5)


@pytest.mark.timeout(900)
@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing("conv_ae_fmnist", "cnn_denoiser_fmnist")),
    reason=f"seed 001 models not registered yet: {_missing('conv_ae_fmnist', 'cnn_denoiser_fmnist')}",
)
def test_seed001_tiny_run_scores_both_models(seed001):
    (frame, _), _ = seed001
    assert _published(frame, "conv_ae_fmnist (faithful)", "val_mse") == [0.01255]
    assert _published(frame, "conv_ae_fmnist (faithful)", "train_mse") == [0.0182373]
    assert _published(frame, "cnn_denoiser_fmnist (faithful)", "val_mse") == [0.0132]
    assert not frame.protocol_note.str.startswith("not run").any()


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed004_tiny_run_writes_published_vs_ours(seed004):
    (frame, lines), out = seed004
    table = _check_written(frame, lines, out, "004")
    assert _published(table, "cnn_small on clean test images", "accuracy_clean_pct") == [98.25]
    sigma = float(table[table.metric == "sigma"].ours.iloc[0])
    assert 0.3 <= sigma <= 8.0
    assert _published(table, f"sigma {sigma:g} (calibrated): noisy input", "accuracy_noisy_pct") == [13.68]
    assert "claim check" in set(table.experiment)
    detail = json.loads((out / "seeds" / "004.json").read_text())
    assert detail["calibration"]["target"] == 13.68 and len(detail["calibration"]["evaluations"]) >= 3
    # The other reading of the report's noise, unclipped, is calibrated the same way, on the 0-255 scale.
    unclipped = float(table[table.metric == "sigma_255"].ours.iloc[0])
    assert unclipped == round(unclipped, 1) and 25.5 <= unclipped <= 2040.0
    assert detail["calibration_unclipped"]["sigma_scale"] == 255.0
    assert min(detail["calibration_unclipped"]["evaluations"], key=lambda e: abs(e["f"] - 13.68))["x"] == pytest.approx(
        unclipped, abs=0.05
    )


@pytest.mark.timeout(900)
@pytest.mark.slow
@pytest.mark.skipif(
    bool(_missing("bn_conv_ae", "unet")),
    reason=f"seed 004 denoisers not registered yet: {_missing('bn_conv_ae', 'unet')}",
)
def test_seed004_tiny_run_denoises_with_the_report_model(seed004):
    (frame, _), _ = seed004
    sigma = float(frame[frame.metric == "sigma"].ours.iloc[0])
    assert _published(frame, f"sigma {sigma:g} (calibrated): bn_conv_ae", "accuracy_denoised_pct") == [96.10]
    assert not frame.protocol_note.str.startswith("not run").any()

    # Its row gives the measurements beside its gap: the best other denoiser there, itself at 0.5.
    def accuracy(experiment):
        rows = frame[(frame.experiment == experiment) & (frame.metric == "accuracy_denoised_pct")]
        return float(rows.ours.iloc[0]), rows.protocol_note.iloc[0]

    _, note = accuracy(f"sigma {sigma:g} (calibrated): bn_conv_ae")
    best = max(("median", "unet"), key=lambda n: accuracy(f"sigma {sigma:g} (calibrated): {n}")[0])
    assert (
        f"the best other denoiser here, {best}, reaches {accuracy(f'sigma {sigma:g} (calibrated): {best}')[0]:.2f}%"
        in note
    )
    assert f"at sigma 0.5 bn_conv_ae reaches {accuracy('sigma 0.5: bn_conv_ae')[0]:.2f}%" in note
    unclipped = float(frame[frame.metric == "sigma_255"].ours.iloc[0])
    than = "milder" if unclipped / 255 < sigma else "noisier still: not clipping does not close the gap"
    assert f"unclipped noise calibrates to sigma {unclipped:g}/255 = {unclipped / 255:.3f} ({than})" in note


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed002_tiny(real_data_dir, tmp_path):
    frame, lines = _tiny("002", real_data_dir, tmp_path)
    table = _check_written(frame, lines, tmp_path, "002")
    assert (tmp_path / "seeds" / "002_interpolation.png").stat().st_size > 1000
    # The report's comparison of four architectures is declared: [7] measured, the other three say why not.
    comparison = table[table.experiment == "architecture comparison on MNIST (the report picks [7])"]
    assert len(comparison) == 4 and comparison.ours.notna().sum() == 1
    assert comparison[comparison.ours.isna()].protocol_note.str.startswith("not run: ").all()
    # Faithful at the tiny budget too: the tutorial's recipe, shrunk, and the row says so.
    leaderboard = pd.read_csv(tmp_path / "seed-002" / "leaderboard.csv")
    assert leaderboard[leaderboard.denoiser == "conv_ae_small"].denoiser_params.str.contains('"faithful"').all()
    assert table[table.experiment == "mnist: conv_ae_small noisy"].deviations.str.contains("tiny budget").all()


@pytest.fixture(scope="module")
def seed003(real_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("seeds003")
    return _tiny("003", real_data_dir, out), out


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed003_tiny_run_writes_published_vs_ours(seed003):
    (frame, lines), out = seed003
    table = _check_written(frame, lines, out, "003")
    svm = table[table.experiment == "SVM rbf C=5 gamma=0.05"]
    assert svm.published.tolist() == [84.32] and "cannot have used 500" in svm.protocol_note.iloc[0]
    assert _published(table, "Table 1: stacked_ae_softmax_frozen, lr 0.1", "train_accuracy_pct") == [71.96]
    faithful = table[table.experiment == "Table 1 (the report's protocol): stacked_ae_softmax_faithful, lr 0.1"]
    assert faithful.published.tolist() == [71.96, 72.0] and faithful.protocol_note.str.contains("full-batch").all()
    # Adam at the table's gradient-descent rates is not the table's experiment: its rows say so.
    adam = table[table.experiment == "Table 1: stacked_ae_softmax_frozen, lr 0.1"]
    assert (adam.verdict == "not comparable").all() and adam.not_comparable.str.contains("another step size").all()
    assert (faithful.verdict != "not comparable").all()
    # Tables 2-4 and sec. 4.2.5 also run under the report's protocol, beside our recipe's rows.
    for table_name, published in (
        ("Table 2 (the report's protocol): 1 label(s) per class, input masking 0%", [52.84, 50.3]),
        ("Table 3 (the report's protocol): 5 label(s) per class, input masking 20%", [71.8, 70.8]),
        ("stacked AE vs SVM (the report's protocol): stacked_ae_softmax_faithful", [76.4]),
    ):
        rows = table[table.experiment == table_name]
        assert rows.published.tolist()[: len(published)] == published and rows.ours.notna().all(), table_name
        assert rows.protocol_note.str.contains("full-batch gradient descent").all()
        assert not rows.deviations.str.contains("Adam").any(), "the report's protocol is not our recipe"
    t4 = table[
        table.experiment == "Table 4 (the report's protocol): stacked_ae_softmax_faithful trained at 70% masking"
    ]
    assert len(t4) == 6 and t4.ours.notna().sum() == 2 and t4.published.tolist()[0] == 63.2
    # The faithful training accuracy says how it varies with the seed (the draw or the protocol?).
    spread = json.loads((out / "seeds" / "003.json").read_text())["table1_seed_spread"]["0.1"]
    assert list(spread) == ["1"] and 0 <= spread["1"] <= 100
    train = faithful[faithful.metric == "train_accuracy_pct"].protocol_note.iloc[0]
    assert f"under other seeds (each its own 300-image subset and initial weights): seed 1: {spread['1']}" in train
    assert _published(
        table, "Table 4: stacked_ae_softmax_frozen trained at 70% masking", "test_accuracy_pct_at_20%"
    ) == [63.2]
    # Every published number keeps its row: what the tiny budget leaves out says so.
    skipped = table[table.protocol_note.str.startswith("not run")]
    assert skipped.protocol_note.str.contains("the tiny budget").all()
    table1 = set(table[table.experiment.str.startswith("Table 1: stacked_ae_softmax_frozen, lr ")].experiment)
    assert len(table1) == 5, table1
    table4 = table[table.experiment.str.startswith("Table 4: ")]
    assert len(table4) == 12 and table4.published.notna().all() and table4.ours.notna().sum() == 4
    # Table 3: the training images masked once, the test images clean (as Table 2's); the frozen
    # variant pretrains without masking, so nothing is masked twice.
    table3 = table[table.experiment.str.startswith("Table 3: ")]
    assert table3.protocol_note.str.contains("masked once at 20%").all()
    assert table3.protocol_note.str.contains("clean test images").all()
    assert table.reading.str.contains("Table 3 masks the training images once").all()
    assert table[table.experiment.str.startswith("Table 2: ")].deviations.str.contains("Adam").all()
    assert (
        table[table.experiment.str.startswith("Table 2: 5 label")]
        .deviations.str.contains("tiny budget: stacked_ae_softmax_5labels at ")
        .all()
    )


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed003_reads_its_cells_from_the_store(seed003):
    (frame, _), out = seed003
    cells = pd.read_csv(out / "seed-003" / "leaderboard.csv")
    detail = json.loads((out / "seeds" / "003.json").read_text())
    # The cost sweeps: each cost is the stored fit's MSE on its fixed training pairs, in the report's units x 392.
    sweep = detail["dae_cost_sweeps"]["hidden 16"]
    assert set(sweep) == {"0.1", "0.5"} and all(c["validation"] == "the 300 training images" for c in sweep.values())
    assert all(c["cost"] == pytest.approx(392 * c["mse"]) for c in sweep.values())
    # Each fit's stored cost curve is read for oscillation: the steps on which the cost rose.
    with sqlite3.connect(out / "seed-003" / "store.sqlite") as db:
        stored = db.execute("select denoiser_params, history from cells where denoiser = 'dense_dae'").fetchall()
    curves = {json.loads(p)["lr"]: [h["train_loss"] for h in json.loads(h)] for p, h in stored if '"hidden": 16' in p}
    for lr, c in sweep.items():
        curve = curves[float(lr)]
        assert c["iterations"] == len(curve) and c["rising"] == sum(b > a for a, b in zip(curve, curve[1:]))
    best = frame[frame.metric == "best_lr"].ours.iloc[0]
    assert best == float(min(sweep, key=lambda lr: sweep[lr]["mse"]))
    # The noise matrix: one fit per training level, each tested at every level.
    params = cells.denoiser_params.map(json.loads)
    matrix = cells[(cells.denoiser == "dense_dae") & params.map(lambda p: p.get("hidden") == 16 and p.get("lr") == 0.1)]
    found = {(float(r.train_level), float(r.level)): r.psnr for r in matrix.itertuples()}
    assert set(found) >= {(0.2, 0.2), (0.2, 0.7), (0.7, 0.2), (0.7, 0.7)}, found
    row = frame[(frame.experiment == "dense_dae trained at 70% masking") & (frame.metric == "test_psnr_db_at_20%")]
    assert row.ours.iloc[0] == pytest.approx(found[(0.7, 0.2)], rel=1e-5)


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed003_rerun_skips_stored_cells(seed003, real_data_dir, tmp_path):
    (frame, _), out = seed003
    shutil.copytree(out, tmp_path, dirs_exist_ok=True)
    lines: list[str] = []
    again = run("003", budget="tiny", data_dir=real_data_dir, device="cpu", out_dir=tmp_path, log=lines.append)
    assert not [line for line in lines if " ok " in line], "every cell was stored"
    pd.testing.assert_frame_equal(again, frame)


def test_seed003_takes_set_and_rejects_narrowing(tmp_path):
    assert {"dense_dae", "stacked_ae_softmax_faithful"} <= PROTOCOLS.entry("003").factory.entries("tiny")
    assert "stacked_ae_softmax_faithful" not in PROTOCOLS.entry("003").factory.entries("quick")
    assert check_narrowing({"params": {"dense_dae": {"hidden": 8}}}, ["003"], "quick") == {"dense_dae": {"hidden": 8}}
    with pytest.raises(ValueError, match="--noises cannot narrow the seed protocols"):
        run_all(reports=["003"], budget="tiny", out_dir=tmp_path, narrowing={"noises": ["masking"]})
    with pytest.raises(ValueError, match="--set names 'dncnn': no chosen seed report runs it"):
        check_narrowing({"params": {"dncnn": {"depth": 3}}}, ["003"], "tiny")
    assert not list(tmp_path.iterdir())


def test_run_grid_seeds_rejects_narrowing_flags_with_one_line(tmp_path, capsys):
    assert main(["run", "--grid", "seeds", "--datasets", "mnist", "--device", "cpu", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --datasets cannot narrow the seed protocols") and err.count("\n") == 1
    assert (
        main(["run", "--grid", "seeds", "--set", "dncnnn.depth=3", "--device", "cpu", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "--set names 'dncnnn': unknown denoiser" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_seed000_tiny_run_and_set_reaches_the_cross_validation_folds(real_data_dir, tmp_path, monkeypatch):
    # The five VGG-16 folds are fits of the entry too: --set vgg16_faithful.width narrows them like the grid's.
    lines: list[str] = []
    launch = Launch(params={"vgg16_faithful": {"width": 0.05}})
    options = {"budget": "tiny", "data_dir": real_data_dir, "device": "cpu", "out_dir": tmp_path, "launch": launch}
    frame = run("000", log=lines.append, **options)
    table = _check_written(frame, lines, tmp_path, "000")
    detail = json.loads((tmp_path / "seeds" / "000.json").read_text())
    assert detail["vgg16_cv"]["params"]["width"] == 0.05 and len(detail["vgg16_cv"]["folds_pct"]) == 5
    # The folds go through the fit cache (3 grid classifiers + 5 folds), so a rerun fits nothing.
    assert len(list((tmp_path / "seed-000" / "cache").glob("classifier-*.json"))) == 8
    from models.torch_classifier import TorchClassifier

    def no_fit(*args, **kwargs):
        raise AssertionError("a rerun must take every fit from the cache")

    monkeypatch.setattr(TorchClassifier, "fit", no_fit)
    run("000", log=lambda line: None, **options)
    assert json.loads((tmp_path / "seeds" / "000.json").read_text())["vgg16_cv"] == detail["vgg16_cv"]
    assert set(table.metric) >= {"accuracy_clean_pct", "accuracy_denoised_pct", "cv_mean_pct", "psnr_db"}
    vgg = table[(table.experiment == "vgg16_ae -> vgg16_faithful") & (table.metric == "accuracy_denoised_pct")]
    assert vgg.protocol_note.str.endswith("classifies; --set vgg16_faithful.width=0.05").all(), (
        "the row says what --set changed"
    )
    # The folds run over the denoised training images (the report's 60,000 at full), not the test images.
    assert detail["vgg16_cv"]["n_images"] == 200 and table[table.metric == "cv_fold1_pct"].published.tolist() == [
        99.042
    ]
    assert table.reading.str.contains("impulse 0.25").all() and vgg.deviations.str.contains("tiny budget").all()


def test_seed003_table1_reads_oscillation_from_the_cost_sweep_at_its_first_layer_width():
    from types import SimpleNamespace

    from bench.seeds.s003_tables import _oscillation

    sweeps = {"hidden 500": {"0.1": {"iterations": 500, "rising": 0, "largest_rise": 0.0},
                             "0.4": {"iterations": 500, "rising": 226, "largest_rise": 0.093}}}  # fmt: skip
    repro = SimpleNamespace(extra={"dae_cost_sweeps": sweeps})
    assert "lowers the cost on every one of 500 iterations" in _oscillation(repro, 0.1)
    assert "raises the cost on 226 of 500 iterations (by up to 9%): it oscillates" in _oscillation(repro, 0.4)
    # No sweep at that width (the tiny and quick budgets), or no curve stored: nothing is claimed.
    assert _oscillation(repro, 0.3) == "" and _oscillation(SimpleNamespace(extra={}), 0.4) == ""
