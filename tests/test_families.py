from itertools import pairwise

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

from cnnlab.config.families import FAMILIES, OPTION_DOCS, validate_family_options
from cnnlab.errors import ConfigError
from cnnlab.models import count_flops
from cnnlab.models.families import AUX_LOSS_WEIGHTS, build_family, loss_weights

KEY = "variants.v.options"


@pytest.fixture(autouse=True)
def fresh_keras_session():
    yield
    keras.backend.clear_session()


def make_model(family, options, shape, num_classes, key=KEY):
    inputs = keras.Input(shape)
    checked = validate_family_options(family, options, key)
    return keras.Model(inputs, build_family(family, checked, inputs, num_classes, key=key))


def train_one_step(model, family, num_classes):
    outputs = len(model.outputs)
    model.compile(
        optimizer="sgd",
        loss=["sparse_categorical_crossentropy"] * outputs,
        loss_weights=AUX_LOSS_WEIGHTS[family],
    )
    rng = np.random.default_rng(0)
    images = rng.random((2, *model.input_shape[1:]), dtype=np.float32)
    labels = rng.integers(0, num_classes, 2)
    losses = model.train_on_batch(images, [labels] * outputs)
    assert np.all(np.isfinite(losses))


# Parameter counts by the architecture formulas. BatchNorm counts 4 numbers per channel
# (gamma, beta and the two moving statistics).
def conv(kernel, inputs, filters, bias=True, batchnorm=False):
    weights = kernel * kernel * inputs * filters
    return weights + (filters if bias else 0) + (4 * filters if batchnorm else 0)


def dense(inputs, units):
    return inputs * units + units


def vgg16_conv_params(channels, width=1.0):
    widths = [channels] + [int(f * width) for f in (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)]
    return sum(conv(3, cin, cout) for cin, cout in pairwise(widths))


def vgg16_params(channels, final_map, hidden, classes, width=1.0):
    flat = final_map * final_map * int(512 * width)
    head = dense(flat, hidden) + dense(hidden, hidden) + dense(hidden, classes)
    return vgg16_conv_params(channels, width) + head


def alexnet_params(channels, first_kernel, final_map, classes):
    convs = (
        conv(first_kernel, channels, 96, batchnorm=True)
        + conv(5, 96, 256, batchnorm=True)
        + conv(3, 256, 384, batchnorm=True)
        + conv(3, 384, 384, batchnorm=True)
        + conv(3, 384, 256, batchnorm=True)
    )
    head = dense(final_map * final_map * 256, 4096) + dense(4096, 4096) + dense(4096, classes)
    return convs + head


def resnet_params(channels, classes, width, blocks, stem_kernel):
    total = conv(stem_kernel, channels, width, bias=False, batchnorm=True)
    filters_in = width
    for stage, count in enumerate(blocks):
        filters = width * 2**stage
        for block in range(count):
            total += conv(3, filters_in, filters, bias=False, batchnorm=True)
            total += conv(3, filters, filters, bias=False, batchnorm=True)
            if filters_in != filters or (stage > 0 and block == 0):
                total += conv(1, filters_in, filters, bias=False, batchnorm=True)
            filters_in = filters
    return total + dense(filters_in, classes)


