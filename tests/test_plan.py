"""bench plan: the probe's work models and the plan's arithmetic."""

import pytest

from bench.cli import main
from bench.cost.plan import Plan, make_plan, work_of
from bench.execution.workspace import RunContext
from bench.grids import Grid
from bench.registry import CLASSIFIERS, DENOISERS
from models.engine.split import planned_steps


def test_planned_steps_follow_the_validation_rule_and_the_step_cap():
    from models.engine.recipe import Recipe

    # 1,000 pairs: 100 held out, 900 left in batches of 8 -> 113 steps an epoch (the last holds 4).
    assert planned_steps(Recipe(epochs=3, batch_size=8), 1000) == 3 * 113
    assert (
        planned_steps(Recipe(epochs=1, batch_size=8), 997) == 112
    )  # 897 pairs: the last one-image batch joins the one before
    assert planned_steps(Recipe(epochs=3, batch_size=8, max_steps=50), 1000) == 50
    assert planned_steps(Recipe(epochs=2, batch_size=128, val_fraction=0.1), 50) == 2  # too few to hold any out


def test_work_models_name_the_knob_that_scales_each_fit():
    dncnn = work_of(DENOISERS.create("dncnn", max_steps=800, batch_size=4), 1000)
    assert (dncnn.knob, dncnn.real) == ("max_steps", 800) and "3,200 images" in dncnn.budget
    assert work_of(CLASSIFIERS.create("svm_rbf", max_train=500), 1000).real == 500
    assert work_of(CLASSIFIERS.create("svm_rbf", max_train=500), 1000).power == 2.0
    assert work_of(DENOISERS.create("median", tune_images=64), 1000).knob == "tune_images"
    assert work_of(DENOISERS.create("identity"), 1000).knob is None
    # Few labels: three pretraining stages on every image, then the softmax on ten images.
    few = work_of(CLASSIFIERS.create("stacked_ae_softmax_1label", pretrain_epochs=2, epochs=5, batch_size=32), 1000)
    assert few.real == (3 * 2 * 32 + 5 * 1) / 4 and "64+64+64+5 steps" in few.budget


def test_makespan_schedules_longest_units_first():
    plan = Plan(grid=None, cells=0, done=0, fits=0, classifier_fits=0, workers=2, threads=1, device="cpu")
    plan.unit_seconds = [5.0, 4.0, 3.0, 3.0, 3.0]
    assert plan.total == 18.0
    assert plan.makespan(1) == 18.0 and plan.makespan(2) == 10.0 and plan.makespan(8) == 5.0


def test_plan_counts_cells_fits_and_what_is_stored(tmp_path):
    grid = Grid.build(
        name="p",
        datasets=["digits"],
        noises={"gaussian": [0.1, 0.2]},
        denoisers=["identity", "median"],
        classifiers=["svm_rbf"],
        n_train=100,
        n_test=50,
        train_levels="blind",
        params={"median": {"tune_images": 8}, "svm_rbf": {"max_train": 100}},
    )
    context = RunContext(base_seed=0, n_train=100, n_test=50, cache_dir=str(tmp_path / "cache"), device="cpu")
    done = {grid.cells()[0].key}
    plan = make_plan(grid, context=context, workers=2, threads=1, done=done)
    assert (plan.cells, plan.done) == (4, 1)
    # Blind training: one fit per denoiser covers both levels; the stored identity cell's group still runs.
    assert (plan.fits, plan.classifier_fits) == (2, 1)
    assert len(plan.unit_seconds) == 3 and all(s >= 0 for s in plan.unit_seconds)
    assert (tmp_path / "cache" / "probes.json").is_file()  # a second plan reuses the probe
    again = make_plan(grid, context=context, workers=2, threads=1, done=done)
    assert again.unit_seconds == plan.unit_seconds and again.probe_seconds < plan.probe_seconds


def test_plan_command_prints_a_table_and_writes_no_results(tmp_path, capsys):
    assert (
        main(["plan", "--grid", "smoke", "--denoisers", "identity,median", "--out", str(tmp_path), "--workers", "2"])
        == 0
    )
    out = capsys.readouterr().out
    assert "grid smoke: 4 cells, 5 distinct fits (4 denoiser, 1 classifier)" in out
    assert "median" in out and "svm_rbf" in out and "on 2 workers" in out
    assert not (tmp_path / "smoke" / "store.sqlite").exists()


def test_plan_reads_the_fit_cache_a_run_names(tmp_path, capsys):
    # A run with --cache-dir elsewhere than OUT/GRID/cache: the plan given the same folder
    # counts its fits as cached, and without it as still to run.
    grid = ["--grid", "smoke", "--datasets", "digits", "--denoisers", "median", "--classifiers", "none"]
    shared = str(tmp_path / "shared-cache")
    assert main(["run", *grid, "--out", str(tmp_path / "a"), "--cache-dir", shared, "--no-estimate"]) == 0
    capsys.readouterr()
    assert main(["plan", *grid, "--out", str(tmp_path / "b"), "--cache-dir", shared]) == 0
    assert "2 fits are in the fit cache" in capsys.readouterr().out  # one per level
    assert main(["plan", *grid, "--out", str(tmp_path / "b")]) == 0
    assert "0 fits are in the fit cache" in capsys.readouterr().out


