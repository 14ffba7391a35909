"""The schema of params.yaml, checked up front: every error names the dotted key.

Each section is a dict of key -> Field (cnnlab.config.fields); layer lists and family
options have their schemas in cnnlab.config.layers and cnnlab.config.families. Nothing here
imports TensorFlow: stages that only read params validate them in a fraction of a second.
"""

import re
from collections.abc import Hashable
from pathlib import Path

import yaml

from cnnlab.config.families import FAMILIES, validate_family_options
from cnnlab.config.fields import (
    REQUIRED,
    Field,
    boolean,
    choice,
    did_you_mean,
    number,
    optional,
    optional_section,
    section,
    size_pair,
    text,
    validate_section,
)
from cnnlab.config.layers import validate_layers
from cnnlab.errors import ConfigError

# The one list of each concept params.yaml names (README "Layout"; the families are
# cnnlab.config.families.OPTIONS): the datasets of data.dataset, each with its reader in
# cnnlab.data.preparation.READERS (check_implemented at import), and the optimizers of
# optimizer.name, each with the settings of OPTIMIZER it takes; Keras builds them by name.
DATASETS = ("cifar10", "mnist", "fashion_mnist", "folder", "digits")
OPTIMIZERS = {
    "adam": (),
    "sgd": ("momentum", "nesterov"),
    "adadelta": (),
    "adagrad": (),
    "rmsprop": ("momentum",),
    "adamw": (),
}
VARIANT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

DATA = {
    "dataset": Field(choice(*DATASETS), "cifar10"),
    "source": Field(optional(text), None, "local file/folder or http(s) URL overriding the official source"),
    "checksum": Field(optional(text), None, "sha256:<hex> or md5:<hex> that `source` must match"),
    "image_size": Field(optional(size_pair), [32, 32]),
    "channels": Field(optional(choice(1, 3)), None),
    "normalization": Field(choice("scale", "standardize"), "scale"),
    "val_fraction": Field(number(0, 1, high_open=True), 0.1),
    "test_fraction": Field(number(0, 1, low_open=True, high_open=True), 0.2),
    "seed": Field(number(0, integer=True), 42),
    "max_train": Field(optional(number(1, integer=True)), None),
    "max_test": Field(optional(number(1, integer=True)), None),
    "strict": Field(boolean, False),
}

PRECISIONS = ("auto", True, False, "float16", "bfloat16")

TRAIN = {
    "max_epochs": Field(optional(number(1, integer=True)), None, "caps every variant's epochs for a quick look"),
    "max_batch_size": Field(
        optional(number(1, integer=True)),
        None,
        "caps every variant's batch size for a quick look (its learning rate scaled by the same factor), "
        "so that a small dataset still gives a large-batch variant enough steps",
    ),
    "seed": Field(number(0, integer=True), 42),
    "deterministic": Field(boolean, True, "TensorFlow op determinism: identical metrics on CPU in float32"),
    "jit_compile": Field(
        choice("auto", True, False),
        "auto",
        "XLA compilation of the training step; auto = on CUDA GPUs only (cnnlab.hardware)",
    ),
    "mixed_precision": Field(
        choice(*PRECISIONS),
        "auto",
        "16-bit compute: auto = float16 on GPUs with tensor cores, bfloat16 on CPUs with native bfloat16 "
        "(AVX512-BF16/AMX), else off; true = float16",
    ),
    "threads": Field(optional(number(1, integer=True)), None, "TensorFlow intra-op threads; null = all cores"),
}

OPTIMIZER = {
    "name": Field(choice(*OPTIMIZERS), "adam"),
    "learning_rate": Field(number(0, low_open=True), 0.001),
    "momentum": Field(number(0, 1, high_open=True), 0.0, "sgd and rmsprop"),
    "nesterov": Field(boolean, False, "sgd"),
    "weight_decay": Field(optional(number(0)), None, "decoupled weight decay (adamw, sgd, adam)"),
    "schedule": Field(choice("constant", "onecycle", "cosine"), "constant"),
    "warmup_fraction": Field(number(0, 1, high_open=True), 0.2, "onecycle/cosine: share of steps warming up"),
    "warmup_from": Field(number(0, 1), 0.0, "onecycle: learning rate at step 0, as a fraction of the peak"),
    "decay_to": Field(number(0, 1), 0.0, "onecycle: learning rate at the last step, as a fraction of the peak"),
}

