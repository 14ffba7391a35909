"""Sequential CNNs written as layer lists in params.yaml, e.g.

    - {type: conv, filters: 32, kernel: 3, activation: relu}
    - {type: maxpool}
    - {type: flatten}
    - {type: dense, units: classes, activation: softmax}

`units: classes` stands for the dataset's class count.
"""
import keras

from cnnlab.config import Field, boolean, choice, number, optional, validate_section
from cnnlab.errors import ConfigError

ACTIVATIONS = ("relu", "elu", "gelu", "selu", "leaky_relu", "swish", "tanh", "sigmoid", "softmax", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")


def _kernel(value, key):
    if isinstance(value, list) and len(value) == 2:
        return [number(1, integer=True)(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return number(1, integer=True)(value, key)


def _units(value, key):
    return value if value == "classes" else number(1, integer=True)(value, key)


PADDING = Field(choice("valid", "same"), "valid")
POOL = {"pool": Field(_kernel, 2), "strides": Field(optional(_kernel), None, "null = pool size"), "padding": PADDING}

LAYER_SCHEMAS = {
    "conv": {
        "filters": Field(number(1, integer=True)),
        "kernel": Field(_kernel, 3),
        "strides": Field(_kernel, 1),
        "padding": PADDING,
        "activation": Field(choice(*ACTIVATIONS), "relu"),
        "use_bias": Field(boolean, True),
    },
    "maxpool": POOL,
    "avgpool": POOL,
    "dropout": {"rate": Field(number(0, 1, high_open=True))},
    "batchnorm": {"momentum": Field(number(0, 1, high_open=True), 0.99)},
    "activation": {"function": Field(choice(*ACTIVATIONS))},
    "flatten": {},
    "gap": {},
    "dense": {"units": Field(_units), "activation": Field(choice(*ACTIVATIONS), "relu")},
}


def validate_layers(layers, key):
    if not isinstance(layers, list) or not layers:
        raise ConfigError(f"{key}: must be a non-empty list of layers like {{type: conv, filters: 32}}")
    checked = [_validate_layer(layer, f"{key}[{i}]") for i, layer in enumerate(layers)]
    last = checked[-1]
    if last["type"] != "dense" or last["activation"] not in OUTPUT_ACTIVATIONS:
        raise ConfigError(f"{key}[{len(layers) - 1}]: the last layer must output class probabilities, "
                          "e.g. {type: dense, units: classes, activation: softmax}")
    return checked


def _validate_layer(layer, key):
    if not isinstance(layer, dict) or "type" not in layer:
        raise ConfigError(f"{key}: must be a mapping with a `type` ({', '.join(LAYER_SCHEMAS)}), got {layer!r}")
    kind = choice(*LAYER_SCHEMAS)(layer["type"], f"{key}.type")
    settings = {k: v for k, v in layer.items() if k != "type"}
    return {"type": kind, **validate_section(settings, LAYER_SCHEMAS[kind], key)}


def make_layer(spec, num_classes, name):
    kind = spec["type"]
    if kind == "conv":
        return keras.layers.Conv2D(spec["filters"], spec["kernel"], strides=spec["strides"], padding=spec["padding"],
                                   activation=spec["activation"], use_bias=spec["use_bias"], name=name)
    if kind in ("maxpool", "avgpool"):
        pool = keras.layers.MaxPooling2D if kind == "maxpool" else keras.layers.AveragePooling2D
        return pool(spec["pool"], strides=spec["strides"], padding=spec["padding"], name=name)
    if kind == "dropout":
        return keras.layers.Dropout(spec["rate"], name=name)
    if kind == "batchnorm":
        return keras.layers.BatchNormalization(momentum=spec["momentum"], name=name)
    if kind == "activation":
        return keras.layers.Activation(spec["function"], name=name)
    if kind == "flatten":
        return keras.layers.Flatten(name=name)
    if kind == "gap":
        return keras.layers.GlobalAveragePooling2D(name=name)
    units = num_classes if spec["units"] == "classes" else spec["units"]
    return keras.layers.Dense(units, activation=spec["activation"], name=name)


def build_layers(specs, inputs, num_classes, key):
    """Apply the layer list to `inputs`; a layer that does not fit its input names its key."""
    x = inputs
    counts = {}
    for index, spec in enumerate(specs):
        counts[spec["type"]] = counts.get(spec["type"], 0) + 1
        name = f"{spec['type']}_{counts[spec['type']]}"
        layer_key = f"{key}[{index}]"
        if spec["type"] in ("conv", "maxpool", "avgpool", "gap", "flatten") and len(x.shape) != 4:
            raise ConfigError(f"{layer_key}: {spec['type']} needs an image-shaped input, but the previous layer "
                              f"outputs {tuple(x.shape[1:])}; move it before flatten/gap/dense")
        try:
            x = make_layer(spec, num_classes, name)(x)
        except ValueError as error:
            raise ConfigError(f"{layer_key}: {spec['type']} does not fit its input {tuple(x.shape[1:])}: "
                              f"{str(error).splitlines()[0]}") from None
        if any(dim is not None and dim < 1 for dim in x.shape[1:]):
            raise ConfigError(f"{layer_key}: {spec['type']} shrinks the image to nothing (output {tuple(x.shape[1:])}); "
                              "use padding: same, fewer poolings, or a larger data.image_size")
    if len(x.shape) != 2:
        raise ConfigError(f"{key}: the model must end in a vector per image; add {{type: flatten}} or {{type: gap}} "
                          "before the dense layers")
    return x
