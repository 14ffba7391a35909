"""Which test images a model got right, kept in git beside the metrics so that a fresh clone, or a
CI job with no DVC remote, can put an interval on every accuracy and test two models against
each other on the same images (cnnlab.statistics).

Correctness is written as rows of "0"/"1" characters (1 = right), ROW images per row, the test
split's first image first: about 10 kB per model on CIFAR-10's 10,000 test images, a few kB once
git compresses it, and a diff shows which images changed. `test_split` fingerprints the test
images and labels, so models scored on different test splits are never paired.
"""

import hashlib

import numpy as np

from cnnlab.errors import DataError

ROW = 100


def encode_correct(correct):
    """Rows of "0"/"1", ROW per row."""
    text = "".join("1" if right else "0" for right in np.asarray(correct, bool))
    return [text[start : start + ROW] for start in range(0, len(text), ROW)]


def decode_correct(rows, source="per-image record"):
    """The boolean array that `encode_correct` wrote."""
    text = "".join(rows)
    if set(text) - {"0", "1"}:
        raise DataError(f"{source}: `correct` must hold only 0 and 1")
    return np.frombuffer(text.encode(), dtype=np.uint8) == ord("1")


def split_fingerprint(images, labels):
    """A short hash of the test images and labels: equal for two evaluations on the same split."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(images).tobytes())
    return f"sha256:{digest.hexdigest()[:16]}"


def details_record(correct, test_split, best_epoch):
    """metrics/details/<variant>.json: the best epoch (a training fact kept out of `dvc exp show`)
    and each test image's correctness."""
    return {
        "best_epoch": best_epoch,
        "test_split": test_split,
        "images": len(correct),
        "correct": encode_correct(correct),
    }


def record_correct(record, source):
    """The per-image correctness of a details record (or of one run of a repeats record)."""
    correct = decode_correct(record.get("correct", []), source)
    if "images" in record and len(correct) != record["images"]:
        raise DataError(f"{source}: `correct` covers {len(correct)} images, `images` says {record['images']}")
    return correct


def repeats_correct(record, source):
    """Each run's per-image correctness in a repeats record, in the order of its seeds."""
    corrects = [decode_correct(rows, source) for rows in record.get("correct", [])]
    if len(corrects) != len(record.get("seeds", [])) or any(len(c) != record.get("images") for c in corrects):
        raise DataError(f"{source}: `correct` must hold one row list of `images` images per seed")
    return corrects
