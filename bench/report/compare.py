"""``python -m bench compare RUN_A RUN_B``: per cell, what changed from run A to run B.

Cells are matched on ``MATCH_COLUMNS``; cells left over that differ only in the denoiser's
parameters are paired when each run has exactly one such cell (a rerun with one parameter
changed), and the table shows both parameter sets. For each matched cell: PSNR, SSIM and each
classifier's accuracy on the denoised images, as B minus A, with a 95% interval of the
difference and a flag when it excludes 0. When both cells kept per-image results of the same
test images the interval is a paired one (:func:`bench.report.significance.paired_test`, flagged when
distinguishable); otherwise it is ``[low_B - high_A, high_B - low_A]`` from the two rows' own
intervals, which excludes 0 exactly when they do not overlap (accuracy has no row interval:
without per-image results it is not flagged). A difference smaller than half the last digit
the table prints (``NEGLIGIBLE``: 0.005 dB, 0.00005 SSIM) is never flagged: a code change that
moves every image by a rounding error is consistent, hence "significant", but not a change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.execution.store import CORRECT_PREFIX
from bench.report.outputs import open_run
from bench.report.significance import paired_test, same_images

__all__ = ["MATCH_COLUMNS", "NEGLIGIBLE", "Comparison", "compare_runs", "format_comparison", "main_compare"]

MATCH_COLUMNS = ["dataset", "noise", "level", "train_level", "denoiser", "denoiser_params"]
CELL_COLUMNS = MATCH_COLUMNS[:-1]  # a setting, whatever the denoiser's parameters
#: Differences below these are not flagged (half the last printed digit); accuracy has none.
NEGLIGIBLE = {"psnr": 0.005, "ssim": 0.00005}


@dataclass
class Comparison:
    """Matched cells (one row each, metric columns ``d_<metric>``, ``<metric>_low/high/flag``)."""

    frame: pd.DataFrame
    metrics: list[str]
    only_a: int = 0
    only_b: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    other_params: int = 0  # cells paired across a change of parameters

    def counts(self, metric: str) -> tuple[int, int]:
        """(significantly better, significantly worse) cells of ``metric``, B against A."""
        flags = self.frame[f"{metric}_flag"]
        return int((flags == "better").sum()), int((flags == "worse").sum())

    def summary(self) -> str:
        """``N cells compared (B minus A); significantly better / worse: PSNR 1 / 0, ...``."""
        parts = [f"{self.labels.get(m, m)} {b} / {w}" for m in self.metrics for b, w in [self.counts(m)]]
        unmatched = f", {self.only_a} only in A, {self.only_b} only in B" if self.only_a or self.only_b else ""
        if self.other_params:
            unmatched = f", {self.other_params} with other parameters{unmatched}"
        return f"{len(self.frame)} cells compared (B minus A{unmatched}); significantly better / worse: " + ", ".join(
            parts
        )


def _load(run_dir: str) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """A run's ok cells (one per matched setting: the latest), per-image results, accuracies."""
    with open_run(run_dir, read_only=True) as store:
        cells, classifiers = store.cells(), store.classifier_results()
        cells = cells[cells["status"] == "ok"].copy()
        cells["denoiser_params"] = cells["denoiser_params"].map(lambda p: json.dumps(p or {}, sort_keys=True))
        cells = cells.sort_values("finished").drop_duplicates(MATCH_COLUMNS, keep="last")
        per_image = store.per_image(cells["key"])
    scored = classifiers.dropna(subset=["accuracy_denoised"])
    accuracy = (
        scored.pivot_table(index="key", columns="classifier", values="accuracy_denoised", aggfunc="mean")
        if len(scored)
        else pd.DataFrame()
    )
    return cells, per_image, accuracy


def _difference(a: pd.Series, b: pd.Series, column: str, stored: str, arrays: tuple[dict, dict]) -> dict:
    """B minus A of one metric: delta, interval and flag (see the module docstring)."""
    delta = b[column] - a[column]
    first, second = arrays[0].get(a["key"], {}).get(stored), arrays[1].get(b["key"], {}).get(stored)
    if first is not None and second is not None and len(first) == len(second) and same_images(a, b):
        seed = int(a["base_seed"]) if pd.notna(a.get("base_seed")) else 0
        test = paired_test(second, first, seed=seed)
        low, high, significant = test.ci_low, test.ci_high, test.distinguishable
    elif pd.notna(a.get(f"{column}_ci_low")) and pd.notna(b.get(f"{column}_ci_low")):
        low, high = b[f"{column}_ci_low"] - a[f"{column}_ci_high"], b[f"{column}_ci_high"] - a[f"{column}_ci_low"]
        significant = low > 0 or high < 0
    else:
        low = high = np.nan
        significant = False
    significant = significant and pd.notna(delta) and abs(delta) >= NEGLIGIBLE.get(column, 0.0)
    flag = ("better" if delta > 0 else "worse") if significant else ""
    return {f"d_{column}": delta, f"{column}_low": low, f"{column}_high": high, f"{column}_flag": flag}


