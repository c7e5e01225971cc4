"""Rank your own denoisers against a stored reference run, without rerunning the reference.

``run --against DIR`` checks that the grid's cells are cells the reference could hold (same
data, noise seeds, training and test sizes), starts its run folder from a copy of the
reference's store, runs only the new cells into it, and ranks each new row among the
reference's rows of its cell, with a paired test against the best of them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from bench.execution.store import Store
from bench.grids import Grid
from bench.report.significance import full_size, paired_test, same_images

__all__ = ["reference_spec", "check_matches", "start_from", "ranking", "format_ranking", "against_grid_name"]

MATCHED = ("n_train", "n_test", "seed", "train_levels")
GROUP = ["dataset", "noise", "level"]


def reference_spec(reference_dir: str | Path) -> dict:
    """The grid spec of the reference's latest run (ValueError if the folder is not a run)."""
    path = Path(reference_dir) / "store.sqlite"
    if not path.is_file():
        raise ValueError(
            f"--against {reference_dir}: no run store at {path}; expected a folder written by 'python -m bench run'"
        )
    with Store(path, read_only=True) as store:
        runs = store.runs()
    if runs.empty:
        raise ValueError(f"--against {reference_dir}: its store holds no run")
    return json.loads(runs["spec"].iloc[-1])


def check_matches(grid: Grid, spec: dict, reference_dir: str | Path) -> None:
    """Refuse, saying what differs, a grid whose cells the reference run could not hold."""
    ours, differences = grid.to_dict(), []
    for key in MATCHED:
        if ours[key] != spec.get(key):
            differences.append(f"{key} {ours[key]!r} (the reference: {spec.get(key)!r})")
    extra = [d for d in ours["datasets"] if d not in spec.get("datasets", [])]
    if extra:
        differences.append(f"datasets {', '.join(extra)} are not in the reference")
    for kind, levels in ours["noises"].items():
        missing = sorted(set(levels) - set(spec.get("noises", {}).get(kind, [])))
        if missing:
            differences.append(f"noise {kind} at {', '.join(f'{v:g}' for v in missing)} is not in the reference")
    extra = [c for c in ours["classifiers"] if c not in spec.get("classifiers", [])]
    if extra:
        differences.append(f"classifiers {', '.join(extra)} are not in the reference")
    if differences:
        raise ValueError(f"the cells do not match the reference run at {reference_dir}: " + "; ".join(differences))


def against_grid_name(grid: Grid) -> str:
    """The run folder's name: the grid's, with the new denoisers (never the reference's own folder)."""
    return f"{grid.name}-with-{'-'.join(grid.denoisers)}"


def start_from(reference_dir: str | Path, run_dir: Path) -> None:
    """Copy the reference's store into ``run_dir`` unless an earlier ``--against`` run made one."""
    target = run_dir / "store.sqlite"
    if target.exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(Path(reference_dir) / "store.sqlite")
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # consistent even while the reference is being written
    finally:
        copy.close()
        source.close()


def ranking(store: Store, denoisers: list[str]) -> pd.DataFrame:
    """Each new row's rank among its cell's rows by mean PSNR, and its paired test against the best other one.

    Only rows scored on the cell's full test set take part (``full_size``): a row of a slow
    entry scored on its first few images is not ranked, and a new row of that kind gets no rank.
    """
    cells = store.cells()
    cells = cells[cells["status"] == "ok"]
    full = full_size(cells, GROUP)
    arrays = store.per_image()
    rows = []
    for index, mine in cells[cells["denoiser"].isin(denoisers)].iterrows():
        group = cells[full & (cells[GROUP] == mine[GROUP]).all(axis=1)]
        others = group[~group["denoiser"].isin(denoisers)].sort_values("psnr", ascending=False)
        rank = int((group["psnr"] > mine["psnr"]).sum()) + 1 if full[index] else None
        row = {
            **{k: mine[k] for k in [*GROUP, "train_level", "denoiser"]},
            "psnr": mine["psnr"],
            "rank": rank,
            "of": len(group),
            "n_test": mine["n_test"],
        }
        if not others.empty:
            best = others.iloc[0]
            row |= {
                "best_reference": best["denoiser"],
                "best_reference_train_level": best["train_level"],
                "best_reference_psnr": best["psnr"],
            }
            test = _paired(mine, best, arrays)
            if test is not None:
                row |= {
                    "delta": test.delta,
                    "ci_low": test.ci_low,
                    "ci_high": test.ci_high,
                    "p": test.p,
                    "distinguishable": test.distinguishable,
                }
        rows.append(row)
    return pd.DataFrame(rows)


def _paired(mine: pd.Series, best: pd.Series, arrays: dict):
    a, b = arrays.get(mine["key"], {}).get("psnr"), arrays.get(best["key"], {}).get("psnr")
    if a is None or b is None or not same_images(mine, best):
        return None
    return paired_test(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), seed=int(mine["base_seed"]))


def format_ranking(frame: pd.DataFrame) -> str:
    """One line per new row: its rank and its lead or lag on the best reference row."""
    lines = []
    for _, r in frame.iterrows():
        place = (
            f"rank {r['rank']:.0f} of {r['of']}"
            if pd.notna(r["rank"])
            else f"not ranked (scored on {r['n_test']} images)"
        )
        head = f"{r['dataset']} {r['noise']} {r['level']:g} {r['denoiser']} (train {r['train_level']}): PSNR {r['psnr']:.2f} dB, {place}"
        if isinstance(r.get("best_reference"), str):
            head += f"; best reference {r['best_reference']} {r['best_reference_psnr']:.2f} dB"
            if pd.notna(r.get("delta")):
                verdict = "distinguishable" if r["distinguishable"] else "not distinguishable"
                head += f", difference {r['delta']:+.2f} dB [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}], p={r['p']:.2g} ({verdict})"
        lines.append(head)
    return "\n".join(lines)
