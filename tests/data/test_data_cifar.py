"""CIFAR-10 in the official python format, on small archives built here in that exact format."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.checksums import Checksum
from cnnlab.data.preparation import prepare
from cnnlab.errors import ConfigError, DataError
from data_helpers import CIFAR_CLASSES, assert_nothing_written, data_params, load_split, write_cifar_archive


@pytest.fixture
def small_archive(tmp_path):
    """(path, md5, x, labels): 20 images in each of the 5 training batches and the test batch."""
    path = tmp_path / "cifar-10-python.tar.gz"
    x, labels = write_cifar_archive(path)
    return path, hashlib.md5(path.read_bytes()).hexdigest(), x, labels


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache, and no download allowed."""
    home = tmp_path / "keras-home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))

    def no_download(url, *args):
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr("cnnlab.data.sources.download", no_download)
    return home / "datasets"


def cifar_params(**overrides):
    return data_params(dataset="cifar10", **overrides)


def test_official_format_archive_with_checksum(tmp_path, small_archive):
    path, md5, x, labels = small_archive
    params = cifar_params(source=str(path), checksum=f"md5:{md5}", val_fraction=0)
    card = prepare(params, tmp_path / "out", tmp_path / "dl")
    assert card["name"] == "cifar10" and card["classes"] == CIFAR_CLASSES
    assert card["counts"] == {"train": 100, "val": 0, "test": 20}
    assert card["checksum"] == {"md5": md5} and card["source"] == str(path)
    train_x, train_y = load_split(tmp_path / "out", "train")
    test_x, test_y = load_split(tmp_path / "out", "test")
    # rows of 3072 channel-major bytes come back as the H x W x C images they were made from
    assert np.array_equal(train_x, x[:100]) and np.array_equal(train_y, labels[:100])
    assert np.array_equal(test_x, x[100:]) and np.array_equal(test_y, labels[100:])


def test_caps_size_and_channels_on_cifar(tmp_path, small_archive):
    path, md5, _, _ = small_archive
    card = prepare(
        cifar_params(
            source=str(path),
            checksum=f"md5:{md5}",
            image_size=[16, 16],
            channels=1,
            max_train=50,
            max_test=10,
            val_fraction=0.2,
        ),
        tmp_path / "out",
        tmp_path / "dl",
    )
    assert card["shape"] == [16, 16, 1]
    assert card["counts"] == {"train": 40, "val": 10, "test": 10}
    assert card["class_counts"]["val"] == [1] * 10 and card["class_counts"]["test"] == [1] * 10
    assert load_split(tmp_path / "out", "train")[0].shape == (40, 16, 16, 1)