def compare_runs(run_a: str, run_b: str) -> Comparison:
    """Match the ok cells of two run folders and difference their metrics (B minus A)."""
    (cells_a, images_a, acc_a), (cells_b, images_b, acc_b) = _load(run_a), _load(run_b)
    matched, paired = _match(cells_a, cells_b)
    if matched.empty:
        raise ValueError(
            f"runs {run_a} and {run_b} have no cell in common; cells match on {', '.join(MATCH_COLUMNS)} "
            "or on all but the parameters, when each run has one such cell"
        )
    classifiers = sorted(set(acc_a.columns) & set(acc_b.columns))
    metrics = ["psnr", "ssim", *(f"acc_{c}" for c in classifiers)]
    rows = []
    for _, pair in matched.iterrows():
        a, b = _side(pair, "_a", acc_a), _side(pair, "_b", acc_b)
        row = {c: pair[c] for c in CELL_COLUMNS} | {"params_a": a["denoiser_params"], "params_b": b["denoiser_params"]}
        row |= {"psnr_a": a["psnr"], "psnr_b": b["psnr"]}
        for metric in metrics:
            stored = CORRECT_PREFIX + metric[4:] if metric.startswith("acc_") else metric
            row |= _difference(a, b, metric, stored, (images_a, images_b))
        rows.append(row)
    labels = {"psnr": "PSNR", "ssim": "SSIM"} | {f"acc_{c}": f"accuracy {c}" for c in classifiers}
    only_a, only_b = len(cells_a) - len(matched), len(cells_b) - len(matched)
    return Comparison(pd.DataFrame(rows), metrics, only_a, only_b, labels, paired)


def _match(cells_a: pd.DataFrame, cells_b: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Pairs of cells (columns ``<name>_a`` and ``<name>_b``, ``CELL_COLUMNS`` shared), and how
    many of them pair across a change of parameters."""
    same = cells_a.merge(cells_b, on=MATCH_COLUMNS, suffixes=("_a", "_b"))
    same["denoiser_params_a"] = same["denoiser_params_b"] = same.pop("denoiser_params")
    # A setting that each run holds once, with other parameters: one parameter changed between runs.
    lone_a, lone_b = (
        cells[~cells["key"].isin(same[f"key{side}"])].groupby(CELL_COLUMNS).filter(lambda g: len(g) == 1)
        for cells, side in ((cells_a, "_a"), (cells_b, "_b"))
    )
    changed = lone_a.merge(lone_b, on=CELL_COLUMNS, suffixes=("_a", "_b"))
    return pd.concat([same, changed], ignore_index=True), len(changed)


def _side(pair: pd.Series, suffix: str, accuracy: pd.DataFrame) -> pd.Series:
    """One run's row of a matched pair, with its accuracies as ``acc_<classifier>``."""
    own = {c[: -len(suffix)]: v for c, v in pair.items() if c.endswith(suffix)}
    own |= {c: pair[c] for c in CELL_COLUMNS}
    scores = accuracy.loc[own["key"]] if own["key"] in accuracy.index else pd.Series(dtype=float)
    own |= {f"acc_{name}": value for name, value in scores.items()}
    return pd.Series(own)


def _cell_text(delta: float, low: float, high: float, flag: str, digits: int) -> str:
    if pd.isna(delta):
        return "–"
    interval = f" [{low:+.{digits}f}, {high:+.{digits}f}]" if pd.notna(low) else ""
    return f"{delta:+.{digits}f}{interval}" + (f" {flag}" if flag else "")


def _params_text(params: str) -> str:
    return "" if params == "{}" else params


def format_comparison(comparison: Comparison) -> str:
    """The table ``compare`` prints (one line per matched cell) and its summary line."""
    frame = comparison.frame
    table = frame[CELL_COLUMNS].copy()
    table["params"] = [
        _params_text(a) if a == b else f"{_params_text(a) or '{}'} -> {_params_text(b) or '{}'}"
        for a, b in zip(frame["params_a"], frame["params_b"])
    ]
    for metric in comparison.metrics:
        digits = 2 if metric == "psnr" else 4
        table[f"Δ{comparison.labels[metric]}"] = [
            _cell_text(r[f"d_{metric}"], r[f"{metric}_low"], r[f"{metric}_high"], r[f"{metric}_flag"], digits)
            for _, r in frame.iterrows()
        ]
    return table.to_string(index=False) + "\n" + comparison.summary()


def main_compare(run_a: str, run_b: str) -> int:
    """Print the comparison of two run folders; bad folders raise ValueError (one line)."""
    print(format_comparison(compare_runs(run_a, run_b)))
    return 0
