"""The one training loop: learning, noise redraws, stopping rules, collapse handling, recipes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.noise import TrainingNoise
from bench.registry import DENOISERS
from models.engine.denoising import collapse_reason, denoising_loss, train, validation_score
from models.engine.training import Recipe
from models.neural_denoiser import NeuralDenoiser


def blobs(n=64, seed=0, sigma=0.2):
    generator = torch.Generator().manual_seed(seed)
    clean = F.avg_pool2d(torch.rand(n, 1, 32, 32, generator=generator), 5, 1)
    clean = (clean - clean.amin((2, 3), keepdim=True)) / (
        clean.amax((2, 3), keepdim=True) - clean.amin((2, 3), keepdim=True)
    )
    noisy = (clean + sigma * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    return noisy, clean


def test_a_short_training_lowers_the_validation_loss():
    noisy, clean = blobs(96)
    # 8 epochs: DnCNN starts near the identity (its authors' initialisation), so a network this
    # small needs a few more steps than 4 epochs of 6 to get well below the noisy input.
    model = DENOISERS.create("dncnn", depth=4, width=16, epochs=8, batch_size=16, lr=3e-3)
    model.fit(noisy, clean, seed=0)
    losses = [row["val_loss"] for row in model.history_]
    noisy_mse = float(F.mse_loss(noisy, clean))
    assert min(losses) < 0.7 * noisy_mse, (losses, noisy_mse)
    assert set(model.history_[0]) >= {"epoch", "train_loss", "val_loss", "seconds"}
    assert model.training_["best_val_loss"] == min(losses)


@pytest.mark.parametrize(
    "noise",
    [
        TrainingNoise("salt_pepper", 0.1),
        TrainingNoise("salt_pepper", mode="blind"),
        TrainingNoise("gaussian", mode="mixed"),
    ],
    ids=["fixed", "blind", "mixed"],
)
def test_training_noise_is_redrawn_per_batch(noise):
    noisy, clean = blobs(24)
    model = DENOISERS.create("conv_ae_fmnist", epochs=2, batch_size=8)
    model.fit(noisy, clean, seed=0, noise=noise)
    assert all(torch.isfinite(torch.tensor([row["train_loss"], row["val_loss"]])).all() for row in model.history_)
    again = DENOISERS.create("conv_ae_fmnist", epochs=2, batch_size=8).fit(noisy, clean, seed=0, noise=noise)
    assert torch.equal(again.denoise(noisy), model.denoise(noisy))


def _two_levels(low=0.05, high=0.5):
    """Images with unclipped gaussian noise: the first half at ``low``, the second at ``high``."""
    clean = blobs(8)[1]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    scale = torch.tensor([low] * 4 + [high] * 4).view(8, 1, 1, 1)
    return clean + scale * noise, clean


def test_blind_training_minimises_the_mean_log_of_each_images_loss():
    noisy, clean = _two_levels()  # one batch, two levels: 100x the noise power in its second half
    identity = nn.Identity()
    halves = [float(denoising_loss(identity, noisy[part], clean[part], "mse")) for part in (slice(0, 4), slice(4, 8))]
    assert halves[1] > 50 * halves[0]  # a plain MSE: the noisy half is all the loss
    per_image = ((noisy - clean) ** 2).flatten(1).mean(1)
    expected = float(torch.log(per_image + 1e-5).mean())  # minus the mean PSNR, up to a factor
    assert float(denoising_loss(identity, noisy, clean, "mse", per_image_log=True)) == pytest.approx(expected)
    # a tenth of the error on the quiet half counts as much as a tenth on the noisy half
    better_quiet = torch.cat([clean[:4] + (noisy[:4] - clean[:4]) / 10**0.5, noisy[4:]])
    better_noisy = torch.cat([noisy[:4], clean[4:] + (noisy[4:] - clean[4:]) / 10**0.5])
    gains = [
        expected - float(denoising_loss(identity, x, clean, "mse", per_image_log=True))
        for x in (better_quiet, better_noisy)
    ]
    assert gains[0] == pytest.approx(gains[1], rel=0.03)  # (the floor of 1e-5 takes a little off the quiet half)
    score, _ = validation_score(identity, [(noisy, clean)], per_image=True)
    assert score == pytest.approx(float(torch.exp(torch.log(per_image + 1e-5).mean())), rel=1e-5)
    assert validation_score(identity, [(noisy, clean)])[0] == pytest.approx(sum(halves) / 2, rel=1e-5)


@pytest.mark.parametrize(("mode", "per_image"), [("blind", True), ("fixed", False)])
def test_only_fits_whose_levels_vary_take_the_log_loss(mode, per_image):
    noisy, clean = blobs(24)
    noise = TrainingNoise("gaussian", mode=mode) if mode == "blind" else TrainingNoise("gaussian", 0.2)
    model = DENOISERS.create("conv_ae_fmnist", epochs=1, batch_size=8).fit(noisy, clean, seed=0, noise=noise)
    assert model.training_["per_image_log_loss"] is per_image


def test_patience_stops_early_and_the_budget_stops_at_once():
    noisy, clean = blobs(32)
    frozen = DENOISERS.create("conv_ae_fmnist", epochs=20, batch_size=8, lr=0.0, patience=1).fit(noisy, clean)
    assert frozen.training_["stopped"] == "early" and len(frozen.history_) == 2
    rushed = DENOISERS.create("conv_ae_fmnist", epochs=20, batch_size=8, max_seconds=0).fit(noisy, clean)
    assert rushed.training_["stopped"] == "budget" and len(rushed.history_) == 1 and rushed.training_["steps"] == 1


def test_a_step_budget_stops_mid_epoch_and_gives_the_same_weights_twice():
    noisy, clean = blobs(40)  # 36 training pairs at batch 8: 5 steps an epoch
    capped = [
        DENOISERS.create("conv_ae_fmnist", epochs=20, batch_size=8, max_steps=7).fit(noisy, clean, seed=3)
        for _ in range(2)
    ]
    assert capped[0].training_["steps"] == 7 and capped[0].training_["stopped"] == "budget"
    # 7 planned steps: a validation point after every step (at least 10 points, the budget allowing)
    assert [h["step"] for h in capped[0].history_] == list(range(1, 8))
    assert torch.equal(capped[0].denoise(noisy), capped[1].denoise(noisy))
    with pytest.raises(ValueError, match="max_steps"):
        DENOISERS.create("conv_ae_fmnist", max_steps=0).fit(noisy, clean)


def test_a_fit_of_few_epochs_records_ten_validation_points_and_many_epochs_one_per_epoch():
    noisy, clean = blobs(120)  # 108 training pairs at batch 8: 14 steps an epoch
    short = DENOISERS.create("conv_ae_fmnist", epochs=2, batch_size=8, patience=None).fit(noisy, clean)
    steps = [h["step"] for h in short.history_]
    assert steps == list(range(2, 29, 2)) and short.training_["validation_every"] == 2
    assert short.history_[5]["epoch"] == pytest.approx(12 / 14, abs=1e-3) and short.history_[-1]["epoch"] == 2
    long = DENOISERS.create("conv_ae_fmnist", epochs=12, batch_size=8, max_steps=14 * 12, patience=None)
    assert [h["epoch"] for h in long.fit(noisy, clean).history_] == list(range(1, 13))


def test_patience_counts_epochs_when_a_fit_is_scored_within_epochs():
    noisy, clean = blobs(32)  # no hold-out below 100 images: 4 steps an epoch, 8 planned, scored every step
    frozen = DENOISERS.create("conv_ae_fmnist", epochs=2, batch_size=8, lr=0.0, patience=1).fit(noisy, clean)
    # the first point is the best (the weights never move); one epoch of steps later the fit stops
    assert frozen.training_["stopped"] == "early" and [h["step"] for h in frozen.history_] == [1, 2, 3, 4, 5]


class _DeadOutput(nn.Module):
    """A ReLU output pushed far below zero: always black, no gradient (a contrived collapse)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        nn.init.constant_(self.conv.bias, -100.0)

    def forward(self, x):
        return F.relu(self.conv(x))


