"""``average_of``: the mean of several registered denoisers' outputs.

Averaging networks that were trained apart cancels part of their errors: on Fashion-MNIST
gaussian 0.1, two U-Nets of widths 32 and 48 score higher together than either alone. Each
member is named like a grid entry with its parameters, ``"unet:width=48,precision=bf16"``
(``bench.params``), and a run fits it exactly as that entry would be: as its own cell.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from bench.estimator import Denoiser, Rule
from bench.params import is_member, parse_member
from bench.registry import DENOISERS

__all__ = ["AverageOf"]


def _members_valid(members: Any) -> bool:
    return (
        isinstance(members, list | tuple)
        and len(members) >= 2
        and all(is_member(m, excluding="average_of") for m in members)
    )


@DENOISERS.register(
    "average_of",
    source="ours",
    description="mean of several denoisers' outputs (default: U-Nets of widths 32 and 48), each fitted as its own entry",
    test_params={"members": ["median", "gaussian_blur"]},
)
class AverageOf(Denoiser):
    """The pixel-wise mean of the members' denoised images.

    Parameters
    ----------
    members : list of str
        At least two registered denoisers, each ``"name"`` or ``"name:key=value,..."``.
    """

    name = "average_of"
    param_rules = {"members": Rule(_members_valid, "a list of two or more registered denoisers, 'name:key=value,...'")}

    #: The members are the whole fit: nothing of its own to train or cache.
    own_fit = False
    #: Its default members are networks; a run gives its group a GPU where there is one.
    accelerated = True
    #: Not in the quick grid (its members train in full). In the full grid its first member is
    #: that grid's own unet, whose fit it shares, so it adds one wider U-Net per fit group.
    budgets = {"full": {"members": ("unet", "unet:width=48")}}

    def __init__(self, *, members: tuple[str, ...] = ("unet:precision=bf16", "unet:width=48,precision=bf16")) -> None:
        self.members = members

    def member_specs(self) -> list[tuple[str, dict[str, Any]]]:
        """Each member's entry name and parameters: what a run fits as that member's own cell."""
        return [parse_member(spec) for spec in self.members]

    def fit(self, noisy: Tensor, clean: Tensor, *, seed: int = 0, noise: Any = None) -> AverageOf:
        """Fit every member on the same pairs and seed (a run fits each as its own cell instead)."""
        models = [DENOISERS.create(name, **params) for name, params in self.member_specs()]
        return self.use_fitted([model.fit(noisy, clean, seed=seed, noise=noise) for model in models])

    def use_fitted(self, models: list[Denoiser]) -> AverageOf:
        """Take the members' fitted models, in the order of ``members``; returns self."""
        if len(models) != len(self.members):
            raise ValueError(f"average_of has {len(self.members)} members; got {len(models)} fitted models")
        self.fitted_ = list(models)
        return self

    def denoise(self, noisy: Tensor) -> Tensor:
        self.check_fitted()
        total = torch.zeros_like(noisy, dtype=torch.float32)
        for model in self.fitted_:
            total += model.denoise(noisy).float()
        return total.div_(len(self.fitted_)).clamp_(0.0, 1.0)

    def n_parameters(self) -> int:
        return sum(int(model.n_parameters()) for model in getattr(self, "fitted_", []))
