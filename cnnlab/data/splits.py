"""Stratified, seeded choice of item indices: test split, caps, validation split."""

import numpy as np
from sklearn.model_selection import train_test_split

from cnnlab.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def select_splits(labels, is_test, data_params, classes=None):
    """{split: sorted item indices}. max_train caps the training data before validation is carved out.
    `classes` (the class names) name a class too small to split."""
    seed = data_params["seed"]
    everything = np.arange(len(labels))
    if classes is not None:
        _check_class_sizes(
            labels, everything if is_test is None else everything[~is_test], is_test, data_params, classes
        )
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


def _check_class_sizes(labels, pool, is_test, data_params, classes):
    """A stratified split puts at least one image of each class on each side: a class needs
    one image per split taken from it (test when not given as a folder, validation) plus one
    to train on. No fraction can make do with fewer."""
    keys = ["data.test_fraction"] if is_test is None else []
    keys += ["data.val_fraction"] if data_params["val_fraction"] else []
    if not keys:
        return
    needed = 1 + len(keys)
    counts = np.bincount(labels[pool], minlength=len(classes))
    small = [f"{name!r} ({count})" for name, count in zip(classes, counts) if 0 < count < needed]
    if small:
        plural = "es have" if len(small) > 1 else " has"
        where = f"{data_params['source']}: " if data_params.get("source") else ""
        raise DataError(
            f"{where}class{plural} too few images: {', '.join(small)}; splitting off {' and '.join(keys)} "
            f"needs at least {needed} images per class: add images or remove the class folder"
        )


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
