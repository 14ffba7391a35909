"""The options of each named family in params.yaml (`variants.<name>.options`), checked up front.

Each family has a schema section (option -> Field, with a one-line help) and, where options
constrain each other, a check. The builders in cnnlab/models/family_<name>.py receive the
checked options.
"""

from cnnlab.config.fields import (
    Field,
    auto_or_positive_int,
    boolean,
    choice,
    did_you_mean,
    number,
    optional,
    positive_int_or_list,
    validate_section,
)
from cnnlab.errors import ConfigError

# first-conv choices shared by alexnet, googlenet and resnet; `auto` picks by image size
STEMS = ("auto", "small", "medium", "classic")

# --- alexnet (cnnlab/models/family_alexnet.py) ---

ALEXNET = {
    "stem": Field(
        choice(*STEMS),
        "auto",
        "first conv: auto (by image size) | small 3x3/1 | medium 5x5/2 | classic 11x11/4",
    ),
    "width": Field(number(0, low_open=True), 1.0, "multiplier on the conv filters 96-256-384-384-256"),
    "dense_units": Field(number(1, integer=True), 4096, "units of each of the two hidden dense layers"),
}


# --- vgg16 (cnnlab/models/family_vgg16.py) ---

VGG16 = {
    "implementation": Field(choice("hand", "keras"), "hand", "hand (built here) | keras (keras.applications.VGG16)"),
    "batchnorm": Field(boolean, False, "hand only: conv -> BatchNorm -> ReLU instead of conv+ReLU"),
    "width": Field(
        number(0, low_open=True),
        1.0,
        "hand only: multiplier on the conv filters 64-128-256-512-512 (0.5: a quarter of the FLOPs)",
    ),
    "dense_units": Field(
        auto_or_positive_int,
        "auto",
        "hidden dense units: auto = 4096 from 64 px, 512 below (512 in the ImageNet-transfer head)",
    ),
    "weights": Field(
        optional(choice("imagenet")),
        None,
        "keras only: null (random init) | imagenet (transfer learning, downloads the weights once)",
    ),
    "fine_tune_at": Field(
        optional(number(1, 5, integer=True)),
        None,
        "imagenet only: first VGG block (1-5) left trainable; null freezes the whole base",
    ),
}


def _check_vgg16(options, key):
    keras_top = options["implementation"] == "keras" and options["weights"] is None
    if options["implementation"] == "keras" and options["batchnorm"]:
        raise ConfigError(f"{key}.batchnorm: keras's VGG16 has no BatchNorm; use implementation: hand")
    if options["implementation"] == "keras" and options["width"] != 1:
        raise ConfigError(f"{key}.width: keras's VGG16 has the paper's widths; use implementation: hand")
    if options["weights"] == "imagenet" and options["implementation"] != "keras":
        raise ConfigError(f"{key}.weights: imagenet weights need implementation: keras")
    if options["fine_tune_at"] is not None and options["weights"] is None:
        raise ConfigError(
            f"{key}.fine_tune_at: only applies with weights: imagenet (with weights null every layer trains)"
        )
    if keras_top and options["dense_units"] not in ("auto", 4096):
        raise ConfigError(
            f"{key}.dense_units: keras's VGG16 top is fixed at 4096-4096; "
            "leave dense_units at auto or use implementation: hand"
        )


# --- googlenet (cnnlab/models/family_googlenet.py) ---

GOOGLENET = {
    "stem": Field(
        choice(*STEMS),
        "auto",
        "auto (by image size) | small (no stem pools) | medium (3x3/1 conv, 2 pools) | classic (7x7/2 conv, 2 pools)",
    ),
    "width": Field(
        number(0, low_open=True),
        1.0,
        "multiplier on every conv filter count and the aux dense units",
    ),
}


# --- resnet (cnnlab/models/family_resnet.py) ---

RESNET = {
    "depth": Field(
        positive_int_or_list,
        3,
        "residual blocks per stage: n (same for every stage; 3 stages -> "
        "6n+2 layers) or a list with one count per stage",
    ),
    "width": Field(
        number(1, integer=True),
        16,
        "filters of the stem and first stage; doubled at each later stage",
    ),
    "stages": Field(number(1, integer=True), 3, "number of stages"),
    "downsample": Field(
        choice("stride", "maxpool"),
        "stride",
        "how later stages halve the map: stride (stride-2 conv) | maxpool (2x2 max pool)",
    ),
    "stem": Field(
        choice(*STEMS),
        "auto",
        "auto (by image size) | small 3x3/1 conv | medium + 3x3/2 max pool | classic 7x7/2 conv + 3x3/2 max pool",
    ),
}


def _check_resnet(options, key):
    depth = options["depth"]
    if isinstance(depth, list) and len(depth) != options["stages"]:
        raise ConfigError(
            f"{key}.depth: has {len(depth)} entries but stages is {options['stages']}; give one block count per stage"
        )


# --- airbench (cnnlab/models/family_airbench.py) ---

AIRBENCH = {
    "widths": Field(positive_int_or_list, [64, 256, 256], "filters of each conv group (one 2x2 max pool per group)"),
    "whiten_kernel": Field(number(1, 5, integer=True), 2, "side of the frozen patch-whitening first conv"),
    "whiten_bias_epochs": Field(
        number(0, integer=True), 3, "epochs the whitening conv's bias trains before it freezes"
    ),
    "activation": Field(
        choice("gelu", "gelu_tanh", "relu"), "gelu", "activation after every conv (gelu_tanh: faster on CPUs)"
    ),
    "batchnorm_momentum": Field(number(0, 1, high_open=True), 0.6, "BatchNorm running-statistics momentum"),
    "bias_lr_scale": Field(number(0, low_open=True), 64.0, "how much faster the BatchNorm biases learn"),
    "output_scale": Field(number(0, low_open=True), 1 / 9, "factor on the logits before the softmax"),
}


def _check_airbench(options, key):
    if isinstance(options["widths"], int):
        options["widths"] = [options["widths"]]


OPTIONS = {"alexnet": ALEXNET, "vgg16": VGG16, "googlenet": GOOGLENET, "resnet": RESNET, "airbench": AIRBENCH}
"""family -> its options schema."""
CHECKS = {"vgg16": _check_vgg16, "resnet": _check_resnet, "airbench": _check_airbench}

FAMILIES = {name: {option: field.default for option, field in schema.items()} for name, schema in OPTIONS.items()}
"""family -> {option: default}; OPTION_DOCS has the same shape with one line per option."""
OPTION_DOCS = {name: {option: field.help for option, field in schema.items()} for name, schema in OPTIONS.items()}


def validate_family_options(family, options, key):
    """Return `options` with defaults filled in; ConfigError naming `key` or `key.option`."""
    if not isinstance(family, str) or family not in OPTIONS:
        raise ConfigError(
            f"{key}: unknown family {family!r}{did_you_mean(family, OPTIONS)}; "
            f"known families: {', '.join(sorted(OPTIONS))}"
        )
    filled = validate_section(options, OPTIONS[family], key)
    if family in CHECKS:
        CHECKS[family](filled, key)
    return filled
