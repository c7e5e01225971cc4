"""``python -m bench speed --sizes 28,64,256,512``: each classical entry beside its reference at
several image sizes, in seconds per megapixel, and each one's peak memory on the largest size.

Every size times the same number of pixels per batch (one 512x512 image, or 334 28x28 ones),
so seconds per megapixel compare across sizes: a cost linear in pixels gives the same figure
at every size. The images are grey crops of a Set12 photograph (``set12/08.png`` under the
data search path, upscaled where a crop would be larger than it) with Gaussian noise of
sigma 25/255; bm3d_torch also gets a colour case on CBSD68 crops. Where the data is absent
the images are synthesised (smoothed noise), and the header says so. Ours and the reference
alternate within each repeat, one thread each; figures are medians over repeats.

Peak memory comes from a fresh subprocess per measurement, so one never inherits another's:
after the imports, the batch and one warm-up call the process's peak resident size is reset
(Linux), and the table gives the peak during the next call and its growth over the resident
size before it
(``resource.getrusage``'s whole-life peak where the reset is not available).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from bench.cost import timing
from bench.noise import Noise

__all__ = ["SIZES", "photo_batch", "size_speed", "peak_memory", "format_size_table", "parse_sizes"]

#: The default ``--sizes``.
SIZES = (28, 64, 256, 512)
#: Pixels in every timed batch: one 512x512 image.
BATCH_PIXELS = 512 * 512
#: Noise of the photographs: sigma 25 on the 0-255 scale, the literature's usual level.
PHOTO_NOISE = Noise("gaussian", 25 / 255)
#: The grey photograph and the colour set crops come from.
GREY_SOURCE, COLOUR_SOURCE = ("set12", "08.png"), ("cbsd68", None)


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"28,64,256"`` as a tuple of sizes; one clear ValueError otherwise.

    >>> parse_sizes("28, 512")
    (28, 512)
    """
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 8:
        raise ValueError(
            f"--sizes {text!r} is invalid; expected comma-separated image sides >= 8, such as 28,64,256,512"
        )
    return sizes


def _source_images(colour: bool) -> list[np.ndarray] | None:
    """The photographs (H x W x C float in [0, 1]) crops come from, or None where absent."""
    from PIL import Image

    from bench.data import search_path

    folder_name, file_name = COLOUR_SOURCE if colour else GREY_SOURCE
    for root in search_path():
        folder = root / folder_name
        paths = [folder / file_name] if file_name else sorted(folder.glob("*.png"))[:8]
        if paths and all(path.is_file() for path in paths):
            pixels = [
                np.asarray(Image.open(path).convert("RGB" if colour else "L"), np.float32) / 255 for path in paths
            ]
            return [image if image.ndim == 3 else image[..., None] for image in pixels]
    return None


