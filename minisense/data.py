"""The image data: MNIST, Fashion-MNIST, scikit-learn's digits and recorded car-racing frames.

The paper's static task (Section 4.1, "p-SIREN: generating sparse binary neural networks") is MNIST
classification with a 2-conv + 1-FC network on 28x28 grey images; its dynamic task imitates a
car-racing driver with the car network on 32x32 grey frames. Every dataset is handed out in the
same form: ``uint8`` images of shape (n, h, w) and ``int64`` labels (0..9; 0..2 for carracing).

Splits (the paper states none; the test set is never used to select anything):

* mnist, fashion-mnist: train = the FIRST 50,000 images of the training file, validation = the
  LAST 10,000 (``VALIDATION_SIZE``), test = the 10,000 images of the t10k file. No seed involved.
* digits (scikit-learn's 1,797 8x8 digits, no download, for quick runs): each image is scaled from
  0..16 to 0..255, resized to 20x20 by bilinear interpolation and pasted centred into a 28x28 zero
  frame, the way MNIST centres its digits in a 20x20 box. The order is fixed by
  ``np.random.default_rng(0).permutation(1797)``: the first 360 are test, the next 360
  validation, the remaining 1,077 train.
* carracing: frames recorded by ``minisense car record`` (``minisense.car``), split by episode as
  recorded there (the last tenth of the episodes test, the tenth before validation). There is no
  download: when no folder holds ``carracing.npz``, the error says to record one.

MNIST-style files are the four IDX files, gzipped (canonical names) or not, in ``<root>/<name>/``
or in ``<root>`` itself. Where to look, in order: the ``data_dir`` argument (``--data-dir``),
``$MINISENSE_DATA``, then the cache ``default_cache_dir()/<name>/``, into which the files are
downloaded (MD5-checked, written atomically) when none of them holds the data. A car-racing
recording, ``carracing.npz`` + ``carracing.json``, is looked up in the same folders.

A car-racing frame, as the car network sees it (``preprocess``): the 96x96 RGB observation,
indicator bar (rows 84-95: speed, ABS, steering, gyro) included, turned grey with the ITU-R 601
weights 0.299 R + 0.587 G + 0.114 B and shrunk to 32x32 by the mean of each 3x3 block, rounded
to uint8. Valid convolutions then give the paper's flatten size: 32 -> 26 -> pool 2 -> 13 -> 9
-> pool 3 -> 3, 64 * 3 * 3 = 576. That is the ``grey`` frame (``FRAME_KINDS``). The
``speedometer`` frame is the same with its bottom ``SPEEDOMETER_ROWS`` rows redrawn as a bar of
the car's speed: CarRacing's own speed indicator is about one of the 32 rows tall at racing
speed, drawn to whole pixels of its window (2.5 units/s a pixel), and a ternary network keeps
little of it (the results book, "Car: DAgger"); the speedometer gives the speed the indicator
shows (read from the simulator, as the indicator reads it) the frame's width, ``SPEEDOMETER_RANGE``
units/s from its left edge to its right, its last column grey by the fraction. The
``speedometer-fine`` frame draws its bottom row over ``SPEEDOMETER_FINE_RANGE`` instead, 0.5 units/s
a column around the speeds the experts hold on straights.

A recording (``minisense car record``) is one ``carracing.npz`` (compressed) beside
``carracing.json``:

    frames   (n, 32, 32) uint8    the network inputs
    labels   (n,) uint8           the expert's class for that frame, 0..2
    episode  (n,) int32           the index of the frame's episode, 0..E-1
    step     (n,) int32           the step within the episode
    seeds    (E,) int64           episode i is CarRacing-v3 reset with seed ``seed + i``
    returns  (E,) float64         the expert's return in each episode (3-class actions)
    laps     (E,) bool            whether the expert finished the lap

Splits are by episode (neighbouring frames are near-duplicates): the last ceil(E/10) episodes
are test, the ceil(E/10) before them validation, the rest train.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import json
import os
import pathlib
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from minisense import files
from minisense.errors import MinisenseError

DATASETS = ("digits", "mnist", "fashion-mnist", "carracing")
SPLITS = ("train", "validation", "test")
DOWNLOADABLE = ("mnist", "fashion-mnist")
CARRACING_CLASSES = 3
VALIDATION_SIZE = 10_000
DOWNLOAD_TIMEOUT_SECONDS = 30

# The four files of an MNIST-style dataset, without the ".gz".
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    # https first; the S3 website endpoint serves plain http only (the MD5 check guards both)
    "fashion-mnist": ["https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                      "data/fashion/",
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
MD5 = {  # of the published .gz files
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
EXPECTED_COUNTS = {"mnist": (60_000, 10_000), "fashion-mnist": (60_000, 10_000)}  # (train, test)

# IDX header byte 3 -> big-endian element type.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Split:
    """One part of a dataset.

    Attributes
    ----------
    images : ndarray of shape (n, 28, 28) (carracing: (n, 32, 32)), uint8 in 0..255, C-contiguous
    labels : ndarray of shape (n,), int64 in 0..num_classes-1
    """

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """A dataset in three splits (the split rule is in the module docstring).

    Attributes
    ----------
    name : one of ``DATASETS``
    train, validation, test : Split
    num_classes : 10 (carracing: 3)
    source : the folder the files were read from, or "scikit-learn digits"
    frame_kind : a car recording's frames, one of ``FRAME_KINDS`` (others: "grey")
    """

    name: str
    train: Split
    validation: Split
    test: Split
    num_classes: int
    source: str
    frame_kind: str = "grey"


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in ``.gz``).

    IDX layout: 2 zero bytes, a type code (``IDX_DTYPES``), the number of dims d, then d big-endian
    uint32 sizes, then the elements, big-endian, row-major.

    Returns
    -------
    ndarray of the file's shape and element type, native byte order, writable.
    """
    path = pathlib.Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise MinisenseError(f"file {path} is not a complete gzip file ({error}); "
                             "re-download it") from None
    except OSError as error:
        raise MinisenseError(f"cannot read file {path} ({error.strerror or error}); "
                             "check the path") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise MinisenseError(f"file {path} is not an IDX file (magic 0x{data[:4].hex()}; "
                             "an IDX file starts with two zero bytes); check it is the right file "
                             "or re-download it")
    code, ndim, header = data[2], data[3], 4 + 4 * data[3]
    if code not in IDX_DTYPES or not 1 <= ndim <= 4 or len(data) < header:
        raise MinisenseError(f"file {path} has a bad IDX header (type code 0x{code:02x}, "
                             f"{ndim} dims, {len(data)} bytes in all); re-download it")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
    found = len(data) - header
    if found < expected:
        raise MinisenseError(f"file {path} is truncated: expected {expected} bytes of data "
                             f"after the header, found {found}; re-download it")
    if found > expected:
        raise MinisenseError(f"file {path} has {found - expected} trailing bytes after the "
                             f"{expected} bytes of data its header announces; re-download it")
    array = np.frombuffer(data, dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="))  # astype copies: writable, native


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/minisense``, or ``~/.cache/minisense`` when that is not set."""
    return (pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
            / "minisense")


def _file_in(folder: pathlib.Path, stem: str) -> pathlib.Path | None:
    """The ``stem.gz`` or ``stem`` file in ``folder`` (gzipped preferred), or None."""
    for path in (folder / (stem + ".gz"), folder / stem):
        if path.is_file():
            return path
    return None


def _folders(name: str, data_dir) -> tuple[list[pathlib.Path], str]:
    """The folders that may hold ``name``, in lookup order (module docstring), and a note saying
    so for an error message."""
    roots = [pathlib.Path(data_dir)] if data_dir is not None else []
    env = os.environ.get("MINISENSE_DATA")
    roots += [pathlib.Path(env)] if env else []
    folders = [f for root in roots for f in (root / name, root)] + [default_cache_dir() / name]
    looked = ", ".join(str(f) for f in folders)
    return folders, looked + ("" if env else " ($MINISENSE_DATA is not set)")


def _search(name: str, data_dir) -> tuple[pathlib.Path | None, str]:
    """Look for the four files (lookup order in the module docstring);
    -> (folder or None, where looked)."""
    folders, looked = _folders(name, data_dir)
    notes = []
    for folder in folders:
        missing = [stem + ".gz" for stem in FILES if _file_in(folder, stem) is None]
        if not missing:
            return folder, ""
        if len(missing) < len(FILES):
            notes.append(f"{folder} lacks {', '.join(missing)}")
    return None, looked + "".join(f"; {note}" for note in notes)


def find_dataset_files(name, data_dir=None) -> pathlib.Path:
    """The folder holding the four IDX files of ``name`` ("mnist" or "fashion-mnist"), or raise."""
    _check_name(name, downloadable=True)
    folder, looked = _search(name, data_dir)
    if folder is None:
        raise MinisenseError(f"no {name} data found: looked in {looked}; "
                             "copy the four IDX .gz files into one of these folders "
                             "or pass --data-dir DIR")
    return folder


def _md5(path: pathlib.Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _ChecksumMismatch(Exception):
    pass


def _fetch(url: str, target: pathlib.Path, md5: str) -> str | None:
    """Download ``url`` to ``target`` atomically, MD5 checked before it replaces anything;
    -> None, or why it failed."""
    try:
        with files.atomic_file(target, sync=False) as f, \
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            digest = hashlib.md5()
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                digest.update(chunk)
            if digest.hexdigest() != md5:
                raise _ChecksumMismatch(f"MD5 mismatch (got {digest.hexdigest()}, expected {md5})")
        return None
    except (_ChecksumMismatch, MinisenseError) as error:
        return str(error)
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return str(getattr(error.reason, "strerror", None) or error.reason)
    except (OSError, http.client.HTTPException, ValueError) as error:
        return str(getattr(error, "strerror", None) or error) or type(error).__name__


def _download(name: str, folder: pathlib.Path) -> str | None:
    """Fetch the missing or damaged .gz files of ``name`` into ``folder``;
    -> None, or why it failed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"cannot create {folder}: {error.strerror or error}"
    for stem in FILES:
        filename = stem + ".gz"
        target, md5 = folder / filename, MD5[name][filename]
        if target.is_file() and _md5(target) == md5:
            continue
        failures = []
        for mirror in MIRRORS[name]:
            why = _fetch(mirror + filename, target, md5)
            if why is None:
                break
            failures.append(f"{mirror}{filename}: {' '.join(why.split())}")
        else:
            return "; ".join(failures) or f"no mirror is listed for {name}"
    return None


def download_dataset(name, cache_dir) -> pathlib.Path:
    """Download the four .gz files of ``name`` into ``cache_dir/name`` (MD5-checked);
    -> that folder."""
    _check_name(name, downloadable=True)
    folder = pathlib.Path(cache_dir) / name
    why = _download(name, folder)
    if why is not None:
        raise MinisenseError(f"downloading {name} into {folder} failed ({why}); check the network, "
                             "or copy the four IDX .gz files there by hand")
    return folder


def architecture_for(name: str) -> str:
    """The network a dataset is for (Section 3.1): ``car`` for carracing, else ``mnist``."""
    _check_name(name)
    return "car" if name == "carracing" else "mnist"


def classes_of(name: str) -> int:
    """How many classes the named dataset has (before loading it): the car's 3, else 10."""
    _check_name(name)
    return CARRACING_CLASSES if name == "carracing" else 10


def check_class_weights(weights, classes: int, name: str) -> None:
    """A one-line error unless ``weights`` (a trainer's class weights) give each of the
    ``classes`` of dataset ``name`` one, or are None."""
    if weights is not None and len(weights) != classes:
        raise MinisenseError(f"{len(weights)} class weights for the {classes} classes of "
                             f"{name}; give one a class")


def majority_baseline(split: Split) -> float:
    """The accuracy of always answering the split's own most common class (0.0 when empty)."""
    if len(split.labels) == 0:
        return 0.0
    return float(np.bincount(split.labels).max() / len(split.labels))


def _check_name(name, downloadable=False) -> None:
    choices = DOWNLOADABLE if downloadable else DATASETS
    if name not in choices:
        raise MinisenseError(f"unknown dataset {name!r}; choose one of {', '.join(choices)}")


def _read_checked(name: str, path: pathlib.Path) -> np.ndarray:
    """``read_idx``, after checking the MD5 of a file that has a canonical .gz name."""
    expected = MD5[name].get(path.name)
    try:
        actual = _md5(path) if expected is not None else None
    except OSError as e:
        raise MinisenseError(f"cannot read {path}: {e.strerror or e}; check its permissions") \
            from None
    if expected is not None and actual != expected:
        other = [n for n, sums in MD5.items() if sums.get(path.name) == actual and n != name]
        hint = f"it is the {other[0]} file, point to the {name} folder instead" if other else \
            "delete it and run again to re-download it"
        raise MinisenseError(f"file {path} has MD5 {actual}, expected {expected} for {name}; "
                             f"{hint}")
    return read_idx(path)


def _read_part(name: str, folder: pathlib.Path, prefix: str, count: int) -> Split:
    """Read and check ``<prefix>-images`` / ``<prefix>-labels`` in ``folder``:
    ``count`` 28x28 digits."""
    image_path = _file_in(folder, f"{prefix}-images-idx3-ubyte")
    label_path = _file_in(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_checked(name, image_path), _read_checked(name, label_path)
    if images.dtype != np.uint8 or images.shape != (count, 28, 28):
        raise MinisenseError(f"file {image_path} holds {images.dtype} images of shape "
                             f"{images.shape}, expected uint8 ({count}, 28, 28) for {name}; "
                             "re-download it")
    if labels.dtype != np.uint8 or labels.shape != (count,) or labels.max(initial=0) > 9:
        raise MinisenseError(f"file {label_path} holds {labels.dtype} labels of shape "
                             f"{labels.shape}, expected {count} uint8 labels in 0..9 for {name}; "
                             "re-download it")
    return Split(images, labels.astype(np.int64))


def load_dataset(name: str, data_dir=None, download: bool = True) -> Dataset:
    """Load ``name`` (one of ``DATASETS``) split into train / validation / test (module docstring).

    Looks in ``data_dir``, then ``$MINISENSE_DATA``, then the cache; downloads into the cache
    when ``download`` is True and none of them holds the files. Raises MinisenseError otherwise.
    """
    _check_name(name)
    if name == "digits":
        return _load_digits()
    if name == "carracing":
        return _load_carracing(data_dir)
    folder, looked = _search(name, data_dir)
    if folder is None:
        folder = default_cache_dir() / name
        why = _download(name, folder) if download else "downloading is turned off"
        if why is not None:
            raise MinisenseError(f"no {name} data found: looked in {looked}; the download from "
                                 f"the mirror failed ({why}); copy the four IDX .gz files into one "
                                 "of these folders or pass --data-dir DIR")
    train_count, test_count = EXPECTED_COUNTS[name]
    full_train = _read_part(name, folder, "train", train_count)
    test = _read_part(name, folder, "t10k", test_count)
    cut = train_count - VALIDATION_SIZE  # train = first 50,000, validation = last 10,000
    train = Split(full_train.images[:cut], full_train.labels[:cut])
    validation = Split(full_train.images[cut:], full_train.labels[cut:])
    return Dataset(name, train, validation, test, num_classes=10, source=str(folder))


def bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """Matrix M of shape (size_out, size_in) such that ``M @ v`` resizes ``v`` by linear
    interpolation.

    Pixel centres are aligned (output pixel j sits at input coordinate
    (j + 0.5) * size_in / size_out - 0.5, clamped to the edge pixels), so a 2-D image resizes as
    ``M @ image @ M.T``.
    """
    position = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
    left = np.floor(position).astype(int)
    right = np.minimum(left + 1, size_in - 1)
    weight_right = position - left
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), left), 1 - weight_right)
    np.add.at(matrix, (np.arange(size_out), right), weight_right)
    return matrix


