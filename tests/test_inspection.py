import keras
import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from matplotlib.colors import same_color
from scipy.signal import correlate2d

from cnnlab.inspection import (
    confused_pairs,
    conv_layers,
    evenly_spaced,
    feature_maps,
    filter_images,
    first_image_of_each_class,
    plot_confused_pairs,
    plot_feature_maps,
    plot_filters,
    plot_mistakes,
    plot_predictions,
    wrong_predictions,
)
from cnnlab.plotting import WRONG_COLOR

NAMES = ["cat", "dog", "bird"]


def conv_model(kernel, image_shape):
    """Rescaling(1/255) -> Conv2D(valid, no bias) with the given (h, w, in, out) kernel."""
    model = keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], use_bias=False, name="edges"),
        ]
    )
    model.get_layer("edges").set_weights([kernel])
    return model


def test_feature_map_is_the_hand_computed_convolution():
    kernel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)  # Sobel x
    image = np.arange(36, dtype=np.float32).reshape(6, 6) ** 1.5 % 256
    model = conv_model(kernel[:, :, None, None], (6, 6, 1))

    maps = feature_maps(model, image[None, :, :, None])

    assert list(maps) == ["edges"]
    np.testing.assert_allclose(
        maps["edges"][0, :, :, 0], correlate2d(image / 255, kernel, mode="valid"), rtol=1e-5, atol=1e-6
    )


def nested_model():
    """stem conv -> functional sub-model (two convs, one named like the stem) -> Sequential block."""
    inner_input = keras.Input((8, 8, 4))
    inner = keras.layers.Conv2D(5, 3, padding="same", name="block_conv")(inner_input)
    inner = keras.layers.Conv2D(6, 3, name="stem")(inner)
    backbone = keras.Model(inner_input, inner, name="backbone")
    block = keras.Sequential([keras.Input((6, 6, 6)), keras.layers.Conv2D(2, 1, name="seq_conv")], name="block")
    image = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(image)
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem")(x)
    x = block(backbone(x))
    x = keras.layers.Flatten()(x)
    return keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))


def test_feature_maps_walk_nested_models_in_order():
    keras.utils.set_random_seed(0)
    model = nested_model()
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)

    maps = feature_maps(model, images)

    assert list(maps) == ["stem", "block_conv", "backbone/stem", "seq_conv"]
    assert [m.shape for m in maps.values()] == [(2, 8, 8, 4), (2, 8, 8, 5), (2, 6, 6, 6), (2, 6, 6, 2)]
    backbone, block = model.get_layer("backbone"), model.get_layer("block")
    np.testing.assert_allclose(maps["backbone/stem"], backbone(maps["stem"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps["seq_conv"], block(maps["backbone/stem"]), rtol=1e-5, atol=1e-5)


def test_feature_maps_reach_every_conv_layer_of_a_keras_applications_model():
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    image = keras.Input((32, 32, 3))
    features = base(keras.layers.Rescaling(1 / 127.5, offset=-1)(image))
    model = keras.Model(image, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(features)))

    maps = feature_maps(model, np.zeros((1, 32, 32, 3)))

    assert list(maps) == [layer.name for layer in conv_layers(base)]
    assert len(maps) == 52 and maps["Conv1"].shape == (1, 16, 16, 16)


def test_feature_map_figure_has_the_image_and_a_strip_of_capped_channels_per_row():
    maps = np.random.default_rng(0).normal(size=(2, 4, 4, 32))
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)

    figure = plot_feature_maps("conv2", maps, images, ["#0 cat", "#5 dog"], channels=16)

    (ax,) = figure.axes
    assert figure.get_suptitle() == "conv2: output 4x4x32 (first 16 of 32 channels)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["#0 cat", "#5 dog"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"ch {c}" for c in range(16)]
    image, strip = ax.images[2].get_array(), ax.images[3].get_array()  # row 1: image, then its strip
    assert image.shape == (8, 8, 3)
    assert strip.shape == (4, 16 * (4 + 1) - 1, 4)  # 16 tiles of 4 px, 1 px gaps, RGBA
    channel = maps[..., 3]  # tile 3 of image 1, scaled by channel 3's range over both images
    expected = colormaps["viridis"]((maps[1, :, :, 3] - channel.min()) / (channel.max() - channel.min()))
    np.testing.assert_allclose(strip[:, 15:19], expected)
    row_1 = ax.images[3].get_extent()
    assert row_1[2:] == [2.25, 1.25] and ax.get_yticks()[1] == 1.75  # caption centred on its row


def test_filters_rgb_are_scaled_per_filter():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 5)).astype(np.float32)

    images = filter_images(kernel)

    assert images.shape == (5, 3, 3, 3)
    assert np.allclose(images.min(axis=(1, 2, 3)), 0) and np.allclose(images.max(axis=(1, 2, 3)), 1)
    first = kernel[..., 0]
    np.testing.assert_allclose(images[0], (first - first.min()) / (first.max() - first.min()), rtol=1e-6)


def test_filters_of_other_channel_counts_are_the_grayscale_mean():
    kernel = np.random.default_rng(2).normal(size=(5, 5, 2, 4)).astype(np.float32)

    images = filter_images(kernel)

    mean = kernel[..., 1].mean(axis=2)
    assert images.shape == (4, 5, 5, 1)
    np.testing.assert_allclose(images[1, ..., 0], (mean - mean.min()) / (mean.max() - mean.min()), rtol=1e-5)


