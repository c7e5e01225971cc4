import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.estimator import Denoiser
from bench.execution import runner
from bench.execution.executors import InProcess
from bench.execution.runner import run_grid
from bench.execution.store import Store
from bench.grids import Grid
from bench.registry import DENOISERS, Entry
from bench.report import diagonal

ROOT = Path(__file__).resolve().parents[1]
TIMING = ["fit_seconds", "images_per_second"]


def tiny_grid(**changes):
    fields = dict(
        name="t",
        datasets=["digits"],
        noises={"salt_pepper": [0.1], "gaussian": [0.2]},
        denoisers=["identity", "median"],
        n_train=64,
        n_test=100,
    )
    return Grid.build(**{**fields, **changes})


class Broken(Denoiser):
    """Fails on salt_pepper, returns NaN on gaussian: two ways a cell can fail."""

    def fit(self, noisy, clean, *, seed=0, noise=None):
        if noise.kind == "salt_pepper":
            raise RuntimeError("kaboom\nsecond line")
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        return torch.full_like(noisy, float("nan"))


@pytest.fixture
def broken(monkeypatch):
    DENOISERS.names()
    monkeypatch.setitem(DENOISERS._entries, "broken", Entry("broken", Broken, "tests", "always fails"))


class FailsOnSaltPepper(Denoiser):
    """A cacheable denoiser whose salt-and-pepper fit raises; counts its fits."""

    fits: list[str] = []

    def fit(self, noisy, clean, *, seed=0, noise=None):
        FailsOnSaltPepper.fits.append(noise.kind)
        if noise.kind == "salt_pepper":
            raise RuntimeError("kaboom")
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        return noisy.clone()

    def fitted_state(self):
        return {}

    def load_fitted(self, tensors, state, device):
        self.fitted_ = True
        return self


class ParallelRecorder(InProcess):
    """Runs in this process but says it is parallel; records the unit kinds of each map."""

    parallel = True

    def __init__(self) -> None:
        super().__init__()
        self.maps: list[list[str]] = []

    def map(self, context, units):
        self.maps.append([type(unit).__name__ for unit in units])
        yield from super().map(context, units)


def test_a_parallel_run_fits_the_denoisers_beside_the_classifiers(tmp_path, monkeypatch):
    DENOISERS.names()
    monkeypatch.setitem(DENOISERS._entries, "fails", Entry("fails", FailsOnSaltPepper, "tests", "fails on salt_pepper"))
    monkeypatch.setattr(FailsOnSaltPepper, "fits", [])
    grid = tiny_grid(denoisers=["fails", "median"], classifiers=["svm_rbf"])
    engine = ParallelRecorder()
    monkeypatch.setattr(runner, "make_executor", lambda spec, **options: engine)
    summary = run_grid(grid, out_dir=tmp_path / "parallel", log=lambda line: None)
    assert engine.maps == [["ClassifierFit", *["DenoiserFit"] * 4], ["FitGroup"] * 4]
    assert (summary.ok, summary.failed) == (3, 1)
    assert sorted(FailsOnSaltPepper.fits) == ["gaussian", "salt_pepper"], "a fit that failed ahead is not redone"
    board = pd.read_csv(tmp_path / "parallel" / "t" / "leaderboard.csv").set_index(["denoiser", "noise"])
    assert board.loc[("fails", "salt_pepper"), "error"] == "its fit failed: RuntimeError: kaboom"
    assert board.loc[("fails", "gaussian"), "status"] == "ok"
    monkeypatch.undo()  # the same grid in process: the same numbers
    run_grid(grid.narrow(denoisers=["median"]), out_dir=tmp_path / "serial", log=lambda line: None)
    serial = pd.read_csv(tmp_path / "serial" / "t" / "leaderboard.csv").set_index(["denoiser", "noise"])
    pd.testing.assert_frame_equal(board.loc[["median"], ["psnr", "ssim"]], serial.loc[["median"], ["psnr", "ssim"]])
    accuracy = [
        pd.read_csv(tmp_path / run / "t" / "classifiers.csv").query("denoiser == 'median'").set_index("noise")
        for run in ("parallel", "serial")
    ]
    columns = ["accuracy_clean", "accuracy_noisy", "accuracy_denoised"]
    pd.testing.assert_frame_equal(accuracy[0][columns], accuracy[1][columns])


