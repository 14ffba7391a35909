"""Sequential CNNs from a checked layer list (cnnlab.config.layers), e.g.

    - {type: conv, filters: 32, kernel: 3, activation: relu}
    - {type: maxpool}
    - {type: flatten}
    - {type: dense, units: classes, activation: softmax}

`units: classes` stands for the dataset's class count.
"""

import keras

from cnnlab.errors import ConfigError
from cnnlab.models.family_common import OUTPUT_DTYPE


def make_layer(spec, num_classes, name, dtype=None):
    kind = spec["type"]
    if kind == "conv":
        return keras.layers.Conv2D(
            spec["filters"],
            spec["kernel"],
            strides=spec["strides"],
            padding=spec["padding"],
            activation=spec["activation"],
            use_bias=spec["use_bias"],
            name=name,
        )
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
    return keras.layers.Dense(units, activation=spec["activation"], dtype=dtype, name=name)


def build_layers(specs, inputs, num_classes, key):
    """Apply the layer list to `inputs`; a layer that does not fit its input names its key."""
    x = inputs
    counts = {}
    for index, spec in enumerate(specs):
        counts[spec["type"]] = counts.get(spec["type"], 0) + 1
        name = f"{spec['type']}_{counts[spec['type']]}"
        layer_key = f"{key}[{index}]"
        if spec["type"] in ("conv", "maxpool", "avgpool", "gap", "flatten") and len(x.shape) != 4:
            raise ConfigError(
                f"{layer_key}: {spec['type']} needs an image-shaped input, but the previous layer "
                f"outputs {tuple(x.shape[1:])}; move it before flatten/gap/dense"
            )
        try:
            last = index == len(specs) - 1
            x = make_layer(spec, num_classes, name, OUTPUT_DTYPE if last else None)(x)
        except ValueError as error:
            raise ConfigError(
                f"{layer_key}: {spec['type']} does not fit its input {tuple(x.shape[1:])}: {str(error).splitlines()[0]}"
            ) from None
        if any(dim is not None and dim < 1 for dim in x.shape[1:]):
            raise ConfigError(
                f"{layer_key}: {spec['type']} shrinks the image to nothing (output {tuple(x.shape[1:])}); "
                "use padding: same, fewer poolings, or a larger data.image_size"
            )
    if len(x.shape) != 2:
        raise ConfigError(
            f"{key}: the model must end in a vector per image; add {{type: flatten}} or {{type: gap}} "
            "before the dense layers"
        )
    return x
