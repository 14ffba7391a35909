"""CIFAR-10 in its official python format: pickled batches in cifar-10-batches-py/.

Read straight from the .tar.gz (no extraction) or from an extracted folder. With data.source
null, a copy in the Keras cache is reused before anything is downloaded. data.source may also
be an image-folder copy of the official split (`train/<class>/`, `test/<class>/`, a folder or
an archive of one, e.g. PNG or JPEG exports): it is read as such, checked to have CIFAR-10's
ten classes, and the card's `source` and `checksum` name that copy, so results from it are
never mistaken for results from the official pixels.
"""

import io
import os
import pickle
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from cnnlab.data.archives import archive_errors, archive_kind, open_tree
from cnnlab.data.checksums import Checksum, files_record, verify_file
from cnnlab.data.collection import array_collection
from cnnlab.data.folder import FolderListing
from cnnlab.data.notices import warn
from cnnlab.data.sources import Source, expected_checksum
from cnnlab.errors import DataError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = Checksum("md5", "c58f30108f718f92721af3b95e74349a")
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
MEMBERS = (*TRAIN_BATCHES, "test_batch", "batches.meta")
SIDE = 32


def keras_cache():
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def cached_copies():
    """Where Keras 2 and Keras 3 keep CIFAR-10: (archives, extracted folders)."""
    cache = keras_cache()
    archives = [cache / "cifar-10-batches-py.tar.gz", cache / "cifar-10-batches-py-target_archive"]
    folders = [cache / FOLDER, cache / "cifar-10-batches-py-target" / FOLDER]
    return archives, folders


CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def locate(data_params, fetcher):
    """data.source, else a copy in the Keras cache, else the official download."""
    if data_params.get("source") is None:
        expected_checksum(data_params)  # a checksum of nothing: one line saying so
        return _default_copy(fetcher)
    return fetcher.source(data_params)


def read(source, spec):
    if source.checksum != OFFICIAL_MD5:
        copy = _image_folder_copy(source, spec)
        if copy is not None:
            return copy
    path = source.path
    if path.is_dir():
        checksum = files_record(_member_paths(path))
    else:
        if source.checksum is None:
            verify_file(
                path,
                OFFICIAL_MD5,
                hint="it is not the official CIFAR-10 archive; to use a copy in the "
                "same format anyway, set data.checksum to its own checksum",
            )
        checksum = (source.checksum or OFFICIAL_MD5).as_record()
    blobs = _read_members(path)
    classes = _class_names(blobs.pop("batches.meta"), path)
    parts = [_parse_batch(blobs.pop(name), name, path, len(classes)) for name in (*TRAIN_BATCHES, "test_batch")]
    x = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    is_test = np.arange(len(labels)) >= len(labels) - len(parts[-1][1])
    return array_collection("cifar10", classes, x, labels, is_test, source.label, checksum, spec)


def _image_folder_copy(source, spec):
    """The collection of an image-folder copy of CIFAR-10 at `source`, or None when it is not
    one (but the official python format)."""
    path = source.path
    tree = open_tree(path) if path.is_dir() or archive_kind(path) else None
    if tree is None or any(PurePosixPath(name).name in MEMBERS for name in tree.files):
        return None
    listing = FolderListing(tree, source.label)
    if tuple(listing.classes) != CLASSES:
        raise DataError(
            f"data.source: {source.label} is an image folder whose classes are {', '.join(listing.classes)}, "
            f"not CIFAR-10's; use data.dataset: folder for another dataset"
        )
    return listing.collection("cifar10", source.record(), spec)


def _default_copy(fetcher):
    archives, folders = cached_copies()
    for archive in archives:
        if archive.is_file():
            if fetcher.dry_run or OFFICIAL_MD5.of_file(archive) == OFFICIAL_MD5:
                return Source(archive, str(archive), OFFICIAL_MD5)
            warn(f"ignoring {archive}: it is not the official CIFAR-10 archive (md5 differs)")
    for folder in folders:
        if all((folder / name).is_file() for name in MEMBERS):
            return Source(folder, str(folder))
    return Source(fetcher.url(URL, OFFICIAL_MD5), URL, OFFICIAL_MD5, url=URL)


def _member_paths(folder):
    if (folder / FOLDER).is_dir():
        folder = folder / FOLDER
    missing = [name for name in MEMBERS if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder}: not an extracted CIFAR-10 python folder, missing {', '.join(missing)}")
    return [folder / name for name in MEMBERS]


def _read_members(path):
    """{member name: bytes} for the batches and batches.meta."""
    if path.is_dir():
        return {member.name: member.read_bytes() for member in _member_paths(path)}
    blobs = {}
    with archive_errors(path), tarfile.open(path, "r:*") as tar:
        for member in tar:
            name = PurePosixPath(member.name).name
            if member.isfile() and name in MEMBERS and name not in blobs:
                blobs[name] = tar.extractfile(member).read()
    missing = [name for name in MEMBERS if name not in blobs]
    if missing:
        raise DataError(f"{path}: not a CIFAR-10 python archive, it lacks {FOLDER}/{', '.join(missing)}")
    return blobs


def _class_names(blob, path):
    meta = _unpickle(blob, "batches.meta", path)
    try:
        return [name.decode() for name in meta[b"label_names"]]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise DataError(f"{path}: batches.meta lacks the list of label names") from None


def _parse_batch(blob, name, path, num_classes):
    batch = _unpickle(blob, name, path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: {name} is not a CIFAR-10 batch ({error!r} missing or malformed)") from None
    if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or len(labels) != len(data):
        raise DataError(
            f"{path}: {name} holds data of shape {data.shape} and {len(labels)} labels; "
            f"a CIFAR-10 batch has N x 3072 pixels and N labels"
        )
    if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
        raise DataError(f"{path}: {name} has labels outside 0..{num_classes - 1}")
    # rows are channel-major (all red, then green, then blue); the model wants H x W x C
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a crafted pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }  # how Python 3 writes bytes at pickle protocol 2

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(blob, name, path):
    try:
        content = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: {name} is not a readable CIFAR-10 pickle ({error})") from None
    if not isinstance(content, dict):
        raise DataError(f"{path}: {name} is not a CIFAR-10 pickle (no dictionary inside)")
    return content
