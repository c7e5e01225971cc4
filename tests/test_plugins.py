"""Bring your own denoiser: the README's example as a plugin file, on the command line and through the API."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _block(heading: str, language: str, index: int = 0) -> str:
    section = README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)[index]


@pytest.fixture(autouse=True)
def restore_registry(monkeypatch):
    """Entries that a test's plugin registers leave with the test."""
    from bench.registry import DENOISERS

    DENOISERS.names()
    monkeypatch.setattr(DENOISERS, "_entries", dict(DENOISERS._entries))


@pytest.fixture
def plugin_dir(tmp_path) -> Path:
    (tmp_path / "box3.py").write_text(_block("Adding a denoiser", "python"))
    return tmp_path


def _bench(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, env=env, text=True, capture_output=True, timeout=600
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_plugin_is_listed_checked_and_run_from_the_command_line(plugin_dir):
    commands = [line.split("#")[0].split() for line in _block("Adding a denoiser", "bash").splitlines() if line.strip()]
    assert [c[:4] for c in commands] == [
        ["python", "-m", "bench", "check-entry"],
        ["python", "-m", "bench", "list"],
        ["python", "-m", "bench", "run"],
    ]
    check = _bench(plugin_dir, *commands[0][3:])
    assert check.returncode == 0 and "box3: 8 of 8 checks passed" in check.stdout, check.stdout + check.stderr
    listing = _bench(plugin_dir, *commands[1][3:])
    assert re.search(r"^  box3 +3x3 box filter +\[textbook\]$", listing.stdout, flags=re.M), listing.stdout
    run = _bench(plugin_dir, *commands[2][3:], "--classifiers", "none", "--no-estimate", "--workers", "2")
    assert run.returncode == 0, run.stdout + run.stderr
    board = pd.read_csv(plugin_dir / "results" / "smoke" / "leaderboard.csv")
    assert sorted(board.denoiser) == ["box3", "box3", "median", "median"] and (board.status == "ok").all()


def test_the_readme_api_example_runs_verbatim(plugin_dir, monkeypatch):
    monkeypatch.chdir(plugin_dir)
    monkeypatch.syspath_prepend(str(plugin_dir))
    namespace = {}
    exec(_block("Python API", "python"), namespace)  # noqa: S102 - the README's own example
    board = namespace["board"]
    assert set(board.denoiser) == {"median", "box3"} and len(board) == 4
    assert (board.status == "ok").all()
    sys.modules.pop("box3", None)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import not_a_module_anywhere\n", "plugin 'bad.py' could not be loaded: ModuleNotFoundError"),
        (
            "from bench.registry import DENOISERS\nDENOISERS.register('median', source='', description='')(object)\n",
            "plugin 'bad.py' could not be loaded: ValueError: denoiser 'median' is already registered",
        ),
    ],
)
def test_a_broken_plugin_is_one_line_exit_2_and_runs_nothing(tmp_path, monkeypatch, capsys, source, message):
    (tmp_path / "bad.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--grid", "smoke", "--plugin", "bad.py", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    sys.modules.pop("bad", None)


def test_check_entry_reports_a_failing_check(tmp_path, capsys):
    (tmp_path / "shrink.py").write_text(
        "from bench.estimator import Denoiser\nfrom bench.registry import DENOISERS\n\n"
        "@DENOISERS.register('shrink_test', source='tests', description='wrong shape')\n"
        "class Shrink(Denoiser):\n"
        "    def fit(self, noisy, clean, *, seed=0, noise=None):\n        self.fitted_ = True\n        return self\n\n"
        "    def denoise(self, noisy):\n        self.check_fitted()\n        return noisy[:, :, 1:, 1:].clone()\n"
    )
    assert main(["check-entry", "shrink_test", "--plugin", str(tmp_path / "shrink.py")]) == 1
    out = capsys.readouterr().out
    assert "FAIL output: same shape" in out and "shrink_test: 3 of 8 checks passed" in out
    assert "FAIL pure: input untouched, repeated calls equal: not run:" in out


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    from bench.execution.runner import run_grid
    from bench.grids import named_grid

    out = tmp_path_factory.mktemp("reference")
    grid = named_grid("smoke").narrow(denoisers=["identity", "median", "gaussian_blur"], classifiers=[])
    assert run_grid(grid, out_dir=out, log=lambda _: None).ok == 6
    return out / "smoke"


def test_against_ranks_the_new_rows_among_the_reference_without_rerunning_it(
    plugin_dir, reference_run, monkeypatch, capsys
):
    from bench.execution.store import Store

    monkeypatch.chdir(plugin_dir)
    args = "run --grid smoke --denoisers box3 --classifiers none --plugin box3.py --no-estimate".split()
    args += ["--against", str(reference_run), "--out", str(plugin_dir / "out")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 ok" in out and "rank " in out and "best reference median" in out
    run_dir = plugin_dir / "out" / "smoke-with-box3"
    ranking = pd.read_csv(run_dir / "against.csv")
    assert list(ranking.denoiser) == ["box3", "box3"] and set(ranking["of"]) == {4}
    assert ranking["distinguishable"].notna().all()  # paired on the same test images
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert sorted(set(board.denoiser)) == ["box3", "gaussian_blur", "identity", "median"]
    with Store(reference_run / "store.sqlite") as store:
        assert len(store.cells()) == 6  # the reference is left as it was


def test_against_refuses_cells_the_reference_cannot_hold(plugin_dir, reference_run, capsys, monkeypatch):
    monkeypatch.chdir(plugin_dir)
    args = "run --grid smoke --denoisers box3 --classifiers none --plugin box3.py --n-test 50 --levels 0.3".split()
    args += ["--against", str(reference_run), "--out", str(plugin_dir / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the cells do not match the reference run" in err and "n_test 50 (the reference: 200)" in err
    assert "noise gaussian at 0.3 is not in the reference" in err and err.count("\n") == 1
    assert not (plugin_dir / "out").exists()
