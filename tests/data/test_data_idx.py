"""MNIST-style IDX files: the shared Fashion-MNIST copy, and damaged or unofficial copies."""

import dataclasses
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from cnnlab.data.idx import DATASETS, FILES, IMAGES_MAGIC, LABELS_MAGIC
from cnnlab.data.preparation import prepare
from cnnlab.errors import ConfigError, DataError
from data_helpers import assert_nothing_written, data_params, idx_bytes, load_split

# published by Zalando (and in shared/datasets/README.md): md5 of each decompressed file
FASHION_CONTENT_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


@pytest.fixture(scope="module")
def fashion_prepared(fashion_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("fashion") / "prepared"
    card = prepare(
        data_params(dataset="fashion_mnist", source=str(fashion_folder), image_size=None, val_fraction=0),
        out,
        out.parent / "dl",
    )
    return card, out


def test_fashion_mnist_from_the_shared_idx_files(fashion_prepared, fashion_folder):
    card, out = fashion_prepared
    assert card["name"] == "fashion_mnist"
    assert card["classes"][0] == "T-shirt/top" and card["classes"][9] == "Ankle boot"
    assert card["shape"] == [28, 28, 1]
    assert card["counts"] == {"train": 60000, "val": 0, "test": 10000}
    assert card["class_counts"]["train"] == [6000] * 10 and card["class_counts"]["test"] == [1000] * 10
    assert card["checksum"] == {"md5": FASHION_CONTENT_MD5} and card["source"] == str(fashion_folder)
    train_x, train_y = load_split(out, "train")
    test_x, test_y = load_split(out, "test")
    assert train_x.shape == (60000, 28, 28, 1) and test_x.shape == (10000, 28, 28, 1)
    # the dataset's own order is kept: its well-known first and last labels
    assert train_y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5] and train_y[-3:].tolist() == [3, 0, 5]
    assert test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    raw = gzip.open(fashion_folder / "train-images-idx3-ubyte.gz").read()
    assert np.array_equal(train_x[0, :, :, 0], np.frombuffer(raw, np.uint8, 28 * 28, offset=16).reshape(28, 28))
    assert card["mean"] == pytest.approx([train_x.mean()]) and card["std"] == pytest.approx([train_x.std()])


def test_fashion_mnist_resized_and_capped(fashion_folder, tmp_path):
    card = prepare(
        data_params(
            dataset="fashion_mnist",
            source=str(fashion_folder),
            image_size=[32, 32],
            channels=3,
            max_train=600,
            max_test=100,
        ),
        tmp_path / "out",
        tmp_path / "dl",
    )
    assert card["shape"] == [32, 32, 3]
    assert card["counts"] == {"train": 540, "val": 60, "test": 100}
    assert card["class_counts"]["val"] == [6] * 10 and card["class_counts"]["test"] == [10] * 10


def copy_fashion(fashion_folder, destination):
    shutil.copytree(fashion_folder, destination)
    for path in destination.iterdir():
        path.chmod(0o644)
    return destination


def test_truncated_gz(fashion_folder, tmp_path):
    folder = copy_fashion(fashion_folder, tmp_path / "copy")
    damaged = folder / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:2000])
    with pytest.raises(DataError, match=rf"^{damaged}: truncated or corrupt gzip file \(.*\); download it again$"):
        prepare(data_params(dataset="fashion_mnist", source=str(folder)), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_idx_file_shorter_than_its_header_says(fashion_folder, tmp_path):
    folder = copy_fashion(fashion_folder, tmp_path / "copy")
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes())[:-10]))
    expected = rf"^{labels}: 9,998 bytes, but its header announces 10,008 .*truncated or corrupt"
    with pytest.raises(DataError, match=expected):
        prepare(data_params(dataset="fashion_mnist", source=str(folder)), tmp_path / "out", tmp_path / "dl")


