"""The run store used directly: damaged files, run ids, superseded failures."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.execution.rows import CellRow, ClassifierRow
from bench.execution.store import Store, StoreError
from bench.report import write_outputs


def _cell(key: str, *, status: str = "ok", params: dict | None = None, run_id: int | None = None, **changes) -> CellRow:
    row = {
        "key": key,
        "dataset": "digits",
        "noise": "gaussian",
        "level": 0.2,
        "train_level": "0.2",
        "denoiser": "median",
        "denoiser_params": params or {},
        "status": status,
        "run_id": run_id,
    }
    if status == "ok":
        row |= {"psnr": 25.0, "ssim": 0.9}
    else:
        row |= {"error": "ValueError: bad"}
    return CellRow(**row | changes)


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


RNG = np.random.default_rng(0)
PSNR = RNG.normal(24.0, 2.0, 300).astype(np.float32)
SSIM = RNG.uniform(0.5, 0.9, 300).astype(np.float32)


def _scored(key: str, psnr, *, denoiser: str = "median", n_test: int = 300, **changes) -> CellRow:
    psnr = np.asarray(psnr, dtype=np.float32)
    per_image = {"psnr": psnr, "ssim": SSIM[: len(psnr)]}
    return _cell(
        key,
        denoiser=denoiser,
        n_test=n_test,
        seed=11,
        base_seed=0,
        per_image=per_image,
        psnr=float(psnr.mean()),
        **changes,
    )


def _classifier(name: str, correct) -> ClassifierRow:
    return ClassifierRow(classifier=name, accuracy_denoised=float(np.mean(correct)), correct=np.asarray(correct))


def test_per_image_results_are_kept_and_exported(tmp_path):
    right = RNG.random(300) < 0.8
    with Store(tmp_path / "store.sqlite") as store:
        store.put_cell(_scored("a", PSNR), [_classifier("cnn", right), _classifier("svm", ~right)])
        store.put_cell(_scored("b", PSNR[:100], denoiser="dncnn", n_test=100), [_classifier("cnn", right[:100])])
        store.put_cell(_cell("c", status="failed"))
        kept = store.per_image()
        assert set(kept) == {"a", "b"} and set(kept["a"]) == {"psnr", "ssim", "correct:cnn", "correct:svm"}
        assert kept["a"]["psnr"].dtype == np.float32 and np.array_equal(kept["a"]["psnr"], PSNR)
        assert kept["a"]["correct:svm"].dtype == bool and np.array_equal(kept["a"]["correct:svm"], ~right)
        assert set(store.per_image(["b"])) == {"b"}
        write_outputs(store, tmp_path)
    frame = pd.read_csv(tmp_path / "per_image.csv.gz")
    assert list(frame.columns) == [
        "dataset",
        "noise",
        "level",
        "train_level",
        "denoiser",
        "denoiser_params",
        "image",
        "psnr",
        "ssim",
        "correct_cnn",
        "correct_svm",
    ]
    a, b = frame[frame.denoiser == "median"], frame[frame.denoiser == "dncnn"]
    assert len(a) == 300 and len(b) == 100 and a.image.tolist() == list(range(300))
    np.testing.assert_allclose(a.psnr, PSNR, rtol=1e-5)
    assert a.correct_svm.tolist() == (~right).tolist() and b.correct_svm.isna().all()  # no svm result for b
    assert (a.denoiser_params == "{}").all()


def test_per_image_arrays_of_other_lengths_are_refused(tmp_path):
    with Store(tmp_path / "store.sqlite") as store:
        with pytest.raises(ValueError, match=r"per-image results of cell a differ in length .*expected one per image"):
            store.put_cell(_scored("a", PSNR), [_classifier("cnn", np.ones(299, dtype=bool))])
        assert store.cells().empty  # nothing half-written


def test_a_store_from_before_per_image_results_opens_and_reports(tmp_path):
    path = tmp_path / "store.sqlite"
    with Store(path) as store:
        store.put_cell(_cell("a", n_test=300, seed=11))
        store.put_cell(_cell("b", n_test=300, seed=11, denoiser="dncnn", psnr=26.0))
    with sqlite3.connect(path) as db:  # the schema of a store written before the table existed
        db.execute("DROP TABLE per_image")
    db.close()
    with Store(path) as store:
        assert store.per_image() == {}
        write_outputs(store, tmp_path)
    board = pd.read_csv(tmp_path / "leaderboard.csv").set_index("denoiser")
    assert board.loc["dncnn", "rank"] == 1 and board.loc["dncnn", "vs_runner_up"] == "median"
    assert board[["vs_runner_up_delta", "vs_runner_up_p", "distinguishable"]].isna().all().all()
    assert pd.read_csv(tmp_path / "per_image.csv.gz").empty


@pytest.mark.parametrize(
    "other, distinguishable",
    [
        (PSNR + 0.05, True),  # a known constant per image: real however small
        (RNG.permutation(PSNR), False),  # the same values on other images: same mean, nothing real
    ],
)
def test_leaderboard_tests_the_winner_against_the_runner_up(tmp_path, other, distinguishable):
    with Store(tmp_path / "store.sqlite") as store:
        store.put_cell(_scored("a", PSNR))
        store.put_cell(_scored("b", other, denoiser="dncnn"))
        store.put_cell(_scored("c", PSNR - 3, denoiser="identity"))
        store.put_cell(_scored("d", PSNR, level=0.3, train_level="0.3"))  # alone in its group
        write_outputs(store, tmp_path)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    group = board[board.level == 0.2].set_index("denoiser")
    winner = group["rank"].idxmin()
    assert sorted(group["rank"]) == [1, 2, 3] and group.loc["identity", "rank"] == 3
    assert group.loc[winner, "distinguishable"] == distinguishable
    assert group.loc[winner, "vs_runner_up"] == ({"median", "dncnn"} - {winner}).pop()
    low, high = group.loc[winner, ["vs_runner_up_ci_low", "vs_runner_up_ci_high"]]
    assert (low > 0) == distinguishable and low <= group.loc[winner, "vs_runner_up_delta"] <= high
    assert group.drop(index=winner)["distinguishable"].isna().all()
    alone = board[board.level == 0.3].iloc[0]
    assert alone["rank"] == 1 and pd.isna(alone["vs_runner_up"]) and pd.isna(alone["distinguishable"])


def test_a_run_keeps_per_image_results_that_average_to_its_leaderboard(tmp_path):
    from bench.execution.runner import run_grid
    from bench.grids import Grid
    from bench.registry import CLASSIFIERS

    grid = Grid.build(
        name="t",
        datasets=["digits"],
        noises={"gaussian": [0.2]},
        denoisers=["identity", "median"],
        classifiers=["svm_rbf"],
        params={"svm_rbf": CLASSIFIERS.entry("svm_rbf").test_params},
        n_train=64,
        n_test=80,
    )
    run_grid(grid, out_dir=tmp_path, log=lambda line: None)
    run = tmp_path / "t"
    board = pd.read_csv(run / "leaderboard.csv").set_index("denoiser")
    accuracy = pd.read_csv(run / "classifiers.csv").set_index("denoiser")["accuracy_denoised"]
    per_image = pd.read_csv(run / "per_image.csv.gz").groupby("denoiser")
    assert (per_image.size() == 80).all()
    np.testing.assert_allclose(per_image["psnr"].mean(), board.loc[per_image.size().index, "psnr"], rtol=1e-5)
    np.testing.assert_allclose(per_image["ssim"].mean(), board.loc[per_image.size().index, "ssim"], rtol=1e-5)
    np.testing.assert_allclose(per_image["correct_svm_rbf"].mean(), accuracy[per_image.size().index], rtol=1e-9)
    assert board.loc["median", "rank"] == 1 and board.loc["median", "distinguishable"]  # a median beats the input


def _damage_mid_file(path) -> None:
    """4 KiB of random bytes at six offsets past the schema's pages: the store still opens."""
    raw = bytearray(path.read_bytes())
    for seed, offset in enumerate(np.linspace(3 * 4096, len(raw) - 4096, 6).astype(int)):
        raw[offset : offset + 4096] = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))


