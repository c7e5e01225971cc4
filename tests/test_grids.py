from pathlib import Path

import pytest

from bench.grids import Cell, Grid, load_grid_file, named_grid, resolve_grid


def small(**changes):
    fields = dict(name="g", datasets=["digits"], noises={"gaussian": [0.1, 0.3]}, denoisers=["identity", "median"])
    return Grid.build(**{**fields, **changes})


def test_cells_expand_every_combination_in_a_stable_order():
    cells = small().cells()
    assert [(c.level, c.denoiser) for c in cells] == [
        (0.1, "identity"),
        (0.1, "median"),
        (0.3, "identity"),
        (0.3, "median"),
    ]
    assert all(c.train_level == c.level for c in cells)


def test_train_level_modes():
    assert [c.train_level for c in small(train_levels="blind", denoisers=["median"]).cells()] == ["blind", "blind"]
    matrix = small(train_levels="matrix", denoisers=["median"]).cells()
    assert [(c.train_level, c.level) for c in matrix] == [(0.1, 0.1), (0.3, 0.1), (0.1, 0.3), (0.3, 0.3)]
    with pytest.raises(ValueError, match="train_levels 'sometimes' is unknown"):
        small(train_levels="sometimes")


def test_cell_keys_are_stable_and_depend_on_every_field():
    a = Cell("digits", "gaussian", 0.1, 0.1, "median")
    assert a.key == Cell("digits", "gaussian", 0.1, 0.1, "median").key
    others = [
        Cell("digits", "gaussian", 0.2, 0.1, "median"),
        Cell("digits", "gaussian", 0.1, 0.1, "median", seed=1),
        Cell("digits", "gaussian", 0.1, 0.1, "median", params=(("size", 3),)),
        Cell("mnist", "gaussian", 0.1, 0.1, "median"),
    ]
    assert len({a.key, *(c.key for c in others)}) == 5
    # the fit does not depend on the test level
    assert a.fit_spec == Cell("digits", "gaussian", 0.5, 0.1, "median").fit_spec


def test_narrowing():
    grid = small(noises={"gaussian": [0.1, 0.3], "masking": [0.5]})
    narrowed = grid.narrow(noises=["masking"], denoisers=["median"], levels=[0.2, 0.4])
    assert narrowed.noises == (("masking", (0.2, 0.4)),) and narrowed.denoisers == ("median",)
    with pytest.raises(ValueError, match="noise 'poisson' in grid 'g' has no levels; pass --levels"):
        grid.narrow(noises=["poisson"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"datasets": ["mnsit"]}, r"unknown dataset 'mnsit' \(did you mean mnist\?\)"),
        ({"denoisers": ["medain"]}, r"unknown denoiser 'medain' \(did you mean median\?\)"),
        ({"noises": {"gaussian": [-1.0]}}, "noise level -1.0 for 'gaussian' is out of range"),
        ({"n_test": 0}, "n_test must be a positive integer"),
        ({"params": {"median": {"colour": 3}}}, "bad parameters for denoiser 'median'"),
        ({"name": "a b"}, "grid name 'a b' is invalid"),
    ],
)
def test_bad_grids_fail_before_anything_runs(changes, message):
    with pytest.raises(ValueError, match=message):
        small(**changes)


def test_named_grids_are_valid(data_dir):
    smoke = named_grid("smoke")
    assert smoke.datasets == ("digits",) and len(smoke.cells()) >= 4
    quick = named_grid("quick", data_dir=data_dir)
    assert quick.datasets == ("digits", "mnist", "fashion-mnist")
    assert set(named_grid("full").datasets) == {"mnist", "fashion-mnist", "cifar10"}
    with pytest.raises(ValueError, match="unknown grid 'fast'; expected one of: smoke, quick, full"):
        named_grid("fast")


def test_the_natural_grid_fits_each_network_blind_and_at_sigma_25_and_tunes_filters_per_level(data_dir):
    # DnCNN-B and DnCNN-S in the published table: one blind fit tested at 15, 25 and 50, and a fit
    # at the middle level; classical filters are tuned at each level; the colour set has no networks.
    cells = named_grid("natural", data_dir=data_dir).cells()
    fits = {(c.dataset, c.level): c.train_level for c in cells if c.denoiser == "dncnn"}
    training = sorted({(c.level, str(c.train_level)) for c in cells if c.denoiser == "dncnn"})
    assert training == [(15.0, "blind"), (25.0, "25.0"), (25.0, "blind"), (50.0, "blind")]
    assert {d for d, _ in fits} == {"bsd68", "set12"}
    assert all(c.train_level == c.level for c in cells if c.denoiser == "median")