# family, options, input shape, classes, expected parameter count, layers it must have
CASES = [
    (
        "alexnet",
        {},
        (32, 32, 3),
        10,
        alexnet_params(3, 3, 3, 10),
        ["conv1", "conv1_bn", "pool5", "fc7"],
    ),
    ("alexnet", {}, (150, 150, 3), 5, alexnet_params(3, 11, 3, 5), ["conv1", "conv5_bn", "fc6"]),
    ("vgg16", {}, (32, 32, 3), 10, vgg16_params(3, 1, 512, 10), ["block1_conv1", "block5_pool"]),
    ("vgg16", {}, (150, 150, 3), 5, vgg16_params(3, 4, 4096, 5), ["block5_conv3", "fc2"]),
    ("vgg16", {"width": 0.5}, (32, 32, 3), 10, vgg16_params(3, 1, 512, 10, width=0.5), ["block5_conv3", "fc2"]),
    (
        "vgg16",
        {"implementation": "keras"},
        (32, 32, 3),
        10,
        vgg16_params(3, 1, 4096, 10),
        ["block1_conv1", "block5_conv3", "fc1"],
    ),
    (
        "vgg16",
        {"implementation": "keras"},
        (150, 150, 3),
        5,
        vgg16_params(3, 4, 4096, 5),
        ["block1_conv1", "block5_conv3", "fc1"],
    ),
    (
        "googlenet",
        {},
        (32, 32, 3),
        10,
        10_326_350,
        ["conv1_3x3", "inception_3a_3x3", "inception_5b_pool_proj", "aux1_dense", "aux2_conv"],
    ),
    (
        "googlenet",
        {},
        (150, 150, 3),
        5,
        7_172_927,
        ["conv1_7x7_s2", "pool2_3x3_s2", "inception_4e_5x5", "aux1_dense"],
    ),
    (
        "resnet",
        {},
        (32, 32, 3),
        10,
        resnet_params(3, 10, 16, [3, 3, 3], 3),
        ["stem_conv", "stage3_block1_shortcut", "stage3_block3_add", "gap"],
    ),
    ("resnet", {}, (150, 150, 3), 5, resnet_params(3, 5, 16, [3, 3, 3], 7), ["stem_pool", "gap"]),
]


@pytest.mark.parametrize(
    "family, options, shape, num_classes, params, layer_names",
    CASES,
    ids=[f"{c[0]}-{c[1].get('implementation', '')}-{c[2][0]}px" for c in CASES],
)
def test_family_builds_trains_and_has_exact_param_count(family, options, shape, num_classes, params, layer_names):
    model = make_model(family, options, shape, num_classes)

    assert model.count_params() == params
    assert len(model.outputs) == len(AUX_LOSS_WEIGHTS[family])
    assert [tuple(output.shape) for output in model.outputs] == [(None, num_classes)] * len(model.outputs)
    names = {layer.name for layer in model.layers}
    assert set(layer_names) <= names
    train_one_step(model, family, num_classes)


def test_googlenet_outputs_main_head_first_then_aux_heads_all_softmax():
    model = make_model("googlenet", {"width": 0.25}, (32, 32, 3), 10)

    assert model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    for name in model.output_names:
        assert model.get_layer(name).activation is keras.activations.softmax
    assert AUX_LOSS_WEIGHTS["googlenet"] == loss_weights("googlenet", 3) == [1.0, 0.3, 0.3]
    with pytest.raises(ValueError):
        loss_weights("googlenet", 1)


def test_resnet_depth_list_stages_and_maxpool_downsampling():
    options = {"depth": [1, 2], "stages": 2, "width": 8, "downsample": "maxpool"}
    model = make_model("resnet", options, (32, 32, 1), 4)

    assert model.count_params() == resnet_params(1, 4, 8, [1, 2], 3)
    assert model.get_layer("stage2_block1_pool").output.shape[1:3] == (16, 16)
    assert "stage3_block1_conv1" not in {layer.name for layer in model.layers}


@pytest.mark.parametrize("size, kernel, strides", [(32, 3, 1), (96, 5, 2), (150, 11, 4)])
def test_alexnet_auto_stem_follows_image_size(size, kernel, strides):
    model = make_model("alexnet", {"width": 0.25, "dense_units": 16}, (size, size, 3), 3)

    conv1 = model.get_layer("conv1")
    assert (conv1.kernel_size, conv1.strides) == ((kernel, kernel), (strides, strides))


def test_width_multiplier_scales_filters():
    model = make_model("googlenet", {"width": 0.5}, (32, 32, 3), 10)

    assert model.get_layer("inception_3a_output").output.shape[-1] == 128  # 256 at width 1
    assert model.get_layer("aux1_dense").units == 512


@pytest.mark.parametrize("family", ["alexnet", "googlenet", "resnet"])
def test_small_grayscale_images_build_where_the_family_allows(family):
    model = make_model(family, {}, (28, 28, 1), 10)

    assert tuple(model.outputs[0].shape) == (None, 10)


@pytest.mark.parametrize("options", [{}, {"implementation": "keras"}])
def test_vgg16_rejects_images_below_32_naming_the_size_requirement(options):
    with pytest.raises(ConfigError) as error:
        make_model("vgg16", options, (28, 28, 1), 10)

    assert str(error.value) == "data.image_size: vgg16 needs images of at least 32x32, got 28x28"