EARLY_STOPPING = {
    "monitor": Field(choice("val_loss", "val_accuracy"), "val_loss"),
    "patience": Field(number(1, integer=True), 5),
    "min_delta": Field(number(0), 0.0),
    "restore_best": Field(boolean, True),
}

AUGMENTATION = {
    "horizontal_flip": Field(
        choice(False, True, "alternating"),
        False,
        "true: each image mirrored at random | alternating: each image mirrored every other epoch",
    ),
    "rotation": Field(number(0, 180), 0, "degrees, random in [-rotation, rotation]"),
    "width_shift": Field(number(0, 1, high_open=True), 0.0, "fraction of the width"),
    "height_shift": Field(number(0, 1, high_open=True), 0.0, "fraction of the height"),
    "zoom": Field(number(0, 1, high_open=True), 0.0, "fraction, random zoom in or out"),
    "crop_padding": Field(number(0, integer=True), 0, "random shift by up to this many pixels (pad-and-crop)"),
    "crop_fill": Field(
        choice("constant", "reflect"),
        "constant",
        "what a shift moves in: constant (black, or the mean with standardize) | reflect (the mirrored border)",
    ),
}

LOOKAHEAD = {
    "start_epoch": Field(number(0, integer=True), 3, "first epoch (0-based) that averages"),
    "every": Field(number(1, integer=True), 5, "steps between two updates of the average"),
    "decay": Field(number(0, 1, low_open=True, high_open=True), 0.95, "per-step decay of the average"),
    "decay_power": Field(number(0), 3.0, "the decay is scaled by (step / total steps) ** decay_power"),
}


FAMILY_NAMES = ("layers", *FAMILIES)


VARIANT = {
    "family": Field(choice(*FAMILY_NAMES), "layers", "`layers` (the layer list below) or a named family"),
    "layers": Field(optional(validate_layers), None),
    "options": Field(lambda v, k: dict(v or {}), {}, "options of the named family"),
    "optimizer": Field(section(OPTIMIZER), {}),
    "batch_size": Field(number(1, integer=True), 32),
    "epochs": Field(number(1, integer=True), 10),
    "early_stopping": Field(optional_section(EARLY_STOPPING), None),
    "label_smoothing": Field(number(0, 1, high_open=True), 0.0),
    "augmentation": Field(section(AUGMENTATION), {}),
    "lookahead": Field(optional_section(LOOKAHEAD), None, "an exponential moving average of the weights"),
    "mixed_precision": Field(
        optional(choice(*PRECISIONS)),
        None,
        "overrides train.mixed_precision for this variant; false = float32, which reruns bit for bit on CPU",
    ),
    # how the variant is executed; DVC tracks them with the variant, since the global batch and
    # the learning rate scale with the replicas (distribute.py)
    "distribute": Field(
        choice("none", "mirrored", "multi_worker"),
        "none",
        "tf.distribute: mirrored = all local GPUs; multi_worker = the TF_CONFIG cluster",
    ),
    "cpu_replicas": Field(
        optional(number(2, 64, integer=True)),
        None,
        "mirrored without GPUs: split the CPU into this many logical devices",
    ),
    "tta": Field(
        choice(False, True, "flip", "flip_shift"),
        False,
        "test-time augmentation at evaluation: true/flip averages with the mirrored image; flip_shift "
        "adds both 1-pixel diagonal shifts of each (6 views)",
    ),
}


def check_implemented(listed, implemented, what):
    """Raise ImportError unless the names `implemented` (a registry of implementations, keyed by
    name) are exactly those `listed` on the config side; `what` says where each belongs."""
    if set(implemented) != set(listed):
        raise ImportError(
            f"{what}: implemented {sorted(implemented)}, but the config lists {sorted(listed)}; "
            "every name needs its entry on both sides"
        )


