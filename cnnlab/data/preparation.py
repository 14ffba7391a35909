"""prepare(): any dataset kind -> data/prepared/{train,val,test}.npz and card.json (docs/design.md)."""
from pathlib import Path

import numpy as np

from cnnlab.data.cifar import read_cifar10
from cnnlab.data.digits import read_digits
from cnnlab.data.folder import read_folder
from cnnlab.data.idx import DATASETS as IDX_DATASETS, read_idx_dataset
from cnnlab.data.images import ImageSpec
from cnnlab.data.notices import listing, warn
from cnnlab.data.splits import SPLITS, select_splits
from cnnlab.errors import ConfigError, DataError
from cnnlab.fileio import atomic_path, write_json

KINDS = ("cifar10", *IDX_DATASETS, "folder", "digits")
_STATS_CHUNK_VALUES = 1 << 23  # float64 working set per chunk: 64 MB


def prepare(data_params, out_dir, download_dir):
    """Read the dataset `data_params` describes, split it, write `out_dir` as a whole; return the card."""
    spec = ImageSpec.from_params(data_params)
    collection = read_collection(data_params, Path(download_dir), spec)
    _check_skipped(collection, data_params["strict"])
    arrays = _load_splits(collection, select_splits(collection.labels, collection.is_test, data_params))
    _check_skipped(collection, data_params["strict"])
    if collection.skipped:
        warn(f"skipped {len(collection.skipped)} files that are not readable images: {listing(collection.skipped)}")
    card = dataset_card(collection, arrays, data_params)
    _check_every_class_trains(card, collection.source)
    write_prepared(out_dir, arrays, card)
    return card


def read_collection(data_params, download_dir, spec):
    kind = data_params["dataset"]
    if kind == "cifar10":
        return read_cifar10(data_params, download_dir, spec)
    if kind in IDX_DATASETS:
        return read_idx_dataset(IDX_DATASETS[kind], data_params, download_dir, spec)
    if kind == "folder":
        return read_folder(data_params, download_dir, spec)
    if kind == "digits":
        return read_digits(data_params, spec)
    raise ConfigError(f"data.dataset: unknown dataset {kind!r}; known: {', '.join(KINDS)}")


def _check_skipped(collection, strict):
    if strict and collection.skipped:
        raise DataError(f"{len(collection.skipped)} files are not readable images: {listing(collection.skipped)}; "
                        f"remove them, or set data.strict: false to skip them with a warning")


def _load_splits(collection, splits):
    """{split: (x, y)}, decoding all splits in one pass (one worker pool, one size/channel decision)."""
    order = np.concatenate([splits[name] for name in SPLITS])
    x, kept = collection.load(order)
    y = collection.labels[order][kept]
    arrays, start, kept_start = {}, 0, 0
    for name in SPLITS:
        end = start + len(splits[name])
        kept_end = kept_start + int(np.count_nonzero(kept[start:end]))
        arrays[name] = (x[kept_start:kept_end], y[kept_start:kept_end])
        start, kept_start = end, kept_end
    return arrays


def channel_stats(x):
    """Per-channel mean and (population) std of a uint8 N x H x W x C array, in 0-255 units.

    Two passes over chunks in float64: exact enough, and memory stays flat for any N.
    """
    values_per_image = int(np.prod(x.shape[1:3])) or 1
    step = max(1, _STATS_CHUNK_VALUES // (values_per_image * x.shape[3]))
    count = len(x) * values_per_image
    total = sum((x[i:i + step].sum(axis=(0, 1, 2), dtype=np.float64) for i in range(0, len(x), step)),
                np.zeros(x.shape[3]))
    mean = total / count
    squares = sum((((x[i:i + step] - mean) ** 2).sum(axis=(0, 1, 2)) for i in range(0, len(x), step)),
                  np.zeros(x.shape[3]))
    return mean, np.sqrt(squares / count)


def dataset_card(collection, arrays, data_params):
    x_train = arrays["train"][0]
    mean, std = channel_stats(x_train)
    num_classes = len(collection.classes)
    return {
        "name": collection.name,
        "classes": list(collection.classes),
        "num_classes": num_classes,
        "shape": list(x_train.shape[1:]),
        "counts": {name: len(arrays[name][1]) for name in SPLITS},
        "class_counts": {name: np.bincount(arrays[name][1], minlength=num_classes).tolist() for name in SPLITS},
        "source": collection.source,
        "checksum": collection.checksum,
        "normalization": data_params["normalization"],
        "mean": mean.tolist(),
        "std": std.tolist(),
        "val_fraction": data_params["val_fraction"],
        "seed": data_params["seed"],
    }


def _check_every_class_trains(card, source):
    empty = [name for name, count in zip(card["classes"], card["class_counts"]["train"]) if count == 0]
    if empty:
        raise DataError(f"{source}: no readable training images for class {listing(empty)}; "
                        f"add images or lower data.val_fraction")


def write_prepared(out_dir, arrays, card):
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, (x, y) in arrays.items():
            np.savez(tmp / f"{name}.npz", x=x, y=y)
        write_json(tmp / "card.json", card)
