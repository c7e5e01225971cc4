"""``python -m bench speed``: throughput of every classical entry and of the metrics, each beside
the library a user would otherwise call, measured in the same process, as ratios.

References: scipy.ndimage on the same batch (median, Gaussian), scikit-image's per-image loop
(TV, NL-means, wavelet, SSIM, PSNR) and the ``bm3d`` package (when installed) for bm3d_torch.
Each repeat times ours and the reference back to back, so a loaded machine slows both alike;
the figures are medians over repeats. ``--device cuda`` adds a GPU column for the torch entries
(same batch, synchronized) and its ratio to the CPU.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bench import metrics
from bench.cost import timing
from bench.cost.references import FIXED, batch, entry, references
from bench.registry import DENOISERS

__all__ = ["images_per_second", "metric_speed", "classical_speed", "format_table", "main"]


def images_per_second(fn: Callable[[], object], n_images: int, *, repeats: int = 5) -> float:
    """Warm, median-of-repeats throughput of ``fn`` processing ``n_images``."""
    return n_images / timing.median_pass(fn, repeats).wall


@dataclass(frozen=True)
class Case:
    """One timed comparison: ``ours(batch)`` against ``reference(numpy batch)``."""

    name: str
    ours: Callable[[Tensor], object]
    n_ours: int
    reference_name: str
    reference: Callable[[np.ndarray], object] | None
    n_reference: int


def classical_cases(n_images: int, *, quick: bool = False, entries: list[str] | None = None) -> list[Case]:
    """The classical entries with a reference (those in ``entries`` if given); slow ones time
    fewer images (images/s is per image)."""
    cases = []
    for name, (label, reference, n_reference) in references().items():
        if name not in DENOISERS.names() or (entries is not None and name not in entries):
            continue
        n_ours = (
            min(n_images, 256 if name == "bm3d_torch" else 512)
            if name in ("bm3d_torch", "nlm", "wavelet")
            else n_images
        )
        if quick:
            n_ours, n_reference = min(n_ours, 64), min(n_reference, 2 if name == "bm3d_torch" else 32)
        cases.append(Case(name, entry(name), n_ours, label, reference, min(n_reference, n_images)))
    return cases


def _compare(case: Case, noisy: Tensor, devices: list[torch.device], repeats: int) -> dict:
    """Interleaved repeats of ours on each device and of the reference; median images/s."""
    inputs = {device: noisy[: case.n_ours].to(device) for device in devices}
    reference_input = noisy[: case.n_reference].numpy().astype(np.float32)
    timings: dict[str, list[float]] = {str(d): [] for d in devices} | {"reference_ips": []}
    for device in devices:
        case.ours(inputs[device])  # warm-up (and CUDA initialisation)
    if case.reference is not None:
        case.reference(reference_input[:1])
    for _ in range(repeats):
        for device in devices:
            batch = inputs[device]
            timings[str(device)].append(case.n_ours / timing.seconds(lambda b=batch: case.ours(b), device))
        if case.reference is not None:
            timings["reference_ips"].append(case.n_reference / timing.seconds(lambda: case.reference(reference_input)))
    row = {"entry": case.name, "reference": case.reference_name}
    for key, values in timings.items():
        row[key] = statistics.median(values) if values else float("nan")
    return row


def classical_speed(
    *,
    devices: list[torch.device],
    n_images: int = 4096,
    repeats: int = 3,
    quick: bool = False,
    seed: int = 0,
    entries: list[str] | None = None,
) -> list[dict]:
    """One row per classical entry: images/s per device, the reference's, and the ratios."""
    noisy, _ = batch(n_images, seed)
    cases = classical_cases(n_images, quick=quick, entries=entries)
    return [_compare(case, noisy, devices, repeats) for case in cases]