def _crops(images: list[np.ndarray], size: int, count: int, generator: np.random.Generator) -> np.ndarray:
    # Seeded crops, each from one of the images in turn; an image smaller than a crop is
    # upscaled first (nearest-neighbour repeat, then cropped), so every crop is real texture.
    out = []
    for i in range(count):
        image = images[i % len(images)]
        factor = -(-size // min(image.shape[:2]))
        if factor > 1:
            image = image.repeat(factor, 0).repeat(factor, 1)
        top = generator.integers(0, image.shape[0] - size + 1)
        left = generator.integers(0, image.shape[1] - size + 1)
        out.append(image[top : top + size, left : left + size])
    return np.stack(out).transpose(0, 3, 1, 2)


def photo_batch(size: int, *, colour: bool = False, seed: int = 0) -> tuple[Tensor, bool]:
    """A noisy N x C x size x size batch of ``BATCH_PIXELS`` pixels, and whether it is real data."""
    count = max(1, BATCH_PIXELS // (size * size))
    images = _source_images(colour)
    real = images is not None
    if real:
        clean = torch.from_numpy(_crops(images, size, count, np.random.default_rng(seed)))
    else:  # no data: smooth seeded noise, said so in the table's header
        generator = torch.Generator().manual_seed(seed)
        raw = torch.rand(count, 3 if colour else 1, size + 4, size + 4, generator=generator)
        clean = torch.nn.functional.avg_pool2d(raw, 5, 1)
    return PHOTO_NOISE.apply(clean.contiguous(), seed=seed + 1), real


def _cases(entries: list[str] | None) -> list[tuple[str, bool]]:
    """(entry, colour) pairs to time: every classical entry in grey, bm3d_torch in colour too."""
    from bench.cost.references import FIXED
    from bench.registry import DENOISERS

    names = [name for name in FIXED if name in DENOISERS.names() and (entries is None or name in entries)]
    return [(name, False) for name in names] + [(name, True) for name in names if name == "bm3d_torch"]


def _reference(name: str, colour: bool) -> tuple[str, Callable[[np.ndarray], object] | None, int]:
    """The reference's label, callable (None: none for this case) and most images per timed call."""
    from bench.cost.references import references as _references

    label, reference, most = _references()[name]
    if colour and name != "bm3d_torch":
        return label, None, most
    return label, reference, most


def size_speed(
    sizes: tuple[int, ...] = SIZES, *, entries: list[str] | None = None, repeats: int = 3, seed: int = 0
) -> tuple[list[dict], bool]:
    """One row per (size, entry, colour): seconds per megapixel of ours and of the reference.

    Returns the rows and whether every batch was real data (False: synthesised images).
    """
    rows, all_real = [], True
    for colour in (False, True):
        names = [name for name, in_colour in _cases(entries) if in_colour == colour]
        for size in sizes if names else ():
            noisy, real = photo_batch(size, colour=colour, seed=seed)
            all_real &= real
            rows += [_time_case(name, colour, noisy, repeats) for name in names]
    return rows, all_real


def _time_case(name: str, colour: bool, noisy: Tensor, repeats: int) -> dict:
    """Ours and the reference on ``noisy``, interleaved ``repeats`` times after a warm-up each."""
    from bench.cost.references import entry as _entry

    ours = _entry(name)
    label, reference, most = _reference(name, colour)
    # A slow reference (the bm3d package: ~0.5 s per 28x28 image) times the batch's first
    # ``most`` images only; the row says how many, and seconds per megapixel stay comparable.
    inputs = {"ours": noisy, "reference": noisy[:most].numpy()}
    calls = {"ours": lambda: ours(noisy)}
    if reference is not None:
        calls["reference"] = lambda: reference(inputs["reference"])
    passes: dict[str, list[timing.Pass]] = {key: [] for key in ("ours", "reference")}
    for call in calls.values():
        call()  # warm-up: compilation, caches
    for _ in range(repeats):  # interleaved: a load spike slows both
        for key, call in calls.items():
            passes[key].append(timing.timed(call))
    size = noisy.shape[-1]
    row = {"size": size, "entry": name + (" (colour)" if colour else ""), "images": len(noisy), "reference": label}
    row["reference_images"] = len(inputs["reference"]) if reference is not None else 0
    for key, timed in passes.items():
        megapixels = len(inputs[key]) * size * size / 1e6
        row[f"{key}_s_per_mp"] = _per_megapixel([p.wall for p in timed], megapixels)
        row[f"{key}_cpu_s_per_mp"] = _per_megapixel([p.cpu for p in timed], megapixels)
    return row


def _per_megapixel(seconds: list[float], megapixels: float) -> float:
    return statistics.median(seconds) / megapixels if seconds else float("nan")


def _status_mib(field: str) -> float | None:
    # A field of /proc/self/status (VmRSS, VmHWM) in MiB; None where there is none (not Linux).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    # Linux resets a process's peak resident size (VmHWM) when "5" is written to clear_refs:
    # without it, the imports' peak would hide a call that needs less.
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _peak_child(name: str, which: str, size: int, colour: bool) -> None:
    # Runs in the subprocess: setup, then one call; prints the resident memory before it and
    # the peak during it (MiB). Where the peak cannot be reset, getrusage's whole-life peak.
    from bench.cost.references import entry as _entry

    torch.set_num_threads(1)
    noisy, _ = photo_batch(size, colour=colour, seed=0)
    noisy = noisy[:1]
    fn, arg = (_entry(name), noisy) if which == "ours" else (_reference(name, colour)[1], noisy.numpy())
    if fn is None:
        print(json.dumps({"measured": False}))
        return
    fn(arg)  # warm-up: loading compiled kernels costs memory once per process, not per call
    reset = _reset_peak()
    before = _status_mib("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fn(arg)
    peak = _status_mib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"setup_mib": before, "peak_mib": peak, "measured": True}))