def test_run_writes_a_leaderboard_with_plausible_numbers(tmp_path):
    summary = run_grid(tiny_grid(), out_dir=tmp_path, log=lambda line: None)
    assert (summary.ok, summary.failed, summary.exit_code) == (4, 0, 0)
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    assert list(board.columns[:5]) == ["dataset", "noise", "level", "train_level", "denoiser"]
    identity = board[board.denoiser == "identity"]
    assert (identity.psnr - identity.psnr_noisy).abs().max() < 1e-4  # identity scores the noisy input
    sp = board[board.noise == "salt_pepper"].set_index("denoiser")
    assert sp.psnr["median"] > sp.psnr["identity"] + 5  # a median removes salt and pepper
    assert (board.psnr_ci_low <= board.psnr).all() and (board.psnr <= board.psnr_ci_high).all()
    assert (board.status == "ok").all() and (board.device == "cpu").all()


def test_rerun_skips_finished_cells_and_report_rebuilds(tmp_path):
    run_grid(tiny_grid(), out_dir=tmp_path, log=lambda line: None)
    first = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    (tmp_path / "t" / "leaderboard.csv").unlink()
    again = run_grid(tiny_grid(), out_dir=tmp_path, log=lambda line: None)
    assert (again.ok, again.skipped) == (0, 4)
    pd.testing.assert_frame_equal(first, pd.read_csv(tmp_path / "t" / "leaderboard.csv"))


def test_a_parallel_run_fits_networks_in_their_groups_so_their_cells_are_stored_as_each_is_fitted(
    tmp_path, monkeypatch
):
    # A network fitted ahead with the classifiers held back every cell until the last network was
    # fitted; in its group, its cells are scored right after its own fit.
    DENOISERS.names()
    monkeypatch.setitem(DENOISERS._entries, "fails", Entry("fails", FailsOnSaltPepper, "tests", "fails on salt_pepper"))
    monkeypatch.setattr(FailsOnSaltPepper, "fits", [])
    monkeypatch.setattr(FailsOnSaltPepper, "accelerated", True, raising=False)
    engine = ParallelRecorder()
    monkeypatch.setattr(runner, "make_executor", lambda spec, **options: engine)
    grid = tiny_grid(denoisers=["fails", "median"], classifiers=["svm_rbf"])
    summary = run_grid(grid, out_dir=tmp_path, log=lambda line: None)
    assert engine.maps == [["ClassifierFit", *["DenoiserFit"] * 2], ["FitGroup"] * 4]
    assert (summary.ok, summary.failed) == (3, 1)


def test_a_run_that_leaves_the_outputs_to_its_caller_stores_its_cells_and_writes_no_page(tmp_path):
    summary = run_grid(tiny_grid(), out_dir=tmp_path, log=lambda line: None, write=False)
    assert summary.ok == 4 and (tmp_path / "t" / "store.sqlite").is_file()
    assert not (tmp_path / "t" / "leaderboard.csv").exists() and not (tmp_path / "t" / "report.html").exists()


def test_failing_cells_become_rows_and_the_run_goes_on(tmp_path, broken):
    summary = run_grid(tiny_grid(denoisers=["broken", "median"]), out_dir=tmp_path, log=lambda line: None)
    assert (summary.ok, summary.failed, summary.exit_code) == (2, 2, 1)
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv").set_index(["denoiser", "noise"])
    assert board.loc[("broken", "salt_pepper"), "error"] == "RuntimeError: kaboom"
    assert board.loc[("broken", "gaussian"), "error"] == "ValueError: denoiser 'broken' returned NaN or infinite values"
    assert board.loc[("median", "gaussian"), "status"] == "ok"


def test_same_seed_same_numbers_and_seed_changes_noise(tmp_path):
    a = run_grid(tiny_grid(), out_dir=tmp_path / "a", log=lambda line: None)
    b = run_grid(tiny_grid(), out_dir=tmp_path / "b", log=lambda line: None)
    c = run_grid(tiny_grid(seed=1), out_dir=tmp_path / "c", log=lambda line: None)
    read = lambda s: pd.read_csv(s.out_dir / "leaderboard.csv").drop(columns=TIMING)  # noqa: E731
    pd.testing.assert_frame_equal(read(a), read(b))
    assert not read(a).psnr.equals(read(c).psnr)


