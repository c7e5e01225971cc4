"""A worker's workspace and its context: built in one place, scored cells as typed rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.execution.rows import CellRow, ScoredCell
from bench.execution.worker import failed_cell, score_cell, score_or_fail
from bench.execution.workspace import RunContext, preload, workspace_for
from bench.grids import Grid


def _grid(**changes) -> Grid:
    spec = {
        "name": "tiny",
        "datasets": ["digits"],
        "noises": {"gaussian": [0.2]},
        "denoisers": ["median"],
        "n_train": 32,
        "n_test": 12,
    } | changes
    return Grid.build(**spec)


def test_a_context_is_built_from_the_grid_and_equal_settings_give_one_key(tmp_path):
    grid = _grid()
    context = RunContext.for_grid(grid, tmp_path / "tiny", data_dir=tmp_path, plugins=["my_plugin"])
    assert (context.base_seed, context.n_train, context.n_test) == (grid.seed, 32, 12)
    assert context.cache_dir == str(tmp_path / "tiny" / "cache") and context.plugins == ("my_plugin",)
    same = RunContext.for_grid(grid, str(tmp_path / "tiny"), data_dir=str(tmp_path), plugins=("my_plugin",))
    assert same == context and same.key == context.key  # Path or str: one context
    elsewhere = RunContext.for_grid(
        grid, tmp_path / "other", cache_dir=tmp_path / "tiny" / "cache", data_dir=tmp_path, plugins=["my_plugin"]
    )
    assert elsewhere.key == context.key  # an explicit cache folder is all the run folder gave
    assert RunContext.for_grid(_grid(seed=1), tmp_path / "tiny").key != context.key


def test_a_process_keeps_one_workspace_per_context(tmp_path):
    context = RunContext.for_grid(_grid(), tmp_path / "tiny", device="cpu")
    calls = []
    first = workspace_for(context, setup=lambda: calls.append(1))
    assert workspace_for(context, setup=lambda: calls.append(2)) is first and calls == [1]
    assert preload(context, ["digits"]) is first and first.n_classes("digits") == 10


def test_scoring_a_cell_gives_its_typed_rows_and_a_failure_a_failed_row(tmp_path):
    grid = _grid()
    workspace = preload(RunContext.for_grid(grid, tmp_path / "tiny", device="cpu"), ["digits"])
    [cell] = grid.cells()
    scored = score_cell(workspace, cell)
    assert isinstance(scored, ScoredCell) and isinstance(scored.row, CellRow)
    row = scored.row
    assert (row.key, row.status, row.error, row.n_test, row.denoiser_params) == (cell.key, "ok", None, 12, {})
    assert row.psnr_ci_low <= row.psnr <= row.psnr_ci_high and row.psnr > row.psnr_noisy
    assert row.below_noisy is False
    assert np.isclose(row.psnr, scored.row.per_image["psnr"].mean(), atol=1e-4)
    assert set(scored.samples) == {"clean", "noisy", "denoised"} and scored.classifiers == ()
    failed = score_or_fail(workspace, replace(cell, dataset="no-such-dataset"))
    assert failed.row.status == "failed" and "no-such-dataset" in failed.row.error
    assert failed.samples is None and failed.row.psnr is None and failed.row.device == "cpu"
    assert failed_cell(cell, "why", "cpu").row.error == "why"
    assert Path(workspace.context.cache_dir).name == "cache"


def test_a_cell_that_scores_below_its_noisy_input_says_so(tmp_path):
    # a 7x7 median at very light noise blurs the digits away: worse than doing nothing
    grid = _grid(noises={"gaussian": [0.01]}, params={"median": {"size": 7}})
    workspace = preload(RunContext.for_grid(grid, tmp_path / "tiny", device="cpu"), ["digits"])
    [cell] = grid.cells()
    row = score_cell(workspace, cell).row
    assert row.psnr < row.psnr_noisy and row.below_noisy is True


def _grey_sets(root: Path) -> None:
    """Tiny stand-ins for bsd68, set12 and the train400 both borrow, under ``root``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count, size in (("bsd68", 2, 20), ("set12", 2, 24), ("train400", 4, 18)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / name / f"{i:03d}.png")


def test_test_sets_that_train_on_train400_share_one_fit_and_its_data(tmp_path):
    from bench.execution import fits
    from bench.execution.runner import plan_units
    from bench.execution.workspace import Workspace

    _grey_sets(tmp_path / "data")
    grid = _grid(datasets=["bsd68", "set12"], noises={"awgn": [15, 25]}, denoisers=["median"], n_train=3, n_test=2)
    cells = grid.cells()
    _, groups = plan_units(cells)
    assert len(groups) == 2 and all({c.dataset for c in g.cells} == {"bsd68", "set12"} for g in groups)
    workspace = Workspace(RunContext.for_grid(grid, tmp_path / "run", device="cpu", data_dir=tmp_path / "data"))
    bsd68, set12 = cells[0], next(c for c in cells if c.dataset == "set12")
    for part in (0, 1):  # noisy and clean training pairs
        assert np.array_equal(workspace.training_pairs(bsd68)[part], workspace.training_pairs(set12)[part])
    workspace.fitted(bsd68)
    workspace._fits.clear()  # a fresh process: only the disk cache is left
    workspace.fitted(set12)
    assert [p.stem for p in (tmp_path / "run" / "cache").glob("*.json")] == [fits.fit_key(bsd68.fit_spec)]


def test_a_set_with_its_own_training_split_keeps_its_fit_key():
    grid = _grid(datasets=["digits", "train400", "cbsd68", "bsd68?train=train400"], noises={"awgn": [25]})
    datasets = {c.dataset: c.fit_spec["dataset"] for c in grid.cells()}
    assert datasets == {
        "digits": "digits",
        "train400": "train400",
        "cbsd68": "cbsd68",
        "bsd68?train=train400": "bsd68?train=train400",
    }
    digits = grid.cells()[0]
    old_spec = {k: v for k, v in digits.spec().items() if k not in ("level", "n_test", "classifiers")}
    assert digits.fit_spec == old_spec  # the key a digits fit always had
