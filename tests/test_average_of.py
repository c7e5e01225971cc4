import pytest
import torch

from bench.execution.worker import score_or_fail
from bench.execution.workspace import RunContext, preload
from bench.grids import Grid
from bench.params import parse_member
from bench.registry import DENOISERS

DNCNN = "dncnn:epochs=1,depth=3,width=8,batch_size=16,max_steps=4"


def _runner(tmp_path):
    context = RunContext(base_seed=0, n_train=64, n_test=20, cache_dir=str(tmp_path / "cache"), device="cpu")
    return preload(context, ())


def _cell(grid, name):
    return next(c for c in grid.cells() if c.denoiser == name)


def test_a_member_reads_its_parameters_as_set_does():
    assert parse_member("unet:width=48,precision=bf16") == ("unet", {"width": 48, "precision": "bf16"})
    assert parse_member(" median ") == ("median", {})
    assert parse_member("dncnn:lr=1e-3,patience=none") == ("dncnn", {"lr": 0.001, "patience": "none"})
    with pytest.raises(ValueError, match="expected NAME:KEY=VALUE"):
        parse_member("unet:width")


@pytest.mark.parametrize(
    "members", [["median"], ["median", "no_such_filter"], ["median", "average_of"], "median", ["median", "unet:width"]]
)
def test_members_that_are_not_two_registered_denoisers_are_refused(members):
    with pytest.raises(ValueError, match="members"):
        DENOISERS.create("average_of", members=members).check_params()


def test_the_mean_is_of_the_members_own_cells_fits_through_their_cache(tmp_path, monkeypatch):
    grid = Grid.build(
        name="m",
        datasets=["digits"],
        noises={"gaussian": [0.2]},
        n_train=64,
        n_test=20,
        denoisers=["median", "dncnn", "average_of"],
        params={"dncnn": dict(parse_member(DNCNN)[1]), "average_of": {"members": ["median", DNCNN]}},
    )
    runner = _runner(tmp_path)
    clean, noisy = runner.test_set(_cell(grid, "average_of"))
    mean, seconds = runner.fitted(_cell(grid, "average_of"))
    assert seconds > 0  # the members' fit seconds
    # The standalone cells load the members' fits from the cache: a second fit would raise.
    monkeypatch.setattr(type(DENOISERS.create("dncnn")), "fit", lambda *a, **k: pytest.fail("refitted"))
    fresh = _runner(tmp_path)
    median, _ = fresh.fitted(_cell(grid, "median"))
    dncnn, _ = fresh.fitted(_cell(grid, "dncnn"))
    expected = (median.denoise(noisy) + dncnn.denoise(noisy)) / 2
    assert torch.allclose(mean.denoise(noisy), expected.clamp(0, 1), atol=1e-6)
    assert not torch.allclose(median.denoise(noisy), dncnn.denoise(noisy), atol=1e-3)  # the mean is of two
    assert mean.n_parameters() == dncnn.n_parameters() > 0
    # The same grid run through the runner gives the average_of row beside its members'.
    rows = [score_or_fail(fresh, cell).row for cell in grid.cells()]
    assert {row.denoiser: row.status for row in rows} == dict.fromkeys(["median", "dncnn", "average_of"], "ok")


def test_outside_a_run_fit_trains_each_member_on_the_same_pairs():
    clean = torch.rand(8, 1, 12, 12)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    mean = DENOISERS.create("average_of", members=["median", "gaussian_blur:sigma=1.0"]).fit(noisy, clean, seed=3)
    blur = DENOISERS.create("gaussian_blur", sigma=1.0).fit(noisy, clean, seed=3)
    median = DENOISERS.create("median").fit(noisy, clean, seed=3)
    expected = ((median.denoise(noisy) + blur.denoise(noisy)) / 2).clamp(0, 1)
    assert torch.allclose(mean.denoise(noisy), expected, atol=1e-6)


def test_the_full_grid_averages_its_own_unet_with_a_wider_one_and_the_quick_grid_leaves_it_out():
    from bench.grids import named_grid

    assert "average_of" not in named_grid("quick").denoisers
    full = named_grid("full")
    unet = next(c for c in full.cells() if c.denoiser == "unet")
    mean = next(c for c in full.cells() if c.denoiser == "average_of" and c.dataset == unet.dataset)
    name, params = parse_member(dict(mean.params)["members"][0])
    assert (name, params) == ("unet", dict(unet.params))  # the same fit key: the full grid fits it once


def test_a_member_that_two_members_share_counts_its_fit_seconds_once(tmp_path):
    import json

    grid = Grid.build(
        name="m",
        datasets=["digits"],
        noises={"gaussian": [0.2]},
        n_train=64,
        n_test=20,
        denoisers=["average_of"],
        params={"average_of": {"members": [DNCNN + ",restarts=1", DNCNN]}},
    )
    _, seconds = _runner(tmp_path).fitted(_cell(grid, "average_of"))
    fits = [json.loads(p.read_text())["extra"]["fit_seconds"] for p in (tmp_path / "cache").glob("*.json")]
    assert len(fits) == 2  # the plain DnCNN, shared, and the restart that goes on from it
    assert seconds == pytest.approx(sum(fits))
