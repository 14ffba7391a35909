"""GoogLeNet (Inception v1): inception modules 3a..5b, auxiliary classifiers after 4a and 4d.

Three softmax outputs, main first: [main, aux1, aux2], trained with loss weights
1.0/0.3/0.3. No BatchNorm (as in the paper; LRN is left out). The stem adapts to the
image size so that inception 3a sees a 16-63 px map:
  classic  7x7/2 conv, 3x3/2 pool, 1x1 + 3x3 convs, 3x3/2 pool (the paper; 150 px -> 19)
  medium   the same with a 3x3/1 first conv                     (64-127 px -> 16-32)
  small    3x3/1 conv, 1x1 + 3x3 convs, no pools                (32 px -> 32)
`width` scales every conv filter count and the auxiliary dense units, to fit a CPU.
"""

from keras import layers

from cnnlab.models.family_common import OUTPUT_DTYPE, require_min_size, resolve_stem, scaled

LOSS_WEIGHTS = [1.0, 0.3, 0.3]

# 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection (Szegedy et al. 2014, table 1)
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Each aux head's 5x5 average pool needs a map of at least 5x5 at 4a, which sits behind
# 1 (small), 3 (medium) or 4 (classic) stride-2 steps.
MIN_SIZE = {"small": 9, "medium": 33, "classic": 65}


def build(options, inputs, num_classes, key):
    stem = resolve_stem(options["stem"], inputs)
    require_min_size(inputs, MIN_SIZE[stem], f"googlenet with stem {stem}")
    width = options["width"]
    x = _stem(inputs, stem, width)
    x = _inception(x, "3a", width)
    x = _inception(x, "3b", width)
    x = _max_pool(x, "pool3_3x3_s2")
    x = _inception(x, "4a", width)
    aux1 = _aux_head(x, "aux1", num_classes, width)
    for module in ("4b", "4c", "4d"):
        x = _inception(x, module, width)
    aux2 = _aux_head(x, "aux2", num_classes, width)
    x = _inception(x, "4e", width)
    x = _max_pool(x, "pool4_3x3_s2")
    x = _inception(x, "5a", width)
    x = _inception(x, "5b", width)
    x = layers.GlobalAveragePooling2D(name="pool5_gap")(x)
    x = layers.Dropout(0.4, name="pool5_dropout")(x)
    main = layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)
    return [main, aux1, aux2]


def _stem(x, stem, width):
    if stem == "classic":
        x = _conv(x, scaled(64, width), 7, "conv1_7x7_s2", strides=2)
    else:
        x = _conv(x, scaled(64, width), 3, "conv1_3x3")
    if stem != "small":
        x = _max_pool(x, "pool1_3x3_s2")
    x = _conv(x, scaled(64, width), 1, "conv2_3x3_reduce")
    x = _conv(x, scaled(192, width), 3, "conv2_3x3")
    if stem != "small":
        x = _max_pool(x, "pool2_3x3_s2")
    return x


def _inception(x, module, width):
    one, three_reduce, three, five_reduce, five, pool_proj = (scaled(filters, width) for filters in INCEPTION[module])
    name = f"inception_{module}"
    branch_1x1 = _conv(x, one, 1, f"{name}_1x1")
    branch_3x3 = _conv(_conv(x, three_reduce, 1, f"{name}_3x3_reduce"), three, 3, f"{name}_3x3")
    branch_5x5 = _conv(_conv(x, five_reduce, 1, f"{name}_5x5_reduce"), five, 5, f"{name}_5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(pooled, pool_proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def _aux_head(x, name, num_classes, width):
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_avgpool")(x)
    x = _conv(x, scaled(128, width), 1, f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(scaled(1024, width), activation="relu", name=f"{name}_dense")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name=f"{name}_predictions")(x)


def _conv(x, filters, kernel, name, strides=1):
    return layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def _max_pool(x, name):
    return layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)
