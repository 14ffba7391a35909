"""A small ResNet (He et al. 2016, CIFAR version) with BatchNorm and a GAP head.

stem conv-BN-ReLU -> `stages` stages of basic blocks (two 3x3 conv-BN, identity shortcut,
or a 1x1 conv-BN projection where the shape changes) -> global average pool -> softmax.
Stage i has width * 2**i filters; every stage after the first halves the map, by a
stride-2 first conv (He et al.) or a 2x2 max pool before the first block (as in the
ResNet-9 / DAWNBench CIFAR recipes). depth n with 3 stages gives the 6n+2-layer ResNets
(n=3: ResNet-20). Stems: small 3x3/1 conv, medium adds a 3x3/2 max pool, classic is the
ImageNet 7x7/2 conv + 3x3/2 max pool; auto picks by image size.
"""

from keras import layers

from cnnlab.models.family_common import BN_MOMENTUM, OUTPUT_DTYPE, resolve_stem

LOSS_WEIGHTS = [1.0]


def _blocks_per_stage(options):
    depth = options["depth"]
    return depth if isinstance(depth, list) else [depth] * options["stages"]


def build(options, inputs, num_classes, key):
    x = _stem(inputs, resolve_stem(options["stem"], inputs), options["width"])
    for stage, blocks in enumerate(_blocks_per_stage(options)):
        filters = options["width"] * 2**stage
        for block in range(blocks):
            downsample = options["downsample"] if stage > 0 and block == 0 else None
            x = _residual_block(x, filters, f"stage{stage + 1}_block{block + 1}", downsample)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return [layers.Dense(num_classes, activation="softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)]


def _stem(x, stem, filters):
    if stem == "classic":
        x = _conv_bn(x, filters, 7, "stem_conv", strides=2)
    else:
        x = _conv_bn(x, filters, 3, "stem_conv")
    x = layers.ReLU(name="stem_relu")(x)
    if stem == "small":
        return x
    return layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def _residual_block(x, filters, name, downsample):
    strides = 2 if downsample == "stride" else 1
    if downsample == "maxpool":
        x = layers.MaxPooling2D(2, padding="same", name=f"{name}_pool")(x)
    y = _conv_bn(x, filters, 3, f"{name}_conv1", strides=strides)
    y = layers.ReLU(name=f"{name}_conv1_relu")(y)
    y = _conv_bn(y, filters, 3, f"{name}_conv2")
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, f"{name}_shortcut", strides=strides)
    x = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv_bn(x, filters, kernel, name, strides=1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
