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

SIZE, SIDE = 32, 6  # images, and the bright square; the class is the quadrant it lies in


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


def test_the_heatmap_singles_out_the_square_within_its_quadrant():
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
    model.fit(images, labels, epochs=8, batch_size=32, verbose=0)
    predicted = model.predict(test_images, verbose=0).argmax(axis=1)
    assert np.mean(predicted == test_labels) >= 0.9

    heatmaps = gradcam.heatmaps(model, test_images, predicted)

    assert gradcam.target_name(model) == "last_conv"
    singled_out = square_against_quadrant(heatmaps, test_labels, corners) >= 2
    assert np.mean(singled_out) >= 0.8, f"the square stands out in {np.mean(singled_out):.0%} of the heatmaps"
    # a heatmap that knew only the quadrant (a blob at its centre) would fail: the square is small
    rows, columns = np.mgrid[:SIZE, :SIZE]
    half = SIZE // 2
    centres = [((label // 2) * half + half / 2 - 0.5, (label % 2) * half + half / 2 - 0.5) for label in test_labels]
    blobs = np.array([np.exp(-((rows - row) ** 2 + (columns - column) ** 2) / 32) for row, column in centres])
    assert np.mean(square_against_quadrant(blobs, test_labels, corners) >= 2) < 0.5


def square_against_quadrant(heatmaps, labels, corners):
    """Per heatmap: its mean on the SIDE x SIDE square over its mean on the rest of the square's quadrant."""
    half, ratios = SIZE // 2, []
    for heatmap, label, (top, left) in zip(heatmaps, labels, corners):
        quadrant, row, column = np.zeros((SIZE, SIZE), bool), (label // 2) * half, (label % 2) * half
        quadrant[row : row + half, column : column + half] = True
        square = np.zeros((SIZE, SIZE), bool)
        square[top : top + SIDE, left : left + SIDE] = True
        ratios.append(heatmap[square].mean() / max(heatmap[quadrant & ~square].mean(), 1e-9))
    return np.array(ratios)


HEAD = np.array([[1.0, -1.0, 0.2], [-1.0, 1.0, 0.2], [-0.3, -0.3, 0.5]])  # (channel, class) weights
BIAS = np.array([0.5, -0.5, 2.0])


def hand_built_model(softmax_layer):
    """Image (12 x 10 x 3) -> 1x1 conv copying the channels ("features") -> global average ->
    Dense(3) with HEAD, BIAS -> softmax (the Dense's own activation, or an Activation layer).
    The logit of class c is sum_k HEAD[k, c] * mean(channel k) + BIAS[c], so its gradient with
    respect to channel k at any position is HEAD[k, c] / (12 * 10)."""
    inputs = keras.Input((12, 10, 3))
    copy = keras.layers.Conv2D(3, 1, use_bias=False, name="features")
    head = keras.layers.Dense(3, activation=None if softmax_layer else "softmax", name="head")
    x = head(keras.layers.GlobalAveragePooling2D()(copy(inputs)))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(x) if softmax_layer else x)
    copy.set_weights([np.eye(3).reshape(1, 1, 3, 3)])
    head.set_weights([HEAD, BIAS])
    return model


def small_objects(count, seed):
    """Channel 0: a 2 x 2 object of falling brightness (200, 100, 100, 50) anywhere; channel 1:
    another elsewhere; channel 2: a constant background of 40."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 12, 10, 3), np.float32)
    images[..., 2] = 40
    patch = np.array([[200, 100], [100, 50]])
    for image in images:
        for channel in (0, 1):
            top, left = rng.integers(0, 11), rng.integers(0, 9)
            image[top : top + 2, left : left + 2, channel] = patch
    return images


def hand_computed_cam(images, classes, weights):
    """relu(sum_k weights[i, k] * channel k), divided by its peak; `weights[i]`: the gradient
    of image i's explained score with respect to each channel, averaged over the positions."""
    cam = np.maximum(np.einsum("nhwk,nk->nhw", images, weights), 0)
    return cam / cam.max(axis=(1, 2), keepdims=True)


@pytest.mark.parametrize("softmax_layer", [False, True], ids=["dense-softmax", "activation-layer"])
def test_the_map_is_the_hand_computed_grad_cam_of_the_logit(softmax_layer):
    model = hand_built_model(softmax_layer)
    images = small_objects(12, seed=3)
    classes = np.arange(12) % 2  # class 0 draws on channel 0 against 1 and 2, class 1 the reverse
    logit_gradients = HEAD[:, classes].T / (12 * 10)
    probabilities = model.predict_on_batch(images)
    chosen = probabilities[np.arange(12), classes][:, None]
    softmax_gradients = chosen * (HEAD[:, classes].T - probabilities @ HEAD.T) / (12 * 10)

    raw = gradcam.class_maps(model, images, classes)

    assert gradcam.target_name(model) == "features"
    expected = hand_computed_cam(images, classes, logit_gradients)
    np.testing.assert_allclose(raw, expected, atol=1e-6)
    np.testing.assert_allclose(gradcam.heatmaps(model, images, classes), expected, atol=1e-6)  # same size
    # the softmax's gradient would give another map: the score differentiated is the logit
    assert np.abs(hand_computed_cam(images, classes, softmax_gradients) - expected).max() > 0.05
    for cam, image, label in zip(raw, images, classes):  # the peak is the object's brightest pixel
        assert image[np.unravel_index(cam.argmax(), cam.shape)][label] == 200


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
    assert_scaled_to_their_peak(gradcam.class_maps(model, images, [0, 4, 9]))
    name = gradcam.target_name(model)
    assert name == expected  # the last spatial conv map of the main path: never an auxiliary head's
    target = model.get_layer(name).output
    assert target.shape[1] * target.shape[2] > 1


def assert_scaled_to_their_peak(maps):
    """Raw maps (before the resize and its clipping): non-negative, each with its peak at 1 or all zero."""
    assert maps.min() >= 0
    np.testing.assert_allclose([m.max() if m.any() else 1.0 for m in maps], 1.0, rtol=1e-6)


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

    assert heatmaps.shape == (4, 32, 32)
    assert_scaled_to_their_peak(gradcam.class_maps(model, images, [0, 1, 2, 0]))
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
    usable = "layers with a spatial feature map: scale, conv1, pool1, conv2"
    with pytest.raises(ConfigError) as unknown:
        gradcam.heatmaps(model, images, [0], layer="conv9")
    assert str(unknown.value) == f"tiny: no layer named 'conv9' on the way to its output; {usable}"
    with pytest.raises(ConfigError, match=rf"layer 'flatten' outputs .* not a spatial feature map .*; {usable}$"):
        gradcam.heatmaps(model, images, [0], layer="flatten")


def test_a_deep_network_lists_the_spatial_layers_nearest_its_output():
    raw = keras.Input((32, 32, 3))
    outputs = build_family("resnet", validate_family_options("resnet", {"depth": 1}, "v.options"), raw, 10)

    with pytest.raises(ConfigError) as unknown:
        gradcam.target_tensor(keras.Model(raw, outputs), "conv9")

    count, names = str(unknown.value).split("layers with a spatial feature map (")[1].split(", the last 12): ..., ")
    names = names.split(", ")
    assert int(count) > 12 and len(names) == 12 and names[-2:] == ["stage3_block1_add", "stage3_block1_relu"]


def test_a_model_without_convolution_says_so_in_one_line():
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")], name="dense"
    )

    with pytest.raises(gradcam.NoConvolution, match=r"^dense: no convolution layer, so no Grad-CAM heatmap$"):
        gradcam.heatmaps(model, np.zeros((1, 8, 8, 1), np.float32), [0])