def peak_memory(size: int = 512, *, entries: list[str] | None = None) -> list[dict]:
    """Peak resident memory of ours and the reference denoising one ``size`` image, each in its own process."""
    rows = []
    for name, colour in _cases(entries):
        row = {"entry": name + (" (colour)" if colour else ""), "size": size}
        for which in ("ours", "reference"):
            code = f"from bench.cost.speed_sizes import _peak_child; _peak_child({name!r}, {which!r}, {size}, {colour})"
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            try:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                result = {"measured": False, "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
            row[which] = result
        rows.append(row)
    return rows


def format_size_table(rows: list[dict]) -> str:
    """The rows as an aligned table, then each entry's cost per megapixel at its largest size
    over that at 64 (or at its smallest size): 1.0 is a cost linear in pixels."""
    header = ["size", "entry", "images", "ours s/MP", "reference", "ref images", "ref s/MP", "ref/ours", "cpu ref/ours"]
    lines = [
        [
            str(row["size"]),
            row["entry"],
            str(row["images"]),
            f"{row['ours_s_per_mp']:.3f}",
            row["reference"],
            str(row.get("reference_images", row["images"])),
            _figure(row["reference_s_per_mp"]),
            _figure(row["reference_s_per_mp"] / row["ours_s_per_mp"], "x{:.2f}"),
            _figure(row["reference_cpu_s_per_mp"] / row["ours_cpu_s_per_mp"], "x{:.2f}"),
        ]
        for row in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    table = ["  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) for cells in [header, *lines]]
    by_entry: dict[str, dict[int, float]] = {}
    for row in rows:
        by_entry.setdefault(row["entry"], {})[row["size"]] = row["ours_cpu_s_per_mp"]
    for entry, costs in by_entry.items():
        small, large = (64 if 64 in costs else min(costs)), max(costs)
        if large > small:
            table.append(f"{entry}: CPU s/MP at {large} over CPU s/MP at {small}: {costs[large] / costs[small]:.2f}")
    return "\n".join(table)


def format_memory_table(rows: list[dict]) -> str:
    """Peak resident memory (MiB) of ours and the reference, whole and grown during the call."""
    lines = []
    for row in rows:
        cells = [f"{row['entry']} at {row['size']}x{row['size']}:"]
        for which in ("ours", "reference"):
            result = row[which]
            if result.get("measured"):
                grown = max(0.0, result["peak_mib"] - result["setup_mib"])
                cells.append(f"{which} peak {result['peak_mib']:,.0f} MiB (+{grown:,.0f} in the call)")
            else:
                cells.append(f"{which} -" + (f" ({result['error']})" if "error" in result else ""))
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _figure(value: float, pattern: str = "{:.3f}") -> str:
    return "-" if value != value else pattern.format(value)


def run_sizes(sizes: tuple[int, ...], *, entries: list[str] | None, repeats: int, memory: bool) -> None:
    """Print the size table, then (``memory``) the peak memory at the largest size."""
    rows, real = size_speed(sizes, entries=entries, repeats=repeats)
    source = "crops of set12/08.png (colour: cbsd68)" if real else "SYNTHESISED images (set12/cbsd68 not found)"
    print(
        f"one thread; {BATCH_PIXELS:,} pixels per batch, {source}, gaussian sigma 25/255; "
        f"medians of {repeats} interleaved repeats; ref/ours > 1: ours is faster (cpu: by process CPU time, "
        "which a loaded machine inflates less); ref images < images: a slow reference times the batch's "
        "first images only"
    )
    print(format_size_table(rows))
    if memory:
        print(format_memory_table(peak_memory(max(sizes), entries=entries)))
