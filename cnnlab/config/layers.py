"""The schema of a layer list in params.yaml (`variants.<name>.layers`), e.g.

    - {type: conv, filters: 32, kernel: 3, activation: relu}
    - {type: maxpool}
    - {type: flatten}
    - {type: dense, units: classes, activation: softmax}

`units: classes` stands for the dataset's class count. cnnlab.models.layers builds the
checked list into Keras layers.
"""

from cnnlab.config.fields import Field, boolean, choice, number, optional, validate_section
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
    # 0.9 as the families use (cnnlab/models/family_common.py BN_MOMENTUM): fit for short runs too
    "batchnorm": {"momentum": Field(number(0, 1, high_open=True), 0.9)},
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
        raise ConfigError(
            f"{key}[{len(layers) - 1}]: the last layer must output class probabilities, "
            "e.g. {type: dense, units: classes, activation: softmax}"
        )
    return checked


def _validate_layer(layer, key):
    if not isinstance(layer, dict) or "type" not in layer:
        raise ConfigError(f"{key}: must be a mapping with a `type` ({', '.join(LAYER_SCHEMAS)}), got {layer!r}")
    kind = choice(*LAYER_SCHEMAS)(layer["type"], f"{key}.type")
    settings = {k: v for k, v in layer.items() if k != "type"}
    return {"type": kind, **validate_section(settings, LAYER_SCHEMAS[kind], key)}