def digits_to_mnist_frame(images: np.ndarray) -> np.ndarray:
    """Turn scikit-learn digits, float (n, 8, 8) in 0..16, into MNIST-like uint8 (n, 28, 28)
    images."""
    resize = bilinear_matrix(8, 20)
    box = np.einsum("ij,njk,lk->nil", resize, images * (255 / 16), resize)  # (n, 20, 20)
    frame = np.zeros((len(images), 28, 28))
    frame[:, 4:24, 4:24] = box  # centred, like MNIST's 20x20 box in its 28x28 field
    return np.clip(np.rint(frame), 0, 255).astype(np.uint8)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits  # imported here: only digits needs scikit-learn

    bunch = load_digits()
    images, labels = digits_to_mnist_frame(bunch.images), bunch.target.astype(np.int64)
    # fixed: test 360, validation 360, rest train
    order = np.random.default_rng(0).permutation(len(images))
    test, validation, train = order[:360], order[360:720], order[720:]

    def split(index):
        return Split(np.ascontiguousarray(images[index]), labels[index])

    return Dataset("digits", split(train), split(validation), split(test), num_classes=10,
                   source="scikit-learn digits")


# -- the car-racing recording (``minisense car record``) ------------------------------------------
# What the car network sees of a frame, and the recording's format and split, shared by the
# recorder (``minisense.car``) and the loader below.

