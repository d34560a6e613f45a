"""Tests for fastmlp.datasets on IDX files made here; the network is never used."""

import functools
import gzip
import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from fastmlp import datasets

TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
              np.float32: 0x0D, np.float64: 0x0E}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(array, type_code=None):
    """The IDX encoding of ``array``: 0, 0, type code, n_dims, big-endian dims, big-endian data."""
    array = np.asarray(array)
    type_code = TYPE_CODES[array.dtype.type] if type_code is None else type_code
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_dataset(directory, n_train=12, n_test=7, rng=None, suffix=".gz", labels=None):
    """Write the four (Fashion-)MNIST files of a random small dataset; return its arrays."""
    rng = rng or np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for kind, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8) if labels is None else labels
        write(directory / f"{kind}-images-idx3-ubyte{suffix}", idx_bytes(images), suffix == ".gz")
        write(directory / f"{kind}-labels-idx1-ubyte{suffix}", idx_bytes(y), suffix == ".gz")
        arrays[kind] = (images.reshape(n, 784), y)
    return arrays


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Keep tests away from the user's cache and data folders and Debian's dataset."""
    monkeypatch.setenv("FASTMLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    monkeypatch.setattr(datasets, "_SYSTEM_DATA_DIR", tmp_path / "system")


# --- read_idx ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(TYPE_CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trips_every_type_code(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    expected = rng.uniform(info.min / 2, info.max / 2, (3, 4, 5)).astype(dtype)
    array = datasets.read_idx(write(tmp_path / "a.idx", idx_bytes(expected), compress))
    assert array.dtype == np.dtype(dtype) and array.dtype.isnative
    assert array.shape == (3, 4, 5)
    np.testing.assert_array_equal(array, expected)
    array[0, 0, 0] = 0                                  # a writable copy, not a view of bytes


@pytest.mark.parametrize("name, compress", [("plain.gz", False), ("packed.idx", True)])
def test_read_idx_detects_gzip_by_magic_not_name(tmp_path, name, compress):
    expected = np.arange(6, dtype=np.uint8)
    np.testing.assert_array_equal(
        datasets.read_idx(write(tmp_path / name, idx_bytes(expected), compress)), expected)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x00", "first two bytes must be 0, got 0100"),
    (b"\x00\x01\x08\x01\x00\x00\x00\x00", "first two bytes must be 0, got 0001"),
    (b"\x00\x00\x0A\x01\x00\x00\x00\x00", "unknown type code 0x0A"),
    (b"\x00\x00\x08\x00", "number of dimensions must be >= 1, got 0"),
    (b"\x00\x00\x08", "truncated IDX header"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x03\x00\x00", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "truncated IDX data"),
    (b"\x00\x00\x0B\x01\x00\x00\x00\x01\x00", "truncated IDX data"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "extra bytes after IDX data"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_rejects_malformed_files_naming_them(tmp_path, data, message, compress):
    path = write(tmp_path / "bad-file.idx", data, compress)
    with pytest.raises(ValueError, match=re.escape(message)) as excinfo:
        datasets.read_idx(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize("data", [
    b"\x1f\x8b" + b"not a gzip stream at all",
    gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)), mtime=0)[:-30],    # cut short
    gzip.compress(b"\x00" * 100, mtime=0)[:12] + b"\xff" * 20,                    # bad deflate data
], ids=["not-gzip", "cut-short", "bad-deflate"])
def test_read_idx_reports_corrupt_gzip_as_value_error(tmp_path, data):
    path = write(tmp_path / "corrupt.gz", data)
    with pytest.raises(ValueError, match="corrupt gzip stream") as excinfo:
        datasets.read_idx(path)
    assert str(path) in str(excinfo.value)


def test_read_idx_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-file"):
        datasets.read_idx(tmp_path / "no-such-file.gz")


# --- loaders -------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("kind, prefix", [("train", "train"), ("test", "t10k")])
def test_load_fashion_mnist_from_explicit_path(tmp_path, suffix, kind, prefix):
    expected = write_dataset(tmp_path / "fm", suffix=suffix)[prefix]
    images, labels = datasets.load_fashion_mnist(tmp_path / "fm", kind)
    assert images.dtype == labels.dtype == np.uint8
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])


@pytest.mark.parametrize("loader, name", [(datasets.load_fashion_mnist, "fashion-mnist"),
                                          (datasets.load_mnist, "mnist")])
def test_search_order_data_then_system_then_cache(tmp_path, monkeypatch, loader, name):
    cache = write_dataset(tmp_path / "cache" / name, n_train=3)
    np.testing.assert_array_equal(loader()[1], cache["train"][1])
    system = write_dataset(tmp_path / "system" / name, n_train=4)
    np.testing.assert_array_equal(loader()[1], system["train"][1])
    data = write_dataset(tmp_path / "data" / name, n_train=5)
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "data"))
    np.testing.assert_array_equal(loader()[1], data["train"][1])


def test_explicit_path_is_the_only_place_searched(tmp_path):
    write_dataset(tmp_path / "cache" / "fashion-mnist")
    with pytest.raises(FileNotFoundError, match="fashion-mnist train files.*elsewhere"):
        datasets.load_fashion_mnist(tmp_path / "elsewhere")


def test_missing_dataset_lists_places_searched(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        datasets.load_fashion_mnist(kind="test")
    message = str(excinfo.value)
    assert "t10k-images-idx3-ubyte[.gz]" in message
    assert str(tmp_path / "system" / "fashion-mnist") in message
    assert str(tmp_path / "cache" / "fashion-mnist") in message


def test_fashion_mnist_available(tmp_path):
    assert not datasets.fashion_mnist_available()
    write_dataset(tmp_path / "cache" / "fashion-mnist")
    assert datasets.fashion_mnist_available()
    (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert not datasets.fashion_mnist_available()


def test_kind_is_validated(tmp_path):
    with pytest.raises(ValueError, match="kind must be 'train' or 'test', got 'valid'"):
        datasets.load_fashion_mnist(tmp_path, "valid")


def test_image_and_label_counts_must_agree(tmp_path):
    write_dataset(tmp_path, n_train=5)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(4, np.uint8)), True)
    with pytest.raises(ValueError, match="holds 5 images but .* holds 4 labels"):
        datasets.load_fashion_mnist(tmp_path)


def test_labels_must_be_digits(tmp_path):
    write_dataset(tmp_path, n_train=3, n_test=3, labels=np.array([0, 10, 9], np.uint8))
    with pytest.raises(ValueError, match="labels must be in 0..9, got 10"):
        datasets.load_mnist(tmp_path)


@pytest.mark.parametrize("stem, array, message", [
    ("train-images-idx3-ubyte", np.zeros((2, 28, 27), np.uint8), "uint8 images of shape"),
    ("train-images-idx3-ubyte", np.zeros((2, 28, 28), np.int16), "uint8 images of shape"),
    ("train-labels-idx1-ubyte", np.zeros((2, 1), np.uint8), "uint8 labels of shape"),
])
def test_image_and_label_layouts_are_checked(tmp_path, stem, array, message):
    write_dataset(tmp_path, n_train=2)
    write(tmp_path / f"{stem}.gz", idx_bytes(array), True)
    with pytest.raises(ValueError, match=message):
        datasets.load_fashion_mnist(tmp_path)


def test_load_mnist_nielsen_holds_out_the_last_training_examples(tmp_path):
    arrays = write_dataset(tmp_path, n_train=10, n_test=4)
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = datasets.load_mnist_nielsen(
        tmp_path, n_validation=3)
    np.testing.assert_array_equal(X_train, arrays["train"][0][:7])
    np.testing.assert_array_equal(y_val, arrays["train"][1][7:])
    np.testing.assert_array_equal(X_test, arrays["t10k"][0])
    assert (len(y_train), len(X_val), len(y_test)) == (7, 3, 4)
    with pytest.raises(ValueError, match="n_validation must be in 0..10, got 11"):
        datasets.load_mnist_nielsen(tmp_path, n_validation=11)


# --- download ------------------------------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path):
    """A local mirror of a tiny MNIST, its file:// URL and the MD5 table of its files."""
    arrays = write_dataset(tmp_path / "mirror", n_train=6, n_test=2)
    checksums = {path.name: hashlib.md5(path.read_bytes()).hexdigest()
                 for path in (tmp_path / "mirror").iterdir()}
    return (tmp_path / "mirror").as_uri() + "/", checksums, arrays


