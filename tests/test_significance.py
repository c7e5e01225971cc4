"""Paired tests: known shifts are found, shuffles are not, untestable pairs stay empty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.report.significance import paired_test, rank_and_test

RNG = np.random.default_rng(0)
BASE = RNG.normal(25.0, 3.0, 500)


def test_a_constant_shift_per_image_is_distinguishable():
    test = paired_test(BASE + 0.05, BASE, seed=1)
    assert test.delta == pytest.approx(0.05) and test.n == 500
    assert test.ci_low == pytest.approx(0.05) and test.ci_high == pytest.approx(0.05)
    assert test.p < 1e-10 and test.distinguishable


def test_the_same_values_shuffled_are_not_distinguishable():
    shuffled = RNG.permutation(BASE)
    test = paired_test(shuffled, BASE, seed=1)
    assert abs(test.delta) < 1e-9 and test.ci_low < 0 < test.ci_high
    assert test.p > 0.05 and not test.distinguishable


def test_identical_values_tie_with_p_one():
    test = paired_test(BASE, BASE)
    assert (test.delta, test.ci_low, test.ci_high, test.p, test.distinguishable) == (0.0, 0.0, 0.0, 1.0, False)


def test_noise_much_larger_than_the_shift_is_not_called_but_a_larger_shift_is():
    noise = RNG.normal(0.0, 2.0, 500)
    assert not paired_test(BASE + 0.01 + noise, BASE, seed=0).distinguishable
    wide = paired_test(BASE + 1.0 + noise, BASE, seed=0)
    assert wide.distinguishable and wide.ci_low < 1.0 < wide.ci_high


def test_the_interval_is_seeded():
    a, b = BASE + RNG.normal(0.2, 1.0, 500), BASE
    assert paired_test(a, b, seed=3) == paired_test(a, b, seed=3)
    assert paired_test(a, b, seed=3).ci_low != paired_test(a, b, seed=4).ci_low


def test_correctness_arrays_are_tested_like_numbers():
    right = np.ones(400, dtype=bool)
    half = np.arange(400) % 2 == 0
    assert paired_test(right, half).distinguishable and paired_test(right, half).delta == pytest.approx(0.5)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0]), ([], []), ([[1.0]], [[1.0]])])
def test_unpaired_inputs_are_refused(a, b):
    with pytest.raises(ValueError, match="paired values must be two equal, non-empty 1-D arrays"):
        paired_test(a, b)


def test_rows_scored_on_fewer_test_images_are_listed_but_not_ranked():
    # A slow entry scored on its first 20 images: its higher mean says nothing against means over 500.
    frame = _frame(
        [
            ("a", "d", "g", 0.1, "median", 25.0, 500, 7),
            ("b", "d", "g", 0.1, "dncnn", 24.0, 500, 7),
            ("s", "d", "g", 0.1, "bm3d", 27.0, 20, 7),
            ("t", "d", "g", 0.3, "bm3d", 22.0, 20, 9),
        ]
    )
    tests = rank_and_test(frame, {"a": BASE, "b": BASE - 1}, by=["dataset", "noise", "level"]).set_index(frame["key"])
    assert pd.isna(tests.loc["s", "rank"]) and tests.loc["a", "rank"] == 1 and tests.loc["b", "rank"] == 2
    assert tests.loc["a", "vs_runner_up"] == "b" and tests.loc["a", "distinguishable"]
    assert tests.loc["t", "rank"] == 1  # alone in its group, it is the full set there


def _frame(rows: list[tuple]) -> pd.DataFrame:
    columns = ["key", "dataset", "noise", "level", "denoiser", "psnr", "n_test", "seed"]
    return pd.DataFrame(rows, columns=columns)


def test_rank_and_test_tests_the_winner_against_the_runner_up_only():
    frame = _frame(
        [
            ("a", "d", "g", 0.1, "median", 25.0, 500, 7),
            ("b", "d", "g", 0.1, "dncnn", 25.05, 500, 7),
            ("c", "d", "g", 0.1, "identity", 20.0, 500, 7),
            ("e", "d", "g", 0.3, "median", 21.0, 500, 9),
            ("f", "d", "g", 0.3, "dncnn", None, 500, 9),
        ]
    )
    arrays = {"a": BASE, "b": BASE + 0.05, "c": BASE - 5, "e": BASE - 4}
    tests = rank_and_test(frame, arrays, by=["dataset", "noise", "level"]).set_index(frame["key"])
    assert tests["rank"].tolist()[:3] == [2, 1, 3] and pd.isna(tests.loc["f", "rank"])
    assert tests.loc["b", "vs_runner_up"] == "a" and tests.loc["b", "distinguishable"]
    assert tests.loc["b", "vs_runner_up_delta"] == pytest.approx(0.05)
    assert tests[["vs_runner_up_p", "distinguishable"]].drop(index="b").isna().all().all()  # winners only
    assert tests.loc["e", "rank"] == 1 and pd.isna(tests.loc["e", "vs_runner_up"])  # alone at 0.3


@pytest.mark.parametrize(
    "change, arrays",
    [
        ({"seed": 8}, {"a": BASE, "b": BASE + 1}),  # other noise
        ({}, {"b": BASE + 1}),  # an old store: no per-image values for a
    ],
)
def test_untestable_pairs_leave_the_columns_empty(change, arrays):
    frame = _frame([("a", "d", "g", 0.1, "median", 25.0, 500, 7), ("b", "d", "g", 0.1, "dncnn", 26.0, 500, 7)])
    frame.loc[0, list(change)] = list(change.values())
    tests = rank_and_test(frame, arrays, by=["dataset", "noise", "level"])
    assert tests.loc[1, "vs_runner_up"] == "a" and tests.loc[1, "rank"] == 1
    assert tests.loc[1, ["vs_runner_up_delta", "vs_runner_up_p", "distinguishable"]].isna().all()