@pytest.mark.timeout(900)
@pytest.mark.slow
def test_sigkill_mid_run_resumes_and_loses_nothing_finished(tmp_path):
    grid = tmp_path / "kill.toml"
    levels = ", ".join(str(round(0.02 * i, 2)) for i in range(1, 13))
    grid.write_text(
        f'datasets = ["digits"]\ndenoisers = ["identity", "gaussian_blur"]\nn_train = 64\nn_test = 300\n[noises]\nsalt_pepper = [{levels}]\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench", "run", "--grid", str(grid), "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = tmp_path / "out" / "kill" / "store.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and _rows(store) < 3:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = _rows(store)
    assert 3 <= finished < 24, "the run should have been killed part-way"
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} of 24 cells already in" in resumed.stdout
    whole = subprocess.run(
        [*command[:-1], str(tmp_path / "whole")], env=env, capture_output=True, text=True, timeout=300
    )
    assert whole.returncode == 0, whole.stderr
    read = lambda p: pd.read_csv(p / "kill" / "leaderboard.csv").drop(columns=TIMING)  # noqa: E731
    pd.testing.assert_frame_equal(read(tmp_path / "out"), read(tmp_path / "whole"))


def _rows(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM cells WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


class FirstFew(Denoiser):
    """Scores only the first 10 test images, as BM3D does on a budget."""

    eval_images = 10

    def fit(self, noisy, clean, *, seed=0, noise=None):
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        return noisy.clone()


def test_slow_denoisers_score_a_recorded_subsample(tmp_path, monkeypatch):
    DENOISERS.names()
    monkeypatch.setitem(DENOISERS._entries, "first_few", Entry("first_few", FirstFew, "tests", "first 10 images"))
    run_grid(tiny_grid(denoisers=["first_few", "identity"]), out_dir=tmp_path, log=lambda line: None)
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    n_test = pd.read_sql_query("SELECT denoiser, n_test FROM cells", sqlite3.connect(tmp_path / "t" / "store.sqlite"))
    assert dict(n_test.groupby("denoiser").n_test.max()) == {"first_few": 10, "identity": 100}
    assert board.psnr.notna().all()


def test_a_rerun_loads_the_cached_fit_instead_of_training(tmp_path, monkeypatch):
    from models import neural_denoiser as base
    from models.engine import denoising

    grid = dict(denoisers=["dncnn"], noises={"gaussian": [0.2]}, params={"dncnn": DENOISERS.entry("dncnn").test_params})
    run_grid(tiny_grid(**grid), out_dir=tmp_path, log=lambda line: None)

    def no_training(*args, **kwargs):
        raise AssertionError("a cached fit must load, not train")

    monkeypatch.setattr(base, "train", no_training)
    monkeypatch.setattr(denoising, "train", no_training)
    summary = run_grid(tiny_grid(**grid, n_test=50), out_dir=tmp_path, log=lambda line: None)
    assert (summary.ok, summary.failed) == (1, 0)  # a new cell (fewer test images), the same fit
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    assert sorted(board.n_test) == [50, 100] and board.fit_seconds.nunique() == 1


def test_an_inference_only_parameter_reuses_the_fit_and_still_applies(tmp_path, monkeypatch):
    # The self-ensemble does not enter training: a run with it loads the cached fit, and its
    # row differs from the plain one because the ensemble was applied.
    from models import neural_denoiser as base
    from models.engine import denoising

    params = DENOISERS.entry("unet").test_params
    grid = dict(denoisers=["unet"], noises={"gaussian": [0.2]})
    run_grid(tiny_grid(**grid, params={"unet": params}), out_dir=tmp_path, log=lambda line: None)

    def no_training(*args, **kwargs):
        raise AssertionError("an ensemble size must not refit the network")

    monkeypatch.setattr(base, "train", no_training)
    monkeypatch.setattr(denoising, "train", no_training)
    summary = run_grid(
        tiny_grid(**grid, params={"unet": {**params, "ensemble": 8}}), out_dir=tmp_path, log=lambda line: None
    )
    assert (summary.ok, summary.failed) == (1, 0)
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    ensembles = board.denoiser_params.map(lambda p: json.loads(p).get("ensemble", 1))
    assert sorted(ensembles) == [1, 8] and board.fit_seconds.nunique() == 1 and board.psnr.nunique() == 2
    assert len(list((tmp_path / "t" / "cache").glob("*.safetensors"))) == 1


def test_a_denoiser_run_with_other_parameters_is_its_own_row(tmp_path):
    grid = dict(denoisers=["median"], noises={"salt_pepper": [0.1]})
    run_grid(tiny_grid(**grid), out_dir=tmp_path, log=lambda line: None)
    run_grid(tiny_grid(**grid, params={"median": {"size": 5}}), out_dir=tmp_path, log=lambda line: None)
    board = pd.read_csv(tmp_path / "t" / "leaderboard.csv")
    assert sorted(board.denoiser_params.map(lambda p: json.loads(p).get("size", 0))) == [0, 5]
    with Store(tmp_path / "t" / "store.sqlite") as store:
        assert sorted(diagonal(store.cells())["entry"]) == ["median", "median [size=5]"]
