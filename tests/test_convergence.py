"""The converged rule: the last fifth of training lowered the best validation loss by under 1%."""

from bench.report.convergence import converged


def _curve(losses, stage=None):
    return [{"epoch": e, "val_loss": v} | ({"stage": stage} if stage else {}) for e, v in enumerate(losses, 1)]


def test_the_best_loss_over_the_last_fifth_decides():
    ten = [1.0, 0.8, 0.7, 0.6, 0.55, 0.52, 0.51, 0.5]
    assert converged(_curve([*ten, 0.499, 0.4955])) is True  # 0.9% below the best of the first eight
    assert converged(_curve([*ten, 0.499, 0.494])) is False  # 1.2%
    assert converged(_curve([*ten, 0.6, 0.7])) is True  # worse at the end: best weights kept, nothing gained


def test_only_the_last_stage_counts_and_short_or_missing_curves_cannot_tell():
    pretrain = _curve([1.0, 0.1, 0.05], stage="pretrain")
    assert converged(pretrain + _curve([0.5, 0.49, 0.489, 0.4889, 0.4888], stage="fine-tune")) is True
    assert converged(pretrain + _curve([0.5, 0.4, 0.3, 0.2, 0.1], stage="fine-tune")) is False
    assert converged(None) is None and converged([]) is None and converged(_curve([0.3])) is None
    assert converged(_curve([None, None])) is None  # no validation set


def test_a_fit_of_two_epochs_records_enough_points_for_a_verdict():
    import torch

    from bench.registry import DENOISERS

    clean = torch.rand(120, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    noisy = (clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    model = DENOISERS.create("conv_ae_fmnist", epochs=2, batch_size=8, patience=None).fit(noisy, clean)
    # 108 training pairs, 14 steps an epoch: scored every 28 // 10 = 2 steps, not twice
    assert len(model.history_) == 14 and converged(model.history_) in (True, False)
