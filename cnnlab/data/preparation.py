"""prepare(): any dataset kind -> data/prepared/{train,val,test}.npz and card.json (docs/design.md)."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from cnnlab.config import DATASETS, check_implemented
from cnnlab.data import cifar, digits, folder, idx
from cnnlab.data.images import ImageSpec
from cnnlab.data.notices import listing, warn
from cnnlab.data.sources import Fetcher
from cnnlab.data.splits import SPLITS, select_splits
from cnnlab.errors import DataError
from cnnlab.fileio import atomic_path, write_json


@dataclass(frozen=True)
class Reader:
    """How prepare reads one kind of dataset: `locate(data_params, fetcher)` resolves data.source
    (downloading through the Fetcher) into a Source, `read(source, spec)` returns its Collection."""

    locate: Callable
    read: Callable


READERS = {
    "cifar10": Reader(cifar.locate, cifar.read),
    **{name: Reader(partial(idx.locate, name), partial(idx.read, name)) for name in idx.DATASETS},
    "folder": Reader(folder.locate, folder.read),
    "digits": Reader(digits.locate, digits.read),
}
check_implemented(DATASETS, READERS, "datasets (names in cnnlab.config.DATASETS, readers in preparation.READERS)")
_STATS_CHUNK_PIXELS = 1 << 22


def prepare(data_params, out_dir, download_dir):
    """Read the dataset `data_params` describes, split it, write `out_dir` as a whole; return the card."""
    spec = ImageSpec.from_params(data_params)
    reader = READERS[data_params["dataset"]]
    source = reader.locate(data_params, Fetcher(download_dir))
    with source.discarded_if_corrupt():
        collection = reader.read(source, spec)
        arrays = _load_splits(
            collection, select_splits(collection.labels, collection.is_test, data_params, collection.classes)
        )
    _report_skipped(collection.skipped, data_params["strict"])
    _check_every_class_trains(collection, arrays["train"][1])
    card = dataset_card(collection, arrays, data_params)
    write_prepared(out_dir, arrays, card)
    return card


def downloads_needed(data_params, download_dir):
    """The URLs `prepare` would download: none when the data is local, cached or bundled."""
    fetcher = Fetcher(download_dir, dry_run=True)
    READERS[data_params["dataset"]].locate(data_params, fetcher)
    return fetcher.pending


def _report_skipped(skipped, strict):
    if not skipped:
        return
    if strict:
        raise DataError(
            f"{len(skipped)} files are not readable images: {listing(skipped)}; "
            f"remove them, or set data.strict: false to skip them with a warning"
        )
    warn(f"skipped {len(skipped)} files that are not readable images: {listing(skipped)}")


def _load_splits(collection, splits):
    """{split: (x, y)}, decoding all splits in one pass (so one size and channel decision covers all)."""
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

    From per-channel histograms of the 256 pixel values, built chunk by chunk: exact, fast,
    and memory stays flat whatever N is.
    """
    pixels = x.reshape(-1, x.shape[-1])
    histograms = np.zeros((pixels.shape[1], 256), dtype=np.int64)
    for start in range(0, len(pixels), _STATS_CHUNK_PIXELS):
        chunk = pixels[start : start + _STATS_CHUNK_PIXELS]
        for channel, histogram in enumerate(histograms):
            histogram += np.bincount(chunk[:, channel], minlength=256)
    values = np.arange(256, dtype=np.float64)
    count = histograms.sum(axis=1)
    mean = histograms @ values / count
    variance = (histograms * (values - mean[:, np.newaxis]) ** 2).sum(axis=1) / count
    return mean, np.sqrt(variance)


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


def _check_every_class_trains(collection, train_labels):
    counts = np.bincount(train_labels, minlength=len(collection.classes))
    empty = [name for name, count in zip(collection.classes, counts) if count == 0]
    if empty:
        raise DataError(
            f"{collection.source}: no readable training images for class {listing(empty)}; add images to it"
        )


def write_prepared(out_dir, arrays, card):
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, (x, y) in arrays.items():
            np.savez(tmp / f"{name}.npz", x=x, y=y)
        write_json(tmp / "card.json", card)
