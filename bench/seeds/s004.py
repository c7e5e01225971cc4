"""Seed 004: a denoising autoencoder on MNIST with Gaussian noise, judged by a classifier.

Source: ``seeds/004_7dc4cfe07bcdb573.txt`` (Zhenyu Zhao, ANU). Table 1: a small CNN trained on
clean MNIST (Adam, 30 epochs) classifies 98.25% of the clean test images, 13.68% of the
noisy ones and 96.10% after the autoencoder (conv + batch norm, ReLU output, Adam, batch
100, 100 epochs) denoised them; 10,000 test images each.

The report gives no noise level. We calibrate it: the sigma at which our clean-trained
``cnn_small`` classifies 13.68% of the noisy test images, found by bisection on sigma with
the harness's clipped Gaussian noise; that sigma is reported, and sigma 0.5 is run beside it
as a level where denoising is known to help. The report does not say whether it clipped
either, so the same calibration is also made under unclipped noise (``awgn``) and reported
beside it. Only the level is calibrated there: a classifier averages zero-mean noise away,
while clipping brightens MNIST's black background, so the unclipped reading calibrates to the
larger sigma (2.07 against 1.40 at the full budget), where a denoiser that falls short at the
clipped sigma would fall shorter. Denoisers: ``bn_conv_ae`` (the report's model), our
strongest neural one (``unet``) and a tuned median filter (``dncnn``, about 22 CPU-hours a
fit at 60,000 images, is left out: it is not the report's and the U-Net outdoes it). If 96% after
denoising is out of reach at the calibrated sigma, the last rows say so with the numbers.

Protocol (``faithful``, every budget, for the report's model): Adam 1e-3, MSE, batch 100, 100
epochs, the training set corrupted once; the tiny and quick budgets shrink only images and
epochs (each row's ``deviations``). Our other denoisers run under our recipes, on rows of their
own. Each row's ``reading`` says how a gap of the report was filled (``READINGS``).

Run by the grid runner: a first grid fits the classifier (on the clean training subset the
denoisers also train on), the calibration reads it from the fit cache, and a second grid
runs every denoiser at the calibrated sigma and at 0.5, with the classifier in every cell.
"""

from __future__ import annotations

import pandas as pd

from bench.grids import Grid
from bench.registry import CLASSIFIERS, DENOISERS
from bench.seeds import protocol
from bench.seeds.common import Reproduction, bisect, faithful_params, model_params, noisy, percent, settings
from bench.seeds.declared import Results, collapse_warning, grid_name, percent_of

PUBLISHED = {"clean": 98.25, "noisy": 13.68, "denoised": 96.10}
REPORT_MODEL = "bn_conv_ae"
#: Bracket of the sigma search. A small CNN falls to ~13.7% near sigma 1.85, a better-trained
#: one only beyond 3; with clipping, accuracy sinks towards chance (~10%) as sigma grows.
SIGMA_BRACKET = (0.3, 8.0)
SECOND_SIGMA = 0.5
CLASSIFIER = "cnn_small"
DATASET = "mnist"

#: ``n_train``: the seeded training subset of the classifier and of every denoiser.
SETTINGS = {
    "tiny": {"n_train": 1000, "n_test": 300, "n_calib": 300, "iterations": 4,
             "denoisers": (REPORT_MODEL, "unet", "median"), "fit": {}, "report_fit": {}, "clf_overrides": {"epochs": 3}},
    "quick": {"n_train": 20000, "n_test": 2000, "n_calib": 2000, "iterations": 7,
              "denoisers": (REPORT_MODEL, "unet", "median"), "fit": {"max_steps": 800, "batch_size": 32},
              "report_fit": {"epochs": 4}, "clf_overrides": {}},
    "full": {"n_train": 60000, "n_test": 10000, "n_calib": 10000, "iterations": 10,
             "denoisers": (REPORT_MODEL, "unet", "median"), "fit": {}, "report_fit": {}, "clf_overrides": {"epochs": 30}},
}  # fmt: skip


#: Where the report is silent: the reading chosen, and why.
READINGS = {
    "noise": "the report gives no noise level: sigma calibrated so that the clean-trained classifier scores the report's 13.68% on the noisy test images (clipped gaussian noise)",
    "noise_unclipped": "the report does not say whether it clipped the noise either: the same calibration under noise not clipped to [0, 1] (awgn, sigma on the 0-255 scale)",
    "classifier": f"{CLASSIFIER}: the report's CNN is unspecified beyond Adam and 30 epochs; two conv/max-pool stages (32, 64) and a dense 128 layer (the Keras MNIST example)",
    REPORT_MODEL: "the autoencoder's layer sizes are ours (width 32 then 64 filters, two stages): the report names only conv + batch norm + ReLU + max-pool encoder and deconvolution decoder layers, no counts or sizes",
}