FRAME_SIZE = 32
FRAME_KINDS = ("grey", "speedometer", "speedometer-fine")
SPEEDOMETER_ROWS = 2                   # rows 30-31: the indicator bar's lowest third
SPEEDOMETER_RANGE = (30.0, 70.0)       # units/s at the left and right edge of the bar
# speedometer-fine's bottom row: 0.5 units/s a column around the experts' caps (60-62), against
# the 1.25 of the bar above (the results book, "A finer speedometer", measures what it changes)
SPEEDOMETER_FINE_RANGE = (50.0, 66.0)
# Each speedometer kind's SPEEDOMETER_ROWS rows, top to bottom: the span (units/s) a row shows
SPEEDOMETER_SPANS = {
    "speedometer": (SPEEDOMETER_RANGE,) * SPEEDOMETER_ROWS,
    "speedometer-fine": (SPEEDOMETER_RANGE,) * (SPEEDOMETER_ROWS - 1) + (SPEEDOMETER_FINE_RANGE,),
}
GREY = np.array([0.299, 0.587, 0.114])      # ITU-R 601 luma weights of R, G, B
FILE_STEM = "carracing"
# The class of a frame's left-right mirror image, by class (left <-> right): the car sits at the
# frame's centre column, so a mirrored frame is the mirrored track, driven the mirrored way
# (SENSE's ``mirror`` fitness). Digits and clothes have no such classes.
MIRRORED_CLASSES = {"carracing": (2, 1, 0)}


