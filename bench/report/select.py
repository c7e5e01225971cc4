"""Which cells the leaderboard and the figures show, and the names their rows go by."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["diagonal", "below_identity", "BASELINE"]

#: The entry every other is checked against: one that returns its input.
BASELINE = "identity"


def diagonal(cells: pd.DataFrame, *, ok_only: bool = True) -> pd.DataFrame:
    """Cells tested at their training level, or trained blind/mixed: the leaderboard's cells.

    Adds ``entry``, the row name: the denoiser, with ``(blind)`` or ``(mixed)`` appended
    for such models, which are other entries than those trained at the test level, and the
    parameters that tell its runs apart where a store holds it under several (``[key=value]``).
    """
    rows = cells[cells["status"] == "ok"] if ok_only else cells
    numeric = pd.to_numeric(rows["train_level"], errors="coerce")
    keep = (numeric.isna() | np.isclose(numeric.fillna(-1.0), rows["level"].astype(float))).to_numpy()
    rows = rows[keep].copy()
    other = pd.to_numeric(rows["train_level"], errors="coerce").isna().to_numpy()
    rows["entry"] = np.where(
        other, rows["denoiser"].astype(str) + " (" + rows["train_level"].astype(str) + ")", rows["denoiser"].astype(str)
    )
    if "denoiser_params" in rows:
        rows["entry"] = rows["entry"] + _variants(rows)
    return rows


def _variants(rows: pd.DataFrame) -> pd.Series:
    """`` [key=value, ...]`` of the parameters that differ between one denoiser's cells, else ''."""
    params = rows["denoiser_params"].map(lambda p: p if isinstance(p, dict) else {})
    suffix = pd.Series("", index=rows.index)
    for _, group in params.groupby(rows["denoiser"]):
        keys = sorted({key for p in group for key in p})
        differ = [key for key in keys if len({json.dumps(p.get(key), sort_keys=True) for p in group}) > 1]
        for index, p in group.items():
            named = [f"{key}={json.dumps(p[key])}" for key in differ if key in p]
            suffix[index] = f" [{', '.join(named)}]" if named else ""
    return suffix


def below_identity(cells: pd.DataFrame) -> pd.Series:
    """Whether each ok cell's mean PSNR is below ``identity``'s on the same test set (dataset, noise, level).

    A denoiser worse than returning its input is broken, whatever its training. NA for failed
    cells, for ``identity`` itself and where the run has no ok ``identity`` cell to compare with.
    """
    ok = cells["status"] == "ok"
    test_set = ["dataset", "noise", "level"]
    identity = cells[ok & (cells["denoiser"] == BASELINE)].groupby(test_set)["psnr"].max()
    reference = pd.Series(
        [identity.get(tuple(row)) for row in cells[test_set].itertuples(index=False)], index=cells.index, dtype=float
    )
    below = pd.Series(pd.array(cells["psnr"].astype(float) < reference, dtype="boolean"), index=cells.index)
    return below.mask(~ok | (cells["denoiser"] == BASELINE) | reference.isna())
