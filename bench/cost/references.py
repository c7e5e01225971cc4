"""The classical entries the speed benchmarks time and the library each is set beside: fixed
parameters, a small fitting batch, and each reference as a callable (``bench.cost.speed`` and
``bench.cost.speed_sizes`` both read them)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from bench.noise import Noise
from bench.registry import DENOISERS

__all__ = ["FIXED", "batch", "references", "entry"]

#: Parameters of each timed entry: fixed (the tuned values on gaussian 0.1), so that only
#: ``denoise`` is timed, never the tuning.
FIXED = {
    "median": {"size": 3},
    "gaussian_blur": {"sigma": 0.5},
    "tv_chambolle": {"weight": 0.04},
    "wavelet": {"wavelet": "db2", "levels": 2, "mode": "soft", "sigma_scale": 1.0},
    "nlm": {"patch_size": 5, "patch_distance": 5, "h_scale": 1.2},
    "bm3d_torch": {"sigma_scale": 1.0},
}


def batch(n: int, seed: int) -> tuple[Tensor, Tensor]:
    # Smooth 28x28 images with gaussian 0.1 noise: the size every seed report uses.
    generator = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(n, 1, 30, 30, generator=generator), 3, 1)
    return Noise("gaussian", 0.1).apply(clean, seed=seed + 1), clean


def references() -> dict[str, tuple[str, Callable[[np.ndarray], object] | None, int]]:
    """Each entry's reference: its label, a callable on N x C x H x W float numpy, images per call."""
    import scipy.ndimage as ndi
    from skimage.restoration import denoise_tv_chambolle, denoise_wavelet

    from baselines.nlm import skimage_nl_means

    def per_image(fn: Callable[[np.ndarray], object]) -> Callable[[np.ndarray], object]:
        return lambda planes: [fn(plane[0]) for plane in planes]

    nlm = FIXED["nlm"]
    refs = {
        "median": ("scipy.ndimage.median_filter", lambda x: ndi.median_filter(x, size=(1, 1, 3, 3)), 4096),
        "gaussian_blur": ("scipy.ndimage.gaussian_filter", lambda x: ndi.gaussian_filter(x, (0, 0, 0.5, 0.5)), 4096),
        "tv_chambolle": ("skimage loop", per_image(lambda p: denoise_tv_chambolle(p, weight=0.04)), 256),
        "wavelet": ("skimage loop", per_image(lambda p: denoise_wavelet(p, wavelet="db2", wavelet_levels=2)), 256),
        "nlm": ("skimage loop", lambda x: skimage_nl_means(x.astype(np.float64), **nlm), 256),
        "bm3d_torch": ("bm3d package", None, 4),
    }
    try:
        import bm3d  # noqa: F401  (the optional package; absent: no reference column)

        from baselines.bm3d_package import bm3d_denoise

        refs["bm3d_torch"] = ("bm3d package", lambda x: bm3d_denoise(x.astype(np.float64), sigma_scale=1.0), 4)
    except ImportError:
        pass
    return refs


def entry(name: str) -> Callable[[Tensor], object]:
    model = DENOISERS.create(name, **FIXED[name])
    noisy, clean = batch(8, seed=5)
    model.fit(noisy, clean)  # every parameter is fixed: fitting only records them
    return model.denoise
