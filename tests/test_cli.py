import pandas as pd
import pytest

from bench.cli import main


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    code = main(["run", "--grid", "smoke", "--denoisers", "medain", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: unknown denoiser 'medain' (did you mean median?)") and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "nope"], "unknown grid 'nope'"),
        (["--noises", "gaussian", "--levels", "-2"], "noise level -2.0 for 'gaussian' is out of range"),
        (["--device", "tpu"], "device 'tpu' is unknown"),
        (["--classifiers", "svm_rbff"], "unknown classifier 'svm_rbff' (did you mean svm_rbf?)"),
        (["--grid", "smoke", "--set", "unet.width=8"], "parameters given for 'unet', which is not in the grid"),
        (["--grid", "smoke", "--set", "median.sizes=3"], "bad parameters for denoiser 'median'"),
        (["--datasets", "cifar10", "--data-dir", "/nonexistent"], "dataset 'cifar10' not found"),
    ],
)
def test_more_bad_input(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(["run", *args, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--levels", "high"], "levels must be comma-separated numbers"),
        (["--set", "dncnn=3"], "--set expects NAME.KEY=VALUE"),
    ],
)
def test_malformed_options_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_set_overrides_an_entry_parameter_and_changes_its_cell(tmp_path):
    from bench.cli import _setting, _settings
    from bench.grids import named_grid

    grid = named_grid("smoke")
    settings = _settings([_setting("median.size=5"), _setting("conv_ae_fmnist.epochs=2"), _setting("median.name=x y")])
    assert settings == {"median": {"size": 5, "name": "x y"}, "conv_ae_fmnist": {"epochs": 2}}
    narrowed = grid.narrow(params={"conv_ae_fmnist": {"epochs": 2}})
    assert narrowed.denoiser_params("conv_ae_fmnist") == {**grid.denoiser_params("conv_ae_fmnist"), "epochs": 2}
    changed = {a.denoiser for a, b in zip(grid.cells(), narrowed.cells()) if a.key != b.key}
    assert changed == {"conv_ae_fmnist"}


def test_run_narrowed_smoke_then_report(tmp_path, capsys):
    out = tmp_path / "out"
    args = "run --grid smoke --denoisers identity,median --noises salt_pepper --n-test 64 --classifiers none".split()
    args += ["--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "[2/2] ok" in printed and "leaderboard:" in printed
    board = out / "smoke" / "leaderboard.csv"
    first = pd.read_csv(board)
    assert len(first) == 2 and set(first.denoiser) == {"identity", "median"}
    assert pd.read_csv(out / "smoke" / "classifiers.csv").empty
    board.unlink()
    assert main(["report", str(out / "smoke")]) == 0
    pd.testing.assert_frame_equal(first, pd.read_csv(board))
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_list_and_env(capsys, data_dir):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    for name in ("median", "digits", "salt_pepper", "smoke"):
        assert f"  {name} " in listed
    assert main(["env", "--data-dir", str(data_dir)]) == 0
    env = capsys.readouterr().out
    assert "torch" in env and "digits       embedded" in env and str(data_dir / "mnist") in env


@pytest.mark.parametrize("value", ["-5", "nan", "0", "inf", "soon"])
def test_a_checkpoint_interval_that_is_not_a_positive_number_is_refused(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--grid", "smoke", "--checkpoint-every", value, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"--checkpoint-every: expected a positive number of seconds, e.g. 300; got '{value}'" in err
    assert not (tmp_path / "out").exists()


def test_a_plugin_that_calls_sys_exit_on_import_is_one_line_exit_2(tmp_path, capsys):
    plugin = tmp_path / "quits.py"
    plugin.write_text("import sys\nsys.exit(3)\n")
    assert main(["list", "--plugin", str(plugin)]) == 2
    assert capsys.readouterr().err == f"error: plugin '{plugin}' could not be loaded: SystemExit: 3\n"


def test_a_plugin_that_calls_sys_exit_in_its_fit_fails_its_cell_not_the_run(tmp_path, monkeypatch):
    from bench.registry import DENOISERS

    DENOISERS.names()
    monkeypatch.setattr(DENOISERS, "_entries", dict(DENOISERS._entries))  # the plugin's entry leaves with the test
    plugin = tmp_path / "quits_in_fit.py"
    plugin.write_text(
        "import sys\nfrom bench.estimator import Denoiser\nfrom bench.registry import DENOISERS\n\n"
        "@DENOISERS.register('quits_in_fit', source='tests', description='calls sys.exit in fit')\n"
        "class QuitsInFit(Denoiser):\n"
        "    def fit(self, noisy, clean, *, seed=0, noise=None):\n        sys.exit(3)\n"
        "    def denoise(self, noisy):\n        return noisy\n"
    )
    args = (
        "run --grid smoke --denoisers quits_in_fit,identity --noises gaussian --classifiers none --no-estimate".split()
    )
    args += ["--plugin", str(plugin), "--out", str(tmp_path / "out")]
    assert main(args) == 1
    board = pd.read_csv(tmp_path / "out" / "smoke" / "leaderboard.csv")
    failed = board[board.denoiser == "quits_in_fit"]
    assert set(failed.status) == {"failed"} and set(failed.error) == {"SystemExit: 3"}
    assert set(board[board.denoiser == "identity"].status) == {"ok"}


def _malformed_idx(tmp_path):
    from conftest import make_idx_dataset

    folder = make_idx_dataset(tmp_path / "data" / "mnist")
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not gzip at all")
    return ["--datasets", "mnist", "--data-dir", str(tmp_path / "data")], "t10k-images-idx3-ubyte.gz: cannot read IDX"


def _data_dir_a_file(tmp_path):
    (tmp_path / "a-file").write_text("x")
    return ["--data-dir", str(tmp_path / "a-file")], "is a file; expected the folder that holds the dataset files"


@pytest.mark.parametrize(
    "case",
    [
        lambda tmp_path: (["--device", "cuda"], "CUDA is not available here; use --device cpu"),
        _data_dir_a_file,
        _malformed_idx,
    ],
    ids=["cuda-without-gpu", "data-dir-a-file", "malformed-idx"],
)
def test_bad_device_or_data_fail_before_the_run_prints_anything(tmp_path, capsys, case):
    import torch

    args, message = case(tmp_path)
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["run", "--grid", "smoke", *args, "--out", str(tmp_path / "out")]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and message in printed.err and printed.err.count("\n") == 1, printed
    assert not (tmp_path / "out").exists()


def test_a_full_disk_while_writing_the_report_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    import errno

    from bench.report import outputs

    out = tmp_path / "out"
    args = "run --grid smoke --denoisers identity --noises gaussian --classifiers none --no-estimate".split()
    args += ["--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()

    def full_disk(frame, path, **options):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(outputs, "_write_csv", full_disk)
    assert main(["report", str(out / "smoke")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: writing {out / 'smoke' / 'leaderboard.csv'} failed: no space left on the device (No space left on "
        "device); free disk space and rerun the same command: every cell stored so far is kept\n"
    )


@pytest.mark.parametrize(
    ("args", "cores", "workers"),
    [
        ([], 2, 2),
        ([], 16, 2),
        ([], 1, 1),
        (["--grid", "smoke"], 2, 1),
        (["--workers", "3"], 2, 3),
        (["--threads", "2"], 2, 1),
        (["--device", "cuda"], 2, 1),
        (["--executor", "dask"], 2, 1),
    ],
)
def test_the_quick_grid_runs_on_two_local_workers_by_default_on_a_cpu(monkeypatch, args, cores, workers):
    import os

    import torch

    from bench.cli import build_parser
    from bench.commands import executor_spec

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command in ("run", "plan"):
        assert executor_spec(build_parser().parse_args([command, *args])).workers == workers


@pytest.mark.parametrize(
    ("args", "wanted"),
    [([], False), (["--estimate"], True), (["--grid", "smoke"], True), (["--grid", "smoke", "--no-estimate"], False)],
)
def test_the_quick_grid_skips_the_estimates_probe_unless_asked(args, wanted):
    from bench.cli import build_parser
    from bench.commands import _wants_estimate

    assert _wants_estimate(build_parser().parse_args(["run", *args])) is wanted