def _filled(path, cells: int = 60) -> None:
    rng = np.random.default_rng(0)
    with Store(path) as store:
        for i in range(cells):
            scored = _scored(f"k{i}", rng.normal(24, 2, 100), level=i / 100)
            store.put_cell(scored, samples={"clean": rng.integers(0, 255, (8, 28, 28), dtype=np.uint8)})


def test_a_store_damaged_mid_file_is_one_line_naming_it_in_run_and_report(tmp_path, capsys):
    path = tmp_path / "smoke" / "store.sqlite"
    _filled(path)
    _damage_mid_file(path)
    Store(path).close()  # the header is whole: the damage shows only when pages are read
    assert main(["report", str(path.parent)]) == 2
    args = ["run", "--grid", "smoke", "--denoisers", "identity", "--noises", "gaussian", "--classifiers", "none"]
    assert main([*args, "--out", str(tmp_path), "--no-estimate"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith(f"error: run store {path} failed while reading")
        assert line.endswith("(database disk image is malformed); move it away or pass another --out")


def test_damaged_stored_samples_are_one_line_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "store.sqlite"
    _filled(path, cells=2)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE cells SET samples = ?, level = 0.2", (b"PK\x03\x04 not a zip file",))  # drawn on the page
    db.close()
    with Store(path) as store, pytest.raises(StoreError, match=r"reading stored sample images \(BadZipFile: "):
        store.samples("k1")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: run store {path} failed while reading stored sample images") and err.count("\n") == 1


def test_a_full_disk_fails_the_cell_write_whole_and_keeps_every_cell_before_it(tmp_path):
    path = tmp_path / "store.sqlite"
    _filled(path, cells=2)
    with Store(path) as store:
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # what a full disk gives SQLite: SQLITE_FULL
        big = {"noise": np.random.default_rng(1).integers(0, 255, (64, 64, 64), dtype=np.uint8)}
        with pytest.raises(StoreError, match=r"storing a finished cell \(database or disk is full\); free disk space"):
            store.put_cell(_scored("k2", PSNR[:100], level=0.9), samples=big)
        assert not store._db.in_transaction and store.finished_keys() == {"k0", "k1"}
    with Store(path) as store:
        assert store.finished_keys() == {"k0", "k1"} and len(store.per_image()) == 2


def test_a_run_whose_store_fills_the_disk_exits_2_with_one_line_and_resumes(tmp_path, monkeypatch, capsys):
    args = "run --grid smoke --denoisers identity,median --noises gaussian --classifiers none --no-estimate".split()
    args += ["--out", str(tmp_path)]
    real_put = Store.put_cell

    def fills_after_one(store, row, *rest, **options):
        if store.finished_keys():  # one cell in: the disk is full from now on
            pages = store._db.execute("PRAGMA page_count").fetchone()[0]
            store._db.execute(f"PRAGMA max_page_count = {pages}")
        return real_put(store, row, *rest, **options)

    with monkeypatch.context() as patch:
        patch.setattr(Store, "put_cell", fills_after_one)
        assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "storing a finished cell (database or disk is full)" in err
    with Store(tmp_path / "smoke" / "store.sqlite") as store:
        assert len(store.finished_keys()) == 1
    assert main(args) == 0
    assert "1 already done" in capsys.readouterr().out


def test_the_rows_are_the_schema_and_a_misspelled_column_fails_where_the_row_is_built(tmp_path):
    from dataclasses import fields

    from bench.execution.rows import columns, csv_columns

    with pytest.raises(TypeError, match="pnsr"):
        _cell("a", pnsr=25.0)
    with pytest.raises(TypeError, match="accuracy"):
        ClassifierRow(classifier="cnn", accuracy=0.9)
    with pytest.raises(TypeError, match="status"):
        CellRow(key="a", dataset="d", noise="n", level=0.2, train_level="0.2", denoiser="m", denoiser_params={})
    with Store(tmp_path / "run" / "store.sqlite") as store:
        store.put_cell(_cell("a", run_id=None), [_classifier("cnn", np.ones(3, dtype=bool))])
        store.put_cell(_cell("b", status="failed", level=0.3))
        write_outputs(store, tmp_path / "run")
    with sqlite3.connect(tmp_path / "run" / "store.sqlite") as db:
        types = {row[1]: row[2] for row in db.execute("PRAGMA table_info(cells)")}
        classifier_table = [row[1] for row in db.execute("PRAGMA table_info(classifier_results)")]
    db.close()
    stored = [f.name for f in fields(CellRow) if f.name != "per_image"]
    assert sorted(types) == sorted([*stored, "samples"]) and columns(CellRow) == stored
    kinds = {column: types[column] for column in ("seed", "psnr", "denoiser_params", "history")}
    assert kinds == {"seed": "INTEGER", "psnr": "REAL", "denoiser_params": "TEXT", "history": "TEXT"}
    identity = ["dataset", "noise", "level", "train_level", "denoiser"]
    assert classifier_table == [*identity, *columns(ClassifierRow), "key"]
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    assert list(board.columns[: len(csv_columns(CellRow))]) == csv_columns(CellRow)
    assert list(board.columns[len(csv_columns(CellRow)) :])[0] == "rank"
    classifiers = pd.read_csv(tmp_path / "run" / "classifiers.csv")
    assert list(classifiers.columns) == [*identity, *csv_columns(ClassifierRow), "denoiser_params"]
    assert classifiers.loc[0, "accuracy_denoised"] == 1.0 and board["status"].tolist() == ["ok", "failed"]