class _Collapsing(NeuralDenoiser):
    name = "collapsing"
    recipes = {"ours": Recipe(epochs=30, batch_size=4, patience=None)}

    def build(self, shape):
        return _DeadOutput()


def test_collapse_is_detected_restarted_once_and_recorded():
    noisy, clean = blobs(40)
    model = _Collapsing().fit(noisy, clean)
    info = model.training_
    assert info["restarted"] and info["collapse"][0]["action"] == "restart"
    assert all(event["action"] == "none" for event in info["collapse"][1:])
    assert info["collapsed"].startswith("constant output")
    assert len(model.history_) > 30  # the restart got its own epoch budget


def test_collapse_reason_names_constant_and_black_outputs():
    assert collapse_reason(0.4, 1e-7, 0.2, 0.05, 0.05).startswith("constant output")
    assert collapse_reason(0.001, 0.01, 0.2, 0.05, 0.199).startswith("all-black output")
    assert collapse_reason(0.3, 0.04, 0.2, 0.05, 0.01) is None


def test_train_accepts_vectors_and_restores_the_best_weights():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(64, 10, generator=generator)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=generator)
    result = train(
        lambda seed: nn.Linear(10, 10), noisy, clean, recipe=Recipe(epochs=5, batch_size=16, lr=1e-2), seed=0
    )
    best = min(row["val_loss"] for row in result.history)
    assert result.info["best_val_loss"] == best
    at_best = [row["val_loss"] for row in result.history if row["epoch"] == result.info["best_epoch"]]
    assert at_best == [best]


def test_configs_choose_the_recipe_and_constructor_overrides_win():
    faithful = DENOISERS.create("conv_ae_fmnist", config="faithful").recipe()
    assert (faithful.optimizer, faithful.batch_size, faithful.epochs, faithful.val_fraction) == (
        "adam",
        2048,
        1000,
        0.2,
    )
    assert DENOISERS.create("conv_ae_fmnist", config="faithful", epochs=3, lr=0.5).recipe().epochs == 3
    assert DENOISERS.create("dense_dae", config="faithful").recipe().optimizer == "sgd"
    with pytest.raises(ValueError, match="config 'best' is unknown; expected one of: faithful, ours"):
        DENOISERS.create("unet", config="best").recipe()
    with pytest.raises(ValueError, match="recipe optimizer 'adamax' is unknown"):
        Recipe(optimizer="adamax")


