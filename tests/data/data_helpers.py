"""Helpers for the prepare-stage tests: params and tiny datasets built on the spot."""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.config import DATA, validate_section

REPO = Path(__file__).resolve().parents[2]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def data_params(**overrides):
    """The validated params.yaml `data:` section, defaults filled in, as load_params() returns it."""
    return validate_section(overrides, DATA, "data")


def write_image(path, size=(12, 10), mode="RGB", color=(200, 30, 60), fmt=None):
    """An image of `size` (width, height) filled with `color`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def write_class_folders(root, counts, size=(12, 10), suffix=".png"):
    """root/<class>/NNN<suffix> for {class: count}; each class has its own solid colour."""
    for index, (name, count) in enumerate(sorted(counts.items())):
        for i in range(count):
            write_image(Path(root) / name / f"{i:03d}{suffix}", size, color=(20 * index, 100 + i % 50, 50))
    return Path(root)


def make_tar(folder, archive, arcname=None):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname if arcname is not None else Path(folder).name)
    return Path(archive)


def cifar_batch_pickle(x, labels, label):
    """One batch as the official archive pickles it: bytes keys, N x 3072 channel-major rows."""
    data = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)
    return pickle.dumps(
        {
            b"batch_label": label.encode(),
            b"labels": [int(v) for v in labels],
            b"data": data,
            b"filenames": [f"{i:05d}.png".encode() for i in range(len(x))],
        },
        protocol=2,
    )


def write_cifar_archive(archive, per_batch=20, seed=0):
    """A small CIFAR-10 archive in the official format; returns (x, labels) of its 6 batches in order."""
    rng = np.random.default_rng(seed)
    count = per_batch * 6
    x = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(count) % 10
    members = {
        f"data_batch_{i + 1}": cifar_batch_pickle(
            x[i * per_batch : (i + 1) * per_batch],
            labels[i * per_batch : (i + 1) * per_batch],
            f"training batch {i + 1} of 5",
        )
        for i in range(5)
    }
    members["test_batch"] = cifar_batch_pickle(x[5 * per_batch :], labels[5 * per_batch :], "testing batch 1 of 1")
    members["batches.meta"] = pickle.dumps(
        {b"label_names": [c.encode() for c in CIFAR_CLASSES], b"num_cases_per_batch": per_batch, b"num_vis": 3072},
        protocol=2,
    )
    members["readme.html"] = b"<html></html>"
    with tarfile.open(archive, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return x, labels


def idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def assert_nothing_written(out_dir):
    """No output folder, and no half-built temporary folder beside it."""
    out_dir = Path(out_dir)
    assert not out_dir.exists()
    if out_dir.parent.exists():
        assert [p.name for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")] == []


def load_split(out_dir, split):
    with np.load(Path(out_dir) / f"{split}.npz") as arrays:
        return arrays["x"], arrays["y"]