def test_download_mnist_fetches_and_verifies(tmp_path, mirror):
    url, checksums, _ = mirror
    directory = datasets.download_mnist(tmp_path / "out", urls=[url], checksums=checksums)
    assert sorted(os.listdir(directory)) == sorted(checksums)
    for name, md5 in checksums.items():
        assert hashlib.md5((directory / name).read_bytes()).hexdigest() == md5


def test_download_mnist_bad_checksum_leaves_nothing(tmp_path, mirror):
    url, checksums, _ = mirror
    checksums = dict(checksums, **{"t10k-labels-idx1-ubyte.gz": "0" * 32})
    with pytest.raises(OSError, match="(?s)could not download t10k-labels.*checksum mismatch"):
        datasets.download_mnist(tmp_path / "out", urls=[url], checksums=checksums)
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(tmp_path / "out")
    assert not [name for name in os.listdir(tmp_path / "out") if name.endswith(".part")]


def test_download_mnist_falls_back_to_next_mirror(tmp_path, mirror):
    url, checksums, _ = mirror
    dead = (tmp_path / "dead").as_uri() + "/"
    directory = datasets.download_mnist(tmp_path / "out", urls=[dead, url], checksums=checksums)
    assert sorted(os.listdir(directory)) == sorted(checksums)


def test_download_mnist_lists_every_failed_mirror(tmp_path, mirror):
    _, checksums, _ = mirror
    dead = [(tmp_path / name).as_uri() + "/" for name in ("dead1", "dead2")]
    with pytest.raises(OSError) as excinfo:
        datasets.download_mnist(tmp_path / "out", urls=dead, checksums=checksums)
    assert all(url in str(excinfo.value) for url in dead)
    assert os.listdir(tmp_path / "out") == []


