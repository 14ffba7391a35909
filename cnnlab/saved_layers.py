"""Custom Keras layers and activations that model.keras files may contain. Importing this module registers
them, so every stage that loads a saved model (evaluate, predict, report) can rebuild it."""

import keras


@keras.saving.register_keras_serializable(package="cnnlab")
class ScaledBias(keras.layers.Layer):
    """y = x + multiplier * bias. SGD then moves the effective bias (multiplier * bias)
    multiplier**2 times faster than a plain bias: a per-layer learning-rate scale, which Keras
    optimizers do not have (airbench's `bias_scaler`: BatchNorm biases learn 64x faster)."""

    def __init__(self, multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = float(multiplier)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, inputs):
        return inputs + keras.ops.cast(self.multiplier, inputs.dtype) * keras.ops.cast(self.bias, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier}


@keras.saving.register_keras_serializable(package="cnnlab")
def gelu_tanh(x):
    """GELU with the tanh approximation: within 1e-3 of the exact (erf) GELU, and its CPU
    kernels are faster (airbench94's network trained 104 against 89 images/s here)."""
    return keras.activations.gelu(x, approximate=True)


@keras.saving.register_keras_serializable(package="cnnlab")
class SameConv2D(keras.layers.Conv2D):
    """Conv2D with stride 1 and "same" padding whose input gradient is computed as a forward
    convolution of the output gradient with the kernel flipped and transposed (the same
    numbers): on a CPU (one thread, AVX2) TensorFlow's own input-gradient kernel
    (Conv2DBackpropInput) took 2.2x the time of that forward convolution on airbench's 7x7 maps
    of 256 channels and 7x on its 3x3 maps (README, "Against the reference airbench94")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.strides != (1, 1) or self.padding != "same" or self.dilation_rate != (1, 1) or self.groups != 1:
            raise ValueError("SameConv2D: stride 1, 'same' padding, no dilation, one group only")
        if self.data_format != "channels_last" or any(size % 2 == 0 for size in self.kernel_size):
            raise ValueError("SameConv2D: channels last and odd kernel sizes only")

    def convolution_op(self, inputs, kernel):
        return _same_convolution(inputs, kernel)


def _same_convolution(inputs, kernel):
    import tensorflow as tf

    @tf.custom_gradient
    def convolution(x, kernel):
        def gradient(dy):
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            dx = tf.nn.conv2d(dy, flipped, 1, "SAME")
            dkernel = tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(kernel), out_backprop=dy, strides=[1, 1, 1, 1], padding="SAME"
            )
            return dx, dkernel

        return tf.nn.conv2d(x, kernel, 1, "SAME"), gradient

    return convolution(inputs, tf.convert_to_tensor(kernel))
