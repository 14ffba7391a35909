"""Grad-CAM (Selvaraju et al. 2017): where in an image a model found the evidence for a class.

The class score's gradient with respect to a spatial feature map, averaged over the map's
positions, weighs each channel; the weighted sum of the channels, clipped at zero, is the
heatmap, scaled to [0, 1] per image and resized to the image. The score is the class's logit:
the input of a final softmax/sigmoid (a Dense layer's own activation is bypassed, an
Activation layer's input taken), so a confident prediction's saturated softmax does not flatten
the gradient. Only the main output counts: auxiliary heads (GoogLeNet's) are not the output.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf

from cnnlab.errors import ConfigError
from cnnlab.inspection import CONV_TYPES


class NoConvolution(ConfigError):
    """The model has no convolution layer, so there is no feature map to explain."""


def main_path(model):
    """[(layer, its output tensor)] of the layers the main output depends on, in the model's
    (topological) order. The tensors are those of this graph: a reloaded Sequential model's
    layers have several call nodes, and `layer.output` is the first one's."""
    outputs, todo = {}, [model.outputs[0]]
    while todo:
        tensor = todo.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None or id(history.operation) in outputs:
            continue
        outputs[id(history.operation)] = tensor
        todo.extend(history.operation._inbound_nodes[history.node_index].input_tensors)
    return [(layer, outputs[id(layer)]) for layer in model.layers if id(layer) in outputs]


def spatial(tensor):
    return len(tensor.shape) == 4 and tensor.shape[1] * tensor.shape[2] > 1


def target_tensor(model, name=None):
    """The feature map Grad-CAM explains: layer `name`'s output, or the last spatial
    convolution's, taken after the layers that keep its size (BatchNorm, activation, a residual
    add, an inception concat), so that it is the map the rest of the network reads."""
    path = main_path(model)
    if name is not None:
        found = [tensor for layer, tensor in path if layer.name == name]
        if not found:
            raise ConfigError(f"{model.name}: no layer named {name!r} on the way to its output; {spatial_layers(path)}")
        if not spatial(found[0]):
            raise ConfigError(
                f"{model.name}: layer {name!r} outputs {tuple(found[0].shape)}, "
                f"not a spatial feature map (N x H x W x C); {spatial_layers(path)}"
            )
        return found[0]
    convs = [i for i, (layer, tensor) in enumerate(path) if isinstance(layer, CONV_TYPES) and spatial(tensor)]
    if not convs:
        raise NoConvolution(f"{model.name}: no convolution layer, so no Grad-CAM heatmap")
    size = tuple(path[convs[-1]][1].shape[1:3])
    return [tensor for _, tensor in path[convs[-1] :] if spatial(tensor) and tuple(tensor.shape[1:3]) == size][-1]


def spatial_layers(path, shown=12):
    """What a layer name may be: the layers of `path` with a spatial output, the last `shown` of
    them when there are more (the ones near the output are the usual choice)."""
    names = [layer.name for layer, tensor in path if spatial(tensor)]
    if not names:
        return "it has no layer with a spatial feature map"
    if len(names) <= shown:
        return f"layers with a spatial feature map: {', '.join(names)}"
    return f"layers with a spatial feature map ({len(names)}, the last {shown}): ..., {', '.join(names[-shown:])}"


def target_name(model, name=None):
    """The name of the layer whose output `target_tensor` is."""
    return target_tensor(model, name)._keras_history.operation.name


@contextlib.contextmanager
def logits_output(model):
    """The main output's score tensor: its pre-softmax (or pre-sigmoid) value where there is one."""
    history = model.outputs[0]._keras_history
    layer = history.operation
    if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax)):
        yield layer._inbound_nodes[history.node_index].input_tensors[0]
        return
    activation = getattr(layer, "activation", None)
    if activation is None:
        yield model.outputs[0]
        return
    layer.activation = keras.activations.linear  # a Functional model reruns its layers' call()
    try:
        yield model.outputs[0]
    finally:
        layer.activation = activation


def heatmaps(model, images, classes, layer=None, batch_size=64):
    """Grad-CAM heatmaps (N x H x W float32 in [0, 1], the images' size) of `classes[i]` for
    raw 0-255 `images[i]`; `layer`: a layer name, default the last spatial conv feature map."""
    images = np.asarray(images, dtype=np.float32)
    maps = class_maps(model, images, classes, layer, batch_size)
    resized = tf.image.resize(maps[..., None], images.shape[1:3], method="bilinear").numpy()[..., 0]
    return np.clip(resized, 0.0, 1.0)  # bilinear weights are convex: this only trims rounding


def class_maps(model, images, classes, layer=None, batch_size=64):
    """The Grad-CAM maps `heatmaps` resizes: N x h x w float32 at the feature map's own size,
    each divided by its peak (all zero where no position speaks for the class)."""
    target = target_tensor(model, layer)
    images = np.asarray(images, dtype=np.float32)
    classes = np.asarray(classes, dtype=np.int32)
    with logits_output(model) as scores:
        explainer = keras.Model(model.inputs, [target, scores])
        maps = [
            _class_maps(explainer, images[start : start + batch_size], classes[start : start + batch_size])
            for start in range(0, len(images), batch_size)
        ]
    return np.concatenate(maps)


def _class_maps(explainer, images, classes):
    inputs = tf.constant(images)
    with tf.GradientTape() as tape:
        features, scores = explainer(inputs, training=False)
        chosen = tf.gather(tf.cast(scores, tf.float32), classes, axis=1, batch_dims=1)
    gradients = tf.cast(tape.gradient(chosen, features), tf.float32)
    features = tf.cast(features, tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0).astype(np.float32)
