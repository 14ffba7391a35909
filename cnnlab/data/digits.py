"""scikit-learn's bundled 8x8 handwritten digits: 1,797 images, works offline."""

from importlib import resources

import numpy as np
from sklearn.datasets import load_digits

from cnnlab.data.checksums import Checksum, file_digest
from cnnlab.data.collection import array_collection
from cnnlab.data.sources import Source
from cnnlab.errors import ConfigError

DATA_FILE = resources.files("sklearn.datasets.data") / "digits.csv.gz"


def locate(data_params, fetcher):
    if data_params.get("source") is not None:
        raise ConfigError("data.source: digits ships with scikit-learn and reads no files; set data.source: null")
    return Source(None, "sklearn.datasets.load_digits", Checksum("md5", file_digest(DATA_FILE, "md5")))


def read(source, spec):
    digits = load_digits()
    # pixel values are 0..16 ink counts; stretch them to the usual 0..255
    x = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, :, :, np.newaxis]
    classes = [str(name) for name in digits.target_names]
    return array_collection("digits", classes, x, digits.target, None, source.label, source.record(), spec)
