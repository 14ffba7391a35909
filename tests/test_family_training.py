"""Every named family trains for one epoch on the shared CIFAR-10 copy (32x32, 10 classes) and
on a 150x150 folder dataset (5 classes), through the pipeline's own prepare and train code."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab import models
from cnnlab.config import validate_params
from cnnlab.data.preparation import prepare
from cnnlab.evaluation import evaluate_variant
from cnnlab.training import train_variant
from tests.helpers import committed

FAMILY_VARIANTS = ("alexnet", "vgg16", "googlenet", "resnet")
PARAMS = validate_params(yaml.safe_load(committed("params.yaml")))


def data_params(**overrides):
    return {**PARAMS["data"], "val_fraction": 0.2, **overrides}


@pytest.fixture(scope="module")
def cifar_subset(tmp_path_factory, cifar_jpg_archive):
    root = tmp_path_factory.mktemp("cifar")
    prepare(
        data_params(dataset="folder", source=str(cifar_jpg_archive), max_train=100, max_test=30),
        out_dir=root / "data/prepared",
        download_dir=root / "downloads",
    )
    return root


@pytest.fixture(scope="module")
def flowers150(tmp_path_factory):
    """Five classes of mixed-size RGB photos-to-be (flat colour + noise per class)."""
    root = tmp_path_factory.mktemp("flowers")
    rng = np.random.default_rng(0)
    for label, name in enumerate(["daisy", "dandelion", "rose", "sunflower", "tulip"]):
        folder = root / "images" / name
        folder.mkdir(parents=True)
        for index in range(10):
            size = (int(rng.integers(120, 260)), int(rng.integers(120, 260)))
            pixels = rng.normal(40 + 40 * label, 30, (*size, 3)).clip(0, 255).astype("uint8")
            Image.fromarray(pixels).save(folder / f"{index}.jpg")
    prepare(
        data_params(dataset="folder", source=str(root / "images"), image_size=[150, 150], test_fraction=0.2),
        out_dir=root / "data/prepared",
        download_dir=root / "downloads",
    )
    return root


def train_one_epoch(root, name):
    variant = {**PARAMS["variants"][name], "batch_size": 8, "epochs": 1}
    train_variant(
        name,
        variant,
        {**PARAMS["train"], "max_epochs": 1},
        data_dir=root / "data/prepared",
        out_dir=root / "models" / name,
        live_dir=root / "dvclive" / name,
        backup_dir=root / "data/checkpoints" / name,
    )
    return variant


@pytest.mark.parametrize("name", FAMILY_VARIANTS)
@pytest.mark.parametrize(
    "dataset, shape, classes", [("cifar_subset", [32, 32, 3], 10), ("flowers150", [150, 150, 3], 5)]
)
def test_family_trains_one_epoch_and_evaluates(name, dataset, shape, classes, request):
    root = request.getfixturevalue(dataset)
    card = json.loads((root / "data/prepared/card.json").read_text())
    assert card["shape"] == shape and card["num_classes"] == classes
    variant = train_one_epoch(root, name)

    training = json.loads((root / "models" / name / "training.json").read_text())
    assert training["epochs_run"] == 1 and training["train_seconds"] > 0
    _, expected = models.build_model(variant, card, f"variants.{name}")
    summary = json.loads((root / "models" / name / "summary.json").read_text())
    assert summary["total_params"] == expected.count_params()

    metrics = evaluate_variant(name, root=root)
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    probabilities = np.load(root / "eval" / name / "probabilities.npy")
    assert probabilities.shape == (card["counts"]["test"], classes), "only the main head is evaluated"
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
