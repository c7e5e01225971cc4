import pytest
import torch

from bench.execution.workspace import RunContext, preload
from bench.grids import Grid
from bench.registry import DENOISERS

SMALL = {"epochs": 2, "depth": 3, "width": 8, "batch_size": 16}


def _curve(model):
    """The learning curve without its wall-clock seconds."""
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in model.history_]


def _pairs(n=64, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, size, size, generator=generator)
    return (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


def test_the_member_is_the_same_entry_with_one_restart_fewer_named_as_a_grid_would():
    model = DENOISERS.create("unet", width=48, precision="bf16", restarts=2, restart_epochs=4)
    assert model.member_specs() == [("unet", {"width": 48, "precision": "bf16", "restarts": 1, "restart_epochs": 4})]
    once = DENOISERS.create("unet", width=48, restarts=1, ensemble=2)
    assert once.member_specs() == [("unet", {"width": 48, "ensemble": 2})]  # no restart settings: the plain cell
    assert DENOISERS.create("unet").member_specs() == []
    recipe, base = once.recipe(), DENOISERS.create("unet").recipe()
    assert (recipe.epochs, recipe.lr) == (8, base.lr / 4) and recipe.schedule == base.schedule


def test_a_restart_goes_on_from_its_members_weights_and_learning_curve():
    noisy, clean = _pairs()
    start = DENOISERS.create("dncnn", **SMALL).fit(noisy, clean, seed=1)
    restarted = DENOISERS.create("dncnn", **SMALL, restarts=1, restart_epochs=3)
    restarted.use_fitted([start]).fit(noisy, clean, seed=1)
    # 4 steps an epoch, scored after every step (fewer than 10 planned); the curve runs on from the start's
    assert restarted.history_[:8] == start.history_
    assert [h["epoch"] for h in restarted.history_] == [k / 4 for k in range(1, 21)]
    assert [h["step"] for h in restarted.history_] == list(range(1, 21))
    assert restarted.training_["restarted_from"] == start.training_
    # Outside a run it fits the member itself, on the same pairs and seed: the same numbers.
    alone = DENOISERS.create("dncnn", **SMALL, restarts=1, restart_epochs=3).fit(noisy, clean, seed=1)
    assert _curve(alone) == _curve(restarted)
    assert torch.equal(alone.denoise(noisy), restarted.denoise(noisy))


def _smooth_pairs(n=64, size=16, seed=2):
    # Noise at 0.2: DnCNN starts near the identity (its authors' initialisation), and at 0.1 a
    # network this small never gets far enough below it for a restart to have anything to gain.
    generator = torch.Generator().manual_seed(seed)
    clean = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size + 4, size + 4, generator=generator), 5, 1)
    clean = (clean - clean.amin()) / (clean.amax() - clean.amin())
    return (clean + 0.2 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


@pytest.mark.parametrize(("epochs", "restart_epochs", "kept"), [(6, 1, False), (2, 2, True)])
def test_a_restart_is_never_worse_on_validation_than_its_start(epochs, restart_epochs, kept):
    # Six epochs end still learning, so a restart gains; two end with their best at the first
    # validation point, which a restart at a quarter of the rate does not beat.
    noisy, clean = _smooth_pairs()
    start = DENOISERS.create("dncnn", **{**SMALL, "epochs": epochs}).fit(noisy, clean, seed=2)
    model = DENOISERS.create("dncnn", **{**SMALL, "epochs": epochs}, restarts=1, restart_epochs=restart_epochs)
    model.use_fitted([start]).fit(noisy, clean, seed=2)
    last = model.history_[-1]["val_loss"]
    assert ("kept" in model.training_) == kept
    if kept:  # the restart's own best was worse: the start's weights come back
        assert last > start.training_["best_val_loss"]
        assert torch.equal(model.denoise(noisy), start.denoise(noisy))
    else:
        assert model.training_["best_val_loss"] < start.training_["best_val_loss"]


def test_entries_that_train_in_stages_of_their_own_take_no_restarts():
    noisy, clean = _pairs(n=16, size=8)
    with pytest.raises(ValueError, match="stacked_dae trains in stages of its own"):
        DENOISERS.create("stacked_dae", restarts=1).fit(noisy, clean)
    with pytest.raises(ValueError, match="restarts=-1 is invalid"):
        DENOISERS.create("unet", restarts=-1).check_params()


def test_in_a_run_the_member_is_its_own_cell_and_its_fit_seconds_count(tmp_path, monkeypatch):
    small = {**SMALL, "max_steps": 4}

    def cell(params):
        grid = Grid.build(
            name="r",
            datasets=["digits"],
            noises={"gaussian": [0.2]},
            n_train=64,
            n_test=20,
            denoisers=["dncnn"],
            params={"dncnn": params},
        )
        return grid.cells()[0]

    context = RunContext(base_seed=0, n_train=64, n_test=20, cache_dir=str(tmp_path / "cache"), device="cpu")
    runner = preload(context, ())
    start, start_seconds = runner.fitted(cell(small))
    restart_cell = cell({**small, "restarts": 1})
    restarted, seconds = preload(context, ()).fitted(restart_cell)  # a fresh runner: the member comes from the cache
    assert seconds > start_seconds > 0
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    assert restarted.history_[: len(start.history_)] == start.history_
    # Loading the restarted fit back loads its member too, and trains neither.
    monkeypatch.setattr(type(start), "fit", lambda *a, **k: pytest.fail("refitted"))
    again, again_seconds = preload(context, ()).fitted(restart_cell)
    assert again_seconds == pytest.approx(seconds)
    clean, noisy = runner.test_set(restart_cell)
    assert torch.equal(again.denoise(noisy), restarted.denoise(noisy))


def test_a_restart_whose_own_fit_is_cached_never_needs_its_member(tmp_path, monkeypatch):
    small = {**SMALL, "max_steps": 4}
    grid = Grid.build(
        name="r",
        datasets=["digits"],
        noises={"gaussian": [0.2]},
        n_train=64,
        n_test=20,
        denoisers=["dncnn"],
        params={"dncnn": {**small, "restarts": 1}},
    )
    restart_cell = grid.cells()[0]
    context = RunContext(base_seed=0, n_train=64, n_test=20, cache_dir=str(tmp_path / "cache"), device="cpu")
    restarted, seconds = preload(context, ()).fitted(restart_cell)
    from bench.execution.fits import fit_key

    own = fit_key(restart_cell.fit_spec)
    for path in (tmp_path / "cache").iterdir():  # the member's fit is gone (a cache copied without it)
        if not path.name.startswith(own):
            path.unlink()
    monkeypatch.setattr(type(restarted), "fit", lambda *a, **k: pytest.fail("refitted"))
    again, again_seconds = preload(context, ()).fitted(restart_cell)
    assert again_seconds == pytest.approx(seconds)  # the member's seconds are kept in the restart's sidecar
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [f"{own}.json", f"{own}.safetensors"]