def validate_variant(variant, key):
    if isinstance(variant, dict) and "description" in variant:
        name = key.split(".")[-1]
        raise ConfigError(
            f"{key}.description: moved to descriptions.{name} (a top-level section of params.yaml), "
            "so that editing a description retrains nothing"
        )
    result = validate_section(variant, VARIANT, key)
    if result["family"] == "layers":
        if not result["layers"]:
            raise ConfigError(f"{key}.layers: missing; give a layer list or set {key}.family to a named family")
        if result["options"]:
            raise ConfigError(f"{key}.options: only for named families; {key}.family is 'layers'")
    else:
        if result["layers"]:
            raise ConfigError(
                f"{key}.layers: not used with family {result['family']!r}; remove it or set family: layers"
            )
        result["options"] = validate_family_options(result["family"], result["options"] or {}, f"{key}.options")
    if result["distribute"] == "multi_worker":
        _check_multi_worker(result, key)
    return result


def _variants(value, key):
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{key}: must map variant names to their settings (at least one)")
    result = {}
    for name, variant in value.items():
        if not isinstance(name, str) or not VARIANT_NAME.match(name):
            raise ConfigError(f"{key}.{name}: invalid variant name; use letters, digits and _ (starting with a letter)")
        result[name] = validate_variant(variant, f"{key}.{name}")
    return result


PLOTS = {
    "samples": Field(number(1, 100, integer=True), 25, "images in the sample-predictions grid"),
    "top_wrong": Field(number(1, 100, integer=True), 16, "most confidently wrong images shown"),
    "confused_pairs": Field(number(1, 20, integer=True), 4, "most confused class pairs shown"),
    "feature_map_images": Field(
        optional(lambda v, k: [number(0, integer=True)(i, f"{k}[{n}]") for n, i in enumerate(_as_list(v, k))]),
        None,
        "test-image indices for feature maps; null = first image of each class",
    ),
    "feature_map_channels": Field(number(1, 256, integer=True), 16, "channels drawn per conv layer"),
    "max_classes": Field(number(2, 200, integer=True), 20, "classes drawn in per-class charts before taking the top-k"),
    "gradcam_layers": Field(
        lambda v, k: {name: text(layer, f"{k}.{name}") for name, layer in _as_mapping(v, k).items()},
        {},
        "variant -> layer whose output Grad-CAM explains; default: the last spatial conv feature map",
    ),
}


def _as_mapping(value, key):
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must map variant names to layer names, got {value!r}")
    return value


EXPORT_FORMATS = ("tflite", "tflite_dynamic", "onnx")
MIN_LATENCY_CALLS = 50


def _export_formats(value, key):
    formats = [choice(*EXPORT_FORMATS)(name, f"{key}[{n}]") for n, name in enumerate(_as_list(value, key))]
    if len(set(formats)) != len(formats):
        raise ConfigError(f"{key}: lists a format twice: {formats}")
    return formats


EXPORT = {
    "formats": Field(_export_formats, list(EXPORT_FORMATS), "what export@<variant> writes: tflite tflite_dynamic onnx"),
    "latency_calls": Field(
        number(MIN_LATENCY_CALLS, integer=True), MIN_LATENCY_CALLS, "timed batch-1 calls; the median is reported"
    ),
    "warmup_calls": Field(number(1, integer=True), 5, "untimed batch-1 calls before the timed ones"),
    "threads": Field(number(1, integer=True), 1, "threads each runtime may use for one call"),
}


def _as_list(value, key):
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list, got {value!r}")
    return value