def test_download_mnist_keeps_verified_files(tmp_path, mirror):
    url, checksums, _ = mirror
    datasets.download_mnist(tmp_path / "out", urls=[url], checksums=checksums)
    dead = (tmp_path / "dead").as_uri() + "/"       # nothing left to fetch, so no failure
    assert datasets.download_mnist(tmp_path / "out", urls=[dead], checksums=checksums).is_dir()


def test_load_mnist_downloads_into_the_cache(tmp_path, monkeypatch, mirror):
    url, checksums, arrays = mirror
    monkeypatch.setattr(datasets, "download_mnist", functools.partial(
        datasets.download_mnist, urls=[url], checksums=checksums))
    with pytest.raises(FileNotFoundError):
        datasets.load_mnist(kind="test")
    images, labels = datasets.load_mnist(kind="test", download=True, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(images, arrays["t10k"][0])
    assert (tmp_path / "c" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


# --- shipped subset and the real dataset ---------------------------------------------------------

def test_class_names():
    assert len(datasets.CLASS_NAMES) == 10
    assert datasets.CLASS_NAMES[0] == "T-shirt/top" and datasets.CLASS_NAMES[9] == "Ankle boot"


def test_small_fashion_mnist_is_stratified():
    X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
    assert X_train.shape == (5000, 784) and y_train.shape == (5000,)
    assert X_test.shape == (1000, 784) and y_test.shape == (1000,)
    assert {a.dtype for a in (X_train, y_train, X_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [500] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [100] * 10)
    assert X_train.std() > 50                           # real images, not blanks


def test_small_fashion_mnist_ships_with_its_licence():
    licence = (datasets._SMALL_PATH.parent / "LICENSE-fashion-mnist").read_text()
    assert "Copyright (c) 2017 Zalando SE" in licence and "MIT" in licence
    assert datasets._SMALL_PATH.stat().st_size < 5_000_000


def test_load_fashion_mnist_or_small(tmp_path):
    *data, source = datasets.load_fashion_mnist_or_small()
    assert source == "fashion-mnist-small" and len(data[0]) == 5000
    write_dataset(tmp_path / "cache" / "fashion-mnist", n_train=8, n_test=3)
    *data, source = datasets.load_fashion_mnist_or_small()
    assert source == "fashion-mnist" and [len(a) for a in data] == [8, 8, 3, 3]


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason=f"{FASHION_DIR} absent "
                    "(Debian package dataset-fashion-mnist)")
def test_real_fashion_mnist():
    X_train, y_train = datasets.load_fashion_mnist(FASHION_DIR, "train")
    X_test, y_test = datasets.load_fashion_mnist(FASHION_DIR, "test")
    assert X_train.shape == (60000, 784) and y_train.shape == (60000,)
    assert X_test.shape == (10000, 784) and y_test.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    with np.load(datasets._SMALL_PATH) as small:           # the subset is real rows
        np.testing.assert_array_equal(small["X_train"], X_train[small["train_indices"]])
        np.testing.assert_array_equal(small["y_test"], y_test[small["test_indices"]])
