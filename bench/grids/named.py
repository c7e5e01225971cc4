"""The named grids: ``smoke``, ``quick``, ``reference``, ``full`` and ``natural``.

Each is a function of the data directory (``quick`` and ``reference`` add whatever real data
is found locally) that builds a validated ``bench.grids.Grid``; ``bench.grids.named_grid``
looks them up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.grids.grid import Grid, load_grid_file
from bench.registry import CLASSIFIERS, DENOISERS

__all__ = ["NAMED_GRIDS", "named_grid", "resolve_grid"]


def _has_local(name: str, data_dir) -> bool:
    from bench.data import find

    return find(name, data_dir) is not None


# Named grids are functions of the data directory: `quick` adds whatever real data is found locally.
NAMED_GRIDS: dict[str, Callable[..., Grid]] = {}


def _named(fn: Callable[..., Grid]) -> Callable[..., Grid]:
    NAMED_GRIDS[fn.__name__] = fn
    return fn


@_named
def smoke(data_dir=None) -> Grid:
    """Seconds on a CPU: the embedded digits, two noises, a few denoisers of each family."""
    denoisers = [n for n in ("identity", "median", "gaussian_blur", "tv_chambolle", "conv_ae_fmnist") if n in DENOISERS]
    classifiers = [n for n in ("svm_rbf",) if n in CLASSIFIERS]
    params = {
        n: r.entry(n).test_params for r, names in ((DENOISERS, denoisers), (CLASSIFIERS, classifiers)) for n in names
    }
    return Grid.build(
        name="smoke",
        datasets=["digits"],
        noises={"gaussian": [0.2], "salt_pepper": [0.1]},
        denoisers=denoisers,
        classifiers=classifiers,
        n_train=200,
        n_test=200,
        params={n: p for n, p in params.items() if p},
        description="seconds on a CPU; embedded 8x8 digits upscaled to 28x28",
    )


@_named
def quick(data_dir=None) -> Grid:
    """The default: minutes on a 2-core CPU, embedded data plus local real data.

    Every installed denoiser and classifier except those too slow for minutes on a CPU (their
    ``budgets`` have no ``quick`` entry; the full grid runs them).
    """
    datasets = ["digits"] + [n for n in ("mnist", "fashion-mnist") if _has_local(n, data_dir)]
    quick_enough = [n for n in DENOISERS.names() if _runs_in(DENOISERS.entry(n).budgets, "quick")]
    denoisers, note = _installed_only(quick_enough)
    classifiers = [n for n in CLASSIFIERS.names() if _runs_in(CLASSIFIERS.entry(n).budgets, "quick")]
    return Grid.build(
        name="quick",
        datasets=datasets,
        noises={"gaussian": [0.2], "salt_pepper": [0.1], "masking": [0.5]},
        denoisers=denoisers,
        n_train=1000,
        n_test=500,
        params=_budget_params("quick"),
        classifiers=classifiers,
        description="minutes on a 2-core CPU; reduced subsets and training budgets" + note,
    )


@_named
def full(data_dir=None) -> Grid:
    """MNIST, Fashion-MNIST and CIFAR-10, every noise at 3-4 levels, full training (one GPU box)."""
    denoisers, note = _installed_only(DENOISERS.names())
    return Grid.build(
        name="full",
        datasets=["mnist", "fashion-mnist", "cifar10"],
        noises={
            "gaussian": [0.1, 0.2, 0.3, 0.5],
            "salt_pepper": [0.05, 0.1, 0.3],
            "masking": [0.2, 0.5, 0.7],
            "impulse": [0.1, 0.3, 0.5],
            "poisson": [10.0, 30.0, 100.0],
            "speckle": [0.2, 0.5, 1.0],
        },
        denoisers=denoisers,
        n_train=60000,
        n_test=10000,
        # "auto": a fit per level for networks too, as long as no kind's blind fits serve every
        # level (bench.grids.grid.BLIND_SERVES_EVERY_LEVEL); a kind that does gets one blind fit
        # plus one at its middle level instead of one per level.
        train_levels="auto",
        params=_budget_params("full"),
        classifiers=list(CLASSIFIERS.names()),
        description="full data and training; meant for a GPU" + note,
    )


# The reference grid: every classical filter, the strongest networks (DnCNN, the U-Net and the
# best entry of each seed family) and three classifiers: 13 to 22 hours on a 2-core CPU with
# --workers 2 (13 by single fits timed idle; `python -m bench plan --grid reference --workers 2`
# probed on a busy machine says 21.9 h). Budgets are optimizer steps, set from a
# doubling sweep on Fashion-MNIST gaussian 0.1 (README, "Reference budgets"): DnCNN and the
# U-Net, the rows people read first, get 9,600 steps (the U-Net's recipe of 30 epochs ends it at
# 8,460), where the U-Net reaches 28.17 dB (26.91 at the old 1,200; 27.90 at 4,800); the seed autoencoders get
# 4,800 (dense_dae, seconds a fit, 9,600). Those still gain 0.6-1.5 dB a doubling, but sit 6 dB
# below the U-Net, so more steps would not change a winner; where their curves still fall, their
# rows carry converged = False.
_REFERENCE_NETWORKS = ("dncnn", "unet", "alexnet_ae", "conv_ae_fmnist", "conv_ae_deep", "dense_dae", "bn_conv_ae")
_REFERENCE_PARAMS: dict[str, dict[str, Any]] = {
    **{name: {"max_steps": 4800, "batch_size": 32} for name in _REFERENCE_NETWORKS},
    "dncnn": {"depth": 10, "width": 32, "max_steps": 9600, "batch_size": 16},
    "unet": {"width": 16, "max_steps": 9600, "batch_size": 32},
    "dense_dae": {"max_steps": 9600, "batch_size": 32},
    "alexnet_ae": {"width": 0.125, "max_steps": 4800, "batch_size": 32},
    "conv_ae_deep": {"max_steps": 4800, "batch_size": 16},
    "bm3d": {"eval_images": 20, "subsample": 8},
    "svm_rbf": {"max_train": 5000},
    "cnn_small": {"epochs": 10, "patience": 3},
    "stacked_ae_softmax": {"pretrain_epochs": 5, "epochs": 20},
}
_CLASSICAL = ("identity", "median", "gaussian_blur", "tv_chambolle", "wavelet", "nlm", "bm3d_torch", "bm3d")


@_named
def reference(data_dir=None) -> Grid:
    """MNIST and Fashion-MNIST (CIFAR-10 when found), 6 noises x 3 levels: 13-22 h on 2 CPU cores.

    Every classical filter and the strongest networks, 2,000 test images, ``train_levels="auto"``.
    """
    datasets = ["mnist", "fashion-mnist"] + ["cifar10"] * _has_local("cifar10", data_dir)
    denoisers, note = _installed_only([n for n in (*_CLASSICAL, *_REFERENCE_NETWORKS) if n in DENOISERS])
    classifiers = [n for n in ("cnn_small", "svm_rbf", "stacked_ae_softmax") if n in CLASSIFIERS]
    entries = set(denoisers) | set(classifiers)
    return Grid.build(
        name="reference",
        datasets=datasets,
        noises={
            "gaussian": [0.1, 0.3, 0.5],
            "salt_pepper": [0.05, 0.1, 0.3],
            "masking": [0.2, 0.5, 0.7],
            "impulse": [0.1, 0.3, 0.5],
            "poisson": [10.0, 30.0, 100.0],
            "speckle": [0.2, 0.5, 1.0],
        },
        denoisers=denoisers,
        classifiers=classifiers,
        n_train=10000,
        n_test=2000,
        train_levels="auto",
        params={n: p for n, p in _REFERENCE_PARAMS.items() if n in entries},
        description="the reference run: 2,000 test images, reduced budgets; 13-22 hours on a 2-core CPU" + note,
    )


# The literature's protocol: unclipped Gaussian noise at sigma 15, 25 and 50 (of 255) on BSD68 and
# Set12 (grey; fits on Train400) and CBSD68 (colour; the classical filters only, as there is no
# colour training set here). Every test image is scored at its own size. The networks take their
# ``natural`` budgets (patch training on Train400, sized for a CPU).
_NATURAL_NETWORKS = ("dncnn", "unet")
_NATURAL_PARAMS: dict[str, dict[str, Any]] = {
    # BM3D tunes its sigma multiplier on 4 Train400 images (16 runs of ~3 s) and scores all images.
    "bm3d": {"subsample": 4},
}


@_named
def natural(data_dir=None) -> Grid:
    """BSD68 and Set12 (grey) at awgn 15/25/50 with every classical filter, DnCNN and the U-Net,
    plus CBSD68 (colour) with the classical filters: the published tables' protocol. About 12 h
    on 2 CPU workers (`bench plan --grid natural --workers 2`: 11.9 h)."""
    denoisers, note = _installed_only([n for n in (*_CLASSICAL, *_NATURAL_NETWORKS) if n in DENOISERS])
    budgets = {n: p for n, p in _budget_params("natural").items() if n in denoisers}
    return Grid.build(
        name="natural",
        datasets=["bsd68", "set12", "cbsd68"],
        noises={"awgn": [15.0, 25.0, 50.0]},
        denoisers=denoisers,
        n_train=400,
        n_test=68,
        train_levels="auto",
        params={**budgets, **{n: p for n, p in _NATURAL_PARAMS.items() if n in denoisers}},
        description="natural images at their own sizes, unclipped Gaussian noise (sigma/255); "
        "networks fit on Train400 and skip the colour set" + note,
    )


def _installed_only(names) -> tuple[list[str], str]:
    """The entries whose optional packages (``requires``) are installed, and a note naming the
    others: a named grid leaves them out rather than fail their cells (naming one with
    ``--denoisers`` still runs it, and its cells say what to install)."""
    missing = [n for n in names if DENOISERS.entry(n).missing_packages]
    note = f"; not installed, left out: {', '.join(missing)}" if missing else ""
    return [n for n in names if n not in missing], note


def _budget_params(budget: str) -> dict[str, dict[str, Any]]:
    """Each entry's grid settings for the named grid ``budget`` (``quick`` or ``full``): its
    ``budgets`` attribute's entry of that name."""
    out = {}
    for registry in (DENOISERS, CLASSIFIERS):
        for name in registry.names():
            budgets = registry.entry(name).budgets
            if budget in budgets:
                out[name] = dict(budgets[budget])
    return out


def _runs_in(budgets: dict[str, dict[str, Any]], budget: str) -> bool:
    """An entry declaring budgets runs in the grids they name; one declaring none runs in every grid."""
    return not budgets or budget in budgets


def named_grid(name: str, *, data_dir=None) -> Grid:
    """The named grid ``name`` (``bench.grids.named``) for the data found under ``data_dir``."""
    if name not in NAMED_GRIDS:
        raise ValueError(f"unknown grid {name!r}; expected one of: {', '.join(NAMED_GRIDS)} or a .toml file")
    return NAMED_GRIDS[name](data_dir)


def resolve_grid(name_or_path: str, *, data_dir=None) -> Grid:
    """A named grid, or a TOML grid file when the argument ends in .toml."""
    if name_or_path.endswith(".toml"):
        return load_grid_file(name_or_path)
    return named_grid(name_or_path, data_dir=data_dir)
