"""Shared fixtures: real data when $BENCH_DATA_DIR has it, small generated IDX files otherwise."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Tests run small tensors, where one thread beats two (and two fight any parallel load).
torch.set_num_threads(1)


def skip_unless_required(what: str, reason: str) -> None:
    """Skip for want of ``what`` ('real-data', 'browser'), or fail where $BENCH_TESTS_REQUIRE
    lists it: CI, which provides both, must not pass by skipping the tests that need them."""
    required = {part.strip() for part in os.environ.get("BENCH_TESTS_REQUIRE", "").split(",")}
    if what in required:
        pytest.fail(f"{reason} ($BENCH_TESTS_REQUIRE lists {what!r})")
    pytest.skip(reason)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzip'd when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def make_idx_dataset(folder: Path, *, n_train: int = 300, n_test: int = 100, seed: int = 0) -> Path:
    """A small MNIST-shaped dataset: blurred blobs whose position depends on the label."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        yy, xx = np.mgrid[:28, :28]
        centres = 6 + 1.6 * labels
        images = 255 * np.exp(-((yy[None] - centres[:, None, None]) ** 2 + (xx[None] - 14) ** 2) / 18.0)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images.round())
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """$BENCH_DATA_DIR when it holds MNIST and Fashion-MNIST, else generated look-alikes."""
    real = os.environ.get("BENCH_DATA_DIR")
    if real and all((Path(real) / n / "t10k-images-idx3-ubyte.gz").is_file() for n in ("mnist", "fashion-mnist")):
        return Path(real)
    root = tmp_path_factory.mktemp("data")
    make_idx_dataset(root / "mnist", seed=0)
    make_idx_dataset(root / "fashion-mnist", seed=1)
    return root


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real data; these tests skip only where $BENCH_DATA_DIR does not point at it (CI sets it)."""
    real = os.environ.get("BENCH_DATA_DIR")
    if not real or not (Path(real) / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        skip_unless_required("real-data", "real data needs BENCH_DATA_DIR=path/to/shared/data (CI sets it)")
    return Path(real)