@pytest.mark.parametrize(
    "family, stem, minimum",
    [
        ("alexnet", "small", 15),
        ("alexnet", "medium", 29),
        ("alexnet", "classic", 67),
        ("googlenet", "small", 9),
        ("googlenet", "medium", 33),
        ("googlenet", "classic", 65),
    ],
)
def test_each_stem_builds_down_to_its_minimum_size_and_rejects_smaller(family, stem, minimum):
    options = {"stem": stem, "width": 0.125}
    make_model(family, options, (minimum, minimum, 1), 2)

    with pytest.raises(
        ConfigError,
        match=rf"^data\.image_size: {family} with stem {stem} "
        rf"needs images of at least {minimum}x{minimum}",
    ):
        make_model(family, options, (minimum - 1, minimum + 5, 1), 2)


def test_defaults_are_documented_and_valid():
    assert set(FAMILIES) == {"alexnet", "vgg16", "googlenet", "resnet", "airbench"}
    for family, defaults in FAMILIES.items():
        assert set(OPTION_DOCS[family]) == set(defaults)
        assert all(OPTION_DOCS[family].values())
        assert validate_family_options(family, None, KEY) == defaults


def test_validation_fills_defaults_and_keeps_given_values():
    options = validate_family_options("resnet", {"depth": [1, 1, 1], "width": 32}, KEY)

    assert options == {**FAMILIES["resnet"], "depth": [1, 1, 1], "width": 32}


def test_error_message_names_the_dotted_key():
    with pytest.raises(ConfigError) as error:
        validate_family_options("alexnet", {"width": -2}, "variants.alex.options")

    assert str(error.value) == "variants.alex.options.width: must be > 0, got -2"


LIST_OF_POSITIVE_INTS = "must be a positive integer or a non-empty list of positive integers"


@pytest.mark.parametrize(
    "family, option, value, where, problem",
    [
        ("alexnet", "width", 0, "width", "must be > 0, got 0"),
        ("alexnet", "dense_units", 0, "dense_units", "must be >= 1, got 0"),
        ("alexnet", "dense_units", True, "dense_units", "must be an integer, got True (bool)"),
        (
            "alexnet",
            "stem",
            "huge",
            "stem",
            "unknown value 'huge'; choose one of auto, small, medium, classic",
        ),
        (
            "vgg16",
            "implementation",
            "torch",
            "implementation",
            "unknown value 'torch'; choose one of hand, keras",
        ),
        ("vgg16", "batchnorm", "yes", "batchnorm", "must be true or false, got 'yes'"),
        (
            "vgg16",
            "dense_units",
            "many",
            "dense_units",
            "must be auto or a positive integer, got 'many'",
        ),
        ("vgg16", "dense_units", 0, "dense_units", "must be >= 1, got 0"),
        (
            "vgg16",
            "weights",
            "imagenet21k",
            "weights",
            "unknown value 'imagenet21k' (did you mean 'imagenet'?); choose one of imagenet",
        ),
        ("vgg16", "fine_tune_at", 6, "fine_tune_at", "must be >= 1 and <= 5, got 6"),
        ("googlenet", "width", "wide", "width", "must be a number, got 'wide' (str)"),
        ("resnet", "depth", [2, 0, 2], "depth[1]", "must be >= 1, got 0"),
        ("resnet", "depth", 2.5, "depth", f"{LIST_OF_POSITIVE_INTS}, got 2.5"),
        ("resnet", "depth", [], "depth", f"{LIST_OF_POSITIVE_INTS}, got []"),
        ("resnet", "width", 16.0, "width", "must be an integer, got 16.0 (float)"),
        ("resnet", "stages", 0, "stages", "must be >= 1, got 0"),
        (
            "resnet",
            "downsample",
            "avgpool",
            "downsample",
            "unknown value 'avgpool' (did you mean 'maxpool'?); choose one of stride, maxpool",
        ),
    ],
)
def test_invalid_option_value_names_the_option_key(family, option, value, where, problem):
    with pytest.raises(ConfigError) as error:
        validate_family_options(family, {option: value}, KEY)

    assert str(error.value) == f"{KEY}.{where}: {problem}"


