import gzip
import pickle

import numpy as np
import pytest
import torch
from conftest import make_idx_dataset, write_idx

from bench import data, data_files


def test_reads_gzipped_and_plain_idx(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b", array)
    assert np.array_equal(data_files.read_idx(tmp_path / "a.gz"), array)
    assert np.array_equal(data_files.read_idx(tmp_path / "b"), array)


def test_truncated_idx_names_file_and_problem(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 28, 28), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "x").write_bytes(raw[:-10])
    with pytest.raises(data.DataError, match=r"x: truncated or padded file: .* expected 3152"):
        data_files.read_idx(tmp_path / "x")
    with gzip.open(tmp_path / "y.gz", "wb") as handle:
        handle.write(raw)
    (tmp_path / "y.gz").write_bytes((tmp_path / "y.gz").read_bytes()[:-20])
    with pytest.raises(data.DataError, match="y.gz: cannot read IDX file"):
        data_files.read_idx(tmp_path / "y.gz")


def test_wrong_magic_number(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    with pytest.raises(data.DataError, match="bad: wrong magic number 12340803"):
        data_files.read_idx(tmp_path / "bad")


def test_mismatched_image_and_label_counts(tmp_path):
    folder = make_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    with pytest.raises(data.DataError, match="10 images but t10k-labels-idx1-ubyte.gz has 9 labels"):
        data.load("mnist", data_dir=tmp_path)


def test_loads_real_or_generated_mnist_and_fashion(data_dir):
    for name in ("mnist", "fashion-mnist"):
        ds = data.load(name, data_dir=data_dir)
        assert ds.train_images.dtype == torch.uint8 and ds.shape == (1, 28, 28)
        assert len(ds.train_images) == len(ds.train_labels) and len(ds.test_images) == len(ds.test_labels)
        assert set(ds.test_labels.unique().tolist()) <= set(range(10)) and len(ds.classes) == 10


def test_real_files_have_the_standard_sizes(real_data_dir):
    ds = data.load("fashion-mnist", data_dir=real_data_dir)
    assert (len(ds.train_images), len(ds.test_images)) == (60000, 10000)
    assert ds.test_labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_search_order_prefers_data_dir_over_environment(tmp_path, monkeypatch):
    make_idx_dataset(tmp_path / "first" / "mnist", n_train=12, n_test=4)
    make_idx_dataset(tmp_path / "second" / "mnist", n_train=30, n_test=4)
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path / "second"))
    assert data.find("mnist") == tmp_path / "second" / "mnist"
    assert data.find("mnist", tmp_path / "first") == tmp_path / "first" / "mnist"
    assert data.search_path(tmp_path / "first")[0] == tmp_path / "first"


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(data.DataError, match=r"dataset 'cifar10' not found in .*; pass --data-dir DIR or --download"):
        data.load("cifar10", data_dir=tmp_path)


def test_cifar_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (7, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, 7).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    ds = data.load("cifar10", data_dir=tmp_path)
    assert ds.train_images.shape == (35, 3, 32, 32) and ds.test_images.shape == (7, 3, 32, 32)
    assert ds.classes[0] == "airplane"


def test_cifar_reader_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(data.DataError, match="refusing to load builtins.print"):
        data_files.read_cifar_batch(tmp_path / "data_batch_1")


def test_embedded_digits_need_no_files():
    ds = data.load("digits")
    assert ds.shape == (1, 28, 28)
    assert (len(ds.train_images), len(ds.test_images)) == (1297, 500)
    assert ds.train_images.max() == 255 and ds.train_images.min() == 0