def test_run_prints_the_estimate_first(tmp_path, capsys):
    assert (
        main(["run", "--grid", "smoke", "--denoisers", "identity", "--classifiers", "none", "--out", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "estimate: 2 cells to run (0 already stored), 2 fits + 0 classifier fits" in out
    assert out.index("estimate:") < out.index("[1/2]")


@pytest.mark.parametrize("args", [["--grid", "seeds"], ["--workers", "0"]])
def test_plan_bad_input_is_exit_2(tmp_path, capsys, args):
    assert main(["plan", *args, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def _auto_grid():
    return Grid.build(
        name="a",
        datasets=["digits"],
        noises={"gaussian": [0.1, 0.2, 0.3]},
        denoisers=["median", "dncnn"],
        train_levels="auto",
    )


def test_auto_training_levels_fit_networks_per_level_where_blind_fits_fall_short():
    cells = {(c.denoiser, c.level, c.train_level) for c in _auto_grid().cells()}
    assert cells == {(name, v, v) for name in ("median", "dncnn") for v in (0.1, 0.2, 0.3)}


def test_auto_training_levels_fit_networks_blind_plus_the_middle_level_where_blind_serves(monkeypatch):
    from bench.grids import grid as grid_module

    monkeypatch.setattr(grid_module, "BLIND_SERVES_EVERY_LEVEL", frozenset({"gaussian"}))
    grid = _auto_grid()
    cells = {(c.denoiser, c.level, c.train_level) for c in grid.cells()}
    assert {c for c in cells if c[0] == "median"} == {("median", v, v) for v in (0.1, 0.2, 0.3)}
    assert {c for c in cells if c[0] == "dncnn"} == {("dncnn", v, "blind") for v in (0.1, 0.2, 0.3)} | {
        ("dncnn", 0.2, 0.2)
    }
    from bench.execution.runner import plan_units

    _, groups = plan_units(grid.cells())
    assert sorted(len(g.cells) for g in groups) == [1, 1, 1, 1, 3]  # median x3, dncnn at 0.2, dncnn blind (3 levels)


def test_a_users_epochs_replace_the_budgets_step_cap_and_the_row_says_so():
    from bench.grids import named_grid

    grid = named_grid("quick").narrow(denoisers=["conv_ae_fmnist"], params={"conv_ae_fmnist": {"epochs": 4}})
    params = grid.denoiser_params("conv_ae_fmnist")
    assert params["epochs"] == 4 and "max_steps" not in params  # the budget's 200-step cap no longer applies
    assert params["batch_size"] == named_grid("quick").denoiser_params("conv_ae_fmnist")["batch_size"]
    both = named_grid("quick").narrow(
        denoisers=["conv_ae_fmnist"], params={"conv_ae_fmnist": {"epochs": 4, "max_steps": 50}}
    )
    assert both.denoiser_params("conv_ae_fmnist")["max_steps"] == 50


def test_an_average_is_planned_as_its_members_and_never_fitted_whole(tmp_path, monkeypatch):
    from models.average_of import AverageOf

    monkeypatch.setattr(AverageOf, "fit", lambda *a, **k: pytest.fail("the plan fitted the whole average"))
    dncnn = {"depth": 3, "width": 8, "batch_size": 8, "max_steps": 400}
    grid = Grid.build(
        name="p",
        datasets=["digits"],
        noises={"gaussian": [0.1]},
        n_train=100,
        n_test=50,
        denoisers=["dncnn", "average_of"],
        params={
            "dncnn": dncnn,
            "average_of": {"members": ["median", "dncnn:depth=3,width=8,batch_size=8,max_steps=400"]},
        },
    )
    context = RunContext(base_seed=0, n_train=100, n_test=50, cache_dir=str(tmp_path / "cache"), device="cpu")
    costs = {cost.name: cost for cost in make_plan(grid, context=context, workers=1, threads=1).entries}
    mean, member = costs["average_of"], costs["dncnn"]
    # Each member probed as its own entry: the median's tuning, then the network's steps.
    assert mean.budget == f"tuned on 100 images + {member.budget}"
    assert mean.fit_seconds > 0 and mean.cell_seconds > 0


def _grid(denoisers, params=None):
    return Grid.build(
        name="p",
        datasets=["digits"],
        noises={"gaussian": [0.1]},
        n_train=100,
        n_test=50,
        denoisers=denoisers,
        params=params or {},
    )


def _context(tmp_path):
    return RunContext(base_seed=0, n_train=100, n_test=50, cache_dir=str(tmp_path / "cache"), device="cpu")


def test_each_probe_result_is_kept_as_it_finishes(tmp_path, monkeypatch):
    import json

    from bench.cost import plan as plan_module

    probed, original = [], plan_module._probe_denoiser

    def killed_at_the_second(runner, cell, node):
        if probed:
            raise KeyboardInterrupt  # as a kill during the probe
        probed.append(cell.denoiser)
        return original(runner, cell, node)

    monkeypatch.setattr(plan_module, "_probe_denoiser", killed_at_the_second)
    grid, context = _grid(["identity", "median"], {"median": {"tune_images": 8}}), _context(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        make_plan(grid, context=context, workers=1, threads=1)
    kept = json.loads((tmp_path / "cache" / "probes.json").read_text())
    assert len(kept) == 1 and set(next(iter(kept.values()))) == {"fit", "cell", "budget", "eval"}
    probed.clear()
    monkeypatch.setattr(plan_module, "_probe_denoiser", lambda *a: probed.append(a[1].denoiser) or original(*a))
    make_plan(grid, context=context, workers=1, threads=1)
    assert probed == ["median"]  # the identity's probe was not measured again


def test_the_plan_knows_the_fit_cache_and_a_restart_costs_its_own_stage(tmp_path):
    from bench.execution.workspace import preload

    small = {"depth": 3, "width": 8, "batch_size": 8, "max_steps": 40}
    context = _context(tmp_path)
    member_grid, restart_grid = (
        _grid(["dncnn"], {"dncnn": small}),
        _grid(["dncnn"], {"dncnn": {**small, "restarts": 1}}),
    )
    member_fit = make_plan(member_grid, context=context, workers=1, threads=1).entries[0].fit_total
    fresh = make_plan(restart_grid, context=context, workers=1, threads=1).entries[0]
    assert member_fit > 0 and fresh.fit_total > member_fit and fresh.cached == 0  # the member, then its own stage
    assert "40 steps" in fresh.budget and "40+40" not in fresh.budget
    preload(context, ()).fitted(member_grid.cells()[0])  # the member's fit is now cached
    own = make_plan(restart_grid, context=context, workers=1, threads=1).entries[0]
    assert own.fit_total == pytest.approx(fresh.fit_total - member_fit)
    preload(context, ()).fitted(restart_grid.cells()[0])
    done = make_plan(restart_grid, context=context, workers=1, threads=1)
    assert done.entries[0].fit_total == 0 and done.cached == 1
    assert done.unit_seconds == [pytest.approx(done.entries[0].cell_seconds)]


def test_a_member_shared_by_two_units_is_planned_once(tmp_path):
    member = "dncnn:depth=3,width=8,batch_size=8,max_steps=40"
    params = {
        "dncnn": {"depth": 3, "width": 8, "batch_size": 8, "max_steps": 40},
        "average_of": {"members": [member + ",restarts=1", member]},
    }
    context = _context(tmp_path)
    costs = {
        c.name: c
        for c in make_plan(_grid(["dncnn", "average_of"], params), context=context, workers=1, threads=1).entries
    }
    restart = make_plan(
        _grid(["dncnn"], {"dncnn": {**params["dncnn"], "restarts": 1}}), context=context, workers=1, threads=1
    ).entries[0]
    # The average's units: the restart's own stage only (its member is the grid's dncnn, costed once).
    assert costs["average_of"].fit_total == pytest.approx(restart.fit_total - costs["dncnn"].fit_total)


@pytest.mark.parametrize(("device", "threads", "expected"), [("cpu", 1, 1.5), ("cpu", 2, 6.0), ("meta", 1, 6.0)])
def test_a_one_thread_cpu_probe_counts_cpu_time_so_other_load_does_not_inflate_it(
    monkeypatch, device, threads, expected
):
    # Wall 6 s, CPU 1.5 s: a probe that shared its core with three other processes.
    import torch

    from bench.cost import plan as plan_module
    from bench.cost import timing

    monkeypatch.setattr(timing, "timed", lambda fn, device=None: timing.Pass(wall=6.0, cpu=1.5, result=fn()))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert plan_module._probe_seconds(lambda: None, torch.device(device)) == expected
    finally:
        torch.set_num_threads(before)


def test_cheap_steps_are_probed_until_their_cost_stands_out_of_the_timer_noise(monkeypatch):
    # 1 s fixed + 1 ms a step, and 5 ms of noise on the small probe: over 4 and 12 steps the
    # noise is most of the difference, and 10,000 steps extrapolated from it came out at 4.8 s.
    from bench.cost import plan as plan_module
    from bench.cost.plan import Work

    probed = []

    def fit(steps: int) -> float:
        probed.append(steps)
        return 1.0 + 0.001 * steps + (0.005 if steps == 4 else 0.0)

    monkeypatch.setattr(plan_module, "_probe_seconds", lambda fn, device: fn())
    estimate, _ = plan_module._probe_fit(lambda max_steps: max_steps, fit, Work("max_steps", (4, 12), 10_000), "cpu")
    assert probed == [4, 4, 12, 48, 192, 768]
    assert estimate == pytest.approx(11.0, rel=0.02)
