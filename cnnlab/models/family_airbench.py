"""airbench94 (Keller Jordan, 2024: "94% on CIFAR-10 in 3.29 seconds on a single GPU"), in Keras.

whitening conv (2x2, frozen, initialised from the training data) -> GELU -> one conv group per
entry of `widths` (conv3x3 -> maxpool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU) -> global max
pool -> Dense (no bias) -> x output_scale -> softmax. Measured on 2 CPU cores, see the presets
in params.yaml and the README's figures; the ablations are in docs/research/issue13_airbench/.

The training-side tricks of the recipe are variant settings any family can use: the one-cycle
schedule's warmup_from/decay_to, `lookahead`, `horizontal_flip: alternating`, `tta: flip_shift`.
"""

import math

import keras
import numpy as np
from keras import layers

from cnnlab.models.family_common import OUTPUT_DTYPE
from cnnlab.saved_layers import SameConv2D, ScaledBias, gelu_tanh

LOSS_WEIGHTS = [1.0]

# 5,000 training images estimate the 12x12 patch covariance as well as 50,000 do (airbench)
WHITENING_SAMPLE = 5000
# added to each eigenvalue before dividing: keeps the near-zero directions from being amplified
WHITENING_EPS = 5e-4
# airbench's BatchNorm epsilon: with no learned scale, normalization stays exact for tiny variances
BN_EPSILON = 1e-12


def build(options, inputs, num_classes, key):
    channels = inputs.shape[-1]
    size = options["whiten_kernel"]
    # Patch whitening: 2 * (size^2 * channels) filters, each whitened direction and its negative
    # (so that the GELU after it loses no sign); frozen, set by initialize_from_data.
    x = layers.Conv2D(2 * size * size * channels, size, use_bias=False, trainable=False, name="whiten")(inputs)
    # its bias trains for the first whiten_bias_epochs epochs only (callbacks() freezes it)
    x = ScaledBias(name="whiten_bias")(x)
    x = _activation(options["activation"], "whiten_act")(x)
    for group, width in enumerate(options["widths"], start=1):
        x = _conv(x, width, f"group{group}_conv1")
        # floor pooling, as airbench's: 31 -> 15 -> 7 -> 3 px ("same" padding's 16-8-4 cost 23 % more)
        x = layers.MaxPooling2D(2, name=f"group{group}_pool")(x)
        x = _batchnorm_activation(x, options, f"group{group}_1")
        x = _conv(x, width, f"group{group}_conv2")
        x = _batchnorm_activation(x, options, f"group{group}_2")
    x = layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    bound = 1 / math.sqrt(options["widths"][-1])
    head = layers.Dense(
        num_classes, use_bias=False, kernel_initializer=keras.initializers.RandomUniform(-bound, bound), name="head"
    )
    # logits scaled down (1/9 in airbench, tuned there): a softer softmax while the weights are young
    x = layers.Rescaling(options["output_scale"], name="logits")(head(x))
    return [layers.Activation("softmax", dtype=OUTPUT_DTYPE, name="predictions")(x)]


def _conv(x, filters, name):
    conv = SameConv2D(  # a Conv2D with a faster input gradient on CPUs
        filters,
        3,
        padding="same",
        use_bias=False,
        # PyTorch's default conv init, U(+-1/sqrt(fan_in)), as the recipe was tuned with
        kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform"),
        name=name,
    )
    x = conv(x)
    _add_identity(conv.kernel)
    return x


def _add_identity(kernel):
    """Dirac init: the first min(in, out) output channels start as the identity, so each conv
    starts as a pass-through plus noise (a residual connection without the add)."""
    height, width, cin, cout = kernel.shape
    values = keras.ops.convert_to_numpy(kernel).copy()
    shared = min(cin, cout)
    values[..., :shared] = 0.0
    values[height // 2, width // 2, np.arange(shared), np.arange(shared)] = 1.0
    kernel.assign(values)


def _batchnorm_activation(x, options, name):
    # no learned scale (GELU after it makes one redundant); the bias learns bias_lr_scale times
    # faster through ScaledBias
    x = layers.BatchNormalization(
        momentum=options["batchnorm_momentum"], epsilon=BN_EPSILON, center=False, scale=False, name=f"{name}_bn"
    )(x)
    x = ScaledBias(math.sqrt(options["bias_lr_scale"]), name=f"{name}_bn_bias")(x)
    return _activation(options["activation"], f"{name}_act")(x)


def _activation(name, layer_name):
    return layers.Activation(gelu_tanh if name == "gelu_tanh" else name, name=layer_name)


def initialize_from_data(model, images, normalize, seed):
    """Set the frozen whitening conv from a sample of `images` (the training split, N x H x W x C,
    mapped by `normalize` to what the model's layers see):
    the eigenvectors of the covariance of its size x size patches, each scaled by
    1/sqrt(eigenvalue + eps), and their negatives.

    The patches are standardized per channel first (as airbench's inputs are) and the
    standardization is folded into the kernel and the bias, so the result does not depend on
    data.normalization.
    """
    conv = model.get_layer("whiten")
    size = conv.kernel_size[0]
    sample = np.random.default_rng(seed).permutation(len(images))[:WHITENING_SAMPLE]
    x = np.asarray(normalize(images[np.sort(sample)]), np.float64)
    mean, std = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2)) + 1e-8
    kernel = whitening_kernel((x - mean) / std, size)
    folded = kernel / std[None, None, :, None]
    conv.kernel.assign(folded.astype(np.float32))
    model.get_layer("whiten_bias").bias.assign(-np.einsum("hwco,c->o", folded, mean).astype(np.float32))


def whitening_kernel(x, size):
    """(size, size, C, 2 * size^2 * C) kernel whitening the size x size patches of x, largest
    eigenvalue first, then the same filters negated."""
    count, height, width, channels = x.shape
    patches = np.stack(
        [x[:, i : height - size + 1 + i, j : width - size + 1 + j, :] for i in range(size) for j in range(size)],
        axis=3,
    ).reshape(-1, size * size * channels)  # (row, column, channel) order, as Keras kernels are laid out
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = (eigenvectors / np.sqrt(np.maximum(eigenvalues, 0) + WHITENING_EPS))[:, ::-1]
    kernel = filters.reshape(size, size, channels, size * size * channels)
    return np.concatenate([kernel, -kernel], axis=-1)


def callbacks(options):
    return [FreezeAfter("whiten_bias", options["whiten_bias_epochs"])]


class FreezeAfter(keras.callbacks.Callback):
    """Stop training the layer `name` from epoch `epoch` on (airbench: the whitening bias after
    3 epochs, when the first layer has settled). Decided from the epoch number, so a resumed
    run freezes the same layer at the same epoch; the changed trainable set rebuilds the
    training step once."""

    def __init__(self, name, epoch):
        super().__init__()
        self.name, self.epoch = name, epoch

    def on_epoch_begin(self, epoch, logs=None):
        layer = self.model.get_layer(self.name)
        trainable = epoch < self.epoch
        if layer.trainable != trainable:
            layer.trainable = trainable
            self.model.make_train_function(force=True)
