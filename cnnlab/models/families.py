"""Named CNN families (alexnet, vgg16, googlenet, resnet, airbench), adapted to the image size and
class count. Their options are checked up front by cnnlab.config.families:

    outputs = build_family("googlenet", checked_options, normalized_inputs, num_classes)
    model.compile(loss=[...] * len(outputs), loss_weights=AUX_LOSS_WEIGHTS["googlenet"])

Each family lives in its own module (family_<name>.py) with LOSS_WEIGHTS and build(). The
families are those of cnnlab.config.families.OPTIONS (the one list of them, with each one's
options); the modules imported here implement them, one each, which importing this checks.
"""

from cnnlab.config import check_implemented
from cnnlab.config.families import OPTIONS
from cnnlab.models import family_airbench, family_alexnet, family_googlenet, family_resnet, family_vgg16

_MODULES = {
    module.__name__.rpartition(".family_")[2]: module
    for module in (family_alexnet, family_vgg16, family_googlenet, family_resnet, family_airbench)
}
check_implemented(OPTIONS, _MODULES, "families (options: cnnlab/config/families.py OPTIONS; builders imported here)")

AUX_LOSS_WEIGHTS = {name: module.LOSS_WEIGHTS for name, module in _MODULES.items()}
"""family -> loss weight per output of build_family, main output first."""


def loss_weights(family, num_outputs):
    """AUX_LOSS_WEIGHTS[family], checked against the number of outputs being compiled."""
    weights = AUX_LOSS_WEIGHTS[family]
    if len(weights) != num_outputs:
        raise ValueError(f"{family} has {len(weights)} outputs, got {num_outputs}")
    return weights


def build_family(family, options, inputs, num_classes, key="options"):
    """Output tensors (softmax probabilities, main head first) of `family` applied to
    `inputs`, a normalized float tensor (N, H, W, C); `options` as checked by
    cnnlab.config.families.validate_family_options.

    `key` names the options in errors that only show at build time (for example
    ImageNet weights that cannot be downloaded); an image too small for the family
    raises a ConfigError naming data.image_size.
    """
    return _MODULES[family].build(options, inputs, num_classes, key)


def initialize_from_data(family, options, model, images, normalize, seed):
    """Data-derived initialisation before the first epoch (airbench's whitening conv), for the
    families that have one; `images` are the raw training split, `normalize` maps a batch of
    them to what the model's layers see."""
    initialize = getattr(_MODULES[family], "initialize_from_data", None)
    if initialize is not None:
        initialize(model, images, normalize, seed)


def training_callbacks(family, options):
    """Keras callbacks a family needs while training (airbench freezes its whitening bias)."""
    module = _MODULES[family]
    return module.callbacks(options) if hasattr(module, "callbacks") else []
