"""bench.params: one reading of KEY=VALUE, one freezing of values, and cell and fit keys that
stay those of the committed reference run and of existing fit caches."""

import json
import sqlite3
from pathlib import Path

import pytest

from bench.cli import _setting
from bench.execution.fits import fit_key
from bench.grids import Cell, Grid
from bench.grids.grid import BLIND_SERVES_EVERY_LEVEL
from bench.params import frozen_params, parse_assignment, parse_member, stored_fit_params

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "store.sqlite"


@pytest.mark.parametrize("raw", ["5000", "1e-3", "true", '"x y"', "bf16", "none"])  # a member's commas split lists
def test_set_and_a_member_read_a_value_alike(raw):
    _, key, from_set = _setting(f"unet.width={raw}")
    assert ("unet", {"width": from_set}) == parse_member(f"unet:width={raw}")
    assert parse_assignment(f"width={raw}") == ("width", from_set)


def test_every_cell_of_the_reference_grid_keeps_its_stored_key():
    with sqlite3.connect(REFERENCE) as store:
        spec = json.loads(store.execute("select spec from runs").fetchone()[0])
        stored = {
            key: (noise, train) for key, noise, train in store.execute("select key, noise, train_level from cells")
        }
    store.close()
    cells = {cell.key: cell for cell in Grid.build(**spec).cells()}
    # The one change since the committed run: train_levels "auto" now gives networks a fit per
    # level for every kind whose blind fits were not measured to serve every level, so those
    # kinds' blind cells give way to per-level ones. Every other cell keeps its stored key.
    gone = {key: row for key, row in stored.items() if key not in cells}
    new = [cell for key, cell in cells.items() if key not in stored]
    assert {train for _, train in gone.values()} == {"blind"}
    assert {noise for noise, _ in gone.values()} == {"gaussian", "masking", "impulse", "poisson", "speckle"}
    assert all(cell.train_level == cell.level and cell.noise not in BLIND_SERVES_EVERY_LEVEL for cell in new)
    assert len(stored) - len(gone) == len(cells) - len(new) == 414


def _cell(denoiser, params):
    return Cell(
        "mnist",
        "gaussian",
        0.1,
        0.1,
        denoiser,
        params=frozen_params(params),
        classifiers=(("cnn_small", (("epochs", 3),)),),
    )


@pytest.mark.parametrize(
    ("denoiser", "params", "cell_key", "fit"),
    [
        (
            "median",
            {},
            "9c3aac644d6d3b4ae6f5c114f6f6a72b9a774e6f6a458d274baacf5360074339",
            "243cd4e89438b8c5ef7e7ce7ebe722da",
        ),
        (
            "average_of",
            {"members": ["unet:width=48,precision=bf16", "dncnn"]},
            "bb6bfa78482c4f813db7af893620d82996cb944e981620b455aa2efc833298bd",
            "191421ec8a700aac6982ac2ee062eee9",
        ),
    ],
)
def test_cell_and_fit_keys_of_list_valued_parameters_stay_put(denoiser, params, cell_key, fit):
    # The keys as computed before parameters had one module: a change here orphans every
    # stored row and fit cache (a version bump changes them on purpose).
    cell = _cell(denoiser, params)
    assert (cell.key, fit_key(cell.fit_spec)) == (cell_key, fit)
    assert _cell(denoiser, {k: tuple(v) for k, v in params.items()}).key == cell_key  # tuple or list alike


def test_a_recorded_fit_and_a_model_compare_alike_whatever_the_container():
    class Owner:
        inference_params = ("eval_images",)

    recorded = json.loads(json.dumps({"members": ["a", "b"], "eval_images": 5}))
    assert stored_fit_params(Owner, recorded) == stored_fit_params(Owner, {"members": ("a", "b"), "eval_images": 9})
