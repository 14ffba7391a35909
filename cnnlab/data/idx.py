"""MNIST and Fashion-MNIST from their four IDX files.

Checksums: a file downloaded from the official URL (or a mirror given as data.source) must
match its published .gz md5. A local copy (data.source: a folder) passes with the published
.gz md5 or, since repackagers such as Debian re-compress the files, with the md5 of its
decompressed content where that is known (Fashion-MNIST); a local MNIST copy that matches
neither only gets a warning, as its IDX structure is still checked in full.
"""

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data.checksums import Checksum, file_digest
from cnnlab.data.collection import array_collection
from cnnlab.data.download import is_url
from cnnlab.data.notices import listing, warn
from cnnlab.data.sources import Source
from cnnlab.errors import ConfigError, DataError

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
IMAGES_MAGIC, LABELS_MAGIC = 0x803, 0x801  # unsigned bytes; 3 dimensions / 1 dimension


@dataclass(frozen=True)
class IdxDataset:
    name: str
    base_url: str
    classes: tuple
    gz_md5: dict  # published md5 of each .gz file
    content_md5: dict  # md5 of each decompressed file, where published


MNIST = IdxDataset(
    "mnist",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    tuple("0123456789"),
    {
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    {},
)
FASHION_MNIST = IdxDataset(
    "fashion_mnist",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    {
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    {
        TRAIN_IMAGES: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        TRAIN_LABELS: "9018921c3c673c538a1fc5bad174d6f9",
        TEST_IMAGES: "8181f5470baa50b63fa0f6fddb340f0a",
        TEST_LABELS: "15d484375f8d13e6eb1aabb0c3f46965",
    },
)
DATASETS = {dataset.name: dataset for dataset in (MNIST, FASHION_MNIST)}


def locate(name, data_params, fetcher):
    """The folder holding the four files of DATASETS[name]: data.source's, or the cache's copy of the downloads."""
    dataset = DATASETS[name]
    if data_params.get("checksum") is not None:
        raise ConfigError(
            f"data.checksum: {dataset.name} is four files, each checked against its published md5; remove data.checksum"
        )
    source = data_params.get("source")
    if source is not None and not is_url(source):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise DataError(
                f"data.source: {source} is not a folder; for MNIST-style data give the folder "
                f"holding {', '.join(name + '.gz' for name in FILES)}"
            )
        return Source(folder, source)
    base_url = source or dataset.base_url
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    paths = [fetcher.url(f"{base_url}{name}.gz", Checksum("md5", dataset.gz_md5[name])) for name in FILES]
    return Source(paths[0].parent, source or dataset.base_url, url=base_url)


def read(name, source, spec):
    dataset = DATASETS[name]
    paths = _files(source.path)
    contents = {name: _decompress(path) for name, path in paths.items()}
    train_x, train_y = _pair(contents, paths, TRAIN_IMAGES, TRAIN_LABELS, len(dataset.classes))
    test_x, test_y = _pair(contents, paths, TEST_IMAGES, TEST_LABELS, len(dataset.classes))
    if source.url is None:
        _verify_local(dataset, paths, contents)
    x = np.concatenate([train_x, test_x])[:, :, :, np.newaxis]
    labels = np.concatenate([train_y, test_y])
    is_test = np.arange(len(labels)) >= len(train_y)
    checksum = {"md5": {name: hashlib.md5(content).hexdigest() for name, content in contents.items()}}
    return array_collection(dataset.name, dataset.classes, x, labels, is_test, source.label, checksum, spec)


def _files(folder):
    paths = {}
    for name in FILES:
        candidates = [folder / f"{name}.gz", folder / name]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise DataError(f"{folder}: {name}.gz is missing; the folder needs all four IDX files")
        paths[name] = found
    return paths


def _decompress(path):
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as file:
            return file.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error}); download it again") from None


def _verify_local(dataset, paths, contents):
    unverified = []
    for name, path in paths.items():
        if path.suffix == ".gz" and file_digest(path, "md5") == dataset.gz_md5[name]:
            continue
        known = dataset.content_md5.get(name)
        actual = hashlib.md5(contents[name]).hexdigest()
        if known is None:
            unverified.append(path.name)
        elif actual != known:
            raise DataError(
                f"{path}: not the official {dataset.name} file (content md5 {actual}, "
                f"expected {known}); restore an unmodified copy"
            )
    if unverified:
        warn(
            f"{dataset.name}: no published checksum matches {listing(unverified, 4)} (re-compressed copies?); "
            f"using them because their IDX structure is valid"
        )


def _pair(contents, paths, images_name, labels_name, num_classes):
    images = _parse(contents[images_name], paths[images_name], IMAGES_MAGIC, 3)
    labels = _parse(contents[labels_name], paths[labels_name], LABELS_MAGIC, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(
            f"{paths[labels_name]}: {len(labels)} labels for {len(images)} images in "
            f"{paths[images_name].name}; the files do not belong together"
        )
    if len(labels) and labels.max() >= num_classes:
        raise DataError(f"{paths[labels_name]}: label {labels.max()} found, expected 0..{num_classes - 1}")
    return images, labels


def _parse(content, path, magic, dimensions):
    """An IDX file as an array, after checking its magic number and announced size."""
    header = 4 + 4 * dimensions
    if len(content) < header or struct.unpack(">I", content[:4])[0] != magic:
        found = f"0x{struct.unpack('>I', content[:4])[0]:08x}" if len(content) >= 4 else "nothing"
        raise DataError(
            f"{path}: not an IDX file of {dimensions}-D unsigned bytes (magic number {found}, expected 0x{magic:08x})"
        )
    shape = struct.unpack(f">{dimensions}I", content[4:header])
    expected = header + int(np.prod(shape))
    if len(content) != expected:
        raise DataError(
            f"{path}: {len(content):,} bytes, but its header announces {expected:,} "
            f"(shape {'x'.join(map(str, shape))}); the file is truncated or corrupt"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape)
