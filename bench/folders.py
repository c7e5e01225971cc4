"""Folders of images as datasets: the literature's test sets (BSD68, Set12, CBSD68, Kodak24 crops,
Train400) and any folder of PNG, JPEG, TIFF or BMP files (``folder:PATH``).

A folder's images are its test split, in file-name order, at their own sizes (never resized).
A folder with ``train/`` and ``test/`` subfolders has both splits. A test set without a
training split fits on the one it names (``train400`` for every set here); a grey training
split serves a colour test set for tuning the classical filters only (repeated to three
channels), because networks need colour training images: name a colour training folder with
``cbsd68?train=folder:PATH``.

Dataset specs: ``NAME`` (registered), ``folder:PATH``, either followed by ``?train=SPEC``;
``LABEL=folder:PATH`` names a folder in tables (a grid file's ``[datasets.LABEL] path = ...``).
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.images import ImageList

__all__ = [
    "NaturalSet",
    "NATURAL_SETS",
    "FolderSpec",
    "parse_spec",
    "training_source",
    "read_folder",
    "image_files",
    "download_set",
    "MAX_PIXELS",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Files a dataset folder may hold besides images (provenance and licence notes).
NOTE_FILES = ("source", "readme", "license", "licence")
#: The largest image read (16.8 megapixels, 4096 x 4096): a float32 colour copy is 200 MB and a
#: run holds several (clean, noisy, denoised); bigger images are refused with one line.
MAX_PIXELS = 4096 * 4096

_DNCNN = "https://raw.githubusercontent.com/cszn/DnCNN/e93b27812d3ff523a3a79d19e5e50d233d7a8d0a"
_FFDNET = "https://raw.githubusercontent.com/cszn/FFDNet/e787f46df2f374ff3591186706229cb9a0591fea"
_CBSD68_STEMS = """101085 101087 102061 103070 105025 106024 108005 108070 108082 109053 119082 12084 123074
126007 130026 134035 14037 143090 145086 147091 148026 148089 157055 159008 160068 16077 163085 167062 167083
170057 175032 175043 182053 189080 19021 196073 197017 208001 210088 21077 216081 219090 220075 223061 227092
229036 236037 24077 241004 241048 253027 253055 260058 271035 285079 291000 295087 296007 296059 299086 300091
302008 304034 304074 306005 3096 33039 351093""".split()


@dataclass(frozen=True)
class NaturalSet:
    """A registered folder dataset: where it comes from and what it trains on."""

    name: str
    display: str
    base_url: str
    files: tuple[str, ...]
    source: str
    description: str
    colour: bool = False
    train_from: str | None = "train400"


NATURAL_SETS: dict[str, NaturalSet] = {
    s.name: s
    for s in (
        NaturalSet(
            "bsd68",
            "BSD68",
            f"{_DNCNN}/testsets/BSD68",
            tuple(f"test{i:03d}.png" for i in range(1, 69)),
            "cszn/DnCNN testsets/BSD68 (Martin et al. 2001)",
            "68 grey natural test images, 481x321 and 321x481",
        ),
        NaturalSet(
            "set12",
            "Set12",
            f"{_DNCNN}/testsets/Set12",
            tuple(f"{i:02d}.png" for i in range(1, 13)),
            "cszn/DnCNN testsets/Set12",
            "12 grey test images, 256x256 and 512x512",
        ),
        NaturalSet(
            "train400",
            "Train400",
            f"{_DNCNN}/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400",
            tuple(f"test_{i:03d}.png" for i in range(1, 401)),
            "cszn/DnCNN TrainingCodes Train400 (Zhang et al. 2017)",
            "DnCNN's 400 grey 180x180 training images (its own training split)",
            train_from=None,
        ),
        NaturalSet(
            "cbsd68",
            "CBSD68",
            f"{_FFDNET}/testsets/CBSD68",
            tuple(f"{s}.png" for s in _CBSD68_STEMS),
            "cszn/FFDNet testsets/CBSD68",
            "the 68 BSD68 test images in colour",
            colour=True,
        ),
        NaturalSet(
            "kodak24",
            "Kodak24 (crops)",
            f"{_FFDNET}/testsets/Kodak24",
            tuple(f"kodim{i:02d}.png" for i in range(1, 25)),
            "cszn/FFDNet testsets/Kodak24 (500x500 crops of the Kodak PhotoCD images)",
            "24 colour 500x500 crops of Kodak (published Kodak24 tables use the full 768x512 images)",
            colour=True,
        ),
    )
}


@dataclass(frozen=True)
class FolderSpec:
    """A parsed dataset spec: its label, its registered name or folder, and its training override."""

    label: str
    name: str | None = None
    path: Path | None = None
    train: str | None = None


def parse_spec(spec: str) -> FolderSpec:
    """Split ``[LABEL=]folder:PATH[?train=SPEC]`` or ``NAME[?train=SPEC]`` into its parts.

    >>> parse_spec("cbsd68?train=folder:/data/colour").train
    'folder:/data/colour'
    >>> parse_spec("photos=folder:/home/me/photos").label
    'photos'
    """
    base, _, query = spec.partition("?")
    train = None
    if query:
        key, _, value = query.partition("=")
        if key != "train" or not value:
            raise ValueError(f"dataset {spec!r}: unknown option {query!r}; expected ?train=DATASET")
        train = value
    label, sep, rest = base.partition("=")
    if not sep:
        label, rest = base, base
    if rest.startswith("folder:"):
        path = Path(rest.removeprefix("folder:")).expanduser()
        if not str(path) or str(path) == ".":
            raise ValueError(f"dataset {spec!r}: empty folder path; expected folder:PATH")
        return FolderSpec(label, path=path, train=train)
    if sep:
        raise ValueError(f"dataset {spec!r}: a label names a folder only; expected LABEL=folder:PATH")
    return FolderSpec(label, name=rest, train=train)


def training_source(spec: str) -> str:
    """The name of the data a dataset spec's fits train on, known without loading it.

    A registered grey set without a training split of its own names the one it borrows
    (``train400`` for BSD68 and Set12), so the test sets that train on Train400 share one fit
    instead of each training the same networks on the same patches. Every other spec is its
    own training source: sets with their own training split (MNIST, Train400), colour sets
    (their grey training split is repeated to three channels, other data than Train400's), a
    ``?train=`` override and folders (what those train on is known only once they are read).

    >>> training_source("set12"), training_source("mnist"), training_source("cbsd68")
    ('train400', 'mnist', 'cbsd68')
    """
    parsed = parse_spec(spec)
    natural = NATURAL_SETS.get(parsed.name or "") if parsed.path is None else None
    if natural is None or natural.colour or natural.train_from is None or parsed.train is not None:
        return spec
    return natural.train_from


def _is_note(path: Path) -> bool:
    return path.name.startswith(".") or path.stem.lower() in NOTE_FILES


def image_files(folder: Path) -> list[Path]:
    """The image files of ``folder`` in name order; anything else (but notes) raises ValueError."""
    if not folder.is_dir():
        raise ValueError(f"dataset folder {folder} does not exist; expected a folder of PNG/JPEG/TIFF/BMP images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not _is_note(p))
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ValueError(f"{path}: not an image file; expected one of {', '.join(IMAGE_SUFFIXES)}")
    if not files:
        raise ValueError(f"dataset folder {folder} holds no images; expected PNG/JPEG/TIFF/BMP files")
    return files


#: PIL modes read, and what each becomes: grey stays grey, everything else becomes RGB.
_MODES = {"1": "L", "L": "L", "LA": "L", "P": "RGB", "RGB": "RGB", "RGBA": "RGB", "CMYK": "RGB", "YCbCr": "RGB"}


def read_image(path: Path) -> np.ndarray:
    """One 8-bit image as an H x W x C uint8 array (C = 1 grey or 3 colour; alpha dropped)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValueError(
                    f"{path}: {width}x{height} image is too large; expected at most {MAX_PIXELS:,} pixels "
                    "(crop or tile it into smaller images)"
                )
            if image.mode not in _MODES:
                raise ValueError(f"{path}: {image.mode} images are not supported; expected 8-bit grey or colour")
            array = np.asarray(image.convert(_MODES[image.mode]), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None
    return array[..., None] if array.ndim == 2 else array


def read_folder(folder: Path):
    """Every image of ``folder`` as a uint8 ImageList (even when all share one size, so that each
    image draws its own noise, whatever else the folder holds); grey images are repeated to three
    channels when the folder also holds colour."""
    arrays = [read_image(path) for path in image_files(folder)]
    channels = max(a.shape[-1] for a in arrays)
    tensors = [torch.from_numpy(np.repeat(a, channels // a.shape[-1], axis=-1).copy()).permute(2, 0, 1) for a in arrays]
    return ImageList([t.contiguous() for t in tensors])


def fetch_url(url: str, path: Path) -> None:
    """Copy ``url`` (https:// or file://) to ``path``."""
    urllib.request.urlretrieve(url, path)


def download_set(natural: NaturalSet, root: Path, fetch=None) -> Path:
    """Fetch a registered set's files into ``root / name`` with a SOURCE note; returns the folder.

    Files go to a temporary folder first, renamed into place only when every file has arrived
    and decodes, so a failed download leaves nothing half-written. ``fetch(url, path)`` is
    ``urllib.request.urlretrieve`` unless given (tests pass a local copy).
    """
    fetch = fetch or fetch_url
    target = root / natural.name
    partial = root / f".{natural.name}.partial-{os.getpid()}"
    partial.mkdir(parents=True, exist_ok=True)
    try:
        for name in natural.files:
            fetch(f"{natural.base_url}/{name}", partial / name)
            read_image(partial / name)
        (partial / "SOURCE").write_text(f"{natural.display}: {natural.description}.\nFrom {natural.base_url}/\n")
        partial.rename(target)
    except BaseException:
        for path in partial.glob("*"):
            path.unlink()
        partial.rmdir()
        raise
    return target
