"""Published figures as data, joined to our rows for the same method, set and sigma."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from bench.cli import main
from bench.execution.rows import CellRow
from bench.execution.store import Store
from bench.report import write_outputs
from bench.report.excerpt import START
from bench.report.published import PUBLISHED_END, PUBLISHED_START, beside, published_excerpt, published_table


def _row(denoiser: str, train_level: str, level: float = 25.0, **changes) -> dict:
    row = {
        "dataset": "bsd68",
        "noise": "awgn",
        "level": level,
        "train_level": train_level,
        "denoiser": denoiser,
        "psnr": 28.6,
        "ssim": 0.80,
        "status": "ok",
    }
    return row | changes


def test_every_published_figure_names_its_source():
    table = published_table()
    assert (table["source"].str.len() > 10).all() and table["metric"].isin(["psnr", "ssim"]).all()
    table = table[table["dataset"] == "bsd68"]
    bm3d = table[(table["method"] == "BM3D") & (table["metric"] == "psnr")].set_index("level")["value"]
    assert bm3d.to_dict() == {15.0: 31.07, 25.0: 28.57, 50.0: 25.62}
    dncnn = table[table["method"].str.startswith("DnCNN") & (table["level"] == 25)].set_index("method")["value"]
    assert dncnn.to_dict() == {"DnCNN-S": 29.23, "DnCNN-B": 29.16}


def test_set12_and_cbsd68_figures_stand_beside_our_rows_with_their_sources():
    board = pd.DataFrame(
        [
            _row("bm3d", "15.0", level=15.0, dataset="set12", psnr=32.0),
            _row("dncnn", "50.0", level=50.0, dataset="set12", psnr=27.0),
            _row("bm3d_torch", "25.0", dataset="cbsd68", psnr=30.5),
            _row("median", "25.0", dataset="cbsd68"),
        ]
    )
    joined = beside(board)
    assert joined["published_method"].fillna("").tolist() == ["BM3D", "DnCNN-S", "CBM3D", ""]
    assert joined["published_psnr"].tolist()[:3] == [32.37, 27.18, 30.71]
    assert joined.loc[2, "psnr_vs_published"] == pytest.approx(30.5 - 30.71)
    assert "cszn/DPIR/blob/" in joined.loc[0, "published_source"]
    assert "cszn/FFDNet/blob/" in joined.loc[2, "published_source"]


def test_a_malformed_table_is_refused(tmp_path):
    path = tmp_path / "published.csv"
    path.write_text("dataset,noise,level,method,denoisers,trained,metric,value,source\nbsd68,awgn,25,X,,,psnr,1.0,\n")
    with pytest.raises(ValueError, match=r"row 2 needs metric psnr or ssim and a source"):
        published_table(path)


def test_rows_meet_the_figure_of_their_method_set_sigma_and_training():
    board = pd.DataFrame(
        [
            _row("bm3d", "25.0"),
            _row("dncnn", "25.0", psnr=29.0),
            _row("dncnn", "blind", psnr=29.1),
            _row("dncnn", "15.0"),  # trained at another level: no published counterpart
            _row("median", "25.0"),
            _row("bm3d", "25.0", dataset="kodak24"),  # crops: no published figure is for them
            _row("bm3d", "25.0", status="failed"),
        ]
    )
    joined = beside(board)
    assert joined["published_method"].fillna("").tolist() == ["BM3D", "DnCNN-S", "DnCNN-B", "", "", "", ""]
    assert joined.loc[0, "published_psnr"] == 28.57 and joined.loc[0, "psnr_vs_published"] == pytest.approx(0.03)
    assert joined.loc[0, "published_ssim"] == 0.8017 and joined.loc[0, "ssim_vs_published"] == pytest.approx(-0.0017)
    assert joined.loc[1, "psnr_vs_published"] == pytest.approx(29.0 - 29.23) and pd.isna(
        joined.loc[1, "published_ssim"]
    )
    assert joined.loc[2, "published_psnr"] == 29.16 and "cszn/DnCNN" in joined.loc[2, "published_source"]
    other = pd.DataFrame([_row("bm3d", "0.1", level=0.1, dataset="mnist", noise="gaussian")])
    assert list(beside(other).columns) == list(other.columns)  # other runs keep their shape


def _store_with_bsd68(run_dir, more=()):
    with Store(run_dir / "store.sqlite") as store:
        run = store.start_run(grid="natural", spec={}, argv=["run"], device="cpu", versions={})
        for key, denoiser, psnr in (("a", "bm3d", 28.61), ("b", "median", 25.9), *more):
            store.put_cell(
                CellRow(
                    **{
                        "key": key,
                        "dataset": "bsd68",
                        "noise": "awgn",
                        "level": 25.0,
                        "train_level": "25.0",
                        "denoiser": denoiser,
                        "denoiser_params": {},
                        "status": "ok",
                        "run_id": run,
                        "psnr": psnr,
                        "psnr_uint8": psnr - 0.01,
                        "ssim": 0.79,
                        "n_test": 68,
                        "n_train": 400,
                    }
                )
            )
        store.finish_run(run, ok=2 + len(more), failed=0)
        write_outputs(store, run_dir)


def test_the_readme_block_says_how_our_networks_training_differs_from_the_published_ones(tmp_path):
    _store_with_bsd68(tmp_path / "natural", more=(("c", "dncnn", 28.9),))
    excerpt = published_excerpt(tmp_path / "natural")
    assert "| dncnn (25.0) |" in excerpt and "a blind fit draws sigma from 5 to 55 (DnCNN-B: 0 to 55)" in excerpt
    assert "a blind fit draws sigma from 5 to 55" in (tmp_path / "natural" / "report.html").read_text()
    _store_with_bsd68(tmp_path / "classical")  # no network row: nothing to say
    assert "Our networks" not in published_excerpt(tmp_path / "classical")


def test_the_leaderboard_page_and_readme_show_the_published_figure_beside_ours(tmp_path):
    run_dir = tmp_path / "natural"
    _store_with_bsd68(run_dir)
    board = pd.read_csv(run_dir / "leaderboard.csv")
    bm3d = board[board["denoiser"] == "bm3d"].iloc[0]
    assert bm3d["published_psnr"] == 28.57 and bm3d["psnr_vs_published"] == pytest.approx(0.04)
    assert bm3d["psnr_uint8"] == pytest.approx(28.60)
    page = (run_dir / "report.html").read_text()
    assert "The literature&#39;s figures beside ours" in page and "28.57" in page
    excerpt = published_excerpt(run_dir)
    assert (
        "| BSD68 | 25 | BM3D | bm3d (25.0) | 68 | 28.57 | 28.61 (28.60) | +0.04 | 0.8017 | 0.7900 | -0.0117 | [1], [2] |"
        in excerpt
    )
    assert "[2] github.com/cszn/DnCNN/blob/" in excerpt
    readme = tmp_path / "README.md"
    readme.write_text(
        f"intro\n{START}\nold leaderboard\n<!-- leaderboard-excerpt: end -->\n"
        f"{PUBLISHED_START}\nold\n{PUBLISHED_END}\ntail\n"
    )
    assert main(["report", str(run_dir), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old leaderboard" in text and "\nold\n" not in text and "28.61 (28.60)" in text and text.endswith("tail\n")


def test_an_older_store_gains_the_uint8_column(tmp_path):
    path = tmp_path / "store.sqlite"
    with Store(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE cells DROP COLUMN psnr_uint8")
    db.close()
    with Store(path) as store:
        store.put_cell(
            CellRow(
                key="a",
                dataset="digits",
                noise="gaussian",
                level=0.2,
                train_level="0.2",
                denoiser="median",
                denoiser_params={},
                status="ok",
                psnr=20.0,
                psnr_uint8=19.9,
            )
        )
        assert store.cells()["psnr_uint8"].tolist() == [19.9]


def test_a_first_report_of_a_natural_run_writes_the_published_block_not_the_leaderboard_one(tmp_path):
    run_dir = tmp_path / "natural"
    _store_with_bsd68(run_dir)
    for name in ("leaderboard.csv", "report.html"):
        (run_dir / name).unlink()  # as a store copied from elsewhere, before any report
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\nkept\n<!-- leaderboard-excerpt: end -->\n{PUBLISHED_START}\n{PUBLISHED_END}\n")
    assert main(["report", str(run_dir), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "\nkept\n" in text and "| BSD68 | 25 | BM3D |" in text


def test_the_readme_published_block_matches_the_committed_check_run():
    from pathlib import Path

    from bench.report.excerpt import readme_block

    root = Path(__file__).resolve().parents[1]
    _, block, _ = readme_block(root / "README.md", (PUBLISHED_START, PUBLISHED_END))
    assert block == published_excerpt(root / "results" / "natural-bm3d-check"), (
        "the README's published block is stale: python -m bench report results/natural-bm3d-check --readme README.md"
    )
