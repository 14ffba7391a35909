"""AlexNet as used in the flowers study: 5 conv + 3 dense, ReLU then BatchNorm after each
conv, overlapping 3x3/2 max pools after conv1, conv2 and conv5, two dropout-0.5 dense layers.

Only the first conv adapts to the image size (`stem`):
  classic  11x11 stride 4, valid padding (the original; 150 px -> 3x3x256 before Flatten)
  medium   5x5 stride 2, same padding        (64-127 px -> 3x3 .. 7x7)
  small    3x3 stride 1, same padding        (32 px -> 3x3, as small as 15 px)
The three pools stay: without the stride-4 conv, 32 px already ends at 3x3 after them.
"""

from keras import layers

from cnnlab.models.family_common import BN_MOMENTUM, OUTPUT_DTYPE, require_min_size, resolve_stem, scaled

LOSS_WEIGHTS = [1.0]

# kernel, strides, padding of conv1 per stem, and the smallest image side that still
# leaves a 3x3 map for the last pool.
STEM_CONV = {"small": (3, 1, "same"), "medium": (5, 2, "same"), "classic": (11, 4, "valid")}
MIN_SIZE = {"small": 15, "medium": 29, "classic": 67}
CONVS = [  # name, filters, kernel, pool after it
    ("conv2", 256, 5, True),
    ("conv3", 384, 3, False),
    ("conv4", 384, 3, False),
    ("conv5", 256, 3, True),
]


def build(options, inputs, num_classes, key):
    stem = resolve_stem(options["stem"], inputs)
    require_min_size(inputs, MIN_SIZE[stem], f"alexnet with stem {stem}")
    kernel, strides, padding = STEM_CONV[stem]
    x = _conv_relu_bn(inputs, "conv1", scaled(96, options["width"]), kernel, strides, padding)
    x = _max_pool(x, "pool1")
    for name, filters, kernel, pool_after in CONVS:
        x = _conv_relu_bn(x, name, scaled(filters, options["width"]), kernel, 1, "same")
        if pool_after:
            x = _max_pool(x, name.replace("conv", "pool"))
    x = layers.Flatten(name="flatten")(x)
    for name in ("fc6", "fc7"):
        x = layers.Dense(options["dense_units"], activation="relu", name=name)(x)
        x = layers.Dropout(0.5, name=f"{name}_dropout")(x)
    return [layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)]


def _conv_relu_bn(x, name, filters, kernel, strides, padding):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation="relu", name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def _max_pool(x, name):
    return layers.MaxPooling2D(3, strides=2, name=name)(x)
