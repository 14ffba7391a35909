"""The shared CIFAR-10 JPEG archive (folder-per-class, train/ and test/) as a real image-folder dataset."""
import tarfile

import numpy as np
import pytest
from PIL import Image

from cnnlab.data import prepare
from data_helpers import CIFAR_CLASSES, data_params, load_split, make_tar

CIFAR_JPG_SHA256 = "d34c68f61cca57aa9144c8f25bda427abb9921bd642d5857a2fc1a6b4416f965"
# per-channel statistics of the official CIFAR-10 training images; JPEG moves them a little
OFFICIAL_MEAN, OFFICIAL_STD = [125.3, 123.0, 113.9], [63.0, 62.1, 66.7]


@pytest.fixture(scope="module")
def full_run(cifar_jpg_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar-jpg") / "prepared"
    card = prepare(data_params(dataset="folder", source=str(cifar_jpg_archive), image_size=[32, 32], channels=3,
                               normalization="standardize"), out, out.parent / "dl")
    return card, out


def test_all_of_cifar10_from_the_archive(full_run, cifar_jpg_archive):
    card, out = full_run
    assert card["name"] == "cifar10-jpg" and card["classes"] == CIFAR_CLASSES
    assert card["counts"] == {"train": 45000, "val": 5000, "test": 10000}  # official 50,000 / 10,000 split
    assert card["class_counts"] == {"train": [4500] * 10, "val": [500] * 10, "test": [1000] * 10}
    assert card["shape"] == [32, 32, 3] and card["checksum"] == {"sha256": CIFAR_JPG_SHA256}
    assert card["source"] == str(cifar_jpg_archive)
    assert np.allclose(card["mean"], OFFICIAL_MEAN, atol=1.0) and np.allclose(card["std"], OFFICIAL_STD, atol=1.0)
    x, y = load_split(out, "test")
    assert x.shape == (10000, 32, 32, 3) and x.dtype == np.uint8 and np.bincount(y).tolist() == [1000] * 10


def extract_subset(archive, destination, per_class):
    """train/<class>/ and test/<class>/ with the first `per_class` files of each (sorted by name)."""
    with tarfile.open(archive) as tar:
        files = [member for member in tar.getmembers() if member.isfile()]
        chosen, seen = set(), {}
        for name in sorted(member.name for member in files):
            folder = name.rsplit("/", 1)[0]
            seen[folder] = seen.get(folder, 0) + 1
            if seen[folder] <= per_class:
                chosen.add(name)
        # in archive order: going back in a .tar.gz means decompressing from the start again
        tar.extractall(destination, members=[m for m in files if m.name in chosen], filter="data")
    return destination


def test_extracted_folder_and_archive_agree(cifar_jpg_archive, tmp_path):
    folder = extract_subset(cifar_jpg_archive, tmp_path / "cifar-subset", per_class=30)
    archive = make_tar(folder, tmp_path / "cifar-subset.tar.gz")
    params = dict(dataset="folder", image_size=None, channels=None, val_fraction=0)
    from_folder = prepare(data_params(source=str(folder), **params), tmp_path / "a", tmp_path / "dl")
    from_archive = prepare(data_params(source=str(archive), **params), tmp_path / "b", tmp_path / "dl")
    assert from_folder["classes"] == CIFAR_CLASSES and from_folder["counts"] == {"train": 300, "val": 0, "test": 300}
    assert from_folder["shape"] == [32, 32, 3]
    for split in ("train", "test"):
        (xa, ya), (xb, yb) = load_split(tmp_path / "a", split), load_split(tmp_path / "b", split)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    first_airplane = sorted((folder / "train" / "airplane").iterdir())[0]
    assert np.array_equal(load_split(tmp_path / "a", "train")[0][0], np.asarray(Image.open(first_airplane).convert("RGB")))