def preprocess(frames: np.ndarray, speed=None, kind: str = "speedometer") -> np.ndarray:
    """RGB observations uint8 (..., 96, 96, 3) -> network inputs uint8 (..., 32, 32): the grey
    frame, or with ``speed`` (units/s, one per observation) the speedometer frame of ``kind``,
    ``speedometer`` or ``speedometer-fine`` (module docstring)."""
    grey = np.asarray(frames, dtype=np.float64) @ GREY
    shape = grey.shape[:-2] + (FRAME_SIZE, 3, FRAME_SIZE, 3)
    small = np.rint(grey.reshape(shape).mean(axis=(-3, -1))).astype(np.uint8)
    if speed is not None:
        if kind not in SPEEDOMETER_SPANS:
            raise ValueError(f"a speed is drawn only on speedometer frames, not {kind!r}")
        bars = [speedometer(speed, span) for span in SPEEDOMETER_SPANS[kind]]
        small[..., FRAME_SIZE - SPEEDOMETER_ROWS:, :] = np.stack(bars, axis=-2)
    return small


def speedometer(speed, span: tuple[float, float] = SPEEDOMETER_RANGE) -> np.ndarray:
    """The speedometer's row (..., 32) uint8 for ``speed`` units/s: 255 on the columns the speed
    passes, the column it ends in grey by its fraction, 0 beyond; flat below and above ``span``
    (``SPEEDOMETER_RANGE``, or ``SPEEDOMETER_FINE_RANGE``)."""
    low, high = span
    filled = (np.asarray(speed, np.float64)[..., None] - low) / (high - low) * FRAME_SIZE
    return np.rint(255 * np.clip(filled - np.arange(FRAME_SIZE), 0, 1)).astype(np.uint8)


