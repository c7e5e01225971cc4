"""Which differences are real: paired tests on per-image results of the same test images.

Two denoisers scored on the same images (same dataset, noise, level, number of images and
noise seed) give one difference per image. ``paired_test`` reports the mean difference, a
percentile bootstrap 95% interval of it (seeded) and the two-sided Wilcoxon signed-rank
p-value (scipy). A difference is *distinguishable* when the interval excludes 0 and p < 0.05:
both must agree, so a heavy-tailed difference whose mean and median disagree is not called.
``rank_and_test`` ranks the rows of each group by their mean and tests the winner against
the runner-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PairedTest", "paired_test", "rank_and_test", "same_images", "full_size", "TEST_COLUMNS", "ALPHA"]

ALPHA = 0.05
#: The columns ``rank_and_test`` adds (the ``vs_runner_up_*`` ones are set on winner rows only).
TEST_COLUMNS = [
    "rank",
    "vs_runner_up",
    "vs_runner_up_delta",
    "vs_runner_up_ci_low",
    "vs_runner_up_ci_high",
    "vs_runner_up_p",
    "distinguishable",
]
_CHUNK = 256  # bootstrap resamples drawn at once: bounded memory for large test sets


@dataclass(frozen=True)
class PairedTest:
    """Mean of ``a - b`` over the images, its bootstrap interval and the Wilcoxon p-value."""

    delta: float
    ci_low: float
    ci_high: float
    p: float
    n: int

    @property
    def distinguishable(self) -> bool:
        return (self.ci_low > 0 or self.ci_high < 0) and self.p < ALPHA


def paired_test(a, b, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> PairedTest:
    """Paired test of per-image values ``a`` against ``b`` (same images, same order).

    Parameters
    ----------
    a, b : array-like
        One value per image (PSNR, SSIM, or 0/1 correctness), equal lengths.
    n_boot : int
        Bootstrap resamples of the images.
    level : float
        Coverage of the interval.
    seed : int
        Seed of the resampling: the same inputs give the same interval.

    >>> t = paired_test([2.0, 3.0, 4.0, 5.0] * 5, [1.0, 2.0, 3.0, 4.0] * 5)
    >>> (t.delta, t.ci_low, t.ci_high, t.distinguishable)
    (1.0, 1.0, 1.0, True)
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.ndim != 1 or len(diff) == 0 or np.shape(a) != np.shape(b):
        raise ValueError(f"paired values must be two equal, non-empty 1-D arrays; got {np.shape(a)} and {np.shape(b)}")
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            diff[rng.integers(0, len(diff), (min(_CHUNK, n_boot - i), len(diff)))].mean(1)
            for i in range(0, n_boot, _CHUNK)
        ]
    )
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return PairedTest(float(diff.mean()), float(low), float(high), _wilcoxon(diff), len(diff))


def _wilcoxon(diff: np.ndarray) -> float:
    """Two-sided signed-rank p-value; 1.0 when every image ties (nothing to rank)."""
    from scipy.stats import wilcoxon

    if not np.any(diff != 0):
        return 1.0
    return float(wilcoxon(diff, zero_method="wilcox").pvalue)


def same_images(first: pd.Series, second: pd.Series) -> bool:
    """Whether two result rows were scored on the same test images (the per-image pairing)."""
    keys = ("dataset", "noise", "level", "n_test", "seed")
    return all(k in first and k in second and pd.notna(first[k]) and first[k] == second[k] for k in keys)


def full_size(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """Rows scored on their group's full test set: ``n_test`` equal to the group's largest.

    A slow entry may score only its first ``eval_images`` test images; its mean over those
    is not comparable with means over the whole set, so it is listed but never ranked.
    """
    n_test = pd.to_numeric(frame["n_test"], errors="coerce")
    return n_test == n_test.groupby([frame[k] for k in by], sort=False, dropna=False).transform("max")


def rank_and_test(
    frame: pd.DataFrame, arrays: Mapping[str, np.ndarray], *, by: list[str], value: str = "psnr", seed: int = 0
) -> pd.DataFrame:
    """Rank the rows of each ``by`` group by ``value`` (1 = highest) and test winner vs runner-up.

    ``frame`` needs ``key``, the ``by`` columns, ``value`` and those of ``same_images``;
    ``arrays`` maps a row's key to its per-image values of the same metric. Rows without a
    value, and rows scored on fewer test images than their group's others (``full_size``),
    get no rank. The winner row carries the paired test against the runner-up, when
    both have per-image values of the same images; otherwise its test columns stay empty.
    Returns ``TEST_COLUMNS`` on ``frame``'s index.
    """
    out = pd.DataFrame(index=frame.index, columns=TEST_COLUMNS, dtype=object)
    scored = frame[pd.to_numeric(frame[value], errors="coerce").notna()]
    scored = scored[full_size(scored, by)]
    for _, group in scored.groupby(by, sort=False, dropna=False):
        ordered = group.assign(_v=group[value].astype(float)).sort_values("_v", ascending=False, kind="stable")
        out.loc[ordered.index, "rank"] = range(1, len(ordered) + 1)
        if len(ordered) < 2:
            continue
        winner, runner_up = ordered.iloc[0], ordered.iloc[1]
        out.at[winner.name, "vs_runner_up"] = runner_up["key"]
        test = _pair(winner, runner_up, arrays, seed)
        if test is not None:
            values = (test.delta, test.ci_low, test.ci_high, test.p, test.distinguishable)
            out.loc[winner.name, TEST_COLUMNS[2:]] = values
    out["rank"] = out["rank"].astype("Int64")
    for column in TEST_COLUMNS[2:-1]:
        out[column] = out[column].astype(float)
    out["distinguishable"] = out["distinguishable"].astype("boolean")
    return out


def _pair(first: pd.Series, second: pd.Series, arrays: Mapping[str, np.ndarray], seed: int) -> PairedTest | None:
    a, b = arrays.get(first["key"]), arrays.get(second["key"])
    if a is None or b is None or len(a) != len(b) or not same_images(first, second):
        return None
    base = first.get("base_seed")
    return paired_test(a, b, seed=int(base) if pd.notna(base) else seed)
