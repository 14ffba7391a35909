"""Reading data/prepared/ (written by preparation.write_prepared): the loader every stage shares."""

import hashlib
import json
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError
from cnnlab.fileio import load_json, require
from cnnlab.layout import PREPARE


def read_split(prepared_dir, split):
    """(x, y) of `split` (train, val or test): raw uint8 images and int64 labels."""
    path = require(Path(prepared_dir) / f"{split}.npz", PREPARE)
    try:
        with np.load(path) as arrays:
            return arrays["x"], arrays["y"].astype(np.int64)
    except (KeyError, ValueError, OSError) as error:
        raise DataError(f"{path}: unreadable, needs arrays x and y ({error}); rerun `{PREPARE}`") from None


def read_card(prepared_dir):
    """The dataset card (card.json): classes, shape, counts, normalization statistics, source."""
    return load_json(Path(prepared_dir) / "card.json", PREPARE)


def dataset_id(card):
    """What metrics files record as the data they were computed on (their `dataset` key): the
    card's name and a short hash of the whole card (source and its checksum, split counts,
    image shape, normalization statistics, seed), e.g. `digits:3f9a0c12ab34`."""
    digest = hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()
    return f"{card['name']}:{digest[:12]}"