def _descriptions(value, key):
    """One line of text per variant, shown in the report; kept out of `variants:` because DVC
    tracks each variant's settings as a whole, and a description is no training setting."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must map variant names to one line of text each")
    return {name: optional(text)(line, f"{key}.{name}") for name, line in value.items()}


def _runs(value, key):
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must map variant names to a number of runs each, e.g. {{fast: 5}}")
    return {name: number(1, integer=True)(runs, f"{key}.{name}") for name, runs in value.items()}


# Seed repeats: stage repeat@<variant> trains each listed variant `runs` times in all (seeds
# train.seed, train.seed + 1, ...: the main run and runs - 1 more) and records their spread. A
# section of its own, like descriptions, so that asking for more runs retrains no main run.
REPEATS = {
    "max_runs": Field(
        optional(number(1, integer=True)), None, "caps every variant's runs (the quick look sets 2); null = no cap"
    ),
    "runs": Field(_runs, {}, "variant -> runs in all, the main run included"),
}


SCHEMA = {
    "data": Field(section(DATA), {}),
    "train": Field(section(TRAIN), {}),
    "variants": Field(_variants),
    "descriptions": Field(_descriptions, {}),
    "repeats": Field(section(REPEATS), {}),
    "plots": Field(section(PLOTS), {}),
    "export": Field(section(EXPORT), {}),
}


def validate_params(raw, source="params.yaml"):
    """Validate a whole params mapping (as read from params.yaml); defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping with sections {', '.join(SCHEMA)}")
    for name in raw:
        if name not in SCHEMA:
            raise ConfigError(
                f"{name}: unknown section in {source}{did_you_mean(name, SCHEMA)}; known: {', '.join(SCHEMA)}"
            )
    for moved in MOVED_TO_VARIANTS:
        if isinstance(raw.get("train"), dict) and moved in raw["train"]:
            raise ConfigError(
                f"train.{moved}: now set per variant, as variants.<name>.{moved}, so that it retrains only "
                f"the variants it applies to (e.g. -S variants.seed001_exp1.{moved}=...); move it there"
            )
    params = {name: _check_top(field, raw, name) for name, field in SCHEMA.items()}
    for key, names in (
        ("descriptions", params["descriptions"]),
        ("repeats.runs", params["repeats"]["runs"]),
        ("plots.gradcam_layers", params["plots"]["gradcam_layers"]),
    ):
        for name in names:
            if name not in params["variants"]:
                raise ConfigError(
                    f"{key}.{name}: no such variant{did_you_mean(name, params['variants'])}; "
                    f"known: {', '.join(params['variants'])}"
                )
    return params


MOVED_TO_VARIANTS = ("distribute", "cpu_replicas")


def _check_multi_worker(variant, key):
    """multi_worker training runs its own loop (cnnlab.multi_worker): no per-step callbacks, and
    the training step keeps the trainable set it was traced with."""
    if variant["lookahead"]:
        raise ConfigError(
            f"{key}.lookahead: not supported with {key}.distribute: multi_worker "
            "(it averages between steps); remove it or use distribute: mirrored"
        )
    freeze = variant["options"].get("whiten_bias_epochs") if variant["family"] == "airbench" else None
    if freeze and freeze < variant["epochs"]:
        raise ConfigError(
            f"{key}.options.whiten_bias_epochs: freezing mid-run is not supported with "
            f"{key}.distribute: multi_worker; set it to 0 (frozen throughout) or use distribute: mirrored"
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice in one mapping is an error (PyYAML
    keeps the last one silently; DVC, which reads params.yaml too, rejects the file)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor`: its keys are defaults the mapping's own keys override
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # PyYAML's own error names it
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.name} line {line}: key {key!r} written twice (first at line {seen[key]}); "
                    "keep one of them (DVC rejects this file too)"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def load_params(path="params.yaml"):
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as stream:
            raw = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found; run from the project root") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    return validate_params(raw, str(path))


def _check_top(field, raw, name):
    if name in raw:
        return field.check(raw[name], name)
    if field.default is REQUIRED:
        raise ConfigError(f"{name}: missing section in params.yaml")
    return field.check(field.default, name)


def train_settings(params, name):
    """The `train:` settings one variant trains with: its own `mixed_precision`, when set, overrides train's."""
    own = variant_params(params, name)["mixed_precision"]
    return params["train"] if own is None else {**params["train"], "mixed_precision": own}


def repeat_runs(params, name):
    """How many runs repeat@<name> makes in all (the main run included), after `repeats.max_runs`."""
    repeats = params["repeats"]
    runs = repeats["runs"].get(name, 1)
    return min(runs, repeats["max_runs"]) if repeats["max_runs"] else runs


def variant_params(params, name):
    """One variant's settings, or a ConfigError listing the variants that exist."""
    try:
        return params["variants"][name]
    except KeyError:
        known = ", ".join(params["variants"])
        raise ConfigError(
            f"variants.{name}: no such variant{did_you_mean(name, params['variants'])}; known: {known}"
        ) from None