#: The bracket of the sigma search under each reading of the noise, in its kind's units:
#: ``gaussian`` clipped (0-1 scale), ``awgn`` unclipped (0-255 scale).
SIGMA_BRACKETS = {"gaussian": SIGMA_BRACKET, "awgn": (25.5, 2040.0)}


def reading(*names: str) -> str:
    """The readings that apply to a row about ``names`` (the noise level always does)."""
    return "; ".join(READINGS[name] for name in ("noise", "classifier", *names) if name in READINGS)


def deviations(cfg, name: str | None = None) -> tuple[str, ...]:
    """The departures from the report's protocol of a row about denoiser ``name`` under ``cfg``'s budget."""
    out = []
    if cfg.n_train != 60000:
        out.append(f"{cfg.budget} budget: {cfg.n_train} of 60000 training images, {cfg.n_test} of 10000 test images")
    if cfg.clf_overrides.get("epochs", 30) != 30:
        out.append(f"{cfg.budget} budget: {CLASSIFIER} {cfg.clf_overrides['epochs']} epochs (report: 30)")
    if name == REPORT_MODEL and cfg.budget != "full":
        params = {k: v for k, v in _params(cfg, name).items() if k != "config"}
        shown = ", ".join(f"{k} {v}" for k, v in params.items())
        out.append(f"{cfg.budget} budget: {name} with {shown} (report: 100 epochs of batch 100)")
    elif name not in (None, REPORT_MODEL):
        out.append(f"{name} is not in the report: our entry under its own recipe or tuning, scored beside it")
    return tuple(out)


def _params(cfg, name: str) -> dict:
    """``name``'s parameters: the report's model faithful with the budget's epochs, the others ours."""
    if name == REPORT_MODEL:
        return faithful_params(DENOISERS, name, cfg.budget, **cfg.report_fit)
    return model_params(DENOISERS, name, cfg.budget, config="ours", **cfg.fit)[0]


def entries(budget: str) -> set[str]:
    """The registry entries seed 004's grids run."""
    return {"identity", CLASSIFIER, *SETTINGS[budget]["denoisers"]}


def _grid(cfg, seed: int, levels: list[float], denoisers: list[str]) -> Grid:
    """``identity`` (the noisy input) and ``denoisers`` at ``levels``, the classifier in every cell."""
    params = {name: _params(cfg, name) for name in denoisers}
    params[CLASSIFIER] = model_params(CLASSIFIERS, CLASSIFIER, cfg.budget, **cfg.clf_overrides)[0]
    return Grid.build(
        name=grid_name("004"),
        datasets=[DATASET],
        noises={"gaussian": levels},
        denoisers=["identity", *denoisers],
        classifiers=[CLASSIFIER],
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        params={k: v for k, v in params.items() if v},
        seed=seed,
        description="seed 004: MNIST gaussian noise, cnn_small on clean / noisy / denoised test images",
    )


def _calibrate(repro: Reproduction, results: Results, grid: Grid, cfg, kind: str = "gaussian") -> float:
    """Bisection on ``kind``'s sigma for the noisy accuracy the report printed (13.68%), with the cached classifier."""
    classifier = results.classifier(grid, DATASET, CLASSIFIER)
    test_x, test_y = results.runner(grid).data(DATASET)[2:]
    images, labels = test_x[: cfg.n_calib], test_y[: cfg.n_calib]
    bracket, clipped = SIGMA_BRACKETS[kind], kind == "gaussian"

    def accuracy_at(sigma: float) -> float:
        return percent(classifier, noisy(images, kind, sigma, seed=repro.seed, dataset=DATASET, split="test"), labels)

    with repro.experiment("sigma calibration" if clipped else "sigma calibration (unclipped noise)") as exp:
        sigma, history = bisect(accuracy_at, PUBLISHED["noisy"], *bracket, iterations=cfg.iterations, tol=0.1)
        reached = min(abs(h["f"] - PUBLISHED["noisy"]) for h in history)
        # The value written in the table is the value used: 3 decimals on the 0-1 scale, 1 on the 0-255 one.
        sigma = round(sigma, 3 if clipped else 1)
        miss = "" if reached <= 1.0 else f"; NOT reached: the closest evaluation is {reached:.2f} points off"
        # Near chance the curve is flat and noisy: say how loosely the target pins sigma down.
        close = [h["x"] for h in history if abs(h["f"] - PUBLISHED["noisy"]) <= 2.0]
        if len(close) > 1:
            miss += f"; accuracy within 2 points of the target for sigma {min(close):.3g}-{max(close):.3g} (flat tail)"
        noise = (
            "clipped gaussian noise"
            if clipped
            else f"unclipped gaussian noise (awgn; {sigma / 255:.3f} on the 0-1 scale)"
        )
        exp.add(
            "sigma" if clipped else "sigma_255",
            None,
            sigma,
            n_test=len(images),
            note=f"report gives no sigma; bisection on [{bracket[0]}, {bracket[1]}], {len(history)} evaluations, "
            f"{noise}, target noisy accuracy {PUBLISHED['noisy']}% for {CLASSIFIER} trained on clean images{miss}",
            reading=reading() if clipped else reading("noise_unclipped"),
            deviations=deviations(cfg),
        )
    repro.extra["calibration" if clipped else "calibration_unclipped"] = {
        "reading": "clipped" if clipped else "unclipped",
        "sigma_scale": 1.0 if clipped else 255.0,
        "target": PUBLISHED["noisy"],
        "bracket": bracket,
        "n_images": len(images),
        "evaluations": history,
    }
    return sigma


