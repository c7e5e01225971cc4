"""Executors: the same rows on every engine, lost workers retried, bad input refused.

Dask clusters here listen on loopback only.
"""

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from bench.execution.executors import ExecutorSpec, slurm_cluster
from bench.execution.runner import run_grid
from bench.grids import named_grid

ROOT = Path(__file__).resolve().parents[1]
SCORES = ["psnr", "psnr_ci_low", "psnr_ci_high", "ssim", "mse", "psnr_noisy", "status"]
ACCURACY = ["accuracy_clean", "accuracy_noisy", "accuracy_denoised"]
KEYS = ["dataset", "noise", "level", "denoiser"]


def _rows(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    board = pd.read_csv(run_dir / "leaderboard.csv").sort_values(KEYS).reset_index(drop=True)
    classifiers = pd.read_csv(run_dir / "classifiers.csv").sort_values([*KEYS, "classifier"]).reset_index(drop=True)
    return board, classifiers


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    # One thread, as each worker below has: CPU float reductions depend on the thread count.
    out = tmp_path_factory.mktemp("inprocess")
    summary = run_grid(named_grid("smoke"), out_dir=out, executor=ExecutorSpec(threads=1), log=lambda _: None)
    assert summary.ok == 10 and summary.failed == 0
    return _rows(out / "smoke")


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("spec", [ExecutorSpec(workers=2), ExecutorSpec(name="dask", workers=2)], ids=["local", "dask"])
def test_two_workers_give_the_in_process_rows_bit_for_bit(tmp_path, in_process, spec):
    if spec.name == "dask":
        pytest.importorskip("distributed")
    lines = []
    summary = run_grid(named_grid("smoke"), out_dir=tmp_path, executor=spec, log=lines.append)
    assert (summary.ok, summary.failed) == (10, 0)
    assert any("2" in line and "worker" in line.lower() for line in lines if line.startswith("executor:"))
    board, classifiers = _rows(tmp_path / "smoke")
    expected_board, expected_classifiers = in_process
    pd.testing.assert_frame_equal(board[KEYS + SCORES], expected_board[KEYS + SCORES], check_exact=True)
    assert len(classifiers) == len(expected_classifiers) > 0
    pd.testing.assert_frame_equal(classifiers[ACCURACY], expected_classifiers[ACCURACY], check_exact=True)


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


@pytest.fixture
def cli():
    """``_cli`` for a test, which kills what it launched (and the workers) if still running at the
    end: a test that fails while waiting must not leave an endless run behind."""
    launched: list[subprocess.Popen] = []

    def launch(*args: str, **kwargs) -> subprocess.Popen:
        launched.append(_cli(*args, **kwargs))
        return launched[-1]

    yield launch
    for proc in launched:
        if proc.poll() is None:
            _kill_tree(proc)


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        import psutil

        children = psutil.Process(proc.pid).children(recursive=True)
    except Exception:  # no psutil, or the driver just ended
        children = []
    proc.kill()
    proc.communicate(timeout=60)
    for child in children:
        try:
            child.kill()
        except Exception:  # already gone
            pass


# Four cells of a few seconds each, so that a worker is mid-cell when it is killed.
SLOW = [
    "run",
    "--grid",
    "smoke",
    "--denoisers",
    "identity,conv_ae_fmnist",
    "--classifiers",
    "none",
    "--no-estimate",
    "--set",
    "conv_ae_fmnist.max_steps=400",
    "--set",
    "conv_ae_fmnist.epochs=400",
]


def _stored(store: Path) -> list[str]:
    if not store.exists():
        return []
    try:
        with sqlite3.connect(store) as db:
            return [row[0] for row in db.execute("SELECT key FROM cells WHERE status = 'ok'")]
    except sqlite3.OperationalError:  # created, schema not yet written
        return []


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _spawned_workers(psutil, driver) -> list:
    """The driver's worker processes (not multiprocessing's resource tracker). A child that exits
    while we look (a zombie, or gone) is not a worker any more."""
    found = []
    for child in driver.children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:  # ZombieProcess included
            continue
    return found


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_worker_costs_only_a_retry_and_its_fit_resumes(tmp_path, cli):
    psutil = pytest.importorskip("psutil")
    proc = cli(*SLOW, "--workers", "2", "--checkpoint-every", "0.5", "--out", str(tmp_path))
    store, cache = tmp_path / "smoke" / "store.sqlite", tmp_path / "smoke" / "cache"
    driver = psutil.Process(proc.pid)

    def workers():
        return _spawned_workers(psutil, driver)

    # Kill both workers once a cell is stored and a fit in flight has checkpointed.
    _wait_for(lambda: len(_stored(store)) >= 1 and len(workers()) == 2 and any(cache.glob("*.ckpt.*.pt")))
    victims = workers()
    for victim in victims:
        os.kill(victim.pid, signal.SIGKILL)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert all(f"(pid {victim.pid}) died (killed by SIGKILL)" in output for victim in victims), output
    assert "retrying it" in output
    # A spawned worker prints its fits' lines as the driver does: here, the retried fit's resume.
    assert re.search(r"worker \d: \w+: resuming from checkpoint .* at step \d+", output), output
    keys = _stored(store)
    assert len(keys) == len(set(keys)) == 4


@pytest.mark.slow
def test_workers_that_die_while_idle_are_replaced_and_the_run_goes_on(tmp_path):
    import multiprocessing

    victims = []

    def kill_the_idle_workers(context, done) -> str:  # the estimate runs while the workers wait
        victims.extend(multiprocessing.active_children())
        for victim in victims:
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(30)
        return "estimate: (workers killed)"

    grid = named_grid("smoke").narrow(denoisers=["identity", "median"], classifiers=[])
    lines = []
    spec = ExecutorSpec(workers=2)
    summary = run_grid(grid, out_dir=tmp_path, executor=spec, estimate=kill_the_idle_workers, log=lines.append)
    assert (summary.ok, summary.failed) == (len(grid.cells()), 0), lines
    assert len(victims) == 2
    for victim in victims:
        assert any(f"(pid {victim.pid}) died (killed by SIGKILL) while idle" in line for line in lines), lines


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_workers_die_with_a_driver_killed_by_sigkill(tmp_path, cli):
    psutil = pytest.importorskip("psutil")
    endless = [*(arg.replace("=400", "=1000000") for arg in SLOW), "--set", "conv_ae_fmnist.patience=1000000"]
    proc = cli(*endless, "--workers", "2", "--checkpoint-every", "0.5", "--out", str(tmp_path))
    driver = psutil.Process(proc.pid)

    def workers():
        return _spawned_workers(psutil, driver)

    # Kill the driver while a worker is inside a fit far longer than the test: it must not go on.
    _wait_for(lambda: len(workers()) == 2 and any((tmp_path / "smoke" / "cache").glob("*.ckpt.*.pt")))
    spawned = workers()
    proc.kill()
    proc.wait(timeout=60)
    _, alive = psutil.wait_procs(spawned, timeout=10)
    for process in alive:  # the test's own clean-up, then its verdict
        process.kill()
    proc.communicate(timeout=60)
    assert not alive, f"workers outlived their driver: {alive}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_driver_killed_mid_run_under_dask_redoes_only_what_was_in_flight(tmp_path, cli):
    pytest.importorskip("distributed")
    args = [*SLOW, "--executor", "dask", "--workers", "2", "--out", str(tmp_path)]
    store = tmp_path / "smoke" / "store.sqlite"
    proc = cli(*args, start_new_session=True)
    _wait_for(lambda: len(_stored(store)) >= 1)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the cluster it started
    proc.communicate()
    before = set(_stored(store))
    assert 1 <= len(before) < 4
    rerun = cli(*args)
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    assert f"{len(before)} of 4 cells already in" in output and f"running {4 - len(before)}" in output
    after = _stored(store)
    assert len(after) == len(set(after)) == 4 and before <= set(after)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "nosuch"], "executor 'nosuch' is unknown; expected one of: local, dask, slurm"),
        (["--workers", "0"], "--workers must be a positive integer; got 0"),
        (["--threads", "0"], "--threads must be a positive integer; got 0"),
        (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"], "no Dask scheduler answers at tcp://127.0.0.1:9"),
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler joins a Dask cluster; use it with --executor dask"),
        (["--executor", "dask", "--scheduler", "localhost"], "--scheduler 'localhost' is not an address"),
    ],
)
def test_bad_executor_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, message):
    start = time.monotonic()
    code = main(["run", "--grid", "smoke", "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - start < 10
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_slurm_job_script_asks_for_the_partition_time_and_gpus():
    pytest.importorskip("dask_jobqueue")
    spec = ExecutorSpec(
        name="slurm",
        slurm_partition="gpu",
        slurm_time="02:30:00",
        gpus_per_job=2,
        threads=8,
        slurm_memory="32GB",
        slurm_scheduler_host="127.0.0.1",
    )
    cluster = slurm_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for expected in (
        "#SBATCH -p gpu",
        "#SBATCH -t 02:30:00",
        "#SBATCH --gres=gpu:2",
        "--resources GPU=2",
        "--nthreads 8",
        "#SBATCH --mem=30G",
    ):
        assert expected in script, script


def test_a_worker_without_the_data_fails_its_cells_naming_the_worker_and_the_path(tmp_path, monkeypatch):
    import socket

    from bench.execution.worker import FitGroup, run_unit
    from bench.execution.workspace import RunContext

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    grid = named_grid("smoke").narrow(datasets=["mnist"], denoisers=["identity"], classifiers=[])
    context = RunContext(
        base_seed=0, n_train=10, n_test=10, cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / "no-data-here")
    )
    [scored] = run_unit(context, FitGroup(grid.cells()[:1]))
    row = scored.row
    assert row.status == "failed" and scored.samples is None
    assert f"worker {socket.gethostname()}:{os.getpid()}" in row.error
    assert "dataset 'mnist' not found" in row.error and "no-data-here" in row.error


def test_scaling_times_only_the_classical_cells_and_reports_ratios():
    from bench.cost.scaling import Timing, classical_cells, format_scaling

    grid = classical_cells(named_grid("smoke"))
    assert "conv_ae_fmnist" not in grid.denoisers and "median" in grid.denoisers and grid.classifiers == ()
    table = format_scaling(
        [
            Timing("in process, default threads", 10.0, 8),
            Timing("1 worker, 1 thread (reference)", 12.0, 8),
            Timing("--workers 2", 6.0, 8),
        ]
    )
    assert table.splitlines()[3].split()[-2:] == ["2.00x", "1.67x"]  # vs one worker on one thread, vs the default
    with pytest.raises(ValueError, match="has no classical denoisers"):
        classical_cells(named_grid("smoke").narrow(denoisers=["conv_ae_fmnist"]))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_stops_cleanly_keeping_finished_cells_and_closing_the_workers(tmp_path, cli):
    psutil = pytest.importorskip("psutil")
    proc = cli(*SLOW, "--workers", "2", "--out", str(tmp_path))
    store = tmp_path / "smoke" / "store.sqlite"
    _wait_for(lambda: len(_stored(store)) >= 1)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "interrupted:" in output and "rerun the same command to resume" in output
    assert 1 <= len(_stored(store)) < 4 and (tmp_path / "smoke" / "leaderboard.csv").is_file()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"workers left running: {alive}"
