"""Grids whose networks train at fixed levels and are tested at every level (``train_levels = [...]``)."""

import pytest

from bench.execution.fits import fit_key
from bench.grids import Grid, load_grid_file


def _grid(**fields) -> Grid:
    base = {"name": "t", "datasets": ["mnist"], "noises": {"masking": [0.2, 0.5, 0.7]}, "denoisers": ["median"]}
    return Grid.build(**{**base, **fields})


def test_listed_training_levels_test_each_fit_at_every_level():
    grid = _grid(train_levels=[0.2, 0.7])
    cells = grid.cells()
    assert [(c.level, c.train_level) for c in cells] == [(t, f) for t in (0.2, 0.5, 0.7) for f in (0.2, 0.7)]
    assert len({fit_key(c.fit_spec) for c in cells}) == 2  # one fit per training level
    assert _grid(train_levels=[1, 0.5]).train_levels == (1.0, 0.5) and grid.to_dict()["train_levels"] == (0.2, 0.7)
    # A level a grid also tests at gives the same cell as the default mode there.
    same = {c.key for c in _grid().cells()}
    assert {c.key for c in cells if c.level == c.train_level} <= same


def test_training_levels_from_a_toml_file(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        'datasets = ["mnist"]\ndenoisers = ["median"]\ntrain_levels = [0.2]\n[noises]\nmasking = [0.2, 0.7]\n'
    )
    assert [(c.level, c.train_level) for c in load_grid_file(path).cells()] == [(0.2, 0.2), (0.7, 0.2)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"train_levels \[\] must be a non-empty list of numbers"),
        (["low"], r"train_levels \['low'\] must be a non-empty list of numbers"),
        ([1.5], "train_levels: noise level 1.5 for 'masking' is out of range"),
        (
            "sometimes",
            "train_levels 'sometimes' is unknown; expected one of: same, blind, matrix, auto or a list of levels",
        ),
    ],
)
def test_bad_training_levels_raise_one_line_errors(value, message):
    with pytest.raises(ValueError, match=message):
        _grid(train_levels=value)
