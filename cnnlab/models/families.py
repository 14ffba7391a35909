"""Named CNN families (alexnet, vgg16, googlenet, resnet), adapted to the image size and
class count, with their options validated up front.

    options = validate_family_options("googlenet", {"width": 0.5}, "variants.g.options")
    outputs = build_family("googlenet", options, normalized_inputs, num_classes)
    model.compile(loss=[...] * len(outputs), loss_weights=AUX_LOSS_WEIGHTS["googlenet"])

Each family lives in its own module (family_<name>.py) with OPTIONS (a params.yaml
schema section: option -> cnnlab.config.Field), LOSS_WEIGHTS, build() and, where
options constrain each other, check().
"""

from cnnlab.config import did_you_mean, validate_section
from cnnlab.errors import ConfigError
from cnnlab.models import family_alexnet, family_googlenet, family_resnet, family_vgg16

_MODULES = {
    "alexnet": family_alexnet,
    "vgg16": family_vgg16,
    "googlenet": family_googlenet,
    "resnet": family_resnet,
}

FAMILIES = {
    name: {option: field.default for option, field in module.OPTIONS.items()}
    for name, module in _MODULES.items()
}
"""family -> {option: default}; OPTION_DOCS has the same shape with one line per option."""

OPTION_DOCS = {
    name: {option: field.help for option, field in module.OPTIONS.items()}
    for name, module in _MODULES.items()
}

AUX_LOSS_WEIGHTS = {name: module.LOSS_WEIGHTS for name, module in _MODULES.items()}
"""family -> loss weight per output of build_family, main output first."""


def loss_weights(family, num_outputs):
    """AUX_LOSS_WEIGHTS[family], checked against the number of outputs being compiled."""
    weights = AUX_LOSS_WEIGHTS[family]
    if len(weights) != num_outputs:
        raise ValueError(f"{family} has {len(weights)} outputs, got {num_outputs}")
    return weights


def validate_family_options(family, options, key):
    """Return `options` with defaults filled in; ConfigError naming `key` or `key.option`."""
    module = _module(family, key)
    filled = validate_section(options, module.OPTIONS, key)
    if hasattr(module, "check"):
        module.check(filled, key)
    return filled


def build_family(family, options, inputs, num_classes, key="options"):
    """Output tensors (softmax probabilities, main head first) of `family` applied to
    `inputs`, a normalized float tensor (N, H, W, C).

    `key` names the options in errors that only show at build time (for example
    ImageNet weights that cannot be downloaded); an image too small for the family
    raises a ConfigError naming data.image_size.
    """
    options = validate_family_options(family, options, key)
    return _MODULES[family].build(options, inputs, num_classes, key)


def _module(family, key):
    if not isinstance(family, str) or family not in _MODULES:
        raise ConfigError(
            f"{key}: unknown family {family!r}{did_you_mean(family, _MODULES)}; "
            f"known families: {', '.join(sorted(_MODULES))}"
        )
    return _MODULES[family]