def _denoisers(
    repro: Reproduction, results: Results, grid: Grid, cfg, sigma: float, calibrated: bool
) -> dict[str, float]:
    """Noisy and denoised accuracy at ``sigma``; returns denoiser -> accuracy."""
    label, found = f"sigma {sigma:g}" + (" (calibrated)" if calibrated else ""), {}
    identity = results.cell(grid, "identity", level=sigma)
    with repro.experiment(f"{label}: noisy input") as exp:
        accuracy = results.accuracy(identity, CLASSIFIER)
        exp.add(
            "accuracy_noisy_pct",
            PUBLISHED["noisy"] if calibrated else None,
            percent_of(accuracy, "accuracy_noisy"),
            n_test=cfg.n_test,
            note="by construction near 13.68 (sigma calibrated on it)"
            if calibrated
            else "no published number at this sigma",
            reading=reading(),
            deviations=deviations(cfg),
        )
    # The report's model last, so that its row can name our best of the others beside it.
    for name in sorted(cfg.denoisers, key=lambda name: name == REPORT_MODEL):
        published = PUBLISHED["denoised"] if calibrated and name == REPORT_MODEL else None
        failed = results.missing(grid, name, level=sigma)
        if failed:
            common = {"n_test": cfg.n_test, "reading": reading(name), "deviations": deviations(cfg, name)}
            repro.skip(f"{label}: {name}", {"accuracy_denoised_pct": published}, failed, **common)
            continue
        with repro.experiment(f"{label}: {name}") as exp:
            cell = results.cell(grid, name, level=sigma)
            best = max(found.items(), key=lambda kv: kv[1]) if published and found else None
            found[name] = _denoised_rows(repro, results, exp, cfg, cell, published, calibrated, best)
    return {name: value for name, value in found.items() if value is not None}


def _denoised_rows(
    repro: Reproduction, results: Results, exp, cfg, cell, published: float | None, calibrated: bool, best=None
) -> float | None:
    """The accuracy and PSNR rows of one denoiser's cell; returns the accuracy."""
    row, name = results.row(cell), cell.denoiser
    accuracy = percent_of(results.accuracy(cell, CLASSIFIER), "accuracy_denoised")
    tuned = (row.get("fit_state") or {}).get("best_params", "")
    config = "faithful" if name == REPORT_MODEL else "ours"
    how = f"{config} recipe" if DENOISERS.entry(name).accelerated else f"tuned {tuned}"
    compare = "" if published or not calibrated else f"; the report's AE printed {PUBLISHED['denoised']} (its own row)"
    note = f"{CLASSIFIER} trained on clean images; {name} {how}{collapse_warning(row)}{compare}"
    common = {"n_test": row["n_test"], "reading": reading(name), "deviations": deviations(cfg, name)}
    exp.add("accuracy_denoised_pct", published, accuracy, note=note, best=best, **common)
    exp.add("psnr_db", None, float(row["psnr"]), note="mean per-image PSNR of the denoised test images", **common)
    return accuracy


