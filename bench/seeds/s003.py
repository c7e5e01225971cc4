"""Seed 003: denoising and stacked autoencoders on 5,000 Fashion-MNIST images, masking noise.

Source: ``seeds/003_00a4853caa61d604.txt`` (Sai Vamsi Ogety). Masking noise sets a share of
the pixels to 0. Experiments, all on 5,000 training images:

* denoising autoencoder (``dense_dae``, one sigmoid hidden layer): training cost after 500
  gradient-descent iterations against the learning rate (Fig. 6: lowest at 0.1) and the
  hidden size (Fig. 7: lowest at 1000); trained at 20% or 70% masking, tested at 20-70%
  (Figs. 9-14, images only);
* stacked autoencoder 500-300-100 + softmax (``stacked_ae_softmax*``): Table 1 (learning
  rate), Table 2 (1 and 5 labels per class), Table 3 (the same with 20% input masking),
  Table 4 (train at 20% or 70%, test at 20-70%), and the comparison with an RBF SVM
  (C 5, gamma 0.05): 84.32% against 76.40% (sec. 4.2.5).

Readings: the 5,000 training images are the runner's seeded subset (the report does not say
which). Accuracies printed with two decimals are multiples of 100/n on n test images; 84.32%
is impossible on the 500 the report names (:func:`possible_accuracy`), so each accuracy is
given on the first 500 and on all 10,000 test images. The report's "cost" is UFLDL's: 0.5 x
squared error summed over the pixels, averaged over the images, under plain gradient descent
on fixed noisy pairs: ``dense_dae``'s ``faithful`` recipe, full-batch, nothing held out, so its
kept model's MSE on the training pairs (stored with the cell) is the cost, x 392 in the
report's units. Table 1 runs twice: with our Adam-trained ``stacked_ae_softmax_frozen`` at
the report's rates as they are (they are not Adam rates: only the trend compares), and with
``stacked_ae_softmax_faithful`` (the report's costs and full-batch gradient descent, 500
iterations a stage: ~18 CPU-minutes a rate, so the full budget only); at 0.3-0.5, where the
report's accuracy falls with the rate, also under two more seeds, and each row reads the Fig. 6
sweep's stored cost curve for oscillation at that rate. Tables 2-4 and sec. 4.2.5 likewise run
both our recipe and the report's protocol (sec. 4.2.5's is Table 1's lr-0.1 fit).

Run by the grid runner, every grid in the ``seed-003`` folder: one per (hidden size, rate) of
the cost sweeps, the noise matrix (``train_levels=[0.2, 0.7]``), and one per classifier setting,
with ``identity`` at masking 0.2 as the cell that scores them (clean accuracy, or accuracy on
masked test images). Tables 3-4 train on masked images (the classifiers' ``input_masking``).
The steps read the cells back; training accuracies and the first-500 test accuracies use the
cached classifier fits through the run's ``Workspace`` (its data, noise and seeds).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bench.registry import CLASSIFIERS, DENOISERS
from bench.seeds import protocol
from bench.seeds.common import Reproduction, model_params, settings
from bench.seeds.declared import Results
from bench.seeds.s003_common import (  # noqa: F401  (the published tables: tests read them here)
    DAE,
    DATASET,
    FAITHFUL,
    FROZEN,
    OURS,
    SETTINGS,
    STACKED_PUBLISHED,
    SVM_PUBLISHED,
    TABLE1,
    TABLE4,
    TABLES_2_3,
    possible_accuracy,
)
from bench.seeds.s003_dae import dae_how, dae_noise_matrix, dae_sweeps
from bench.seeds.s003_tables import svm_vs_stacked, table1, table4, tables_2_3


def entries(budget: str) -> set[str]:
    """The registry entries seed 003's grids run (what ``--set`` may name)."""
    faithful = {FAITHFUL} if SETTINGS[budget]["faithful_table1"] or SETTINGS[budget]["faithful_tables"] else set()
    return {
        "identity",
        DAE,
        FROZEN,
        OURS,
        "stacked_ae_softmax_1label",
        "stacked_ae_softmax_5labels",
        "svm_rbf",
        *faithful,
    }


