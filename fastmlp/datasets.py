"""MNIST and Fashion-MNIST: an IDX reader, loaders, a checked download and a small shipped subset.

Only NumPy and the standard library are used, so this module works before the compiled kernels
are built.

Where the loaders look, in order (the first directory holding the two files of the requested
``kind`` wins):

1. ``path``, when given (then nowhere else);
2. ``$FASTMLP_DATA/fashion-mnist`` or ``$FASTMLP_DATA/mnist``;
3. ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist`` package);
4. ``<cache_dir>/<name>``, the cache defaulting to ``$FASTMLP_CACHE`` or ``~/.cache/fastmlp``.

Files may be gzip-compressed or plain, with or without the ``.gz`` suffix.
"""

import gzip
import hashlib
import http.client
import math
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "MNIST_MD5",
    "MNIST_URLS",
    "download_mnist",
    "fashion_mnist_available",
    "load_fashion_mnist",
    "load_fashion_mnist_or_small",
    "load_mnist",
    "load_mnist_nielsen",
    "load_small_fashion_mnist",
    "read_idx",
]

#: Fashion-MNIST class names, indexed by label.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/")

# MD5, not SHA-256: these are the digests torchvision lists for the four MNIST files, and the
# SHA-256 values could not be checked from here. MD5 is enough to catch a corrupt download.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILE_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_SYSTEM_DATA_DIR = Path("/usr/share/datasets")
_SMALL_PATH = Path(__file__).with_name("data") / "fashion-mnist-small.npz"


def read_idx(path):
    """Read an IDX file (the MNIST format), gzip-compressed or plain.

    Compression is detected from the gzip magic bytes ``1f 8b``, not from the file name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

    Returns
    -------
    ndarray
        The array with the shape stored in the header and its dtype (uint8, int8, int16,
        int32, float32 or float64) in native byte order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a well-formed IDX file: a corrupt gzip stream, bad magic (non-zero
        first bytes, unknown type code, zero dimensions), a truncated header or data, or bytes
        after the data. The message names the file.

    Examples
    --------
    >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    >>> images.shape, images.dtype
    ((10000, 28, 28), dtype('uint8'))
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        compressed = file.read(2) == b"\x1f\x8b"
        file.seek(0)
        if not compressed:
            return _read_idx_stream(file, path, file_size, file_size)
        # The header is read first and bounds how much is inflated: a small file that inflates to
        # gigabytes is refused after the bytes its header declares. Deflate inflates at most
        # 1032-fold, so a header declaring more than that cannot be true and nothing is inflated.
        try:
            with gzip.GzipFile(fileobj=file, mode="rb") as stream:
                try:
                    return _read_idx_stream(stream, path, 1032 * file_size + 1024, None)
                except ValueError:
                    _read_exactly(stream, 1 << 20)   # a damaged stream explains bad content better
                    raise
        except (OSError, EOFError, zlib.error) as exc:   # gzip.BadGzipFile is an OSError
            raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc


def _read_exactly(stream, n_bytes):
    """Up to ``n_bytes`` from ``stream`` (fewer only at its end)."""
    chunks, left = [], n_bytes
    while left > 0:
        chunk = stream.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_idx_stream(stream, path, limit, file_size):
    """The array of the IDX bytes in ``stream``, which holds at most ``limit`` bytes (exactly
    ``file_size`` when it is known: a plain file)."""
    raw = _read_exactly(stream, 4)
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: bad IDX magic, first two bytes must be 0, got {raw[:2].hex()}")
    type_code, n_dims = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: bad IDX magic, unknown type code 0x{type_code:02X}")
    if n_dims == 0:
        raise ValueError(f"{path}: bad IDX magic, number of dimensions must be >= 1, got 0")
    header_size = 4 + 4 * n_dims
    raw += _read_exactly(stream, header_size - 4)
    if len(raw) < header_size:
        raise ValueError(f"{path}: truncated IDX header, {n_dims} dimensions need {header_size} "
                         f"bytes, got {len(raw)}")
    shape = struct.unpack(f">{n_dims}I", raw[4:header_size])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    size = math.prod(shape)
    n_bytes = header_size + size * dtype.itemsize
    got = "" if file_size is None else f", got {file_size}"
    if n_bytes > limit:
        raise ValueError(f"{path}: truncated IDX data, shape {shape} of {dtype.name} needs {n_bytes} bytes, "
                         f"more than the file can hold{got}")
    data = _read_exactly(stream, n_bytes - header_size)
    if len(data) < n_bytes - header_size:
        raise ValueError(f"{path}: truncated IDX data, shape {shape} of {dtype.name} needs {n_bytes} bytes, "
                         f"got {header_size + len(data)}")
    if stream.read(1):   # at a gzip stream's end this also checks its CRC and length
        raise ValueError(f"{path}: extra bytes after IDX data, shape {shape} of {dtype.name} needs {n_bytes} "
                         f"bytes{got or ', got more'}")
    array = np.frombuffer(data, dtype, count=size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))   # a writable copy in native byte order


def _check_kind(kind):
    if kind not in _FILE_STEMS:
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")


def _cache_dir(cache_dir):
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("FASTMLP_CACHE") or Path.home() / ".cache" / "fastmlp")


def _find_file(directory, stem):
    """Return ``directory/stem.gz`` or ``directory/stem``, whichever exists, else None."""
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _find_pair(name, kind, path, cache_dir):
    """Return the (images, labels) files of the first directory that holds both, searched in
    the order the module docstring gives."""
    if path is not None:
        candidates = [Path(path)]
    else:
        data_dir = os.environ.get("FASTMLP_DATA")
        candidates = [Path(data_dir) / name] if data_dir else []
        candidates += [_SYSTEM_DATA_DIR / name, _cache_dir(cache_dir) / name]
    for directory in candidates:
        files = [_find_file(directory, stem) for stem in _FILE_STEMS[kind]]
        if None not in files:
            return files
    stems = " and ".join(f"{stem}[.gz]" for stem in _FILE_STEMS[kind])
    raise FileNotFoundError(f"{name} {kind} files ({stems}) not found in any of: "
                            + ", ".join(map(str, candidates)))


def _load_pair(images_path, labels_path):
    """Read and check one images/labels pair; images come back flattened to (n, 784)."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.shape[1:] != (28, 28):
        raise ValueError(f"{images_path}: expected uint8 images of shape (n, 28, 28), "
                         f"got {images.dtype.name} of shape {images.shape}")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected uint8 labels of shape (n,), "
                         f"got {labels.dtype.name} of shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be in 0..9, got {labels.max()}")
    return images.reshape(len(images), 28 * 28), labels