def frame_kind_in(meta: dict, where) -> str:
    """The frame kind a recording's or a checkpoint's JSON ``meta`` names (``"frame_kind"``;
    absent: grey, the only kind before the speedometer), checked against ``FRAME_KINDS``."""
    kind = meta.get("frame_kind", "grey") if isinstance(meta, dict) else "grey"
    if kind not in FRAME_KINDS:
        raise MinisenseError(f"{where} names frame kind {kind!r}, not one of "
                             f"{', '.join(FRAME_KINDS)}; record or train it again")
    return kind


def check_frame_kind(meta: dict, kind: str, where) -> None:
    """A car network (checkpoint JSON ``meta`` at ``where``) sees frames of one kind: refuse
    frames of another (a grey network on speedometer frames would read the bar as road)."""
    own = frame_kind_in(meta, where)
    if own != kind:
        raise MinisenseError(f"{where} was trained on {own} frames and these are {kind} frames; "
                             f"use a network trained on {kind} frames, or a {own} recording")


def frame_meta(data) -> dict:
    """What a checkpoint trained on ``data`` records of its frames (nothing for grey frames,
    so that checkpoints read the same as before the speedometer existed)."""
    kind = getattr(data, "frame_kind", "grey")
    return {} if kind == "grey" else {"frame_kind": kind}


