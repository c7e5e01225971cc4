"""Plans and runs the cells of a grid: fit (or load a cached fit), denoise, score, store.

Datasets load and are validated before the first cell runs. Each finished cell is one
store transaction; a cell that raises or yields NaN is stored as ``failed`` with a one-line
reason and the run goes on. Everything noisy derives its seed from names (bench.noise).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench import cache, metrics
from bench.classify import ClassifierPool
from bench.data import load
from bench.estimator import as_float_images
from bench.grids import Cell, Grid
from bench.noise import Noise, TrainingNoise, derive_seed
from bench.registry import DENOISERS
from bench.store import Store

__all__ = ["run_grid", "RunSummary", "resolve_device", "versions", "CellRunner"]

N_SAMPLES = 8  # test images kept per cell for the report's image grids


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device {device!r} is unknown; expected auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    return torch.device(device)


def versions() -> dict[str, str]:
    import numpy
    import skimage
    import sklearn

    from bench import __version__

    return {
        "denoise-bench": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "numpy": numpy.__version__, "scikit-image": skimage.__version__, "scikit-learn": sklearn.__version__,
    }  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:500]


def _to_uint8(images: Tensor):
    return images[:N_SAMPLES].mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    out_dir: Path | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass
class CellRunner:
    """Runs cells of one grid, caching data, noisy sets and fits across them."""

    grid: Grid
    device: torch.device
    out_dir: Path
    data_dir: Any = None
    download: bool = False
    _data: dict[str, tuple[Tensor, Tensor, Tensor, Tensor]] = field(default_factory=dict)
    _noisy: dict[tuple, Tensor] = field(default_factory=dict)
    _fits: dict[str, tuple[Any, float]] = field(default_factory=dict)
    _n_classes: dict[str, int] = field(default_factory=dict)
    classifiers: ClassifierPool | None = None

    def __post_init__(self) -> None:
        self.classifiers = ClassifierPool(self.out_dir / "cache", self.device)
        self.versions = versions()

    def prepare(self) -> None:
        """Load every dataset (bad data fails here, before any cell runs)."""
        for name in self.grid.datasets:
            ds = load(name, data_dir=self.data_dir, download=self.download)
            self._n_classes[name] = len(ds.classes)
            order = torch.randperm(
                len(ds.train_images),
                generator=torch.Generator().manual_seed(derive_seed(self.grid.seed, name, "train-subset")),
            )
            train = order[: self.grid.n_train]
            put = lambda t: as_float_images(t).to(self.device)  # noqa: E731
            self._data[name] = (
                put(ds.train_images[train]), ds.train_labels[train].to(self.device),
                put(ds.test_images[: self.grid.n_test]), ds.test_labels[: self.grid.n_test].to(self.device),
            )  # fmt: skip

    def test_set(self, cell: Cell) -> tuple[Tensor, Tensor]:
        """(clean, noisy) test images of the cell: every denoiser sees the same noisy images."""
        clean = self._data[cell.dataset][2]
        key = (cell.dataset, cell.noise, cell.level)
        if key not in self._noisy:
            self._noisy[key] = Noise(cell.noise, cell.level).apply(clean, seed=self.noise_seed(cell))
        return clean, self._noisy[key]

    def noise_seed(self, cell: Cell) -> int:
        return derive_seed(cell.seed, cell.dataset, "test", cell.noise, cell.level)

    def training_noise(self, cell: Cell) -> TrainingNoise:
        if cell.train_level in ("blind", "mixed"):
            return TrainingNoise(cell.noise, mode=str(cell.train_level))
        return TrainingNoise(cell.noise, float(cell.train_level))

    def training_pairs(self, cell: Cell) -> tuple[Tensor, Tensor]:
        clean = self._data[cell.dataset][0]
        train_noise = self.training_noise(cell)
        seed = derive_seed(cell.seed, cell.dataset, "train", cell.noise, cell.train_level)
        if train_noise.mode == "fixed":
            return train_noise.pick(None).apply(clean, seed=seed), clean
        # Blind/mixed pairs: chunks of the training set at levels (and kinds) drawn from one seed.
        generator = torch.Generator().manual_seed(seed)
        chunks = [train_noise.pick(generator).apply(c, seed=seed + i) for i, c in enumerate(clean.split(64))]
        return torch.cat(chunks), clean

    def fitted(self, cell: Cell) -> tuple[Any, float]:
        """The cell's fitted denoiser and its fit seconds; from memory, the disk cache, or a fresh fit."""
        key = cache.fit_key(cell.fit_spec)
        if key in self._fits:
            return self._fits[key]
        model = DENOISERS.create(cell.denoiser, **dict(cell.params))
        stem = self.out_dir / "cache" / key
        extra = cache.load_fitted(model, stem, self.device) if cache.is_cacheable(model) else None
        if extra is not None:
            fit_seconds = float(extra.get("fit_seconds", 0.0))
        else:
            noisy, clean = self.training_pairs(cell)
            fit_seed = derive_seed(cell.seed, "fit", cell.dataset, cell.noise, cell.train_level, cell.denoiser)
            _sync(self.device)
            start = time.perf_counter()
            model.fit(noisy, clean, seed=fit_seed, noise=self.training_noise(cell))
            _sync(self.device)
            fit_seconds = time.perf_counter() - start
            if cache.is_cacheable(model):
                cache.save_fitted(model, stem, extra={"fit_seconds": fit_seconds})
        self._fits = {key: (model, fit_seconds)}  # keep one: a matrix grid reuses it for the next levels
        return model, fit_seconds

    def timed_denoise(self, model: Any, noisy: Tensor) -> tuple[Tensor, float]:
        """Denoised images and warm images/s (median of up to 3 timed passes)."""
        model.denoise(noisy[: min(len(noisy), 16)])
        times, out = [], None
        while len(times) < 3 and sum(times) < 2.0:
            _sync(self.device)
            start = time.perf_counter()
            out = model.denoise(noisy)
            _sync(self.device)
            times.append(time.perf_counter() - start)
        return out, len(noisy) / max(statistics.median(times), 1e-9)

    def run_cell(self, cell: Cell) -> tuple[dict, list[dict], dict]:
        """Row, classifier rows and sample images of one cell; raises on failure."""
        clean, noisy = self.test_set(cell)
        model, fit_seconds = self.fitted(cell)
        test_labels = self._data[cell.dataset][3]
        # Slow methods (BM3D) may score only the first `eval_images` test images; n_test says so.
        n_eval = min(len(clean), getattr(model, "eval_images", None) or len(clean))
        clean, noisy, test_labels = clean[:n_eval], noisy[:n_eval], test_labels[:n_eval]
        denoised, images_per_second = self.timed_denoise(model, noisy)
        _check_output(denoised, noisy, cell.denoiser)
        psnr = metrics.mean_ci(metrics.psnr(denoised, clean), seed=cell.seed)
        ssim = metrics.mean_ci(metrics.ssim(denoised, clean), seed=cell.seed)
        row = {
            **_cell_columns(cell), "psnr": psnr[0], "psnr_ci_low": psnr[1], "psnr_ci_high": psnr[2],
            "ssim": ssim[0], "ssim_ci_low": ssim[1], "ssim_ci_high": ssim[2],
            "mse": float(metrics.mse(denoised, clean).mean()),
            "psnr_noisy": float(metrics.psnr(noisy, clean).mean()), "ssim_noisy": float(metrics.ssim(noisy, clean).mean()),
            "fit_seconds": fit_seconds, "images_per_second": images_per_second,
            "params": int(model.n_parameters()), "device": str(self.device), "seed": self.noise_seed(cell),
            "status": "ok", "error": None, "history": getattr(model, "history_", None), "versions": self.versions,
            "n_test": n_eval,
            "fit_state": model.fitted_state() if hasattr(model, "fitted_state") else None,
        }  # fmt: skip
        samples = {"clean": _to_uint8(clean), "noisy": _to_uint8(noisy), "denoised": _to_uint8(denoised)}
        train_images, train_labels = self._data[cell.dataset][:2]
        classifier_rows = self.classifiers.score(
            cell, (train_images, train_labels), (clean, noisy, denoised, test_labels), self._n_classes[cell.dataset]
        )
        return row, classifier_rows, samples


