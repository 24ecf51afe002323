"""Tests for minisense.data: the IDX reader, the file lookup, downloads (local server only),
splits."""

import functools
import gzip
import hashlib
import http.server
import os
import pathlib
import socket
import threading

import numpy as np
import pytest

from minisense import data
from minisense.errors import MinisenseError

REAL_DEFAULT_CACHE_DIR = data.default_cache_dir  # before the autouse fixture replaces it

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes, written independently of the reader under test."""
    header = (bytes([0, 0, IDX_CODES[array.dtype], array.ndim])
              + np.array(array.shape, ">u4").tobytes())
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: pathlib.Path, payload: bytes) -> pathlib.Path:
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def single_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


def fake_mnist(folder: pathlib.Path, train: int = 12, test: int = 4, gz: bool = True) -> dict:
    """Write four small MNIST-like IDX files into ``folder``; -> {file name: md5}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": np.arange(train, dtype=np.uint8) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": np.arange(test, dtype=np.uint8) % 10}
    sums = {}
    for stem, array in arrays.items():
        path = write(folder / (stem + (".gz" if gz else "")), idx_bytes(array))
        sums[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    return sums


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No test may reach the internet or the real user cache; local URLs bypass any proxy."""
    monkeypatch.setattr(data, "MIRRORS", {name: [closed_port_url()] for name in data.MIRRORS})
    monkeypatch.setattr(data, "default_cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def small_counts(monkeypatch):
    """Let load_dataset accept fake_mnist's 12 train / 4 test images, with 2 for validation."""
    monkeypatch.setattr(data, "EXPECTED_COUNTS", {"mnist": (12, 4), "fashion-mnist": (12, 4)})
    monkeypatch.setattr(data, "VALIDATION_SIZE", 2)


@pytest.fixture
def server(tmp_path):
    """An http.server on 127.0.0.1 serving tmp_path/served; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


# --- read_idx ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", list(IDX_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 28, 28), (2, 3, 1, 4), (0, 4)])
def test_read_idx_round_trips_every_dtype_and_rank(tmp_path, suffix, dtype, shape):
    array = (np.arange(np.prod(shape)).reshape(shape)
             * (-1 if np.dtype(dtype).kind != "u" else 1)).astype(dtype)
    path = write(tmp_path / f"a.idx{suffix}", idx_bytes(array))
    result = data.read_idx(path)
    assert result.dtype == dtype and result.dtype.isnative and result.shape == shape
    np.testing.assert_array_equal(result, array)
    result[...] = 0  # writable, not a view of the file buffer


def test_read_idx_returns_native_byte_order_for_multibyte_values(tmp_path):
    array = np.array([[1.5, -2.25e10], [np.pi, 0.0]], dtype=np.float64)
    result = data.read_idx(write(tmp_path / "f.idx", idx_bytes(array)))
    assert result.dtype == np.dtype("=f8")
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_rejects_truncated_payload_naming_the_file(tmp_path, suffix):
    payload = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-10]
    path = write(tmp_path / f"short-images{suffix}", payload)
    with pytest.raises(MinisenseError, match=r"short-images.* is truncated: "
                                             r"expected 2352 bytes .* found 2342") as e:
        data.read_idx(path)
    single_line_error(e)


def test_read_idx_rejects_trailing_bytes(tmp_path):
    path = write(tmp_path / "long-labels", idx_bytes(np.arange(5, dtype=np.uint8)) + b"junk")
    with pytest.raises(MinisenseError, match=r"long-labels has 4 trailing bytes") as e:
        data.read_idx(path)
    single_line_error(e)


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = write(tmp_path / "picture.png", b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(MinisenseError,
                       match=r"picture.png is not an IDX file \(magic 0x89504e47") as e:
        data.read_idx(path)
    single_line_error(e)


@pytest.mark.parametrize("header", [bytes([0, 0, 0x07, 1]), bytes([0, 0, 0x08, 0]),
                                    bytes([0, 0, 0x08, 5]), bytes([0, 0, 0x08, 3, 0, 0])])
def test_read_idx_rejects_bad_header(tmp_path, header):
    path = write(tmp_path / "odd.idx", header)
    with pytest.raises(MinisenseError, match=r"odd.idx has a bad IDX header") as e:
        data.read_idx(path)
    single_line_error(e)


def test_read_idx_rejects_truncated_gzip_stream(tmp_path):
    compressed = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(MinisenseError, match=r"cut.gz is not a complete gzip file") as e:
        data.read_idx(path)
    single_line_error(e)


@pytest.mark.parametrize("content", [b"plain text, not gzip",
                                     b"\x1f\x8b\x08\x00" + bytes(6) + b"garbage!" * 8])
def test_read_idx_rejects_corrupt_gzip(tmp_path, content):
    path = tmp_path / "bad.gz"
    path.write_bytes(content)
    with pytest.raises(MinisenseError, match=r"bad.gz is not a complete gzip file") as e:
        data.read_idx(path)
    single_line_error(e)


def test_read_idx_rejects_missing_file(tmp_path):
    with pytest.raises(MinisenseError, match=r"cannot read file .*nothing-here.gz"):
        data.read_idx(tmp_path / "nothing-here.gz")


# --- lookup -----------------------------------------------------------------------------------

def test_lookup_prefers_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    given, env, cache = tmp_path / "given", tmp_path / "env", tmp_path / "cache"
    for root in (given, env, cache):
        fake_mnist(root / "mnist")
    monkeypatch.setenv("MINISENSE_DATA", str(env))
    assert data.find_dataset_files("mnist", data_dir=given) == given / "mnist"
    assert data.find_dataset_files("mnist") == env / "mnist"
    monkeypatch.delenv("MINISENSE_DATA")
    assert data.find_dataset_files("mnist") == cache / "mnist"


def test_lookup_skips_a_data_dir_without_the_files(tmp_path, monkeypatch):
    fake_mnist(tmp_path / "env" / "mnist")
    monkeypatch.setenv("MINISENSE_DATA", str(tmp_path / "env"))
    assert (data.find_dataset_files("mnist", data_dir=tmp_path / "empty")
            == tmp_path / "env" / "mnist")


def test_lookup_accepts_the_folder_itself_and_uncompressed_files(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    fake_mnist(tmp_path / "flat", gz=False)
    assert data.find_dataset_files("mnist", data_dir=tmp_path / "flat") == tmp_path / "flat"
    monkeypatch.setenv("MINISENSE_DATA", str(tmp_path / "flat"))
    assert data.find_dataset_files("mnist") == tmp_path / "flat"


def test_find_dataset_files_names_every_place_and_partial_folders(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    partial = tmp_path / "given" / "mnist"
    fake_mnist(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MinisenseError) as e:
        data.find_dataset_files("mnist", data_dir=tmp_path / "given")
    message = single_line_error(e)
    for place in (partial, tmp_path / "given", tmp_path / "cache" / "mnist"):
        assert str(place) in message
    assert "$MINISENSE_DATA is not set" in message
    assert f"{partial} lacks t10k-labels-idx1-ubyte.gz" in message
    assert "--data-dir DIR" in message


def test_offline_error_says_where_it_looked_and_why_the_download_failed(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    with pytest.raises(MinisenseError) as e:
        data.load_dataset("fashion-mnist", data_dir=tmp_path / "nowhere")
    message = single_line_error(e)
    assert str(tmp_path / "nowhere" / "fashion-mnist") in message
    assert str(tmp_path / "cache" / "fashion-mnist") in message
    assert "$MINISENSE_DATA is not set" in message
    assert "download from the mirror failed" in message and "refused" in message.lower()
    assert "copy the four IDX .gz files into one of these folders or pass --data-dir DIR" in message


def test_no_download_when_turned_off(tmp_path, monkeypatch):
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    with pytest.raises(MinisenseError, match="downloading is turned off"):
        data.load_dataset("mnist", download=False)
    assert not (tmp_path / "cache").exists()


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(MinisenseError, match="unknown dataset 'cifar'; "
                                             "choose one of digits, mnist, fashion-mnist"):
        data.load_dataset("cifar")


# --- local files: checks and split --------------------------------------------------------------

def test_load_dataset_splits_the_training_file_into_first_train_and_last_validation(
        tmp_path, monkeypatch, small_counts):
    sums = fake_mnist(tmp_path / "mnist")
    monkeypatch.setitem(data.MD5, "mnist", sums)
    dataset = data.load_dataset("mnist", data_dir=tmp_path)
    full = data.read_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(dataset.train.images, full[:10])
    np.testing.assert_array_equal(dataset.validation.images, full[10:])
    np.testing.assert_array_equal(dataset.validation.labels, [0, 1])
    assert dataset.test.images.shape == (4, 28, 28) and dataset.test.labels.dtype == np.int64
    assert dataset.source == str(tmp_path / "mnist") and dataset.num_classes == 10


def test_local_gz_with_wrong_md5_is_rejected_with_expected_and_actual(tmp_path, small_counts):
    fake_mnist(tmp_path / "mnist")  # data.MD5 still holds the real MNIST sums
    with pytest.raises(MinisenseError,
                       match=r"MD5 [0-9a-f]{32}, expected [0-9a-f]{32} for mnist; delete it") as e:
        data.load_dataset("mnist", data_dir=tmp_path)
    assert "train-images-idx3-ubyte.gz" in single_line_error(e)


def test_local_uncompressed_files_are_checked_for_shape_and_labels(tmp_path, small_counts):
    fake_mnist(tmp_path, gz=False)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], np.uint8)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels))
    with pytest.raises(MinisenseError,
                       match=r"train-labels-idx1-ubyte holds .* labels in 0..9") as e:
        data.load_dataset("mnist", data_dir=tmp_path)
    single_line_error(e)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(labels[:11] % 10))
    with pytest.raises(MinisenseError, match=r"expected 12 uint8 labels"):
        data.load_dataset("mnist", data_dir=tmp_path)


# --- downloads (local http.server only) --------------------------------------------------------

def test_download_fetches_verifies_and_leaves_no_temporary_files(tmp_path, monkeypatch, server,
                                                                 small_counts):
    monkeypatch.delenv("MINISENSE_DATA", raising=False)
    served, url = server
    sums = fake_mnist(served / "good")
    monkeypatch.setitem(data.MD5, "mnist", sums)
    (served / "bad").mkdir()
    for name in sums:  # the second mirror serves corrupt copies
        (served / "bad" / name).write_bytes(b"corrupt")
    monkeypatch.setitem(data.MIRRORS, "mnist", [closed_port_url(), url + "bad/", url + "good/"])
    umask = os.umask(0o027)                # not the usual 022, so a fixed 0644 would show
    try:
        dataset = data.load_dataset("mnist")
    finally:
        os.umask(umask)
    folder = tmp_path / "cache" / "mnist"
    assert dataset.source == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)
    assert {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()} == sums
    # Downloaded through a private temporary file, but kept with an ordinary file's mode.
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o640}
    assert dataset.train.images.shape == (10, 28, 28)


def test_download_rejects_md5_mismatch_and_leaves_no_partial_file(tmp_path, monkeypatch, server):
    served, url = server
    sums = fake_mnist(served)
    monkeypatch.setitem(data.MD5, "mnist", {name: "0" * 32 for name in sums})
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    with pytest.raises(MinisenseError,
                       match=r"MD5 mismatch \(got [0-9a-f]{32}, expected 0{32}\)") as e:
        data.download_dataset("mnist", tmp_path / "dl")
    assert str(tmp_path / "dl" / "mnist") in single_line_error(e)
    assert list((tmp_path / "dl" / "mnist").iterdir()) == []


def test_download_reports_http_errors(tmp_path, monkeypatch, server):
    _, url = server
    monkeypatch.setitem(data.MIRRORS, "mnist", [url + "missing/"])
    with pytest.raises(MinisenseError, match=r"missing/train-images-idx3-ubyte.gz: HTTP 404") as e:
        data.download_dataset("mnist", tmp_path)
    single_line_error(e)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_download_keeps_files_that_already_match(tmp_path, monkeypatch, server):
    served, url = server
    sums = fake_mnist(served)
    monkeypatch.setitem(data.MD5, "mnist", sums)
    monkeypatch.setitem(data.MIRRORS, "mnist", [url])
    folder = data.download_dataset("mnist", tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    # a second call needs no network
    monkeypatch.setitem(data.MIRRORS, "mnist", [closed_port_url()])
    assert data.download_dataset("mnist", tmp_path) == folder
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_default_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert REAL_DEFAULT_CACHE_DIR() == tmp_path / "minisense"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert REAL_DEFAULT_CACHE_DIR() == pathlib.Path.home() / ".cache" / "minisense"


# --- digits -----------------------------------------------------------------------------------

def test_bilinear_matrix_rows_sum_to_one_and_same_size_is_identity():
    matrix = data.bilinear_matrix(8, 20)
    assert matrix.shape == (20, 8) and (matrix >= 0).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    np.testing.assert_allclose(data.bilinear_matrix(8, 8), np.eye(8))


def test_bilinear_matrix_matches_a_per_pixel_loop():
    size_in, size_out = 8, 20
    ramp = np.arange(size_in, dtype=float) ** 2
    expected = []
    for j in range(size_out):  # naive oracle: find the two neighbours of each output pixel
        x = min(max((j + 0.5) * size_in / size_out - 0.5, 0), size_in - 1)
        i = int(x)
        expected.append(ramp[i] + (x - i) * (ramp[min(i + 1, size_in - 1)] - ramp[i]))
    np.testing.assert_allclose(data.bilinear_matrix(size_in, size_out) @ ramp, expected)


def test_digits_frame_is_centred_uint8_with_full_range():
    images = np.zeros((2, 8, 8))
    images[0] = 16.0
    frame = data.digits_to_mnist_frame(images)
    assert frame.dtype == np.uint8 and frame.shape == (2, 28, 28)
    assert (frame[0, 4:24, 4:24] == 255).all() and frame[0].sum() == 255 * 400
    assert (frame[1] == 0).all()


def test_digits_shapes_dtypes_and_split_sizes():
    dataset = data.load_dataset("digits")
    sizes = [len(s.labels) for s in (dataset.train, dataset.validation, dataset.test)]
    assert sizes == [1077, 360, 360] and dataset.num_classes == 10
    assert dataset.source == "scikit-learn digits"
    for split in (dataset.train, dataset.validation, dataset.test):
        assert split.images.dtype == np.uint8 and split.images.flags.c_contiguous
        assert split.images.shape == (len(split.labels), 28, 28)
        assert split.labels.dtype == np.int64 and set(split.labels) == set(range(10))
        # empty margin, like MNIST
        assert split.images.max() == 255 and split.images[:, :4].max() == 0


def test_digits_split_is_deterministic_and_disjoint():
    first, second = data.load_dataset("digits"), data.load_dataset("digits")
    for a, b in zip((first.train, first.validation, first.test),
                    (second.train, second.validation, second.test)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    from sklearn.datasets import load_digits
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(first.test.labels, load_digits().target[order[:360]])
    np.testing.assert_array_equal(first.train.labels, load_digits().target[order[720:]])


# --- real data, when present ------------------------------------------------------------------

TEST_LABEL_COUNTS = {"mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
                     "fashion-mnist": [1000] * 10}

@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_dataset_has_50000_10000_10000_and_labels_0_to_9(name):
    root = os.environ.get("MINISENSE_DATA")
    if not root or not any((pathlib.Path(root) / d / "t10k-labels-idx1-ubyte.gz").is_file()
                           for d in (name, "")):
        pytest.skip(f"$MINISENSE_DATA does not hold {name}")
    dataset = data.load_dataset(name, download=False)
    assert ([len(s.labels) for s in (dataset.train, dataset.validation, dataset.test)]
            == [50000, 10000, 10000])
    for split in (dataset.train, dataset.validation, dataset.test):
        assert split.images.shape == (len(split.labels), 28, 28) and split.images.dtype == np.uint8
        assert split.labels.min() == 0 and split.labels.max() == 9
    assert np.bincount(dataset.test.labels).tolist() == TEST_LABEL_COUNTS[name]


def test_majority_baseline_is_the_split_s_most_common_class_rate():
    split = data.Split(np.zeros((5, 28, 28), np.uint8), np.array([2, 0, 2, 1, 2]))
    assert data.majority_baseline(split) == 0.6
    assert data.majority_baseline(data.Split(np.zeros((0, 28, 28), np.uint8),
                                             np.zeros(0, np.int64))) == 0.0


def test_architecture_for_names_the_car_network_for_carracing_only():
    assert data.architecture_for("carracing") == "car"
    assert {data.architecture_for(n) for n in ("digits", "mnist", "fashion-mnist")} == {"mnist"}
    with pytest.raises(MinisenseError, match="unknown dataset"):
        data.architecture_for("cartpole")