def load_fashion_mnist(path=None, kind="train", *, cache_dir=None):
    """Load Fashion-MNIST images and labels.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the IDX files. When given, no other place is searched; otherwise
        ``$FASTMLP_DATA/fashion-mnist``, ``/usr/share/datasets/fashion-mnist`` and
        ``<cache_dir>/fashion-mnist`` are tried in turn.
    kind : {"train", "test"}, default="train"
        Which split: 60,000 training or 10,000 test examples.
    cache_dir : str or os.PathLike, optional
        Cache directory; defaults to ``$FASTMLP_CACHE`` or ``~/.cache/fastmlp``.

    Returns
    -------
    images : ndarray of shape (n_samples, 784), dtype uint8
        Row-major 28 x 28 images, flattened.
    labels : ndarray of shape (n_samples,), dtype uint8
        Class indices in 0..9; see `CLASS_NAMES`.

    Raises
    ------
    FileNotFoundError
        If no searched directory holds both files; the message lists the places searched.
    ValueError
        If ``kind`` is invalid, a file is malformed, the counts of images and labels differ,
        or a label is outside 0..9.

    Examples
    --------
    >>> X, y = load_fashion_mnist(kind="test")
    >>> X.shape, y.shape, CLASS_NAMES[y[0]]
    ((10000, 784), (10000,), 'Ankle boot')
    """
    _check_kind(kind)
    return _load_pair(*_find_pair("fashion-mnist", kind, path, cache_dir))