@protocol(
    "004",
    source="seeds/004_7dc4cfe07bcdb573.txt (Zhenyu Zhao, ANU)",
    description="MNIST gaussian noise: classifier accuracy on clean / noisy / denoised, sigma calibrated to the report's 13.68%",
    datasets=("mnist",),
    entries=entries,
)
def run(repro: Reproduction, results: Results) -> pd.DataFrame:
    """Re-run seed 004's Table 1; see the module docstring for the protocol."""
    cfg = settings(SETTINGS, repro.budget)
    repro.extra["settings"] = vars(cfg)
    first = results.run(_grid(cfg, repro.seed, [SECOND_SIGMA], []))
    with repro.experiment(f"{CLASSIFIER} on clean test images") as exp:
        accuracy = results.accuracy(results.cell(first, "identity"), CLASSIFIER)
        exp.add(
            "accuracy_clean_pct",
            PUBLISHED["clean"],
            percent_of(accuracy, "accuracy_clean"),
            n_test=cfg.n_test,
            note=f"{CLASSIFIER} (two conv/pool stages + dense 128; the report's CNN is unspecified) on {cfg.n_train} clean training images",
            reading=reading(),
            deviations=deviations(cfg),
        )
    repro.extra["classifier_history"] = getattr(results.classifier(first, DATASET, CLASSIFIER), "history_", None)
    sigma = _calibrate(repro, results, first, cfg)
    unclipped = _calibrate(repro, results, first, cfg, kind="awgn")
    grid = results.run(
        _grid(cfg, repro.seed, list(dict.fromkeys([sigma, SECOND_SIGMA])), [n for n in cfg.denoisers if n in DENOISERS])
    )
    best = {level: _denoisers(repro, results, grid, cfg, level, level == sigma) for level in (sigma, SECOND_SIGMA)}
    _verdict(repro, sigma, best, cfg)
    _measured_context(repro.rows, sigma, best, unclipped)
    return repro.write()


def _measured_context(rows: list[dict], sigma: float, best: dict[float, dict[str, float]], unclipped: float) -> None:
    """The report's model's calibrated row says what the other measurements show beside its gap:
    the best denoiser's accuracy at that sigma, the report's model's at sigma 0.5, and the sigma
    the unclipped reading calibrates to (``unclipped``, on the 0-255 scale)."""
    experiment = f"sigma {sigma:g} (calibrated): {REPORT_MODEL}"
    row = next((r for r in rows if r["experiment"] == experiment and r["metric"] == "accuracy_denoised_pct"), None)
    if row is None or row.get("ours") is None:
        return
    facts = []
    others = {n: v for n, v in best.get(sigma, {}).items() if n != REPORT_MODEL}
    if others:
        name, value = max(others.items(), key=lambda kv: kv[1])
        facts.append(f"at this sigma the best other denoiser here, {name}, reaches {value:.2f}%")
    milder = best.get(SECOND_SIGMA, {}).get(REPORT_MODEL)
    if milder is not None and SECOND_SIGMA != sigma:
        facts.append(f"at sigma {SECOND_SIGMA:g} {REPORT_MODEL} reaches {milder:.2f}%")
    # Not clipping is the other reading of the report's noise: it moves the gap only if it calibrates milder.
    than = "milder" if unclipped / 255 < sigma else "noisier still: not clipping does not close the gap"
    facts.append(f"unclipped noise calibrates to sigma {unclipped:g}/255 = {unclipped / 255:.3f} ({than})")
    if facts:
        row["protocol_note"] = f"{row['protocol_note']}; measured beside it: {'; '.join(facts)}"


def _verdict(repro: Reproduction, sigma: float, best: dict[float, dict[str, float]], cfg) -> None:
    """Does 96.10% after denoising hold at the calibrated sigma? And the sigma-0.5 target."""
    with repro.experiment("claim check") as exp:
        for level, target, published in ((sigma, PUBLISHED["denoised"], True), (SECOND_SIGMA, 97.0, False)):
            metric = f"best_denoised_accuracy_pct_sigma_{level:g}"
            if not best[level]:
                exp.add(metric, None, None, n_test=cfg.n_test, note="not run: no denoiser registered")
                continue
            name, value = max(best[level].items(), key=lambda kv: kv[1])
            verdict = "reached" if value >= target else "NOT reached"
            what = "the report's 96.10% after denoising" if published else "our target of >= 97% (full budget)"
            # The best of any denoiser is ours, not the report's model: the published 96.10% sits
            # on the report's autoencoder's own row, and is only named here.
            note = f"best of denoise-bench: {what} {verdict} at sigma {level:g}: best is {name} with {value:.2f}% ({repro.budget} budget)"
            exp.add(metric, None, value, n_test=cfg.n_test, note=note, reading=reading(), deviations=deviations(cfg))
