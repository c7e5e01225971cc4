"""Seed 003's denoising autoencoder: the cost sweeps (Figs. 6-7) and the noise matrix (Figs. 9-14)."""

from __future__ import annotations

from typing import Any

from bench.grids import Grid
from bench.registry import DENOISERS
from bench.seeds.common import Reproduction, model_params
from bench.seeds.declared import Results, collapse_warning
from bench.seeds.s003_common import DAE, PIXELS, seed_grid

__all__ = ["dae_how", "dae_noise_matrix", "dae_sweeps"]


def _dae_params(cfg, hidden: int, lr: float) -> dict[str, Any]:
    """The faithful recipe at ``lr`` for ``dae_iterations`` epochs, under the budget's caps (quick: 200 steps of 8)."""
    return model_params(DENOISERS, DAE, cfg.budget, config="faithful", hidden=hidden, lr=lr, epochs=cfg.dae_iterations)[
        0
    ]


def dae_how(cfg) -> str:
    """What the DAE fits ran, for the rows' notes."""
    params = _dae_params(cfg, 0, 0.1)
    if "batch_size" not in params:
        return f"{cfg.dae_iterations} full-batch gradient-descent iterations (report: 500) on {cfg.n_train} fixed masked pairs"
    steps = f"{params['max_steps']} steps" if params.get("max_steps") else f"{params['epochs']} epochs"
    return (
        f"{cfg.budget} budget: {steps} of gradient descent on batches of {params['batch_size']} (report: 500 full-batch "
        f"iterations) of {cfg.n_train} fixed masked pairs"
    )


def _dae_grid(repro: Reproduction, cfg, hidden: int, lr: float, **options: Any) -> Grid:
    params = {DAE: _dae_params(cfg, hidden, lr)}
    return seed_grid(cfg, repro.seed, f"{DAE} hidden {hidden} lr {lr}", denoisers=[DAE], params=params, **options)


def _dae_cost(repro: Reproduction, results: Results, cfg, hidden: int, lr: float) -> dict[str, Any]:
    """The cost of ``dense_dae`` on its 20%-masked training pairs after ``dae_iterations`` (from the stored cell)."""
    grid = results.run(_dae_grid(repro, cfg, hidden, lr))
    cell = results.cell(grid, DAE)
    row = results.row(cell)
    training = (row.get("fit_state") or {}).get("training") or {}
    mse = training.get("best_val_loss") if row["status"] == "ok" else None
    costs = [h["train_loss"] for h in row.get("history") or () if h.get("train_loss") is not None]
    pairs = list(zip(costs, costs[1:]))
    return {
        "mse": mse,
        "cost": None if mse is None else 0.5 * PIXELS * mse,
        # Iterations on which the training cost rose, and the largest rise: full-batch gradient
        # descent past its stable step oscillates instead of descending (read by Table 1's rows).
        "iterations": len(costs),
        "rising": sum(b > a for a, b in pairs) if costs else None,
        "largest_rise": max((b / a - 1 for a, b in pairs if a > 0), default=0.0),
        "error": results.failure(cell),
        "warning": collapse_warning(row),
        "validation": training.get("validation"),
    }


def _sweep_row(exp, metric: str, published: float, costs: dict[Any, dict], note: str) -> None:
    failed = next((c["error"] for c in costs.values() if c["error"]), None)
    if failed:
        exp.add(metric, published, None, n_test=None, note=f"not run: {failed}")
        return
    best = min(costs, key=lambda k: costs[k]["mse"])
    shown = ", ".join(f"{k}: {c['cost']:.4g}" for k, c in costs.items())
    exp.add(
        metric, published, best, n_test=None, note=f"{note}; cost (0.5 x SSE per image) {shown}{costs[best]['warning']}"
    )


def dae_sweeps(repro: Reproduction, results: Results, cfg) -> None:
    """Figs. 6-7: training cost against the learning rate and the hidden size (20% masking)."""
    sweep, how = {}, dae_how(cfg)
    for hidden in cfg.sweep_hidden:
        with repro.experiment(f"{DAE} lr sweep, hidden {hidden}") as exp:
            costs = sweep[f"hidden {hidden}"] = {lr: _dae_cost(repro, results, cfg, hidden, lr) for lr in cfg.lrs}
            _sweep_row(exp, "best_lr", 0.1, costs, f"Fig. 6: lowest cost at 0.1; {how}; lrs {list(cfg.lrs)}")
    with repro.experiment(f"{DAE} hidden-size sweep, lr 0.1") as exp:
        costs = sweep["lr 0.1"] = {h: _dae_cost(repro, results, cfg, h, 0.1) for h in cfg.hidden_sweep}
        _sweep_row(
            exp,
            "best_hidden",
            1000,
            costs,
            f"Fig. 7: lowest cost at 1000 hidden units; sizes {list(cfg.hidden_sweep)}, {how}",
        )
    repro.extra["dae_cost_sweeps"] = {k: {str(x): c for x, c in v.items()} for k, v in sweep.items()}


def dae_noise_matrix(repro: Reproduction, results: Results, cfg) -> None:
    """Figs. 9-14: trained at 20% or 70% masking, tested at 20-70% (PSNR; the report shows images)."""
    grid = results.run(_dae_grid(repro, cfg, cfg.noise_hidden, 0.1, levels=cfg.test_levels, train_levels=(0.2, 0.7)))
    matrix = {}
    for train_level in (0.2, 0.7):
        with repro.experiment(f"{DAE} trained at {train_level:.0%} masking") as exp:
            for level in cfg.test_levels:
                cell = results.cell(grid, DAE, level=level, train_level=train_level)
                metric, row, failed = f"test_psnr_db_at_{level:.0%}", results.row(cell), results.failure(cell)
                if failed:
                    exp.add(metric, None, None, n_test=cell.n_test, note=f"not run: {failed}")
                    continue
                matrix[f"{train_level} -> {level}"] = {
                    "psnr": row["psnr"],
                    "ssim": row["ssim"],
                    "noisy_psnr": row["psnr_noisy"],
                }
                exp.add(
                    metric,
                    None,
                    float(row["psnr"]),
                    n_test=int(row["n_test"]),
                    note=f"noisy input {row['psnr_noisy']:.2f} dB; hidden {cfg.noise_hidden}, lr 0.1, {dae_how(cfg)}; "
                    f"report shows images only and judges the 70%-trained model worse{collapse_warning(row)}",
                )
    repro.extra["dae_noise_matrix"] = matrix