@protocol(
    "003",
    source="seeds/003_00a4853caa61d604.txt (Sai Vamsi Ogety)",
    description="Fashion-MNIST, 5,000 images, masking 20-70%: DAE sweeps, stacked AE Tables 1-4, SVM 84.32% vs 76.40%",
    datasets=(DATASET,),
    entries=entries,
)
def run(repro: Reproduction, results: Results) -> pd.DataFrame:
    """Re-run seed 003's experiments; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, repro.budget)
    repro.extra["settings"] = vars(cfg)
    if DAE not in DENOISERS:
        repro.skip(f"{DAE} sweeps", {"best_lr": 0.1, "best_hidden": 1000}, f"denoiser {DAE!r} is not registered")
    else:
        dae_sweeps(repro, results, cfg)
        dae_noise_matrix(repro, results, cfg)
    table1_grids = table1(repro, results, cfg)
    tables_2_3(repro, results, cfg)
    table4(repro, results, cfg)
    svm_vs_stacked(repro, results, cfg, table1_grids)
    annotate(repro.rows, cfg)
    return repro.write()


#: Where the report is silent or contradicts itself: the reading chosen, and why (every row).
READING = (
    "the 5,000 training images are a seeded subset (the report does not say which); accuracies are given on the "
    "first 500 test images (the report's) and on all 10,000, since 84.32% is not k/500 for any k; 'cost' is UFLDL's "
    "0.5 x squared error summed over the pixels, averaged over the images; masking sets a share of the pixels to 0; "
    "Tables 1-2 add no noise, Table 3 masks the training images once at 20% ('we have added 20% noise to the input') "
    "and is tested on clean test images like Table 2, since the report sets the two tables side by side as the same "
    "models trained without and with noise; Table 4 masks the training images once at 20% or 70%"
)
_ADAM = (
    "our recipe for the frozen variant: Adam with a per-unit MSE pretraining cost and minibatches, not the report's "
    "full-batch gradient descent of 500 iterations a stage (Table 1 (the report's protocol) runs that)"
)


def deviations(experiment: str, cfg) -> tuple[str, ...]:
    """The departures from the report's protocol of the rows of ``experiment`` under ``cfg``'s budget."""
    out = []
    if cfg.n_train != 5000:
        out.append(f"{cfg.budget} budget: {cfg.n_train} training images (report: 5,000), a few epochs a stage")
    if experiment.startswith(DAE) and cfg.dae_iterations != 500:
        out.append(dae_how(cfg))  # "tiny budget: ..." / "quick budget: ..."
    if "(the report's protocol)" in experiment:
        # the report's own classifier: only a budget's shrinking departs from it
        return (f"{cfg.budget} budget: {cfg.faithful}",) if cfg.faithful else ()
    if experiment.startswith("stacked AE vs SVM: stacked_ae_softmax") and not experiment.endswith(FROZEN):
        out.append("our model: the encoder fine-tuned with the softmax, dropout 0.2 (the report froze the encoder)")
    elif FROZEN in experiment or "label(s) per class" in experiment:
        out.append(_ADAM)
    few = {"1 label(s)": "stacked_ae_softmax_1label", "5 label(s)": "stacked_ae_softmax_5labels"}
    stacked = next((name for key, name in few.items() if key in experiment), None)
    stacked = stacked or next((name for name in (FROZEN, OURS) if name in experiment), None)
    if stacked and cfg.budget != "full":
        cut = {k: v for k, v in model_params(CLASSIFIERS, stacked, cfg.budget, **cfg.clf)[0].items() if k != "hidden"}
        out.append(f"{cfg.budget} budget: {stacked} at " + ", ".join(f"{k} {v}" for k, v in cut.items()))
    return tuple(out)


def annotate(rows: list[dict[str, Any]], cfg) -> None:
    """Give every row the report's readings and its experiment's deviations (``deviations``)."""
    for row in rows:
        row["reading"] = row.get("reading") or READING
        row["deviations"] = row.get("deviations") or "; ".join(deviations(row["experiment"], cfg))
