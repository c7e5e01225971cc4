"""The run store used directly: damaged files, run ids, superseded failures."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from bench.cli import main
from bench.report import write_outputs
from bench.store import Store


def _cell(key: str, *, status: str = "ok", params: dict | None = None, run_id: int | None = None, **changes) -> dict:
    row = {"key": key, "dataset": "digits", "noise": "gaussian", "level": 0.2, "train_level": "0.2",
           "denoiser": "median", "denoiser_params": params or {}, "status": status, "run_id": run_id}  # fmt: skip
    if status == "ok":
        row |= {"psnr": 25.0, "ssim": 0.9}
    else:
        row |= {"error": "ValueError: bad"}
    return row | changes


@pytest.mark.parametrize("content", [b"this is not a database at all, just text" * 50, b"\x00" * 100])
def test_a_file_that_is_not_a_store_is_one_line_naming_it(tmp_path, content, capsys):
    path = tmp_path / "run" / "store.sqlite"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(
        ValueError, match=r"^run store .*store\.sqlite cannot be used \(.*\); move it away or pass another --out$"
    ):
        Store(path)
    assert path.read_bytes() == content  # left as it was
    assert main(["report", str(path.parent)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run store {path}") and err.count("\n") == 1


def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE cells (key TEXT PRIMARY KEY, colour TEXT)")
    db.close()
    with pytest.raises(ValueError, match="its cells table lacks dataset, noise"):
        Store(path)


def test_cells_carry_their_run_and_join_it(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        first = store.start_run(grid="g", spec={}, argv=["run", "--grid", "g"], device="cpu", versions={})
        store.put_cell(_cell("a", run_id=first))
        store.finish_run(first, ok=1, failed=0)
        second = store.start_run(grid="g", spec={}, argv=["run"], device="cpu", versions={})
        store.put_cell(_cell("b", run_id=second, level=0.3))
        store.put_cell(_cell("c", level=0.4))  # written without a run
        with pytest.raises(ValueError, match=r"run_id 99 is not a run of .*; expected an id from start_run"):
            store.put_cell(_cell("d", run_id=99))
        assert dict(zip(store.cells()["key"], store.cells()["run_id"])) == {"a": first, "b": second, "c": pd.NA}
        joined = store.run_cells().set_index("key")
    assert joined.loc["a", "run_argv"] == ["run", "--grid", "g"] and joined.loc["b", "run_argv"] == ["run"]
    assert pd.notna(joined.loc["a", "run_finished"]) and pd.isna(joined.loc["b", "run_finished"])
    assert pd.isna(joined.loc["c", "run_grid"]) and "d" not in joined.index
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM cells WHERE run_id IS NOT NULL").fetchone()[0] == 2


def test_a_failed_cell_leaves_the_leaderboard_once_its_settings_ran_ok(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        store.put_cell(_cell("old-failed", status="failed", n_test=100))
        store.put_cell(_cell("other-params-failed", status="failed", params={"size": 5}))
        store.put_cell(_cell("other-level-failed", status="failed", level=0.5))
        assert set(store.cells()["key"]) == {"old-failed", "other-params-failed", "other-level-failed"}
        store.put_cell(_cell("new-ok", n_test=50))  # the same settings, another key (fewer test images)
        assert set(store.cells()["key"]) == {"new-ok", "other-params-failed", "other-level-failed"}
        assert "old-failed" in set(store.cells(superseded=True)["key"])  # kept in the store
        write_outputs(store, tmp_path)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board.status) == ["failed", "failed", "ok"] and "ValueError: bad" in set(board.error)
    assert (board[board.status == "ok"].n_test == 50).all()


def test_run_on_a_damaged_store_exits_2_with_one_line(tmp_path, capsys):
    store = tmp_path / "smoke" / "store.sqlite"
    store.parent.mkdir()
    store.write_text("garbage")
    args = ["run", "--grid", "smoke", "--denoisers", "identity", "--noises", "gaussian", "--classifiers", "none"]
    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: run store {store} cannot be used (file is not a database); move it away or pass another --out\n"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["smoke", "store.sqlite"]