@pytest.mark.parametrize(
    "family, options, option, problem",
    [
        ("vgg16", {"implementation": "keras", "batchnorm": True}, "batchnorm", "has no BatchNorm"),
        ("vgg16", {"weights": "imagenet"}, "weights", "need implementation: keras"),
        ("vgg16", {"implementation": "keras", "width": 0.5}, "width", "has the paper's widths"),
        (
            "vgg16",
            {"implementation": "keras", "fine_tune_at": 4},
            "fine_tune_at",
            "only applies with weights: imagenet",
        ),
        ("vgg16", {"implementation": "keras", "dense_units": 512}, "dense_units", "fixed at 4096"),
        ("resnet", {"depth": [1, 1], "stages": 3}, "depth", "has 2 entries but stages is 3"),
    ],
)
def test_conflicting_options_name_the_option_key(family, options, option, problem):
    with pytest.raises(ConfigError, match=rf"^{KEY}\.{option}: .*{problem}"):
        validate_family_options(family, options, KEY)


def test_unknown_option_suggests_the_closest_one():
    with pytest.raises(ConfigError) as error:
        validate_family_options("alexnet", {"widht": 2}, KEY)

    assert str(error.value) == (
        f"{KEY}.widht: unknown key (did you mean 'width'?); known keys: stem, width, dense_units"
    )


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ConfigError) as error:
        validate_family_options("alexnett", {}, KEY)

    assert str(error.value) == (
        f"{KEY}: unknown family 'alexnett' (did you mean 'alexnet'?); "
        "known families: airbench, alexnet, googlenet, resnet, vgg16"
    )


def test_options_must_be_a_mapping():
    with pytest.raises(ConfigError) as error:
        validate_family_options("resnet", [3], KEY)

    assert str(error.value) == f"{KEY}: must be a mapping of settings, got [3]"


def test_imagenet_weights_offline_fail_with_one_line_saying_what_to_do(monkeypatch):
    def offline_get_file(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", offline_get_file)
    with pytest.raises(ConfigError) as error:
        make_model("vgg16", {"implementation": "keras", "weights": "imagenet"}, (32, 32, 3), 10)

    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{KEY}.weights: could not get the ImageNet weights (URL fetch")
    assert message.endswith("downloading them needs network access: set weights: null to train from scratch")


def test_imagenet_transfer_loads_the_weights_file_and_freezes_up_to_fine_tune_at(monkeypatch, tmp_path):
    weights_file = tmp_path / "vgg16_notop.h5"
    donor = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    with h5py.File(weights_file, "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, donor)
    monkeypatch.setattr(file_utils, "get_file", lambda fname, origin, **kwargs: str(weights_file))
    options = {"implementation": "keras", "weights": "imagenet", "fine_tune_at": 5}

    model = make_model("vgg16", options, (32, 32, 1), 3)

    assert "gray_to_rgb" in {layer.name for layer in model.layers}
    np.testing.assert_array_equal(
        model.get_layer("block1_conv1").get_weights()[0],
        donor.get_layer("block1_conv1").get_weights()[0],
    )
    trainable = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert trainable == {"block5_conv1", "block5_conv2", "block5_conv3", "fc1", "predictions"}
    assert model.count_params() == vgg16_conv_params(3) + dense(512, 512) + dense(512, 3)
    train_one_step(model, "vgg16", 3)


def test_count_flops_counts_conv_and_dense_multiply_adds():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)

    expected = 2 * (8 * 8 * 9 * 3 * 4 + 4 * 4 * 9 * 4 * 6 + 2 * 2 * 6 * 5)
    assert count_flops(model) == expected


@pytest.mark.parametrize(
    "family, options",
    [
        ("alexnet", {"width": 0.125, "dense_units": 16}),
        ("vgg16", {"implementation": "keras"}),
        ("vgg16", {"batchnorm": True, "dense_units": 16}),
        ("googlenet", {"width": 0.125}),
        ("resnet", {"depth": 1, "downsample": "maxpool"}),
    ],
)
def test_main_head_model_with_preprocessing_saves_and_reloads(family, options, tmp_path):
    raw = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(raw)
    model = keras.Model(raw, build_family(family, validate_family_options(family, options, KEY), scaled, 10)[0])
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")

    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")

    assert not any(isinstance(layer, keras.Model) for layer in reloaded.layers)
    np.testing.assert_allclose(reloaded.predict_on_batch(images), model.predict_on_batch(images), rtol=1e-5, atol=1e-6)