def split_episodes(episodes: int) -> dict[str, list[int]]:
    """The fixed split by episode index (module docstring); needs at least 3 episodes."""
    if episodes < 3:
        raise MinisenseError(f"a recording needs at least 3 episodes (train, validation, test), "
                             f"got {episodes}")
    held = -(-episodes // 10)
    order = list(range(episodes))
    return {"train": order[:episodes - 2 * held],
            "validation": order[episodes - 2 * held:episodes - held],
            "test": order[episodes - held:]}


def _load_carracing(data_dir) -> Dataset:
    """A recording of ``minisense car record``, split by episode as its JSON file says."""
    folders, looked = _folders("carracing", data_dir)
    folder = next((f for f in folders if (f / f"{FILE_STEM}.npz").is_file()), None)
    if folder is None:
        raise MinisenseError(f"no carracing recording found: looked for {FILE_STEM}.npz in "
                             f"{looked}; record one with 'minisense car record --out DIR' and pass "
                             "--data-dir DIR")
    npz_path, json_path = folder / f"{FILE_STEM}.npz", folder / f"{FILE_STEM}.json"
    try:
        meta = json.loads(json_path.read_text())
        with np.load(npz_path, allow_pickle=False) as f:
            frames, labels, episode = f["frames"], f["labels"], f["episode"]
    except (OSError, ValueError, KeyError, TypeError, EOFError, RecursionError,
            zipfile.BadZipFile) as e:
        raise MinisenseError(f"carracing recording in {folder} is unreadable ({type(e).__name__}: "
                             f"{e}); record it again with 'minisense car record'") from None
    if not isinstance(meta, dict) or meta.get("format") != "minisense-carracing" or \
            meta.get("format_version", 1) != 1 or isinstance(meta.get("format_version"), bool):
        raise MinisenseError(f"{json_path} is not a minisense car-racing recording of format "
                             "version 1 (\"format\": \"minisense-carracing\"); record it with "
                             "'minisense car record'")
    n = len(labels) if labels.ndim == 1 else -1
    if frames.dtype != np.uint8 or frames.shape != (n, FRAME_SIZE, FRAME_SIZE) or \
            labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or \
            (n and not 0 <= labels.min() <= labels.max() < CARRACING_CLASSES):
        raise MinisenseError(f"{npz_path} holds {frames.dtype} frames of shape {frames.shape} and "
                             f"{labels.dtype} labels of shape {labels.shape}; expected uint8 (n, "
                             f"{FRAME_SIZE}, {FRAME_SIZE}) frames and n labels 0.."
                             f"{CARRACING_CLASSES - 1}; record it again")
    if episode.shape != (n,) or not np.issubdtype(episode.dtype, np.integer) or \
            (n and episode.min() < 0):
        raise MinisenseError(f"{npz_path}: its episode indices are {episode.dtype} of shape "
                             f"{episode.shape}, not {n} whole numbers >= 0; record it again")
    splits = _recorded_splits(meta, json_path)
    recorded = set(np.unique(episode).tolist())
    assigned = set().union(*map(set, splits.values()))
    for name in SPLITS:
        if not recorded & set(splits[name]):
            raise MinisenseError(f"{json_path}: the {name} split has no frames (episodes "
                                 f"{splits[name]} are not in {npz_path.name}); record it again "
                                 "with at least 3 episodes")
    if recorded - assigned:
        raise MinisenseError(f"{json_path}: episodes {sorted(recorded - assigned)[:5]} are in no "
                             "split; record it again")

    def split(name):
        index = np.flatnonzero(np.isin(episode, splits[name]))
        return Split(np.ascontiguousarray(frames[index]), labels[index].astype(np.int64))

    return Dataset("carracing", split("train"), split("validation"), split("test"),
                   num_classes=CARRACING_CLASSES, source=str(folder),
                   frame_kind=frame_kind_in(meta, json_path))


def _recorded_splits(meta, json_path) -> dict[str, list[int]]:
    """A recording's split by episode (``carracing.json``'s "splits"), checked: exactly the three
    splits, each a list of whole episode indices >= 0, no episode in two splits (a test episode
    among the training ones would leak the test set into training)."""
    splits = meta.get("splits") if isinstance(meta, dict) else None
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        raise MinisenseError(f"{json_path} has no \"splits\" naming {', '.join(SPLITS)}; record "
                             "it again with 'minisense car record'")
    for name, ids in splits.items():
        if not isinstance(ids, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            raise MinisenseError(f"{json_path}: the {name} split is {str(ids)[:40]}, not a list "
                                 "of episode indices >= 0; record it again")
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        shared = sorted(set(splits[a]) & set(splits[b]))
        if shared:
            raise MinisenseError(f"{json_path}: episodes {shared[:5]} are in both the {a} and the "
                                 f"{b} split, which leaks {b} frames into {a}; record it again or "
                                 "restore its carracing.json")
    return splits


# -- for sweep tasks --------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def load_cached(name: str, data_dir: str | None):
    """``data.load_dataset``, remembered: a worker loads a dataset once for all its tasks."""
    return load_dataset(name, data_dir)


def split_of(dataset: str, data_dir, split: str, images: int = 0):
    """(images, labels) of one split of a dataset, the first ``images`` of it (0: all)."""
    if split not in SPLITS:
        raise MinisenseError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    part = getattr(load_cached(dataset, None if data_dir is None else str(data_dir)), split)
    n = len(part.labels) if not images else min(images, len(part.labels))
    return part.images[:n], part.labels[:n]
