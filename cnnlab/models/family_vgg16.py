"""VGG16 (configuration D): 13 3x3 convs in five blocks, each closed by a 2x2/2 max pool.

implementation: hand   built here, layer names as in keras.applications (block1_conv1 ...).
                       Head Flatten -> fc1 -> dropout 0.5 -> fc2 -> dropout 0.5 -> softmax, with
                       dense_units auto = 4096 (the paper) from 64 px on, and 512 below: at
                       32-63 px the last pool leaves 1x1x512, the common CIFAR variant's head.
implementation: keras  keras.applications.VGG16 with its own 4096-4096 top (weights null), or
                       (weights imagenet) its ImageNet convolutional base, frozen up to block
                       `fine_tune_at`, under a new head GAP -> fc1 -> dropout 0.5 -> softmax.
Both need images of at least 32x32. The ImageNet base was trained on caffe-style inputs
(BGR, mean-subtracted 0-255 pixels) while `inputs` arrive normalized, so expect transfer
learning to need fine-tuning rather than a frozen base alone.
"""

import keras
from keras import layers

from cnnlab.errors import ConfigError
from cnnlab.models.family_common import BN_MOMENTUM, OUTPUT_DTYPE, channels, image_size, require_min_size, scaled

LOSS_WEIGHTS = [1.0]

MIN_SIZE = 32
CIFAR_HEAD_BELOW = 64
BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]  # filters, convs per block


def build(options, inputs, num_classes, key):
    require_min_size(inputs, MIN_SIZE, "vgg16")
    if options["implementation"] == "hand":
        return [_hand_built(options, inputs, num_classes)]
    if options["weights"] is None:
        return [_keras_with_top(inputs, num_classes)]
    return [_imagenet_transfer(options, inputs, num_classes, key)]


def _hand_built(options, inputs, num_classes):
    x = inputs
    for block, (filters, convs) in enumerate(BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = _conv(x, scaled(filters, options["width"]), f"block{block}_conv{conv}", options["batchnorm"])
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    units = options["dense_units"]
    if units == "auto":
        units = 512 if min(image_size(inputs)) < CIFAR_HEAD_BELOW else 4096
    for name in ("fc1", "fc2"):
        x = layers.Dense(units, activation="relu", name=name)(x)
        x = layers.Dropout(0.5, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)


def _conv(x, filters, name, batchnorm):
    if not batchnorm:
        return layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _keras_with_top(inputs, num_classes):
    model = keras.applications.VGG16(
        weights=None,
        include_top=True,
        classes=num_classes,
        input_shape=tuple(inputs.shape[1:]),
        input_tensor=inputs,
    )
    return model.output


def _imagenet_transfer(options, inputs, num_classes, key):
    rgb = _as_rgb(inputs)
    base = _imagenet_base(image_size(inputs), key)
    first_trainable = options["fine_tune_at"] or len(BLOCKS) + 1
    x = _replay(base, rgb, first_trainable_block=first_trainable)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    units = 512 if options["dense_units"] == "auto" else options["dense_units"]
    x = layers.Dense(units, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, name="fc1_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)


def _imagenet_base(size, key):
    try:
        return keras.applications.VGG16(weights="imagenet", include_top=False, input_shape=(*size, 3))
    except Exception as error:  # keras raises a bare Exception for a failed download
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"{key}.weights: could not get the ImageNet weights ({reason}); downloading "
            "them needs network access: set weights: null to train from scratch"
        ) from error


def _as_rgb(inputs):
    if channels(inputs) == 3:
        return inputs
    if channels(inputs) == 1:
        return layers.Concatenate(name="gray_to_rgb")([inputs, inputs, inputs])
    raise ConfigError(f"data.channels: imagenet weights need 1- or 3-channel images, got {channels(inputs)}")


def _replay(model, inputs, first_trainable_block):
    """Apply copies of a sequential model's layers (weights included) to `inputs`.

    The ImageNet base must be built on its own input for its weights file to load.
    Calling it would nest it as one layer and hide block1_conv1 etc. from code that
    lists the conv layers; reusing its layers would give them two call sites.
    Copies of layers in blocks before `first_trainable_block` are frozen.
    """
    x = inputs
    for layer in model.layers[1:]:
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
        copy.trainable = _block_number(layer.name) >= first_trainable_block
    return x


def _block_number(layer_name):
    """5 for block5_conv3 (the base of include_top=False has only block layers)."""
    return int(layer_name[len("block")])