def _check_output(denoised: Tensor, noisy: Tensor, name: str) -> None:
    if not isinstance(denoised, Tensor) or denoised.shape != noisy.shape:
        got = tuple(denoised.shape) if isinstance(denoised, Tensor) else type(denoised).__name__
        raise ValueError(f"denoiser {name!r} returned {got}; expected shape {tuple(noisy.shape)}")
    if not torch.isfinite(denoised).all():
        raise ValueError(f"denoiser {name!r} returned NaN or infinite values")
    if denoised.min() < -1e-4 or denoised.max() > 1 + 1e-4:
        raise ValueError(
            f"denoiser {name!r} returned values outside [0, 1]: [{float(denoised.min()):.3g}, {float(denoised.max()):.3g}]"
        )


def _cell_columns(cell: Cell) -> dict[str, Any]:
    return {
        "key": cell.key, "dataset": cell.dataset, "noise": cell.noise, "level": cell.level,
        "train_level": str(cell.train_level), "denoiser": cell.denoiser, "denoiser_params": dict(cell.params),
        "n_train": cell.n_train, "n_test": cell.n_test, "base_seed": cell.seed,
    }  # fmt: skip


def _progress(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", disable=not sys.stderr.isatty(), leave=False)


def _log_line(index: int, total: int, cell: Cell, row: dict) -> str:
    prefix = f"[{index}/{total}] {row['status']:<6} {cell.label}"
    if row["status"] != "ok":
        return f"{prefix}: {row['error']}"
    return f"{prefix}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}, {row['images_per_second']:.0f} img/s, fit {row['fit_seconds']:.1f} s"


def run_grid(
    grid: Grid, *, out_dir: str | Path = "results", data_dir=None, download: bool = False,
    device: str = "auto", argv: list[str] | None = None, log: Callable[[str], None] = print,
) -> RunSummary:  # fmt: skip
    """Run every unfinished cell of ``grid`` into ``out_dir/<grid name>/``; write the CSVs."""
    from bench.report import write_outputs

    started = time.perf_counter()
    run_dir = Path(out_dir) / grid.name
    runner = CellRunner(grid, resolve_device(device), run_dir, data_dir, download)
    runner.prepare()
    summary = RunSummary(out_dir=run_dir)
    with Store(run_dir / "store.sqlite") as store:
        done = store.finished_keys()
        cells = grid.cells()
        todo = [c for c in cells if c.key not in done]
        summary.skipped = len(cells) - len(todo)
        if summary.skipped:
            log(f"{summary.skipped} of {len(cells)} cells already in {run_dir / 'store.sqlite'}; running {len(todo)}")
        run_id = store.start_run(
            grid=grid.name, spec=grid.to_dict(), argv=argv or [], device=str(runner.device), versions=runner.versions
        )
        with _progress(len(todo)) as bar:
            for index, cell in enumerate(todo, 1):
                row, classifier_rows, samples = _run_one(runner, cell)
                store.put_cell(row, classifier_rows, samples)
                summary.ok += row["status"] == "ok"
                summary.failed += row["status"] != "ok"
                bar.update()
                (bar.write if not bar.disable else log)(_log_line(index, len(todo), cell, row))
        store.finish_run(run_id, ok=summary.ok, failed=summary.failed)
        write_outputs(store, run_dir)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_one(runner: CellRunner, cell: Cell) -> tuple[dict, list[dict], dict | None]:
    try:
        return runner.run_cell(cell)
    except Exception as err:  # one failing cell never kills a run
        row = {
            **_cell_columns(cell),
            "status": "failed",
            "error": one_line(err),
            "device": str(runner.device),
            "seed": runner.noise_seed(cell),
        }
        return row, [], None
