"""Seed 003's data, published tables, budgets and grid helpers, shared by its experiments
(``s003_dae``: the denoising autoencoder; ``s003_tables``: the stacked autoencoder classifiers)
and its protocol (``s003``, where the readings and the module docstring are)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from bench.grids import Grid
from bench.registry import CLASSIFIERS
from bench.seeds.common import model_params
from bench.seeds.declared import grid_name

DATASET = "fashion-mnist"
N_REPORT_TEST = 500
DAE = "dense_dae"
FROZEN, FAITHFUL, OURS = "stacked_ae_softmax_frozen", "stacked_ae_softmax_faithful", "stacked_ae_softmax"
PIXELS = 784  # 28 x 28: the report's cost sums over them
FIRST_LAYER = 500  # the stacked autoencoder's first hidden layer (500-300-100), also a Fig. 6 width
TABLE1 = {0.1: (71.96, 72.0), 0.2: (71.28, 20.20), 0.3: (69.32, 68.40), 0.4: (60.04, 68.80), 0.5: (65.30, 67.0)}
#: (labels per class, input masking) -> (train, test) accuracy: Table 2 (no noise) and Table 3 (20%).
TABLES_2_3 = {(1, 0.0): (52.84, 50.30), (5, 0.0): (72.80, 70.48), (1, 0.2): (54.5, 50.8), (5, 0.2): (71.8, 70.8)}
TABLE4 = {0.2: (78.0, 68.0, 62.6, 48.4, 43.2, 38.0), 0.7: (63.2, 59.2, 59.0, 61.2, 54.2, 54.8)}
TEST_LEVELS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
SVM_PUBLISHED, STACKED_PUBLISHED, OUR_TARGET = 84.32, 76.40, 85.0
#: Table 1's training accuracies are met within 5 points (the target set for the faithful protocol).
TABLE1_TRAIN_TOLERANCE = 5.0

#: ``dae_iterations``: epochs of ``dense_dae``'s faithful recipe, full-batch (the report: 500
#: iterations); the quick budget keeps the quick grid's 200 steps of batch 8 (40 full-batch
#: iterations of 1000 hidden units are ~30 CPU-minutes), tiny the entry's test batch of 32.
#: ``faithful_table1``: the rates ``stacked_ae_softmax_faithful`` runs at (``faithful``: its overrides).
#: ``faithful_spread``: the rates it reruns under the seeds ``faithful_spread_seeds`` (offsets
#: from the run's): at full, 0.3-0.5, where the report's training accuracy falls with the rate.
#: ``faithful_tables``: Tables 2-4 and sec. 4.2.5 also run it (the report's protocol throughout).
SETTINGS = {
    "tiny": {"n_train": 300, "n_test": 300, "lrs": (0.1, 0.5), "sweep_hidden": (16,), "hidden_sweep": (16, 64), "noise_hidden": 16,
             "test_levels": (0.2, 0.7), "table1": (0.1,), "dae_iterations": 2, "faithful_table1": (0.1,),
             "faithful": {"epochs": 2, "pretrain_epochs": 2}, "faithful_spread": (0.1,), "faithful_spread_seeds": (1,), "faithful_tables": True,
             "clf": {"epochs": 5, "pretrain_epochs": 1}, "clf_final": {"epochs": 5, "pretrain_epochs": 1}},
    "quick": {"n_train": 5000, "n_test": 10000, "lrs": (0.1, 0.2, 0.3, 0.4, 0.5), "sweep_hidden": (100,), "hidden_sweep": (100, 300, 1000),
              "noise_hidden": 100, "test_levels": TEST_LEVELS, "table1": tuple(TABLE1), "dae_iterations": 40,
              "faithful_table1": (), "faithful": {}, "faithful_spread": (), "faithful_spread_seeds": (), "faithful_tables": False,
              "clf": {}, "clf_final": {}},
    "full": {"n_train": 5000, "n_test": 10000, "lrs": (0.1, 0.2, 0.3, 0.4, 0.5), "sweep_hidden": (100, 500, 1000),
             "hidden_sweep": (100, 200, 500, 1000, 1500), "noise_hidden": 100, "test_levels": TEST_LEVELS, "table1": tuple(TABLE1),
             "dae_iterations": 500, "faithful_table1": tuple(TABLE1), "faithful": {}, "faithful_spread": (0.3, 0.4, 0.5),
             "faithful_spread_seeds": (1, 2), "faithful_tables": True, "clf": {}, "clf_final": {}},
}  # fmt: skip


def possible_accuracy(percent: float, n: int, *, decimals: int = 2) -> bool:
    """Whether ``percent`` (printed with ``decimals``) can be k/n of ``n`` test images.

    >>> possible_accuracy(84.32, 500), possible_accuracy(84.32, 10000), possible_accuracy(76.40, 500)
    (False, True, True)
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of test images; got {n!r}")
    exact = Fraction(str(percent)) * n / 100  # the count the percentage implies
    half = Fraction(n, 2 * 100 * 10**decimals)  # half a printed unit, in images
    return any(abs(Fraction(k) - exact) <= half for k in (int(exact), int(exact) + 1) if 0 <= k <= n)


def accuracy_note(percent_published: float | None, n: int) -> str:
    note = f"first {n} test images" + (" (the report's test set)" if n == N_REPORT_TEST else "")
    if percent_published is None or possible_accuracy(percent_published, N_REPORT_TEST):
        return note
    return f"{note}; {percent_published}% is not k/{N_REPORT_TEST} for any k: the report cannot have used {N_REPORT_TEST} test images"


def seed_grid(
    cfg,
    seed: int,
    what: str,
    *,
    denoisers=("identity",),
    classifiers=(),
    params=None,
    levels=(0.2,),
    n_test: int | None = None,
    train_levels: Any = "same",
) -> Grid:
    """A ``seed-003`` grid on Fashion-MNIST masking; ``identity`` at 0.2 scores the classifiers."""
    return Grid.build(
        name=grid_name("003"),
        datasets=[DATASET],
        noises={"masking": list(levels)},
        denoisers=list(denoisers),
        classifiers=list(classifiers),
        n_train=cfg.n_train,
        n_test=n_test or cfg.n_test,
        train_levels=train_levels,
        params=params or {},
        seed=seed,
        description=f"seed 003: {what}",
    )


def classifier_params(cfg, names_params: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The registered names among ``names_params`` and their budget parameters plus the given overrides."""
    names = [name for name in names_params if name in CLASSIFIERS]
    return names, {name: model_params(CLASSIFIERS, name, cfg.budget, **names_params[name])[0] for name in names}
