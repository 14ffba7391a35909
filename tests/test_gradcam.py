"""Grad-CAM (cnnlab.gradcam): the heatmap points at the evidence, and every family can be explained."""

import keras
import numpy as np
import pytest

from cnnlab import gradcam
from cnnlab.config import validate_variant
from cnnlab.config.families import validate_family_options
from cnnlab.errors import ConfigError
from cnnlab.models import build_model
from cnnlab.models.families import build_family
from tests.model_fixtures import card_for, tiny_cnn

SIZE, SIDE = 32, 12  # images, and the bright square; the class is the quadrant it lies in


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    keras.backend.clear_session()


def bright_squares(count, seed):
    """RGB images: red rises down the rows, green along the columns (context that tells where a
    spot is), and a bright SIDE x SIDE square somewhere inside one quadrant, whose number is
    the class. Returns (images, labels, top-left corners)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 120, SIZE)
    images = np.zeros((count, SIZE, SIZE, 3))
    images[..., 0], images[..., 1] = ramp[:, None], ramp[None, :]
    images += rng.normal(0, 10, images.shape)
    labels = rng.integers(0, 4, count)
    corners = []
    half = SIZE // 2
    for image, label in zip(images, labels):
        top = (label // 2) * half + rng.integers(0, half - SIDE + 1)
        left = (label % 2) * half + rng.integers(0, half - SIDE + 1)
        image[top : top + SIDE, left : left + SIDE] = 250
        corners.append((top, left))
    return np.clip(images, 0, 255).astype(np.float32), labels, corners


def test_heatmap_peak_falls_inside_the_square_that_decides_the_class():
    images, labels, _ = bright_squares(800, seed=0)
    test_images, test_labels, corners = bright_squares(100, seed=1)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.Conv2D(16, 3, activation="relu", name="last_conv"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images, labels, epochs=5, batch_size=32, verbose=0)
    predicted = model.predict(test_images, verbose=0).argmax(axis=1)
    assert np.mean(predicted == test_labels) >= 0.9

    heatmaps = gradcam.heatmaps(model, test_images, predicted)

    assert gradcam.target_name(model) == "last_conv"
    peaks = [np.unravel_index(heatmap.argmax(), heatmap.shape) for heatmap in heatmaps]
    inside = [
        top <= row < top + SIDE and left <= column < left + SIDE for (row, column), (top, left) in zip(peaks, corners)
    ]
    assert np.mean(inside) >= 0.7, f"peak inside the square for {np.mean(inside):.0%} of the test images"


FAMILIES = [
    ("alexnet", {"width": 0.125, "dense_units": 16}, "conv5_bn"),
    ("vgg16", {"batchnorm": True, "width": 0.125, "dense_units": 16}, "block5_conv3_relu"),
    ("vgg16", {"implementation": "keras"}, "block5_conv3"),
    ("googlenet", {"width": 0.125}, "inception_5b_output"),
    ("resnet", {"depth": 1}, "stage3_block1_relu"),
    ("airbench", {"widths": [8, 16, 16]}, "group3_2_act"),
]


@pytest.mark.parametrize(
    "family, options, expected", FAMILIES, ids=[f"{f}-{o.get('implementation', '')}" for f, o, _ in FAMILIES]
)
def test_every_family_gives_one_heatmap_per_image_in_zero_to_one(family, options, expected):
    raw = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(raw)
    outputs = build_family(family, validate_family_options(family, options, "variants.v.options"), scaled, 10)
    model = keras.Model(raw, outputs)  # GoogLeNet: main head first, then the two auxiliary heads
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)

    heatmaps = gradcam.heatmaps(model, images, [0, 4, 9])

    assert heatmaps.shape == (3, 32, 32) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1
    name = gradcam.target_name(model)
    assert name == expected  # the last spatial conv map of the main path: never an auxiliary head's
    target = model.get_layer(name).output
    assert target.shape[1] * target.shape[2] > 1


def test_airbench_variant_with_lookahead_and_scaled_logits_explains_its_predictions():
    variant = validate_variant(
        {
            "family": "airbench",
            "options": {"widths": [8, 16, 16], "activation": "gelu_tanh"},
            "lookahead": {"start_epoch": 1, "every": 2},
            "tta": "flip_shift",
        },
        "variants.a",
    )
    _, model = build_model(variant, card_for(["a", "b", "c"], (32, 32, 3), 4), "variants.a")
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)

    heatmaps = gradcam.heatmaps(model, images, [0, 1, 2, 0])

    assert heatmaps.shape == (4, 32, 32) and 0 <= heatmaps.min() and heatmaps.max() <= 1
    assert model.get_layer("predictions").input.shape[-1] == 3  # the score is the scaled logits


def test_dense_softmax_head_is_explained_on_its_logits_and_left_as_it_was():
    model = tiny_cnn((16, 16, 3), 4)
    images = np.random.default_rng(2).uniform(0, 255, (2, 16, 16, 3)).astype(np.float32)
    before = model.predict_on_batch(images)

    gradcam.heatmaps(model, images, [1, 2])

    assert model.get_layer("classes").activation is keras.activations.softmax
    np.testing.assert_allclose(model.predict_on_batch(images), before, rtol=1e-6)


def test_a_named_layer_is_explained_instead_and_a_wrong_name_is_one_line():
    model = tiny_cnn((16, 16, 3), 4)
    images = np.zeros((1, 16, 16, 3), np.float32)

    assert gradcam.target_name(model, "conv1") == "conv1"
    assert gradcam.heatmaps(model, images, [0], layer="conv1").shape == (1, 16, 16)
    with pytest.raises(ConfigError, match="no layer named 'conv9'"):
        gradcam.heatmaps(model, images, [0], layer="conv9")
    with pytest.raises(ConfigError, match="layer 'flatten' outputs .* not a spatial feature map"):
        gradcam.heatmaps(model, images, [0], layer="flatten")


def test_a_model_without_convolution_says_so_in_one_line():
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")], name="dense"
    )

    with pytest.raises(gradcam.NoConvolution, match=r"^dense: no convolution layer, so no Grad-CAM heatmap$"):
        gradcam.heatmaps(model, np.zeros((1, 8, 8, 1), np.float32), [0])
