import pytest

from bench.registry import DATASETS, DENOISERS, NOISES, Registry


def test_register_create_names():
    registry = Registry("widget")

    @registry.register("b_widget", source="here", description="b")
    def make_b(*, size=1):
        return ("b", size)

    registry.register("a_widget", source="here", description="a")(lambda: "a")
    assert registry.names() == ["a_widget", "b_widget"]
    assert registry.create("b_widget", size=3) == ("b", 3)
    assert registry.entry("b_widget").source == "here"


def test_duplicate_name_raises():
    registry = Registry("widget")
    registry.register("x", source="s", description="d")(lambda: 1)
    with pytest.raises(ValueError, match="widget 'x' is already registered"):
        registry.register("x", source="s", description="d")(lambda: 2)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(
        ValueError, match=r"unknown noise 'gausian' \(did you mean gaussian\?\); expected one of: awgn, gaussian"
    ):
        NOISES.create("gausian")


def test_registries_load_their_packages_on_first_use():
    assert {"identity", "median"} <= set(DENOISERS.names())
    assert {"digits", "mnist", "fashion-mnist", "cifar10"} <= set(DATASETS.names())
    assert set(NOISES.names()) == {"gaussian", "awgn", "salt_pepper", "masking", "impulse", "poisson", "speckle"}


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("tv", "tv_chambolle"),
        ("TV", "tv_chambolle"),
        ("blur", "gaussian_blur"),
        ("medain", "median"),
        ("wave", "wavelet"),
    ],
)
def test_unknown_names_suggest_prefixes_substrings_and_close_spellings(name, meant):
    assert f"unknown denoiser {name!r} (did you mean {meant}?); expected one of: " in DENOISERS.unknown_message(name)


def test_suggestions_come_prefixes_first_then_substrings_then_spellings_at_most_three():
    registry = Registry("widget")
    for name in ("conv_small", "conv_deep", "deep_conv", "convex", "cnv"):
        registry.register(name, source="s", description="d")(lambda: None)
    assert registry.suggestions("conv") == ["conv_deep", "conv_small", "convex"]
    assert registry.suggestions("deep") == ["deep_conv", "conv_deep"]
    assert registry.suggestions("cnov") == ["cnv", "convex"]


def test_no_suggestion_when_nothing_is_close():
    assert "did you mean" not in DENOISERS.unknown_message("zz")
    assert "did you mean" not in DENOISERS.unknown_message("")


def test_cli_suggests_the_full_name_of_a_prefix(tmp_path, capsys):
    from bench.cli import main

    assert main(["run", "--grid", "smoke", "--denoisers", "tv", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: unknown denoiser 'tv' (did you mean tv_chambolle?)")
    assert not (tmp_path / "out").exists()
