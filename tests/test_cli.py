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