def test_toml_grid_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'datasets = ["digits"]\ndenoisers = ["median"]\nn_test = 50\n[noises]\nmasking = [0.2]\n[params.median]\nsize = 3\n'
    )
    grid = resolve_grid(str(path))
    assert grid.name == "mine" and grid.n_test == 50 and grid.denoiser_params("median") == {"size": 3}
    path.write_text('datasets = ["digits"]\ndenoiser = ["median"]\n')
    with pytest.raises(ValueError, match=r"mine.toml: unknown keys denoiser"):
        load_grid_file(path)
    path.write_text("datasets = [")
    with pytest.raises(ValueError, match=r"grid file .*mine.toml"):
        load_grid_file(path)


def test_named_grids_leave_out_entries_whose_optional_package_is_missing(monkeypatch):
    import bench.registry

    monkeypatch.setattr(bench.registry, "_installed", lambda module: module != "bm3d")
    for name in ("quick", "full"):
        grid = named_grid(name)
        assert "bm3d" not in grid.denoisers and "median" in grid.denoisers
        assert grid.description.endswith("; not installed, left out: bm3d")
    monkeypatch.setattr(bench.registry, "_installed", lambda module: True)
    assert "bm3d" in named_grid("quick").denoisers
    assert "bm3d" in named_grid("quick").narrow(denoisers=["bm3d"]).denoisers


@pytest.mark.parametrize(
    ("value", "shown"), [("-3", "size=-3"), ("4", "size=4"), ("abc", "size='abc'"), ("3.0", "size=3.0")]
)
def test_bad_set_values_exit_2_before_anything_runs(tmp_path, capsys, value, shown):
    from bench.cli import main

    out = tmp_path / "out"
    assert main(["run", "--grid", "smoke", "--set", f"median.size={value}", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"error: bad parameters for denoiser 'median': {shown} is invalid; expected an odd integer >= 1, or None (tuned)\n"
    )
    assert not out.exists()


def test_grids_check_every_entry_they_run_with_its_own_rules():
    with pytest.raises(ValueError, match=r"bad parameters for denoiser 'median': size=4 is invalid"):
        small(params={"median": {"size": 4}})
    with pytest.raises(ValueError, match=r"bad parameters for denoiser 'dncnn': epochs=0 is invalid"):
        small(denoisers=["dncnn"], params={"dncnn": {"epochs": 0}})
    with pytest.raises(ValueError, match=r"bad parameters for classifier 'cnn_small': lr=-1.0 is invalid"):
        small(classifiers=["cnn_small"], params={"cnn_small": {"lr": -1.0}})
    assert small(params={"median": {"size": 9}}).denoiser_params("median") == {"size": 9}
    # parameters of an entry the grid leaves out are not run, so not checked against it
    assert small(denoisers=["identity"], params={"median": {"size": 5}}).denoisers == ("identity",)


def test_quick_grid_keeps_entries_without_budgets_and_leaves_out_those_without_a_quick_one():
    from bench.registry import DENOISERS

    quick = named_grid("quick").denoisers
    assert {"identity", "median", "tv_chambolle", "wavelet"} <= set(quick)  # no budgets: run everywhere
    assert DENOISERS.entry("vgg16_ae").budgets == {"full": {}} and "vgg16_ae" not in quick


def test_quick_grid_leaves_out_classifiers_without_a_quick_budget():
    from bench.registry import CLASSIFIERS

    quick = named_grid("quick").classifiers
    assert {"svm_rbf", "cnn_small", "stacked_ae_softmax"} <= set(quick)
    # the seed reports' own classifiers train for the reports' epochs (AlexNet at 224x224): full only
    for name in ("vgg16_faithful", "alexnet_faithful", "resnet18_faithful"):
        assert CLASSIFIERS.entry(name).budgets == {"full": {}} and name not in quick
        assert name in named_grid("full").classifiers


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("grids/*.toml")), ids=lambda p: p.stem)
def test_the_shipped_grid_files_load_and_name_themselves(path):
    grid = load_grid_file(path)  # validates entries, noises and every parameter against its rule
    assert grid.name == path.stem and grid.cells()


def test_a_default_written_out_fits_the_same_model_as_one_left_out():
    def cell(params):
        return Grid.build(
            name="d", datasets=["digits"], noises={"gaussian": [0.2]}, denoisers=["unet"], params={"unet": params}
        ).cells()[0]

    assert cell({"width": 32}).fit_spec == cell({}).fit_spec  # 32 is the U-Net's default width
    assert cell({"width": 32, "max_steps": 5}).fit_spec == cell({"max_steps": 5}).fit_spec
    assert cell({"width": 16}).fit_spec != cell({}).fit_spec
    assert cell({"width": 32}).key != cell({}).key  # the stored rows still say what the grid wrote


@pytest.mark.parametrize("name", ["smoke", "quick", "reference", "full"])
def test_the_named_grids_fit_keys_are_those_before_defaults_were_dropped(name, data_dir):
    from bench.params import fit_params
    from bench.registry import DENOISERS

    # Stored results and fit caches stay valid: no named grid writes a default out.
    for cell in named_grid(name, data_dir=data_dir).cells():
        factory = DENOISERS.entry(cell.denoiser).factory
        assert cell.fit_spec["params"] == fit_params(factory, dict(cell.params)), cell.label