def test_long_fits_log_progress_and_short_ones_stay_quiet(caplog, monkeypatch):
    from models.engine.training import Progress

    noisy, clean = blobs(24)
    with caplog.at_level("INFO", logger="bench.training"):
        DENOISERS.create("dncnn", depth=3, width=4, epochs=2, batch_size=8).fit(noisy, clean)
        assert caplog.records == []  # a fit of a second says nothing
        monkeypatch.setattr(Progress, "every", 0.0)
        DENOISERS.create("dncnn", depth=3, width=4, epochs=2, batch_size=8).fit(noisy, clean)
    lines = [record.getMessage() for record in caplog.records]
    # 6 planned steps: a validation point (and a line) after every step
    assert len(lines) == 6 and lines[-1].startswith("DnCNNNet: epoch 2, step 6/6, train_loss ")
    assert "val_loss" in lines[1]


def test_a_fit_whose_points_are_far_apart_says_its_step_and_the_time_left_in_between(caplog, monkeypatch):
    from models.engine.training import Progress

    noisy, clean = blobs(24)
    monkeypatch.setattr(Progress, "every", 1e9)  # no validation point is logged: only step lines
    monkeypatch.setattr(Progress, "quiet", 0.0)
    with caplog.at_level("INFO", logger="bench.training"):
        DENOISERS.create("dncnn", depth=3, width=4, epochs=2, batch_size=8).fit(noisy, clean)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 6 and lines[0].startswith("DnCNNNet: step 1/6, ") and lines[-1].endswith("about 0 min to go")
    assert " s a step, about " in lines[2]


def test_one_validation_rule_for_every_fit():
    from models.engine.split import MAX_VALIDATION, split_validation

    cpu = torch.device("cpu")
    train_idx, val_idx = split_validation(1000, 0.1, 0, cpu)
    assert len(val_idx) == 100 and sorted(torch.cat([train_idx, val_idx]).tolist()) == list(range(1000))
    assert len(split_validation(60_000, 0.1, 0, cpu)[1]) == MAX_VALIDATION  # 2,048 pin a loss down well
    few_train, few_val = split_validation(99, 0.5, 0, cpu)  # too few to hold any out: score the pool
    assert torch.equal(few_train, torch.arange(99)) and torch.equal(few_val, few_train)
    assert torch.equal(split_validation(1000, 0.1, 3, cpu)[1], split_validation(1000, 0.1, 3, cpu)[1])
    assert not torch.equal(split_validation(1000, 0.1, 4, cpu)[1], split_validation(1000, 0.1, 3, cpu)[1])


def test_the_engine_trains_only_what_requires_gradients_and_counts_steps():
    from models.engine.training import run_training

    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
    net[0].requires_grad_(False)
    frozen = net[0].weight.clone()
    x, y = torch.randn(120, 4), torch.randn(120, 1)

    def batch_loss(net, idx, generator):
        return F.mse_loss(net(x[idx]), y[idx])

    result = run_training(net, batch_loss, Recipe(epochs=50, batch_size=10, max_steps=25, patience=None), n=120)
    assert result.info["steps"] == 25 and result.info["stopped"] == "budget"
    assert [row["step"] for row in result.history] == [*range(2, 25, 2), 25]  # scored every 25 // 10 steps
    assert torch.equal(net[0].weight, frozen)
    assert result.history[0]["val_loss"] is None  # no validation given: the training loss picks the weights


def test_bf16_precision_autocasts_cpu_training_and_keeps_float32_weights():
    noisy, clean = blobs(96)
    fits = {
        precision: DENOISERS.create(
            "dncnn", depth=4, width=16, epochs=8, batch_size=16, lr=3e-3, precision=precision
        ).fit(noisy, clean, seed=0)
        for precision in ("auto", "bf16")
    }
    bf16 = fits["bf16"]
    assert bf16.training_["recipe"]["precision"] == "bf16" and fits["auto"].training_["recipe"]["precision"] == "auto"
    assert bf16.training_["mixed_precision"] and not fits["auto"].training_["mixed_precision"]  # on this CPU
    assert all(p.dtype == torch.float32 for p in bf16.net_.parameters())
    # Same seed, same batches: only the autocast differs, so a precision that never reached the
    # training step would give identical weights.
    assert not torch.equal(bf16.denoise(noisy), fits["auto"].denoise(noisy))
    best = {precision: fit.training_["best_val_loss"] for precision, fit in fits.items()}
    assert best["bf16"] < 0.7 * float(F.mse_loss(noisy, clean)) and abs(best["bf16"] / best["auto"] - 1) < 0.02
    with pytest.raises(ValueError, match="precision 'fp16' is unknown; expected one of: auto, fp32, bf16"):
        Recipe(precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        DENOISERS.create("unet", precision="fp16").check_params()
