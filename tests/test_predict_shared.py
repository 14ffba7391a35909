"""predict on a real JPEG from the shared CIFAR-10 copy gives exactly what evaluate computed
for that test image (same decoding, same preprocessing, same model)."""

import io
import json
import tarfile

import numpy as np
import pytest

from cnnlab.config import load_params, validate_variant
from cnnlab.data.images import read_image
from cnnlab.data.preparation import prepare
from cnnlab.evaluation import evaluate_variant
from cnnlab.training import train_variant
from tests.helpers import REPO, run_stage, small_variant, write_params

PARAMS = load_params(REPO / "params.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cifar_jpg_archive):
    root = tmp_path_factory.mktemp("predict")
    data = {
        **PARAMS["data"],
        "dataset": "folder",
        "source": str(cifar_jpg_archive),
        "max_train": 300,
        "max_test": 30,
        "val_fraction": 0.2,
    }
    prepare(data, out_dir=root / "data/prepared", download_dir=root / "downloads")
    write_params(root, {"small": small_variant(epochs=1)})
    train_variant(
        "small",
        validate_variant(small_variant(epochs=1), "variants.small"),
        PARAMS["train"],
        data_dir=root / "data/prepared",
        out_dir=root / "models/small",
        live_dir=root / "dvclive/small",
        backup_dir=root / "data/checkpoints/small",
    )
    evaluate_variant("small", root=root)
    return root


def jpeg_of_test_image(archive, image, class_name):
    """The archive's test JPEG of `class_name` that decodes to exactly `image`."""
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and f"test/{class_name}/" in member.name:
                data = tar.extractfile(member).read()
                if np.array_equal(read_image(io.BytesIO(data), list(image.shape)), image):
                    return data
    raise AssertionError(f"no test JPEG of {class_name} decodes to the prepared image")


def test_predict_on_a_shared_jpeg_matches_evaluate(trained, cifar_jpg_archive, tmp_path):
    card = json.loads((trained / "data/prepared/card.json").read_text())
    with np.load(trained / "data/prepared/test.npz") as test:
        index = 7
        image, label = test["x"][index], int(test["y"][index])
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_of_test_image(cifar_jpg_archive, image, card["classes"][label]))

    result = run_stage(trained, "stages.predict", "--variant", "small", "--json", "--top-k", "1", str(photo))
    top = json.loads(result.stdout)[0]["predictions"][0]
    expected = np.load(trained / "eval/small/probabilities.npy")[index]
    assert top["class"] == card["classes"][int(np.argmax(expected))]
    assert top["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
