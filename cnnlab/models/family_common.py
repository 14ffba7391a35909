"""Helpers shared by the family builders: input geometry, stem choice, width scaling."""

from cnnlab.errors import ConfigError

# `stem: auto` picks by the smaller image side. The thresholds keep the feature maps
# of the later stages close to their ImageNet sizes: a stride-1 stem below 64 px, a
# stride-2/4 stem up to 127 px, the classic large-stride stem from 128 px on
# (at 96 px the classic AlexNet stem would leave a 1x1 map before the dense layers).
MEDIUM_STEM_FROM = 64
CLASSIC_STEM_FROM = 128

# BatchNorm's running statistics follow about the last 10 steps (PyTorch's default, momentum
# 0.1 there) instead of Keras's 100: with 0.99 a run of a few hundred steps evaluated with
# statistics still half at their initial values, and every BatchNorm network scored 10 % on
# digits after 6 epochs of 20 steps (0.9: 95-99 %). Long runs are unaffected either way.
BN_MOMENTUM = 0.9

# Under mixed precision (train.mixed_precision) the layers compute in float16/bfloat16, but the
# output layer stays float32: softmax probabilities and the loss need the full precision.
OUTPUT_DTYPE = "float32"


def image_size(inputs):
    height, width = inputs.shape[1], inputs.shape[2]
    if height is None or width is None:
        raise ValueError(f"model families need a fixed image size, got input shape {inputs.shape}")
    return height, width


def channels(inputs):
    return inputs.shape[-1]


def resolve_stem(stem, inputs):
    if stem != "auto":
        return stem
    side = min(image_size(inputs))
    if side < MEDIUM_STEM_FROM:
        return "small"
    return "medium" if side < CLASSIC_STEM_FROM else "classic"


def require_min_size(inputs, minimum, what):
    """ConfigError naming data.image_size when `inputs` is smaller than minimum x minimum."""
    height, width = image_size(inputs)
    if min(height, width) < minimum:
        raise ConfigError(f"data.image_size: {what} needs images of at least {minimum}x{minimum}, got {height}x{width}")


def scaled(filters, width):
    """Filter count times the width multiplier, at least 1."""
    return max(1, round(filters * width))
