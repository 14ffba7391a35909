"""Stratified, seeded choice of item indices: test split, caps, validation split."""

import numpy as np
from sklearn.model_selection import train_test_split

from cnnlab.errors import ConfigError

SPLITS = ("train", "val", "test")


def select_splits(labels, is_test, data_params):
    """{split: sorted item indices}. max_train caps the training data before validation is carved out."""
    seed = data_params["seed"]
    everything = np.arange(len(labels))
    if is_test is None:
        train, test = split_off(everything, labels, data_params["test_fraction"], seed, "data.test_fraction")
    else:
        train, test = everything[~is_test], everything[is_test]
    if data_params.get("max_test") is not None:
        test = split_off(test, labels, data_params["max_test"], seed, "data.max_test")[1]
    if data_params.get("max_train") is not None:
        train = split_off(train, labels, data_params["max_train"], seed, "data.max_train")[1]
    train, val = split_off(train, labels, data_params["val_fraction"], seed, "data.val_fraction")
    return {"train": train, "val": val, "test": test}


def split_off(indices, labels, size, seed, key):
    """(rest, taken), both sorted: `size` (a fraction, or a count) of `indices`, stratified by label."""
    empty = indices[:0]
    if not size or not len(indices):
        return indices, empty
    if isinstance(size, int) and size >= len(indices):
        return empty, indices
    try:
        rest, taken = train_test_split(indices, test_size=size, stratify=labels[indices], random_state=seed)
    except ValueError as error:
        classes = len(np.unique(labels[indices]))
        raise ConfigError(
            f"{key}: {size} cannot be taken from {len(indices)} images of {classes} classes "
            f"with every class represented ({error}); change {key}"
        ) from None
    return np.sort(rest), np.sort(taken)
