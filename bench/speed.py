"""``python -m bench speed``: throughput of the harness's hot paths as ratios against a
reference measured in the same process (scikit-image's per-image loop for the metrics)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from bench import metrics
from bench.noise import Noise

__all__ = ["images_per_second", "metric_speed"]


def images_per_second(fn: Callable[[], object], n_images: int, *, repeats: int = 5) -> float:
    """Warm, median-of-repeats throughput of ``fn`` processing ``n_images``."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n_images / statistics.median(times)


def metric_speed(*, n_images: int = 4096, n_reference: int = 256, seed: int = 0) -> list[dict]:
    """Our batched SSIM/PSNR against scikit-image's per-image loop on 28x28 grey images."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    generator = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(n_images, 1, 30, 30, generator=generator), 3, 1)
    noisy = Noise("gaussian", 0.2).apply(clean, seed=seed)
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
        fast = images_per_second(ours, n_images)
        slow = images_per_second(reference, n_reference, repeats=3)
        rows.append(
            {"metric": name, "ours_images_per_s": fast, "skimage_loop_images_per_s": slow, "speedup": fast / slow}
        )
    return rows


def main() -> int:
    print(f"torch threads: {torch.get_num_threads()}")
    for row in metric_speed():
        print(
            f"{row['metric']:<5} ours {row['ours_images_per_s']:>10,.0f} img/s   scikit-image loop "
            f"{row['skimage_loop_images_per_s']:>8,.0f} img/s   speed-up x{row['speedup']:.0f}"
        )
    return 0