def fashion_mnist_available(path=None, *, cache_dir=None):
    """Whether `load_fashion_mnist` would find both splits (without reading them).

    Parameters
    ----------
    path : str or os.PathLike, optional
        The only directory to check; by default, the places `load_fashion_mnist` searches.
    cache_dir : str or os.PathLike, optional
        Cache directory; defaults to ``$FASTMLP_CACHE`` or ``~/.cache/fastmlp``.

    Returns
    -------
    bool
        True if some searched directory holds all four files.

    Examples
    --------
    >>> fashion_mnist_available()   # on Debian with dataset-fashion-mnist installed
    True
    """
    try:
        for kind in _FILE_STEMS:
            _find_pair("fashion-mnist", kind, path, cache_dir)
    except FileNotFoundError:
        return False
    return True


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)   # a corruption check, not security
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url, target, md5, timeout):
    """Fetch ``url`` into a temporary file next to ``target``, check its MD5, then rename it
    into place (atomic, so ``target`` is never half-written). The temporary file never stays."""
    fd, tmp_path = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as response:
            shutil.copyfileobj(response, f)
        digest = _md5(tmp_path)
        if digest != md5:
            raise ValueError(f"checksum mismatch: expected MD5 {md5}, got {digest}")
        os.replace(tmp_path, target)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def download_mnist(directory=None, *, urls=MNIST_URLS, checksums=MNIST_MD5, timeout=60):
    """Download the MNIST files into ``directory``, checking each against its MD5.

    Files already present with the right checksum are kept. Each missing file is tried from
    every mirror in turn.

    Parameters
    ----------
    directory : str or os.PathLike, optional
        Where to put the files; created if needed. Defaults to ``<cache>/mnist``, with the cache
        at ``$FASTMLP_CACHE`` or ``~/.cache/fastmlp``.
    urls : sequence of str, default=MNIST_URLS
        Base URLs of the mirrors, tried in order; the file name is appended to each.
    checksums : dict of str to str, default=MNIST_MD5
        File name -> expected MD5 hex digest; its keys are the files to fetch.
    timeout : float, default=60
        Seconds to wait for each connection.

    Returns
    -------
    pathlib.Path
        The directory holding the files.

    Raises
    ------
    OSError
        If a file cannot be fetched with the right checksum from any mirror; the message lists
        each mirror's failure.

    Examples
    --------
    >>> download_mnist("/tmp/mnist")   # doctest: +SKIP
    PosixPath('/tmp/mnist')
    """
    directory = Path(directory) if directory is not None else _cache_dir(None) / "mnist"
    directory.mkdir(parents=True, exist_ok=True)
    for name, md5 in checksums.items():
        target = directory / name
        if target.is_file() and _md5(target) == md5:
            continue
        failures = []
        for base_url in urls:
            url = base_url.rstrip("/") + "/" + name
            try:
                _download(url, target, md5, timeout)
                break
            except (OSError, ValueError, http.client.HTTPException) as exc:
                failures.append(f"  {url}: {exc}")
        else:
            raise OSError(f"could not download {name} into {directory}:\n" + "\n".join(failures))
    return directory


def load_mnist(path=None, kind="train", *, download=False, cache_dir=None):
    """Load MNIST handwritten digits, optionally downloading them first.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Directory holding the IDX files. When given, no other place is searched; otherwise
        ``$FASTMLP_DATA/mnist``, ``/usr/share/datasets/mnist`` and ``<cache_dir>/mnist`` are
        tried in turn.
    kind : {"train", "test"}, default="train"
        Which split: 60,000 training or 10,000 test examples.
    download : bool, default=False
        If the files are not found (and ``path`` is None), fetch them into ``<cache_dir>/mnist``
        with `download_mnist`.
    cache_dir : str or os.PathLike, optional
        Cache directory; defaults to ``$FASTMLP_CACHE`` or ``~/.cache/fastmlp``.

    Returns
    -------
    images : ndarray of shape (n_samples, 784), dtype uint8
    labels : ndarray of shape (n_samples,), dtype uint8

    Raises
    ------
    FileNotFoundError
        If the files are not found and ``download`` is False.
    OSError
        If the download fails.
    ValueError
        As in `load_fashion_mnist`.

    Examples
    --------
    >>> X, y = load_mnist(kind="test", download=True)   # doctest: +SKIP
    >>> X.shape, y[:5]   # doctest: +SKIP
    ((10000, 784), array([7, 2, 1, 0, 4], dtype=uint8))
    """
    _check_kind(kind)
    try:
        files = _find_pair("mnist", kind, path, cache_dir)
    except FileNotFoundError:
        if not download or path is not None:
            raise
        download_mnist(_cache_dir(cache_dir) / "mnist")
        files = _find_pair("mnist", kind, path, cache_dir)
    return _load_pair(*files)