def metric_speed(*, n_images: int = 4096, n_reference: int = 256, seed: int = 0, repeats: int = 5) -> list[dict]:
    """Our batched SSIM/PSNR against scikit-image's per-image loop on 28x28 grey images."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    noisy, clean = batch(n_images, seed)
    ref_clean, ref_noisy = (t[:n_reference, 0].double().numpy() for t in (clean, noisy))
    opts = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    rows = []
    for name, ours, reference in (
        (
            "ssim",
            lambda: metrics.ssim(noisy, clean),
            lambda: [structural_similarity(a, b, **opts) for a, b in zip(ref_noisy, ref_clean)],
        ),
        (
            "psnr",
            lambda: metrics.psnr(noisy, clean),
            lambda: [peak_signal_noise_ratio(b, a, data_range=1.0) for a, b in zip(ref_noisy, ref_clean)],
        ),
    ):
        ours(), reference()
        fast, slow = [], []
        for _ in range(repeats):
            fast.append(n_images / timing.seconds(ours))
            slow.append(n_reference / timing.seconds(reference))
        fast_median, slow_median = statistics.median(fast), statistics.median(slow)
        rows.append(
            {
                "metric": name,
                "ours_images_per_s": fast_median,
                "skimage_loop_images_per_s": slow_median,
                "speedup": fast_median / slow_median,
            }
        )
    return rows


def format_table(rows: list[dict], devices: list[torch.device]) -> str:
    """The rows as one aligned text table: per-device images/s, the reference's, the ratios."""
    names = [str(d) for d in devices]
    header = ["entry", *(f"{n} img/s" for n in names), "reference", "ref img/s", *(f"{n}/ref" for n in names)]
    if len(names) > 1:
        header.append(f"{names[1]}/{names[0]}")
    lines = []
    for row in rows:
        values, ref = [row[n] for n in names], row["reference_ips"]
        cells = [row["entry"], *map(_number, values), row["reference"], _number(ref), *(_ratio(v, ref) for v in values)]
        if len(names) > 1:
            cells.append(_ratio(values[1], values[0]))
        lines.append(cells)
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) for cells in [header, *lines])


def _number(value: float) -> str:
    return "-" if value != value else f"{value:,.0f}"


def _ratio(value: float, reference: float) -> str:
    return "-" if value != value or reference != reference else f"x{value / reference:.1f}"


def _entries(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = text.split(",")
    unknown = [name for name in names if name not in FIXED]
    if unknown:
        raise ValueError(f"--entries {text!r} names {', '.join(unknown)}; expected some of: {', '.join(FIXED)}")
    return names


def _devices(choice: str) -> list[torch.device]:
    if choice == "cpu":
        return [torch.device("cpu")]
    if not torch.cuda.is_available():
        if choice == "cuda":
            raise ValueError("--device cuda needs a CUDA GPU; none is visible (torch.cuda.is_available() is False)")
        return [torch.device("cpu")]
    return [torch.device("cpu"), torch.device("cuda")]


def main(argv: list[str] | None = None) -> int:
    """Print the tables; ``argv`` holds this command's options (None: the defaults)."""
    parser = argparse.ArgumentParser(prog="python -m bench speed", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        default="cpu",
        help="cpu: one column; cuda (or auto with a GPU): CPU and GPU columns and their ratio",
    )
    parser.add_argument("--n-images", type=int, default=4096, help="28x28 images per timed batch (default 4096)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are shown (default 3)")
    parser.add_argument("--quick", action="store_true", help="small batches and one repeat (a smoke test)")
    parser.add_argument(
        "--sizes",
        help="comma-separated image sides, such as 28,64,256,512: seconds per megapixel of each entry and its "
        "reference at each size on photograph crops, then peak memory at the largest (bench.cost.speed_sizes)",
    )
    parser.add_argument("--entries", help="comma-separated entries to time (default: every classical entry)")
    parser.add_argument("--no-memory", action="store_true", help="with --sizes: skip the peak-memory subprocesses")
    # One thread by default: every reference runs on one core, so the ratios compare like with
    # like; and on a shared 2-core machine two torch threads measured up to 100x slower.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the references)")
    args = parser.parse_args([] if argv is None else argv)
    if args.threads < 1:
        raise ValueError(f"--threads {args.threads} is invalid; expected an integer >= 1")
    torch.set_num_threads(args.threads)
    # The allocator setting every run uses (bench.commands, the workers): without it each
    # batch-sized output is a fresh mmap and pays page faults, which a benchmark never sees.
    from bench.device import tune_cpu_allocator

    tune_cpu_allocator()
    if args.n_images < 1 or args.repeats < 1:
        raise ValueError(f"--n-images {args.n_images} and --repeats {args.repeats} must both be integers >= 1")
    entries = _entries(args.entries)
    if args.sizes is not None:
        from bench.cost.speed_sizes import parse_sizes, run_sizes

        run_sizes(parse_sizes(args.sizes), entries=entries, repeats=args.repeats, memory=not args.no_memory)
        return 0
    devices = _devices(args.device)
    n_images, repeats = (min(args.n_images, 256), 1) if args.quick else (args.n_images, args.repeats)
    print(
        f"torch threads: {torch.get_num_threads()}; {n_images} images of 28x28; medians of {repeats} interleaved repeats"
    )
    rows = classical_speed(devices=devices, n_images=n_images, repeats=repeats, quick=args.quick, entries=entries)
    print(format_table(rows, devices))
    for row in metric_speed(n_images=n_images, n_reference=min(256, n_images), repeats=repeats):
        print(
            f"{row['metric']:<5} ours {row['ours_images_per_s']:>10,.0f} img/s   scikit-image loop "
            f"{row['skimage_loop_images_per_s']:>8,.0f} img/s   speed-up x{row['speedup']:.0f}"
        )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
