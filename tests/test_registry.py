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
        ValueError, match=r"unknown noise 'gausian' \(did you mean gaussian\?\); expected one of: gaussian"
    ):
        NOISES.create("gausian")


def test_registries_load_their_packages_on_first_use():
    assert {"identity", "median"} <= set(DENOISERS.names())
    assert {"digits", "mnist", "fashion-mnist", "cifar10"} <= set(DATASETS.names())
    assert set(NOISES.names()) == {"gaussian", "salt_pepper", "masking", "impulse", "poisson", "speckle"}
