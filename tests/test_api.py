"""The Python API: bench.run registers a user's denoiser, runs a grid and returns its leaderboard."""

from __future__ import annotations

import pytest
import torch

import bench
from bench.estimator import Denoiser


class Halve(Denoiser):
    """Halves every pixel: a denoiser that is not registered beforehand."""

    name = "halve_api_test"

    def __init__(self, *, factor: float = 0.5) -> None:
        self.factor = factor

    def fit(self, noisy, clean, *, seed=0, noise=None):
        self.fitted_ = True
        return self

    def denoise(self, noisy):
        self.check_fitted()
        return torch.clamp(noisy * self.factor, 0, 1)


def test_run_registers_an_instance_with_its_parameters_and_returns_the_leaderboard(tmp_path):
    board = bench.run(
        "smoke",
        denoisers=[Halve(factor=0.25), "identity"],
        noises=["gaussian"],
        classifiers=[],
        out=tmp_path,
        log=lambda line: None,
    )
    assert sorted(board.denoiser) == ["halve_api_test", "identity"] and (board.status == "ok").all()
    assert '"factor": 0.25' in board.set_index("denoiser").loc["halve_api_test", "denoiser_params"]
    assert board.equals(bench.load_results(tmp_path / "smoke"))


def test_a_denoiser_defined_in_main_cannot_go_to_worker_processes(tmp_path):
    in_main = type("InMain", (Halve,), {"name": "in_main_api_test", "__module__": "__main__"})
    with pytest.raises(ValueError, match="cannot reach worker processes"):
        bench.run("smoke", denoisers=[in_main], workers=2, out=tmp_path, log=lambda line: None)
    assert not (tmp_path / "smoke").exists()
