"""Folders of images as datasets: mixed sizes, grey and colour, bad files, download, training splits."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench import data, folders
from bench.images import ImageList, common_crop, map_batches, per_image, sample_crops
from bench.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, height: int, width: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    Image.fromarray(array[..., 0] if channels == 1 else array).save(path)
    return array


def _folder(tmp_path: Path, sizes, channels: int = 1, suffix: str = ".png") -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (h, w) in enumerate(sizes):
        _write(folder / f"im{i:02d}{suffix}", h, w, channels, seed=i)
    return folder


def test_a_folder_of_mixed_sizes_keeps_every_size_and_pixel(tmp_path):
    folder = _folder(tmp_path, [(20, 30), (30, 20), (20, 30)])
    (folder / "SOURCE").write_text("where these come from")  # notes are not images
    ds = data.load(f"folder:{folder}")
    assert isinstance(ds.test_images, ImageList) and ds.test_images.sizes == [(20, 30), (30, 20), (20, 30)]
    original = np.asarray(Image.open(folder / "im01.png"))
    assert np.array_equal(ds.test_images[1][0].numpy(), original)
    assert ds.test_labels is None and ds.classes == () and not ds.labelled and ds.train_from == "train400"
    assert [idx.tolist() for idx, _ in ds.test_images.groups()] == [[0, 2], [1]]


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".bmp"])
def test_jpeg_tiff_and_bmp_folders_are_datasets(tmp_path, suffix):
    ds = data.load(f"folder:{_folder(tmp_path, [(16, 16), (24, 16)], channels=3, suffix=suffix)}")
    assert ds.test_images.channels == 3 and len(ds.test_images) == 2


def test_grey_images_beside_colour_ones_become_colour(tmp_path):
    folder = _folder(tmp_path, [(16, 16)], channels=3)
    grey = _write(folder / "zz.png", 16, 16, 1)
    images = data.load(f"folder:{folder}").test_images
    assert images.channels == 3 and all(torch.equal(images[1][c], torch.from_numpy(grey[..., 0])) for c in range(3))


def test_train_and_test_subfolders_are_the_splits(tmp_path):
    (tmp_path / "set").mkdir()
    train, test = _folder(tmp_path / "set", [(12, 12)] * 3), tmp_path / "set" / "test"
    train.rename(tmp_path / "set" / "train")
    test.mkdir()
    _write(test / "a.png", 14, 18)
    ds = data.load(f"folder:{tmp_path / 'set'}")
    images, labels, networks = data.training_split(ds)
    assert len(ds.test_images) == 1 and images.shape == (3, 1, 12, 12) and labels is None and networks


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda f: (f / "notes.csv").write_text("a,b"), r"notes.csv: not an image file; expected one of \.png"),
        (lambda f: (f / "bad.png").write_bytes(b"not a png at all"), r"bad.png: not a readable image"),
        (lambda f: (f / "cut.png").write_bytes((f / "im00.png").read_bytes()[:300]), r"cut.png: not a readable image"),
    ],
)
def test_a_bad_file_is_named_in_one_line(tmp_path, make, message):
    folder = _folder(tmp_path, [(64, 64)])
    make(folder)
    with pytest.raises(ValueError, match=message):
        data.load(f"folder:{folder}")


def test_an_empty_or_missing_folder_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty holds no images; expected PNG/JPEG/TIFF/BMP"):
        data.load(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(ValueError, match=r"nowhere does not exist"):
        data.load(f"folder:{tmp_path / 'nowhere'}")


def test_a_huge_image_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    folder = _folder(tmp_path, [(40, 50)])
    monkeypatch.setattr(folders, "MAX_PIXELS", 40 * 50 - 1)
    decoded = []
    monkeypatch.setattr(Image.Image, "convert", lambda *a, **k: decoded.append(1))
    with pytest.raises(ValueError, match=r"im00.png: 50x40 image is too large; expected at most 1,999 pixels"):
        data.load(f"folder:{folder}")
    assert not decoded


@pytest.mark.slow
def test_the_cli_refuses_a_bad_folder_with_exit_2_and_writes_nothing(tmp_path):
    folder = _folder(tmp_path, [(32, 32)])
    (folder / "x.txt").write_text("hello")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "run",
            "--grid",
            "natural",
            "--datasets",
            f"folder:{folder}",
            "--denoisers",
            "identity",
            "--levels",
            "25",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "x.txt: not an image file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_specs_parse_labels_and_training_overrides(tmp_path):
    assert folders.parse_spec("bsd68") == folders.FolderSpec("bsd68", name="bsd68")
    spec = folders.parse_spec(f"mine=folder:{tmp_path}?train=folder:/t")
    assert (spec.label, spec.path, spec.train) == ("mine", tmp_path, "folder:/t")
    for bad in ("bsd68?colour=1", "mine=bsd68", "folder:"):
        with pytest.raises(ValueError, match="dataset"):
            folders.parse_spec(bad)
    data.check_spec("cbsd68?train=folder:/x")
    with pytest.raises(ValueError, match="unknown dataset 'bsd86'"):
        data.check_spec("bsd86")
    assert data.display_name("kodak24") == "Kodak24 (crops)" and data.display_name("x=folder:/p") == "x"
    assert not data.labelled("bsd68") and data.labelled("mnist")
    assert not data.networks_train_on("cbsd68") and data.networks_train_on("cbsd68?train=folder:/x")
    assert data.networks_train_on("bsd68")


def _fake_train400(root: Path) -> None:
    folder = root / "train400"
    folder.mkdir(parents=True)
    for i in range(3):
        _write(folder / f"test_{i:03d}.png", 18, 18, seed=10 + i)


def test_a_grey_training_set_serves_a_colour_folder_for_the_filters_only(tmp_path):
    _fake_train400(tmp_path / "data")
    ds = data.load(f"folder:{_folder(tmp_path, [(20, 20), (22, 20)], channels=3)}")
    images, _, networks = data.training_split(ds, data_dir=tmp_path / "data")
    assert images.shape == (3, 3, 18, 18) and not networks
    assert torch.equal(images[:, 0], images[:, 2])


def test_a_flat_folder_named_to_train_on_is_the_training_split(tmp_path):
    # cbsd68?train=folder:X with X a plain folder of colour images: X's images, and networks
    # may train on them (not Train400 repeated to three channels, which serves filters only).
    _fake_train400(tmp_path / "data")
    (tmp_path / "data" / "cbsd68").mkdir()
    _write(tmp_path / "data" / "cbsd68" / "a.png", 20, 20, 3)
    colour = _folder(tmp_path, [(16, 16), (16, 16)], channels=3)
    ds = data.load(f"cbsd68?train=folder:{colour}", data_dir=tmp_path / "data")
    images, _, networks = data.training_split(ds, data_dir=tmp_path / "data")
    assert networks and images.shape == (2, 3, 16, 16)
    assert torch.equal(images[1], torch.from_numpy(np.array(Image.open(colour / "im01.png"))).permute(2, 0, 1))


def test_download_fetches_every_file_with_a_source_note(tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    remote.mkdir()
    for i in range(1, 3):
        _write(remote / f"{i:02d}.png", 12, 12, seed=i)
    fake = folders.NaturalSet("set12", "Set12", remote.as_uri(), ("01.png", "02.png"), "test", "two images")
    monkeypatch.setitem(folders.NATURAL_SETS, "set12", fake)
    ds = data.load("set12", data_dir=tmp_path / "cache", download=True)  # file:// through urllib
    assert len(ds.test_images) == 2 and (tmp_path / "cache" / "set12" / "SOURCE").read_text().startswith("Set12")
    assert (tmp_path / "cache" / "set12" / "02.png").read_bytes() == (remote / "02.png").read_bytes()


def test_a_failed_download_leaves_nothing_behind(tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    _write(remote / "01.png", 12, 12)
    (remote / "02.png").write_bytes(b"<html>rate limited</html>")
    fake = folders.NaturalSet("set12", "Set12", remote.as_uri(), ("01.png", "02.png"), "test", "two")
    with pytest.raises(ValueError, match="02.png: not a readable image"):
        folders.download_set(fake, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    calls = []
    folders.download_set(
        replace(fake, files=("01.png",)),
        tmp_path / "cache",
        fetch=lambda u, p: calls.append(u) or p.write_bytes((remote / "01.png").read_bytes()),
    )
    assert calls == [f"{remote.as_uri()}/01.png"]


def test_size_groups_map_and_metrics_keep_the_images_order():
    images = ImageList([torch.rand(1, 8, 12), torch.rand(1, 12, 8), torch.rand(1, 8, 12)])
    doubled = map_batches(lambda batch: batch * 2, images)
    assert all(torch.equal(d, 2 * i) for d, i in zip(doubled, images))
    noisy = images.map(lambda t: (t + 0.1 * (torch.arange(t.numel()).reshape(t.shape) % 3)).clamp(0, 1))
    values = per_image(psnr, noisy, images)
    expected = [float(psnr(n[None], c[None])[0]) for n, c in zip(noisy, images)]
    assert values.tolist() == pytest.approx(expected)
    assert common_crop(images).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="share their channel count"):
        ImageList([torch.zeros(1, 4, 4), torch.zeros(3, 4, 4)])


def test_sample_crops_cut_one_region_of_all_three_sets():
    clean = ImageList([torch.zeros(1, 200, 300), torch.zeros(1, 300, 200)])
    clean[0][:, 100:140, 50:60] = 1.0  # the detail the crop should find
    crops = sample_crops(clean, clean, clean.map(lambda t: t * 0.5), n=8)
    assert crops["clean"].shape == (2, 1, 96, 96) and crops["clean"].dtype == np.uint8
    assert crops["clean"][0].max() == 255 and np.array_equal(crops["denoised"][0] > 0, crops["clean"][0] > 0)
    thumbs = torch.rand(10, 1, 28, 28)
    assert sample_crops(thumbs, thumbs, thumbs, n=8)["noisy"].shape == (8, 1, 28, 28)


def test_a_grid_of_folders_leaves_out_what_cannot_run_there_and_their_classifiers():
    from bench.grids import Grid

    grid = Grid.build(
        name="g",
        datasets=["bsd68", "cbsd68", "digits"],
        noises={"awgn": [25]},
        denoisers=["median", "dncnn", "dense_dae"],
        classifiers=["svm_rbf"],
    )
    ran = {(c.dataset, c.denoiser) for c in grid.cells()}
    assert ran == {
        ("bsd68", "median"),
        ("bsd68", "dncnn"),
        ("cbsd68", "median"),
        ("digits", "median"),
        ("digits", "dncnn"),
        ("digits", "dense_dae"),
    }
    assert [n for n, _ in grid.left_out("cbsd68")] == ["dncnn", "dense_dae"]
    assert "fixed input size" in dict(grid.left_out("bsd68"))["dense_dae"]
    assert all(c.classifiers == () for c in grid.cells() if c.dataset != "digits")
    assert all(c.classifiers for c in grid.cells() if c.dataset == "digits")


def test_a_grid_file_names_folders_as_datasets(tmp_path):
    from bench.grids.grid import load_grid_file

    _folder(tmp_path, [(16, 16)])
    path = tmp_path / "mine.toml"
    path.write_text(
        'denoisers = ["median"]\n[noises]\nawgn = [25]\n[datasets.holiday]\npath = "photos"\n'
        '[datasets.cbsd68]\ntrain = "folder:colour"\n'
    )
    grid = load_grid_file(path)
    assert grid.datasets == (f"holiday=folder:{tmp_path / 'photos'}", "cbsd68?train=folder:colour")
    assert data.display_name(grid.datasets[0]) == "holiday" and data.load(grid.datasets[0]).display == "holiday"
    path.write_text('denoisers = ["median"]\n[noises]\nawgn = [25]\n[datasets.x]\nfolder = "p"\n')
    with pytest.raises(ValueError, match=r"mine.toml: \[datasets.x\]: expected a table with keys path and train"):
        load_grid_file(path)
