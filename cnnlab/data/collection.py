"""What every dataset reader returns: labels of all items now, pixels of any subset on demand."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cnnlab.data.images import convert_array


@dataclass
class Collection:
    name: str
    classes: list
    labels: np.ndarray  # int64, one per item
    is_test: np.ndarray | None  # bool per item: in the dataset's own test split; None if it ships none
    load: Callable  # item indices -> (uint8 N x H x W x C, bool mask of the items that could be read)
    source: str
    checksum: dict
    skipped: list = field(default_factory=list)  # files left out: not images, empty or unreadable


def array_collection(name, classes, x, labels, is_test, source, checksum, spec):
    """A Collection over images already in memory (uint8 N x H x W x C)."""

    def load(indices):
        return convert_array(x[indices], spec), np.ones(len(indices), dtype=bool)

    return Collection(name, list(classes), np.asarray(labels, dtype=np.int64), is_test, load, source, checksum)
