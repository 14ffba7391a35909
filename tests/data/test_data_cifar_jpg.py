"""The shared CIFAR-10 JPEG archive (folder-per-class, train/ and test/) as a real image-folder dataset."""

import tarfile

import numpy as np
from PIL import Image

from cnnlab.data import folder
from cnnlab.data.images import ImageSpec
from cnnlab.data.preparation import prepare
from cnnlab.data.sources import Fetcher
from data_helpers import CIFAR_CLASSES, data_params, load_split, make_tar

CIFAR_JPG_SHA256 = "d34c68f61cca57aa9144c8f25bda427abb9921bd642d5857a2fc1a6b4416f965"
# per-channel statistics of the official CIFAR-10 training images; JPEG and sampling move them a little
OFFICIAL_MEAN, OFFICIAL_STD = [125.3, 123.0, 113.9], [63.0, 62.1, 66.7]


def test_the_archive_holds_the_official_classes_and_split(cifar_jpg_archive, tmp_path):
    source = folder.locate(data_params(dataset="folder", source=str(cifar_jpg_archive)), Fetcher(tmp_path))
    collection = folder.read(source, ImageSpec(None, None))
    assert collection.name == "cifar10-jpg" and collection.classes == CIFAR_CLASSES
    assert collection.checksum == {"sha256": CIFAR_JPG_SHA256}
    assert np.bincount(collection.labels[~collection.is_test]).tolist() == [5000] * 10
    assert np.bincount(collection.labels[collection.is_test]).tolist() == [1000] * 10


def test_a_stratified_sample_prepared_from_the_archive(cifar_jpg_archive, tmp_path):
    out = tmp_path / "prepared"
    card = prepare(
        data_params(
            dataset="folder",
            source=str(cifar_jpg_archive),
            image_size=[32, 32],
            channels=3,
            max_train=5000,
            max_test=1000,
            normalization="standardize",
        ),
        out,
        tmp_path / "dl",
    )
    assert card["classes"] == CIFAR_CLASSES and card["shape"] == [32, 32, 3]
    assert card["counts"] == {"train": 4500, "val": 500, "test": 1000}
    assert card["class_counts"] == {"train": [450] * 10, "val": [50] * 10, "test": [100] * 10}
    assert card["source"] == str(cifar_jpg_archive) and card["checksum"] == {"sha256": CIFAR_JPG_SHA256}
    assert np.allclose(card["mean"], OFFICIAL_MEAN, atol=1.5) and np.allclose(card["std"], OFFICIAL_STD, atol=1.5)
    x, y = load_split(out, "test")
    assert x.shape == (1000, 32, 32, 3) and x.dtype == np.uint8 and np.bincount(y).tolist() == [100] * 10


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
    assert {key: value for key, value in from_archive.items() if key not in ("source", "checksum", "name")} == {
        key: value for key, value in from_folder.items() if key not in ("source", "checksum", "name")
    }
    assert from_folder["shape"] == [32, 32, 3]
    for split in ("train", "test"):
        (xa, ya), (xb, yb) = load_split(tmp_path / "a", split), load_split(tmp_path / "b", split)
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    first_airplane = sorted((folder / "train" / "airplane").iterdir())[0]
    first_image = load_split(tmp_path / "a", "train")[0][0]
    assert np.array_equal(first_image, np.asarray(Image.open(first_airplane).convert("RGB")))


def test_cifar10_reads_an_image_folder_copy_of_the_official_split_and_names_it(cifar_jpg_archive, tmp_path):
    """data.dataset stays cifar10 (the default) and only data.source differs; the card says which copy."""
    card = prepare(
        data_params(dataset="cifar10", source=str(cifar_jpg_archive), max_train=2000, max_test=500),
        tmp_path / "prepared",
        tmp_path / "dl",
    )
    assert card["name"] == "cifar10" and card["classes"] == list(CIFAR_CLASSES)
    assert card["source"] == str(cifar_jpg_archive) and card["checksum"] == {"sha256": CIFAR_JPG_SHA256}
    assert card["counts"]["test"] == 500 and card["shape"] == [32, 32, 3]