def test_filter_grid_shows_at_most_64_filters_of_the_first_conv2d():
    model = conv_model(np.ones((3, 3, 3, 70), dtype=np.float32), (8, 8, 3))

    figure = plot_filters(model)

    assert len(figure.axes) == 64
    assert figure.get_suptitle() == "edges: first 64 of 70 filters, 3x3, RGB"


def test_model_without_convolutions_has_no_filters_or_feature_maps():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])

    figure = plot_filters(model)

    assert [t.get_text() for t in figure.axes[0].texts] == ["No Conv2D layer in this model: no filters to show"]
    assert feature_maps(model, np.zeros((1, 4, 4, 1))) == {}


def random_predictions(count=40, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(classes), size=count).astype(np.float32)
    return rng.integers(0, classes, count), probabilities


def test_wrong_predictions_are_exactly_the_misclassified_most_confident_first():
    labels, probabilities = random_predictions()

    wrong = wrong_predictions(labels, probabilities)

    assert set(wrong) == set(np.flatnonzero(probabilities.argmax(axis=1) != labels))
    confidence = probabilities.max(axis=1)[wrong]
    assert np.all(np.diff(confidence) <= 0)


def test_mistakes_figure_shows_the_top_wrong_in_red():
    labels, probabilities = random_predictions()
    images = np.zeros((40, 8, 8, 1), dtype=np.uint8)
    wrong = wrong_predictions(labels, probabilities)

    figure = plot_mistakes(images, labels, probabilities, NAMES, limit=6)

    assert len(figure.axes) == 6
    assert [ax.get_title().split()[0] for ax in figure.axes] == [f"#{i}" for i in wrong[:6]]
    assert all(same_color(ax.title.get_color(), WRONG_COLOR) for ax in figure.axes)


def test_mistakes_figure_says_when_there_are_none():
    probabilities = np.eye(3, dtype=np.float32)
    figure = plot_mistakes(np.zeros((3, 4, 4, 3), np.uint8), np.arange(3), probabilities, NAMES, limit=5)
    assert [text.get_text() for ax in figure.axes for text in ax.texts] == ["No misclassified test images"]


def test_prediction_grid_marks_exactly_the_wrong_ones():
    labels, probabilities = random_predictions(count=12)
    images = np.full((12, 8, 8, 3), 128, dtype=np.uint8)

    figure = plot_predictions(images, labels, probabilities, NAMES, range(12), "samples")

    red = [same_color(ax.title.get_color(), WRONG_COLOR) for ax in figure.axes]
    assert red == list(probabilities.argmax(axis=1) != labels)
    predicted = probabilities[0].argmax()
    assert figure.axes[0].get_title() == (
        f"#0 true: {NAMES[labels[0]]}\npred: {NAMES[predicted]} ({probabilities[0, predicted]:.2f})"
    )


def test_images_are_drawn_in_original_colours():
    labels, probabilities = random_predictions(count=2)
    rgb = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    gray = rgb[..., :1]

    rgb_axes = plot_predictions(rgb, labels, probabilities, NAMES, [0], "").axes
    gray_axes = plot_predictions(gray, labels, probabilities, NAMES, [0], "").axes

    np.testing.assert_array_equal(rgb_axes[0].images[0].get_array(), rgb[0])
    assert gray_axes[0].images[0].get_cmap().name == "gray"
    assert gray_axes[0].images[0].get_clim() == (0, 255)


CONFUSION = pd.DataFrame(
    [[50, 7, 1, 0], [3, 40, 0, 0], [0, 0, 45, 2], [0, 0, 2, 30]],
    index=["cat", "dog", "bird", "frog"],
    columns=["cat", "dog", "bird", "frog"],
)


def test_confused_pairs_rank_both_directions_together():
    assert confused_pairs(CONFUSION, 2) == [(0, 1, 7, 3), (2, 3, 2, 2)]
    assert confused_pairs(CONFUSION, 10) == [(0, 1, 7, 3), (2, 3, 2, 2), (0, 2, 1, 0)]


def test_confused_pairs_figure_shows_examples_of_each_direction():
    labels = np.array([0, 0, 1, 1, 2])
    probabilities = np.eye(3, dtype=np.float32)[[1, 1, 0, 1, 2]]  # two cats as dogs, one dog as cat
    images = np.zeros((5, 8, 8, 3), dtype=np.uint8)

    figure = plot_confused_pairs(images, labels, probabilities, NAMES, [(0, 1, 2, 1)], examples=3)

    assert [ax.get_title() for ax in figure.axes] == [
        "#0 cat\n→ dog (1.00)",
        "#1 cat\n→ dog (1.00)",
        "#2 dog\n→ cat (1.00)",
    ]
    assert figure.axes[0].get_ylabel() == "cat ↔ dog\n2 + 1 errors"


def test_feature_map_images_default_to_first_of_each_class():
    labels = np.array([2, 0, 2, 1, 0])
    assert first_image_of_each_class(labels, 3, limit=20) == [1, 3, 0]
    assert first_image_of_each_class(labels, 3, limit=2) == [1, 3]


def test_sample_indices_are_spread_over_the_split():
    assert list(evenly_spaced(10, 4)) == [0, 3, 6, 9]
    assert list(evenly_spaced(3, 25)) == [0, 1, 2]


@pytest.mark.parametrize("count", [1, 5])
def test_mistakes_limit_larger_than_wrong_count(count):
    labels = np.zeros(count, dtype=int)
    probabilities = np.tile(np.array([[0.2, 0.8, 0.0]], dtype=np.float32), (count, 1))
    figure = plot_mistakes(np.zeros((count, 4, 4, 1), np.uint8), labels, probabilities, NAMES, limit=16)
    assert len(figure.axes) == count
