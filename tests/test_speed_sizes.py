"""``bench speed --sizes``: photograph batches, per-megapixel timings, peak memory per subprocess."""

from __future__ import annotations

import math

import pytest
import torch

import bench.cost.speed_sizes as speed_sizes
from bench.cost.speed import main as speed_main
from bench.cost.speed_sizes import (
    BATCH_PIXELS,
    format_memory_table,
    format_size_table,
    parse_sizes,
    peak_memory,
    photo_batch,
    size_speed,
)


def test_sizes_parse_and_a_bad_list_fails_with_one_line():
    assert parse_sizes("28,64,256,512") == (28, 64, 256, 512)
    for bad in ("", "28,x", "4"):
        with pytest.raises(ValueError, match="--sizes .* is invalid; expected comma-separated image sides >= 8"):
            parse_sizes(bad)
    with pytest.raises(ValueError, match="--entries 'median,nope' names nope; expected some of"):
        speed_main(["--sizes", "28", "--entries", "median,nope"])


@pytest.mark.parametrize("size, colour", [(28, False), (100, False), (64, True)])
def test_photo_batches_hold_one_pixel_budget_and_are_seeded(size, colour, monkeypatch, tmp_path):
    monkeypatch.setattr("bench.data.search_path", lambda data_dir=None: [tmp_path])  # no data: synthesised
    noisy, real = photo_batch(size, colour=colour, seed=3)
    assert not real
    assert noisy.shape == (BATCH_PIXELS // size**2, 3 if colour else 1, size, size)
    assert noisy.min() >= 0 and noisy.max() <= 1
    torch.testing.assert_close(photo_batch(size, colour=colour, seed=3)[0], noisy, atol=0, rtol=0)
    assert not torch.equal(photo_batch(size, colour=colour, seed=4)[0], noisy)


def test_photo_batches_are_crops_of_the_photograph_where_the_data_is(real_data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(real_data_dir))
    small, real = photo_batch(64)
    assert real and small.shape == (64, 1, 64, 64)
    large, _ = photo_batch(1024)  # larger than the 512x512 photograph: upscaled, then cropped
    assert large.shape == (1, 1, 1024, 1024)


def test_size_speed_gives_seconds_per_megapixel_of_both_and_the_cost_growth(monkeypatch, tmp_path):
    monkeypatch.setattr("bench.data.search_path", lambda data_dir=None: [tmp_path])
    monkeypatch.setattr(speed_sizes, "BATCH_PIXELS", 32 * 32)
    rows, real = size_speed((16, 32), entries=["median"], repeats=1)
    assert not real and [(row["size"], row["entry"], row["images"]) for row in rows] == [
        (16, "median", 4),
        (32, "median", 1),
    ]
    for row in rows:
        for key in ("ours_s_per_mp", "reference_s_per_mp", "ours_cpu_s_per_mp", "reference_cpu_s_per_mp"):
            assert row[key] > 0 and math.isfinite(row[key])
    table = format_size_table(rows)
    assert "scipy.ndimage.median_filter" in table and "median: CPU s/MP at 32 over CPU s/MP at 16" in table


def test_a_slow_reference_times_the_first_images_of_the_batch_and_says_so(monkeypatch, tmp_path):
    # The bm3d package takes ~0.5 s per 28x28 image: it times references()' "images per call".
    from bench.cost import references as references_module

    real_references = references_module.references
    monkeypatch.setattr(
        references_module,
        "references",
        lambda: {
            name: (label, fn, 2 if name == "median" else most) for name, (label, fn, most) in real_references().items()
        },
    )
    monkeypatch.setattr("bench.data.search_path", lambda data_dir=None: [tmp_path])
    monkeypatch.setattr(speed_sizes, "BATCH_PIXELS", 32 * 32)
    rows, _ = size_speed((16, 32), entries=["median"], repeats=1)
    assert [(row["images"], row["reference_images"]) for row in rows] == [(4, 2), (1, 1)]
    assert all(row["reference_s_per_mp"] > 0 for row in rows)
    header, first = format_size_table(rows).splitlines()[:2]
    assert "ref images" in header and first.split()[:3] == ["16", "median", "4"] and " 2 " in first


@pytest.mark.slow
def test_peak_memory_is_measured_in_a_subprocess_per_call():
    rows = peak_memory(64, entries=["median"])
    assert [row["entry"] for row in rows] == ["median"]
    for which in ("ours", "reference"):
        result = rows[0][which]
        assert result["measured"] and result["peak_mib"] >= result["setup_mib"] > 0
    assert "median at 64x64:  ours peak" in format_memory_table(rows)