def write_idx_folder(folder, train=100, test=20, seed=0):
    """Four small, structurally valid IDX files (not anybody's official data)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": (rng.integers(0, 256, (train, 28, 28)), IMAGES_MAGIC),
        "train-labels-idx1-ubyte": (np.arange(train) % 10, LABELS_MAGIC),
        "t10k-images-idx3-ubyte": (rng.integers(0, 256, (test, 28, 28)), IMAGES_MAGIC),
        "t10k-labels-idx1-ubyte": (np.arange(test) % 10, LABELS_MAGIC),
    }
    for name, (array, magic) in arrays.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array, magic)))
    return folder


def test_a_local_mnist_copy_that_matches_no_published_checksum_gets_a_warning(tmp_path, capsys):
    folder = write_idx_folder(tmp_path / "mnist")
    card = prepare(data_params(dataset="mnist", source=str(folder), image_size=None), tmp_path / "out", tmp_path / "dl")
    assert card["counts"] == {"train": 90, "val": 10, "test": 20} and card["classes"] == list("0123456789")
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: mnist: no published checksum matches train-images-idx3-ubyte.gz, ")
    assert warning.endswith("using them because their IDX structure is valid")


def test_a_local_fashion_copy_with_other_content_is_an_error(tmp_path):
    folder = write_idx_folder(tmp_path / "fashion")
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte\.gz: not the official fashion_mnist file "
        r"\(content md5 [0-9a-f]{32}, expected f4a8712d7a061bf5bd6d2ca38dc4d50a\)",
    ):
        prepare(data_params(dataset="fashion_mnist", source=str(folder)), tmp_path / "out", tmp_path / "dl")


def test_wrong_magic_number(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist")
    shutil.copy(folder / "train-labels-idx1-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(
        DataError,
        match=r"train-images-idx3-ubyte\.gz: not an IDX file of 3-D unsigned bytes "
        r"\(magic number 0x00000801, expected 0x00000803\)",
    ):
        prepare(data_params(dataset="mnist", source=str(folder)), tmp_path / "out", tmp_path / "dl")


def test_uncompressed_files_are_accepted(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist")
    for name in FILES:
        (folder / name).write_bytes(gzip.decompress((folder / f"{name}.gz").read_bytes()))
        (folder / f"{name}.gz").unlink()
    card = prepare(data_params(dataset="mnist", source=str(folder), image_size=None), tmp_path / "out", tmp_path / "dl")
    assert card["counts"]["test"] == 20


def test_missing_file(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=rf"^{folder}: t10k-images-idx3-ubyte\.gz is missing"):
        prepare(data_params(dataset="mnist", source=str(folder)), tmp_path / "out", tmp_path / "dl")


def test_checksum_is_not_used_for_idx_datasets(tmp_path):
    expected = r"^data\.checksum: mnist is four files, each checked against its published md5"
    with pytest.raises(ConfigError, match=expected):
        prepare(data_params(dataset="mnist", source="x", checksum="md5:" + "0" * 32), tmp_path / "out", tmp_path / "dl")


def test_download_from_a_mirror_checks_each_published_md5(tmp_path, http_server, monkeypatch):
    url, served, server = http_server
    write_idx_folder(served / "mirror")
    published = {name: hashlib.md5((served / "mirror" / f"{name}.gz").read_bytes()).hexdigest() for name in FILES}
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], gz_md5=published))
    params = data_params(dataset="mnist", source=f"{url}/mirror", image_size=None)
    card = prepare(params, tmp_path / "out", tmp_path / "dl")
    assert card["counts"] == {"train": 90, "val": 10, "test": 20} and card["source"] == f"{url}/mirror"
    (cache,) = (tmp_path / "dl").iterdir()  # one folder for the four files of one server folder
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{name}.gz" for name in FILES)
    assert [r["path"] for r in server.requests] == [f"/mirror/{name}.gz" for name in FILES]

    prepare(params, tmp_path / "out", tmp_path / "dl")
    assert len(server.requests) == 4  # verified copies in the download folder are reused


def test_download_of_unofficial_files_fails_on_the_first_checksum(tmp_path, http_server):
    url, served, _ = http_server
    write_idx_folder(served)
    with pytest.raises(
        DataError,
        match=rf"^{url}/train-images-idx3-ubyte\.gz: checksum mismatch, "
        r"expected md5:f68b3c2dcbeaaa9fbdd348bbdeb94873, got md5:[0-9a-f]{32}",
    ):
        prepare(data_params(dataset="mnist", source=url), tmp_path / "out", tmp_path / "dl")
    assert [list(cache.iterdir()) for cache in (tmp_path / "dl").iterdir()] == [[]]
