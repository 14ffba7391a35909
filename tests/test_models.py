"""Layer lists -> Keras models: the seed variants' exact parameter counts and shape errors."""

import copy

import numpy as np
import pytest

from cnnlab import models
from cnnlab.config import load_params, validate_variant
from cnnlab.errors import ConfigError

VARIANTS = load_params("params.yaml")["variants"]
CIFAR_CARD = {"shape": [32, 32, 3], "num_classes": 10, "normalization": "scale", "mean": [0, 0, 0], "std": [1, 1, 1]}

SEED_PARAMS = {
    "seed000_cool3": 477_994,
    "seed001_exp1": 923_914,
    "seed001_exp2": 629_130,
    "seed001_exp4": 924_554,
    "seed002_conv": 1_845_354,
    "seed002_conv_pool": 462_954,
    "seed002_deep": 564_426,
    "seed003_tutorial": 119_040,
    "seed003_tutorial_fixed": 118_430,
}


@pytest.mark.parametrize("name, expected", SEED_PARAMS.items())
def test_seed_variants_have_the_reported_parameter_counts(name, expected):
    _, model = models.build_model(VARIANTS[name], CIFAR_CARD, f"variants.{name}")
    assert model.count_params() == expected


def test_tutorial_conv_base_has_56320_params():
    _, model = models.build_model(VARIANTS["seed003_tutorial"], CIFAR_CARD, "variants.seed003_tutorial")
    conv_params = sum(row["params"] for row in models.layer_table(model) if row["type"] == "Conv2D")
    assert conv_params == 56_320
    assert model.output.shape[-1] == 20


def test_model_takes_raw_pixels_and_normalizes_inside():
    card = {**CIFAR_CARD, "normalization": "standardize", "mean": [100.0, 110.0, 120.0], "std": [50.0, 50.0, 50.0]}
    _, model = models.build_model(VARIANTS["seed001_exp1"], card, "variants.seed001_exp1")
    standardize = model.get_layer("standardize")
    pixels = np.full((1, 32, 32, 3), [150.0, 110.0, 20.0], dtype="float32")
    np.testing.assert_allclose(standardize(pixels)[0, 0, 0], [1.0, 0.0, -2.0], atol=1e-5)
    probabilities = model.predict(pixels, verbose=0)
    assert probabilities.shape == (1, 10)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_augmentation_is_identity_at_inference():
    variant = copy.deepcopy(VARIANTS["seed001_exp4"])
    variant["augmentation"]["crop_padding"] = 4
    training_model, model = models.build_model(variant, CIFAR_CARD, "variants.x")
    names = [layer.name for layer in training_model.layers]
    assert ["random_crop", "random_flip", "random_rotation", "random_shift"] == [
        n for n in names if n.startswith(("crop", "random"))
    ]
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(images, training=False), model(images, training=False))
    augmented = training_model.get_layer("random_rotation")(images, training=True)
    assert not np.allclose(augmented, images)
    assert np.allclose(training_model.get_layer("random_rotation")(images, training=False), images)


def variant_from_layers(layers):
    return validate_variant({"layers": layers}, "variants.v")


def test_too_many_poolings_for_28x28_names_the_layer():
    pool = {"type": "maxpool"}
    variant = variant_from_layers(
        [
            {"type": "conv", "filters": 8},
            pool,
            pool,
            pool,
            pool,
            pool,
            {"type": "flatten"},
            {"type": "dense", "units": "classes", "activation": "softmax"},
        ]
    )
    card = {**CIFAR_CARD, "shape": [28, 28, 1]}
    with pytest.raises(ConfigError, match=r"^variants\.v\.layers\[5\]: maxpool .*(shrinks|does not fit)"):
        models.build_model(variant, card, "variants.v")


def test_missing_flatten_is_reported():
    variant = variant_from_layers(
        [{"type": "conv", "filters": 8}, {"type": "dense", "units": "classes", "activation": "softmax"}]
    )
    with pytest.raises(ConfigError, match=r"^variants\.v\.layers: the model must end in a vector per image"):
        models.build_model(variant, CIFAR_CARD, "variants.v")


def test_conv_after_flatten_is_reported():
    variant = variant_from_layers(
        [
            {"type": "flatten"},
            {"type": "conv", "filters": 8},
            {"type": "dense", "units": "classes", "activation": "softmax"},
        ]
    )
    with pytest.raises(ConfigError, match=r"^variants\.v\.layers\[1\]: conv needs an image-shaped input"):
        models.build_model(variant, CIFAR_CARD, "variants.v")


def test_flops_of_a_known_layer_stack():
    variant = variant_from_layers(
        [
            {"type": "conv", "filters": 4, "kernel": 3, "padding": "same"},
            {"type": "flatten"},
            {"type": "dense", "units": "classes", "activation": "softmax"},
        ]
    )
    _, model = models.build_model(variant, {**CIFAR_CARD, "shape": [8, 8, 1]}, "variants.v")
    conv = 2 * 8 * 8 * 4 * 3 * 3 * 1
    dense = 2 * (8 * 8 * 4) * 10
    assert models.count_flops(model) == conv + dense


def test_each_augmentation_draws_its_own_random_numbers():
    """Layers sharing one seed draw the same numbers: every +15 degree rotation came with the
    largest zoom. Each now has a seed of its own, so their draws are unrelated."""
    augmentation = {"crop_padding": 0, "crop_fill": "constant", "horizontal_flip": False, "rotation": 15}
    augmentation |= {"width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1}
    layers = {layer.name: layer for layer in models.augmentation_layers(augmentation, (32, 32), seed=42)}
    images = np.zeros((256, 32, 32, 3), dtype="float32")

    angles = np.asarray(layers["random_rotation"].get_random_transformation(images, training=True)["angle"])
    zooms = np.asarray(layers["random_zoom"].get_random_transformation(images, training=True)["height_zoom"])

    assert abs(np.corrcoef(angles, zooms.ravel())[0, 1]) < 0.2
    assert len({layer.seed for layer in layers.values()}) == len(layers)
