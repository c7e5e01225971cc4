"""report.html from a fabricated store: tables, best marks, images, escaping, no network, size."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.execution.rows import CellRow, ClassifierRow
from bench.execution.store import Store
from bench.report import image_grids, render_report, seed_tables, write_outputs
from bench.report.outputs import leaderboard

EVIL = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (denoiser, level, train level, psnr, ssim, accuracy); None psnr = a failed cell.
CELLS = [
    ("median", 0.1, "0.1", 24.0, 0.90, 0.95),
    ("median", 0.3, "0.3", 19.0, 0.80, 0.70),
    ("dncnn", 0.1, "0.1", 27.0, 0.85, 0.97),
    ("dncnn", 0.3, "0.3", 23.0, 0.82, 0.90),
    ("dncnn", 0.3, "0.1", 18.0, 0.60, 0.60),  # trained at 0.1, tested at 0.3: heatmap only
    (EVIL, 0.1, "0.1", 20.0, 0.70, 0.91),
    (EVIL, 0.3, "0.3", None, None, None),
]


def _row(denoiser: str, level: float, train: str, psnr: float | None, ssim: float | None) -> dict:
    row = {
        "key": f"{denoiser}-{level}-{train}",
        "dataset": "digits",
        "noise": "gaussian",
        "level": level,
        "train_level": train,
        "denoiser": denoiser,
        "device": "cpu",
        "base_seed": 0,
        "denoiser_params": {},
    }
    if psnr is None:
        return row | {"status": "failed", "error": "RuntimeError: out of <memory>"}
    history = (
        [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)] if denoiser == "dncnn" else None
    )
    return row | {
        "status": "ok",
        "psnr": psnr,
        "psnr_ci_low": psnr - 0.5,
        "psnr_ci_high": psnr + 0.5,
        "ssim": ssim,
        "ssim_ci_low": ssim - 0.01,
        "ssim_ci_high": ssim + 0.01,
        "psnr_noisy": 15.0,
        "ssim_noisy": 0.5,
        "images_per_second": 100.0 * len(denoiser),
        "params": 1000 if denoiser == "dncnn" else 0,
        "history": history,
    }


def build_store(run_dir: Path, cells=CELLS, *, classifiers: bool = True) -> Path:
    """A run folder with a store of fabricated cells, samples and classifier rows."""
    rng = np.random.default_rng(0)
    with Store(run_dir / "store.sqlite") as store:
        run_id = store.start_run(
            grid="fabricated",
            spec={"seed": 7, "description": "made up"},
            argv=[],
            device="cpu",
            versions={"torch": "9.9"},
        )
        for denoiser, level, train, psnr, ssim, accuracy in cells:
            row = _row(denoiser, level, train, psnr, ssim)
            samples = (
                None
                if psnr is None
                else {k: rng.integers(0, 256, (3, 1, 8, 8), dtype=np.uint8) for k in ("clean", "noisy", "denoised")}
            )
            confusion = [[5, 1, 0], [0, 6, 0], [1, 0, 7]]
            scores = [
                {
                    "classifier": "cnn",
                    "accuracy_clean": 0.99,
                    "accuracy_noisy": 0.5,
                    "accuracy_denoised": accuracy,
                    "gap_recovered": 0.5,
                    "confusion": confusion,
                }
            ]
            if denoiser == "median" and level == 0.1:  # a classifier that failed: shown, never ranked
                scores.append({"classifier": "svm", "error": "ValueError: did not converge"})
            scores = [ClassifierRow(**score) for score in scores] if classifiers and psnr is not None else []
            store.put_cell(CellRow(**row), scores, samples)
        store.finish_run(run_id, ok=len(cells) - 1, failed=1)
    return run_dir


class _Node:
    def __init__(self, tag: str, attrs: dict, parent: _Node | None) -> None:
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def find_all(self, tag: str, cls: str | None = None) -> list[_Node]:
        found = []
        for child in self.children:
            if isinstance(child, _Node):
                if child.tag == tag and (cls is None or cls in child.attrs.get("class", "").split()):
                    found.append(child)
                found += child.find_all(tag, cls)
        return found

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children).strip()


class _Tree(HTMLParser):
    """A small DOM from the stdlib parser (character references come back unescaped)."""

    VOID = {"img", "br", "meta", "link", "input", "hr"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = _Node("root", {}, None)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        node = _Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in self.VOID:
            self.node = node

    def handle_endtag(self, tag):
        node = self.node
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def _table(root: _Node, caption: str) -> _Node:
    return next(
        t for t in root.find_all("table") if t.find_all("caption") and t.find_all("caption")[0].text() == caption
    )


def _body_rows(table: _Node) -> list[_Node]:
    return table.find_all("tbody")[0].find_all("tr")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[str, _Node]:
    run_dir = build_store(tmp_path_factory.mktemp("run"))
    (run_dir / "seeds").mkdir()
    pd.DataFrame(
        {
            "seed": ["seed001"],
            "experiment": ["mnist sigma 0.3"],
            "metric": ["psnr"],
            "published": [24.1],
            "ours": [23.0],
            "note": ["n=500"],
        }
    ).to_csv(run_dir / "seeds" / "seed001.csv", index=False)
    with Store(run_dir / "store.sqlite") as store:
        html = render_report(store, run_dir)
    return html, _Tree(html).root


def test_leaderboard_rows_columns_and_best_marks(page):
    _, root = page
    table = _table(root, "digits · gaussian")
    assert [th.text() for th in table.find_all("thead")[0].find_all("th")] == ["denoiser", "level 0.1", "level 0.3"]
    rows = {row.find_all("th")[0].text(): row.find_all("td") for row in _body_rows(table)}
    assert set(rows) == {"median", "dncnn", EVIL}
    best = {
        level: {
            (name, span.attrs["class"].split()[1])
            for name, tds in rows.items()
            for span in tds[level].find_all("span", "best")
        }
        for level in (0, 1)
    }
    assert best[0] == {("dncnn", "m-psnr"), ("median", "m-ssim"), ("dncnn", "m-acc0")}
    assert best[1] == {("dncnn", "m-psnr"), ("dncnn", "m-ssim"), ("dncnn", "m-acc0")}
    assert rows["dncnn"][1].attrs["data-psnr"] == "23.0"  # the diagonal cell, not the one trained at 0.1
    assert rows[EVIL][1].text() == "failed" and rows[EVIL][1].attrs["title"] == "RuntimeError: out of <memory>"
    assert "27.00 [26.50, 27.50]" in rows["dncnn"][0].text()
    switch = [b.text() for b in root.find_all("button")]
    assert switch == ["PSNR", "SSIM", "accuracy: cnn"]


def test_summary_classifiers_and_seed_tables(page):
    html, root = page
    assert "1 failed" in html and "seed001" in html and "torch 9.9" in html
    failures = root.find_all("table", "failures")[0]
    assert [td.text() for td in _body_rows(failures)[0].find_all("td")][-2:] == [EVIL, "RuntimeError: out of <memory>"]
    classifiers = root.find_all("table", "classifiers")[0]
    rows = [[td.text() for td in row.find_all("td")] for row in _body_rows(classifiers)]
    assert len(rows) == 7  # one per ok cell, plus the failed svm row
    assert [r[-1] for r in rows if r[5] == "svm"] == ["ValueError: did not converge"]
    seeds = root.find_all("table", "seeds")[0]
    header = [th.text() for th in seeds.find_all("th")]
    assert header[-1] == "ours − published" and {"published", "ours", "note"} <= set(header)
    assert _body_rows(seeds)[0].find_all("td")[-1].text() == "-1.1"
    captions = {c.text() for c in root.find_all("figcaption")}
    for title in (
        "PSNR against noise level",
        "Cost vs quality",
        "Learning curves",
        "Confusion",
        "training level x test level: gaussian",
        "Accuracy on denoised",
    ):
        assert any(title in c for c in captions), title


def test_images_are_png_data_uris_and_nothing_is_fetched(page):
    html, root = page
    images = root.find_all("img")
    assert len(images) >= 3 * 2 + 5  # image strips (clean, noisy, entries) and plots
    for img in images:
        prefix, _, payload = img.attrs["src"].partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(payload)[:8] == PNG_MAGIC
    references = [
        v
        for node in root.find_all("link") + root.find_all("a") + root.find_all("script") + images
        for k, v in node.attrs.items()
        if k in ("src", "href")
    ]
    assert references and not [r for r in references if r.startswith(("http:", "https:", "//"))]
    assert "http://" not in html and "https://" not in html
    assert len(html.encode()) < 1_000_000


def test_names_are_escaped(page):
    html, root = page
    scripts = root.find_all("script")
    assert len(scripts) == 1 and "alert" not in scripts[0].text()  # only the page's own script
    assert EVIL not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_and_failed_only_store(tmp_path):
    run_dir = build_store(tmp_path, [(EVIL, 0.1, "0.1", None, None, None)], classifiers=False)
    with Store(run_dir / "store.sqlite") as store:
        root = _Tree(render_report(store, run_dir)).root
    (board,) = root.find_all("table", "lb")
    assert [td.text() for td in _body_rows(board)[0].find_all("td")] == ["failed"]
    assert not root.find_all("table", "classifiers") and not root.find_all("img")
    assert [b.text() for b in root.find_all("button")] == ["PSNR", "SSIM"]
    assert "0 ok, 1 failed" in root.text()
    with Store(tmp_path / "blank" / "store.sqlite") as store:  # no runs, no cells at all
        blank = render_report(store)
    assert "0 ok, 0 failed" in blank and "No cells finished" in blank and "No finished cells to plot" in blank


def test_write_outputs_and_cli_report_write_the_page(tmp_path, capsys):
    run_dir = build_store(tmp_path / "run")
    with Store(run_dir / "store.sqlite") as store:
        assert run_dir / "report.html" in write_outputs(store, run_dir)
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert str(run_dir / "report.html") in capsys.readouterr().out
    assert (run_dir / "report.html").read_text().startswith("<!doctype html>")
    assert not list(run_dir.glob("*.tmp"))


def test_seed_tables_take_any_frames():
    frames = [
        pd.DataFrame(
            {"seed": ["s1", "s1"], "metric": ["psnr", "acc"], "published": [30.0, "n/a"], "ours": [29.0, 0.9]}
        ),
        pd.DataFrame({"published": ["text"], "ours": ["other"]}),
    ]
    first, second = seed_tables(frames)
    assert first["title"] == "s1" and first["columns"][-1] == "ours − published"
    assert [r[-1]["text"] for r in first["rows"]] == ["-1", "–"]
    assert second["title"] == "table 2" and second["columns"] == ["published", "ours"]
    assert seed_tables([]) == []


def test_image_grids_stop_at_the_byte_budget(tmp_path):
    run_dir = build_store(tmp_path)
    with Store(run_dir / "store.sqlite") as store:
        cells = store.cells()
        whole, capped = image_grids(store, cells), image_grids(store, cells, budget=1)
    assert [len(g["strips"]) for g in whole["grids"]] == [5, 4] and whole[
        "left_out"
    ] == 0  # the failed cell has no images
    assert [g["level"] for g in capped["grids"]] == ["0.1"] and capped["left_out"] == 1
    assert [s["name"] for s in whole["grids"][0]["strips"]] == ["clean", "noisy", EVIL, "dncnn", "median"]


def test_the_page_gives_image_strips_only_what_its_budget_leaves(tmp_path, monkeypatch):
    from bench.report import page

    run_dir = build_store(tmp_path)
    with Store(run_dir / "store.sqlite") as store:
        whole = page.render_report(store)
        monkeypatch.setattr(page, "PAGE_BUDGET", 1000)  # less than the rest of the page: no strips
        small = page.render_report(store)
    assert whole.count("data:image/png") - small.count("data:image/png") == 9  # the 5 + 4 strips
    assert "2 image grids left out" in small and "left out" not in whole


def _runs_store(path: Path, runs: list[tuple[float, float | None, list[float]]]) -> Store:
    """A store whose runs start at the given times, end (or not: killed), and wrote cells at the times listed."""
    import sqlite3

    store = Store(path)
    for index, (started, finished, cells) in enumerate(runs):
        run_id = store.start_run(grid="g", spec={}, argv=[], device="cpu", versions={})
        for n, at in enumerate(cells):
            row = _row("median", 0.1 * (n + 1), f"{0.1 * (n + 1):g}", 20.0, 0.5)
            store.put_cell(CellRow(**row | {"key": f"{index}-{n}", "run_id": run_id}))
            store._db.execute("UPDATE cells SET finished = ? WHERE key = ?", (at, f"{index}-{n}"))
        store._db.execute("UPDATE runs SET started = ?, finished = ? WHERE run_id = ?", (started, finished, run_id))
    assert isinstance(store._db, sqlite3.Connection)
    return store


def test_run_time_counts_killed_runs_up_to_their_last_cell(tmp_path):
    from bench.report.page import run_time

    cases = {
        # (started, finished or None for killed, cell finish times) per run -> (run time, note)
        "one": ([(0.0, 30.0, [10.0])], ("30.0 s", "")),
        "resumed": ([(0.0, 30.0, [10.0]), (100.0, 110.0, [105.0])], ("40.0 s", "over 2 runs (resumed)")),
        "killed": ([(0.0, None, [20.0]), (100.0, None, []), (200.0, 260.0, [250.0])], ("1 min 20 s", "over 3 runs (2 killed)")),
        "latest open": ([(0.0, 30.0, [10.0]), (100.0, None, [150.0])], ("1 min 20 s", "over 2 runs (the latest not finished)")),
        "single open": ([(0.0, None, [45.0])], ("45.0 s", "(the latest not finished)")),
    }  # fmt: skip
    for name, (runs, expected) in cases.items():
        with _runs_store(tmp_path / f"{name}.sqlite", runs) as store:
            assert run_time(store.cells(), store.runs()) == expected, name
    with _runs_store(tmp_path / "page.sqlite", cases["killed"][0]) as store:
        html = render_report(store)
    assert '1 min 20 s <span class="muted">over 3 runs (2 killed)</span>' in html


def _level_cells(levels: list[float], names: list[str]) -> pd.DataFrame:
    rows = [
        _row(name, level, f"{level:g}", 20.0 + i + level, 0.5) | {"key": f"{name}-{level}", "denoiser_params": {}}
        for i, name in enumerate(names)
        for level in levels
    ]
    return pd.DataFrame(rows).assign(history=None)


def test_a_single_noise_level_is_drawn_as_bars_not_a_column_of_dots():
    from bench.report.plots import metric_vs_level_figure

    names = ["median", "dncnn", "unet"]
    one = metric_vs_level_figure(_level_cells([0.2], names), "digits").axes[0]
    assert len(one.patches) == 3 and not one.get_lines()
    assert [t.get_text() for t in one.get_yticklabels()] == ["median", "dncnn", "unet"]  # best at the top
    several = metric_vs_level_figure(_level_cells([0.1, 0.3], names), "digits").axes[0]
    assert len(several.get_lines()) == 3 and not several.patches


def test_cost_vs_quality_names_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bench.report.plots import cost_vs_quality_figure

    names = ["median", "gaussian_blur", "tv_chambolle", "wavelet", "nlm", "identity", "bm3d", "dncnn"]
    cells = _level_cells([0.2], names)
    cells["psnr"] = 20.0 + 0.01 * np.arange(len(names))  # a cluster: every name wants the same spot
    cells["images_per_second"] = 1000.0 * (1 + 0.01 * np.arange(len(names)))
    fig = cost_vs_quality_figure(cells, "digits")
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.axes[0].texts if t.get_text() in names]
    assert sorted(t.get_text() for t in texts) == sorted(names)
    boxes = [t.get_window_extent(renderer) for t in texts]
    overlaps = [
        (a, b) for i, a in enumerate(texts) for j, b in enumerate(texts) if i < j and boxes[i].overlaps(boxes[j])
    ]
    assert not overlaps, [(a.get_text(), b.get_text()) for a, b in overlaps]


def test_every_model_gets_its_own_learning_curve_panel():
    from bench.report.plots import learning_curves_figure

    names = [f"model{i:02d}" for i in range(11)]  # more than one figure's usual panel cap
    cells = _level_cells([0.1, 0.3], names)
    cells["history"] = [[{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e} for e in (1, 2, 3)]] * len(cells)
    staged = [
        {"epoch": 1, "val_loss": 9.0, "stage": "pretrain layer 1"},
        {"epoch": 1, "val_loss": 0.5, "train_loss": 0.6},
    ]
    cells.loc[cells["denoiser"] == "model00", "history"] = pd.Series([staged] * 2, index=cells.index[:2])
    fig = learning_curves_figure(cells, "digits")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == names
    drawn = [[list(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata())] for ax in panels]
    assert all(len(lines) == 4 for lines in drawn[1:])  # two fits (levels), validation and training each
    assert drawn[0] == [[0.5], [0.6], [0.5], [0.6]]  # pretraining stages left out


def test_a_winner_the_paired_test_cannot_tell_from_the_runner_up_is_marked_not_distinguishable(tmp_path):
    rng = np.random.default_rng(1)
    base, ssim = rng.normal(24.0, 2.0, 200).astype(np.float32), rng.uniform(0.5, 0.9, 200).astype(np.float32)
    # 0.1: dncnn 0.5 dB above the median on every image; 0.3: the median's values on other images
    per_level = {0.1: {"median": base, "dncnn": base + 0.5}, 0.3: {"median": base, "dncnn": rng.permutation(base)}}
    with Store(tmp_path / "store.sqlite") as store:
        for level, values in per_level.items():
            for name, psnr in values.items():
                row = _row(name, level, str(level), float(psnr.mean()), float(ssim.mean()))
                store.put_cell(CellRow(**row | {"n_test": 200, "seed": 5, "per_image": {"psnr": psnr, "ssim": ssim}}))
        root = _Tree(render_report(store)).root
    rows = {row.find_all("th")[0].text(): row.find_all("td") for row in _body_rows(_table(root, "digits · gaussian"))}

    def mark(name: str, level: int, metric: str) -> set[str]:
        (span,) = rows[name][level].find_all("span", f"m-{metric}")
        return set(span.attrs["class"].split()) & {"best", "tie"}

    assert (mark("dncnn", 0, "psnr"), mark("median", 0, "psnr")) == ({"best"}, set())
    assert "ahead of the runner-up by +0.5" in rows["dncnn"][0].find_all("span", "m-psnr")[0].attrs["title"]
    for name in ("dncnn", "median"):
        assert mark(name, 1, "psnr") == {"tie"} and mark(name, 0, "ssim") == {"tie"}  # equal SSIM everywhere
        assert "not distinguishable" in rows[name][1].find_all("span", "m-psnr")[0].text()
    assert not root.find_all("span", "best")[1:]  # one winner on the whole page


def test_outputs_below_the_noisy_input_or_identity_are_marked_broken(tmp_path):
    # psnr_noisy is 15 dB in every cell; identity at 0.1 scores 16 (its output clipped)
    cells = [("identity", 0.1, "0.1", 16.0), ("median", 0.1, "0.1", 15.5), ("dncnn", 0.1, "0.1", 14.0)]
    cells += [("dncnn", 0.3, "0.3", 20.0), ("median", 0.3, "0.3", 17.0)]
    with Store(tmp_path / "store.sqlite") as store:
        for name, level, train, psnr in cells:
            store.put_cell(CellRow(**_row(name, level, train, psnr, 0.8) | {"below_noisy": psnr < 15.0}))
        board = leaderboard(store.cells(), {}).set_index(["denoiser", "level"])
        root = _Tree(render_report(store)).root
    # identity is not checked against itself; at 0.3 there is no identity cell to compare with
    flags = {
        column: {key: None if pd.isna(value) else bool(value) for key, value in board[column].items()}
        for column in ("below_identity", "below_noisy")
    }
    assert flags["below_identity"] == {
        ("identity", 0.1): None,
        ("median", 0.1): True,
        ("dncnn", 0.1): True,
        ("dncnn", 0.3): None,
        ("median", 0.3): None,
    }
    assert [key for key, below in flags["below_noisy"].items() if below] == [("dncnn", 0.1)]
    rows = {row.find_all("th")[0].text(): row.find_all("td") for row in _body_rows(_table(root, "digits · gaussian"))}
    broken = {name: [bool(td.find_all("span", "broken")) for td in tds] for name, tds in rows.items()}
    assert broken == {"identity": [False, False], "median": [True, False], "dncnn": [True, False]}
    (dncnn_flag,) = rows["dncnn"][0].find_all("span", "broken")
    why = dncnn_flag.attrs["title"]
    assert "below its noisy input's 15.00 dB" in why and "below identity's" in why
    (median_flag,) = rows["median"][0].find_all("span", "broken")
    assert "noisy input" not in median_flag.attrs["title"]


def test_fits_whose_validation_loss_still_fell_at_the_end_are_marked_not_converged(tmp_path):
    flat = [{"epoch": e, "train_loss": 1.0, "val_loss": v} for e, v in enumerate([1.0, 0.5, 0.45, 0.4, 0.399], 1)]
    falling = [{"epoch": e, "train_loss": 1.0, "val_loss": v} for e, v in enumerate([1.0, 0.5, 0.45, 0.4, 0.38], 1)]
    with Store(tmp_path / "store.sqlite") as store:
        for name, history in (("dncnn", falling), ("unet", flat), ("median", None)):
            store.put_cell(CellRow(**_row(name, 0.1, "0.1", 20.0, 0.8) | {"history": history}))
        board = leaderboard(store.cells(), {}).set_index("denoiser")
        root = _Tree(render_report(store)).root
    assert {name: None if pd.isna(v) else bool(v) for name, v in board["converged"].items()} == {
        "dncnn": False,
        "unet": True,
        "median": None,
    }
    rows = {row.find_all("th")[0].text(): row.find_all("td") for row in _body_rows(_table(root, "digits · gaussian"))}
    marked = {name: bool(tds[0].find_all("span", "unconverged")) for name, tds in rows.items()}
    assert marked == {"dncnn": True, "unet": False, "median": False}