def load_mnist_nielsen(path=None, *, download=False, cache_dir=None, n_validation=10_000):
    """MNIST split as in Nielsen's ``mnist_loader.load_data``: 50k train, 10k validation, 10k test.

    The validation set is the last ``n_validation`` examples of the official training set, the
    training set the ones before. Unlike Nielsen's pickle (floats divided by 256), images stay
    uint8; use ``X / 255`` for values in [0, 1].

    Parameters
    ----------
    path, download, cache_dir
        As in `load_mnist`.
    n_validation : int, default=10000
        How many training examples to hold out for validation.

    Returns
    -------
    training_data, validation_data, test_data : tuple of (images, labels)
        Images of shape (n_samples, 784) and labels of shape (n_samples,), all uint8.

    Raises
    ------
    ValueError
        If ``n_validation`` is not in 0..n_train, or as in `load_mnist`.

    Examples
    --------
    >>> train, validation, test = load_mnist_nielsen(download=True)   # doctest: +SKIP
    >>> len(train[0]), len(validation[0]), len(test[0])   # doctest: +SKIP
    (50000, 10000, 10000)
    """
    X, y = load_mnist(path, "train", download=download, cache_dir=cache_dir)
    if not 0 <= n_validation <= len(X):
        raise ValueError(f"n_validation must be in 0..{len(X)}, got {n_validation}")
    n_train = len(X) - n_validation
    test_data = load_mnist(path, "test", download=download, cache_dir=cache_dir)
    return (X[:n_train], y[:n_train]), (X[n_train:], y[n_train:]), test_data


def load_small_fashion_mnist():
    """Load the Fashion-MNIST subset shipped with fastmlp.

    A stratified random subset (seed 0, made by ``tools/make_small_dataset.py``): 500 training
    and 100 test images of each class, about 2.7 MB. Licence: MIT, Copyright (c) 2017 Zalando SE;
    see ``fastmlp/data/LICENSE-fashion-mnist``.

    Returns
    -------
    X_train : ndarray of shape (5000, 784), dtype uint8
    y_train : ndarray of shape (5000,), dtype uint8
    X_test : ndarray of shape (1000, 784), dtype uint8
    y_test : ndarray of shape (1000,), dtype uint8

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = load_small_fashion_mnist()
    >>> X_train.shape, X_test.shape
    ((5000, 784), (1000, 784))
    """
    with np.load(_SMALL_PATH) as data:
        return data["X_train"], data["y_train"], data["X_test"], data["y_test"]


def load_fashion_mnist_or_small(path=None, *, cache_dir=None):
    """Load the full Fashion-MNIST if it is installed, else the small shipped subset.

    Parameters
    ----------
    path, cache_dir : str or os.PathLike, optional
        As in `load_fashion_mnist`.

    Returns
    -------
    X_train, y_train, X_test, y_test : ndarray
        Images of shape (n_samples, 784) and labels of shape (n_samples,), all uint8.
    source : {"fashion-mnist", "fashion-mnist-small"}
        Which dataset was loaded.

    Examples
    --------
    >>> *data, source = load_fashion_mnist_or_small()
    >>> source, len(data[0])   # on Debian with dataset-fashion-mnist installed
    ('fashion-mnist', 60000)
    """
    if fashion_mnist_available(path, cache_dir=cache_dir):
        return (*load_fashion_mnist(path, "train", cache_dir=cache_dir),
                *load_fashion_mnist(path, "test", cache_dir=cache_dir), "fashion-mnist")
    return (*load_small_fashion_mnist(), "fashion-mnist-small")