def test_a_local_copy_must_be_the_official_archive_unless_a_checksum_is_given(tmp_path, small_archive):
    path, _, _, _ = small_archive
    expected = (
        rf"^{path}: checksum mismatch, expected md5:c58f30108f718f92721af3b95e74349a, "
        r"got md5:[0-9a-f]{32}; it is not the official CIFAR-10 archive.*data\.checksum"
    )
    with pytest.raises(DataError, match=expected):
        prepare(cifar_params(source=str(path)), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_wrong_checksum(tmp_path, small_archive):
    path, md5, _, _ = small_archive
    wrong = md5[::-1]
    with pytest.raises(DataError, match=rf"^{path}: checksum mismatch, expected md5:{wrong}, got md5:{md5}"):
        prepare(cifar_params(source=str(path), checksum=f"md5:{wrong}"), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_checksum_without_source_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.checksum: it checks the file at data\.source, which is null"):
        prepare(cifar_params(checksum="md5:" + "0" * 32), tmp_path / "out", tmp_path / "dl")


@pytest.mark.parametrize(
    "name", ["cifar-10-batches-py.tar.gz", "cifar-10-batches-py-target_archive"], ids=["keras 2 name", "keras 3 name"]
)
def test_archive_in_the_keras_cache_is_reused(tmp_path, small_archive, keras_home, monkeypatch, name):
    path, md5, x, _ = small_archive
    cached = keras_home / name
    cached.write_bytes(path.read_bytes())
    monkeypatch.setattr("cnnlab.data.cifar.OFFICIAL_MD5", Checksum("md5", md5))  # pretend ours is the official one
    card = prepare(cifar_params(val_fraction=0), tmp_path / "out", tmp_path / "dl")
    assert card["source"] == str(cached) and card["checksum"] == {"md5": md5}
    assert np.array_equal(load_split(tmp_path / "out", "train")[0], x[:100])


def test_extracted_folder_in_the_keras_cache_is_reused(tmp_path, small_archive, keras_home):
    path, _, x, _ = small_archive
    with tarfile.open(path) as tar:
        tar.extractall(keras_home, filter="data")
    card = prepare(cifar_params(val_fraction=0), tmp_path / "out", tmp_path / "dl")
    folder = keras_home / "cifar-10-batches-py"
    assert card["source"] == str(folder)
    expected = hashlib.md5((folder / "test_batch").read_bytes()).hexdigest()
    assert card["checksum"]["md5"]["test_batch"] == expected and len(card["checksum"]["md5"]) == 7
    assert np.array_equal(load_split(tmp_path / "out", "test")[0], x[100:])


def test_a_cached_archive_with_the_wrong_md5_is_ignored(tmp_path, small_archive, keras_home, capsys):
    path, _, _, _ = small_archive
    (keras_home / "cifar-10-batches-py.tar.gz").write_bytes(path.read_bytes())
    with pytest.raises(AssertionError, match="unexpected download of https://www.cs.toronto.edu/~kriz/cifar-10-python"):
        prepare(cifar_params(), tmp_path / "out", tmp_path / "dl")
    assert "warning: ignoring " in capsys.readouterr().err


def test_extracted_folder_as_source(tmp_path, small_archive):
    path, _, x, _ = small_archive
    with tarfile.open(path) as tar:
        tar.extractall(tmp_path / "copy", filter="data")
    card = prepare(cifar_params(source=str(tmp_path / "copy"), val_fraction=0), tmp_path / "out", tmp_path / "dl")
    assert card["counts"]["train"] == 100
    assert np.array_equal(load_split(tmp_path / "out", "train")[0], x[:100])


def test_truncated_archive(tmp_path, small_archive):
    path, _, _, _ = small_archive
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=rf"^{path}: truncated or corrupt archive"):
        prepare(cifar_params(source=str(path), checksum=f"md5:{md5}"), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def _archive_with(tmp_path, replace):
    """The small archive with some members replaced: {name: bytes}."""
    source = tmp_path / "orig.tar.gz"
    write_cifar_archive(source)
    path = tmp_path / "changed.tar.gz"
    with tarfile.open(source) as original, tarfile.open(path, "w:gz") as tar:
        for info in original:
            name = info.name.rsplit("/", 1)[-1]
            if name in replace and replace[name] is None:
                continue
            blob = replace.get(name, original.extractfile(info).read())
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return path, f"md5:{hashlib.md5(path.read_bytes()).hexdigest()}"


def test_missing_batch(tmp_path):
    path, checksum = _archive_with(tmp_path, {"data_batch_3": None})
    with pytest.raises(DataError, match=rf"^{path}: not a CIFAR-10 python archive, it lacks .*/data_batch_3$"):
        prepare(cifar_params(source=str(path), checksum=checksum), tmp_path / "out", tmp_path / "dl")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    path, checksum = _archive_with(tmp_path, {"data_batch_2": pickle.dumps({b"data": Exploit()}, protocol=2)})
    refused = r"data_batch_2 is not a readable CIFAR-10 pickle \(refusing to load (__builtin__|builtins)\.print\)"
    with pytest.raises(DataError, match=refused):
        prepare(cifar_params(source=str(path), checksum=checksum), tmp_path / "out", tmp_path / "dl")


def test_malformed_batch(tmp_path):
    bad = pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, protocol=2)
    path, checksum = _archive_with(tmp_path, {"test_batch": bad})
    expected = r"test_batch holds data of shape \(4, 100\) and 4 labels; a CIFAR-10 batch has N x 3072"
    with pytest.raises(DataError, match=expected):
        prepare(cifar_params(source=str(path), checksum=checksum), tmp_path / "out", tmp_path / "dl")


def test_an_image_folder_of_other_classes_is_no_cifar10_copy(tmp_path):
    for split in ("train", "test"):
        for name in ("cats", "dogs"):
            (tmp_path / "pets" / split / name).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(tmp_path / "pets" / split / name / "1.png")
    with pytest.raises(
        DataError,
        match=r"is an image folder whose classes are cats, dogs, not CIFAR-10's; "
        r"use data.dataset: folder",
    ):
        prepare(data_params(dataset="cifar10", source=str(tmp_path / "pets")), tmp_path / "out", tmp_path / "dl")


def test_a_local_archive_is_checksummed_once(tmp_path, small_archive, monkeypatch):
    from cnnlab.data import checksums

    path, md5, _, _ = small_archive
    hashed = []
    original = checksums.file_digest

    def counted(file, algorithm="sha256"):
        hashed.append((file, algorithm))
        return original(file, algorithm)

    monkeypatch.setattr(checksums, "file_digest", counted)
    card = prepare(cifar_params(source=str(path), checksum=f"md5:{md5}"), tmp_path / "out", tmp_path / "dl")
    assert card["checksum"] == {"md5": md5}
    assert hashed == [(path, "md5")]
