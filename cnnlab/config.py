"""The schema of params.yaml, checked up front: every error names the dotted key.

Each section is a dict of key -> Field. `validate_section` fills defaults, rejects unknown
keys (with a did-you-mean) and checks types and ranges. Layer lists and family options
have their own schemas in `cnnlab.models`.
"""
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from cnnlab.errors import ConfigError

REQUIRED = object()


@dataclass(frozen=True)
class Field:
    check: Callable[[Any, str], Any]
    default: Any = REQUIRED
    help: str = ""


# --- value checks: each takes (value, key) and returns the value or raises ConfigError ---


def _type_name(value):
    return "null" if value is None else type(value).__name__


def choice(*options):
    def check(value, key):
        if value not in options:
            hint = did_you_mean(value, options)
            raise ConfigError(f"{key}: unknown value {value!r}{hint}; choose one of {', '.join(map(str, options))}")
        return value

    return check


def boolean(value, key):
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: must be true or false, got {value!r}")
    return value


def text(value, key):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
    return value


def number(low=None, high=None, *, low_open=False, high_open=False, integer=False):
    """A number within [low, high]; `*_open` excludes that bound."""

    def check(value, key):
        wanted = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise ConfigError(f"{key}: must be {wanted}, got {value!r} ({_type_name(value)})")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise ConfigError(f"{key}: must be {_bounds(low, high, low_open, high_open)}, got {value!r}")
        return value

    return check


def _bounds(low, high, low_open, high_open):
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def optional(check):
    def check_optional(value, key):
        return None if value is None else check(value, key)

    return check_optional


def size_pair(value, key):
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, (list, tuple)) and len(value) == 2):
        raise ConfigError(f"{key}: must be [height, width] (two positive integers), got {value!r}")
    return [number(1, 4096, integer=True)(v, f"{key}[{i}]") for i, v in enumerate(value)]


def auto_or_positive_int(value, key):
    if value == "auto":
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be auto or a positive integer, got {value!r}")
    return number(1, integer=True)(value, key)


def positive_int_or_list(value, key):
    """A positive integer, or a non-empty list of them (checked as `key[i]`)."""
    if isinstance(value, list) and value:
        return [number(1, integer=True)(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}: must be a positive integer or a non-empty list of positive integers, got {value!r}")
    return number(1, integer=True)(value, key)


def section(schema):
    """A nested mapping validated against `schema`."""

    def check(value, key):
        return validate_section(value, schema, key)

    return check


def optional_section(schema):
    """A nested mapping that may be null (feature off); `true` means all defaults."""

    def check(value, key):
        if value is None or value is False:
            return None
        return validate_section({} if value is True else value, schema, key)

    return check


def did_you_mean(word, options):
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_section(values, schema, key):
    """Fill defaults and check every key of a mapping; unknown keys are errors."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{key}: must be a mapping of settings, got {values!r}")
    for name in values:
        if name not in schema:
            raise ConfigError(f"{key}.{name}: unknown key{did_you_mean(name, schema)}; known keys: {', '.join(schema)}")
    result = {}
    for name, field in schema.items():
        if name in values:
            result[name] = field.check(values[name], f"{key}.{name}")
        elif field.default is REQUIRED:
            raise ConfigError(f"{key}.{name}: missing (required)")
        else:
            result[name] = field.check(field.default, f"{key}.{name}")
    return result


# --- the schema ---

DATASETS = ("cifar10", "mnist", "fashion_mnist", "folder", "digits")
OPTIMIZERS = ("adam", "sgd", "adadelta", "adagrad", "rmsprop", "adamw")
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

TRAIN = {
    "max_epochs": Field(optional(number(1, integer=True)), None, "caps every variant's epochs for a quick look"),
    "seed": Field(number(0, integer=True), 42),
    "deterministic": Field(boolean, True, "TensorFlow op determinism: identical metrics on CPU"),
    "jit_compile": Field(boolean, False, "XLA compilation of the training step"),
    "mixed_precision": Field(boolean, False, "float16 compute (for GPUs; slower on CPU)"),
    "threads": Field(optional(number(1, integer=True)), None, "TensorFlow intra-op threads; null = all cores"),
    "distribute": Field(choice("none", "mirrored", "multi_worker"), "none",
                        "tf.distribute: mirrored = all local GPUs; multi_worker = the TF_CONFIG cluster"),
    "cpu_replicas": Field(optional(number(2, 64, integer=True)), None,
                          "mirrored without GPUs: split the CPU into this many logical devices"),
}

OPTIMIZER = {
    "name": Field(choice(*OPTIMIZERS), "adam"),
    "learning_rate": Field(number(0, low_open=True), 0.001),
    "momentum": Field(number(0, 1, high_open=True), 0.0, "sgd and rmsprop"),
    "nesterov": Field(boolean, False, "sgd"),
    "weight_decay": Field(optional(number(0)), None, "decoupled weight decay (adamw, sgd, adam)"),
    "schedule": Field(choice("constant", "onecycle", "cosine"), "constant"),
    "warmup_fraction": Field(number(0, 1, high_open=True), 0.2, "onecycle/cosine: share of steps warming up"),
}

EARLY_STOPPING = {
    "monitor": Field(choice("val_loss", "val_accuracy"), "val_loss"),
    "patience": Field(number(1, integer=True), 5),
    "min_delta": Field(number(0), 0.0),
    "restore_best": Field(boolean, True),
}

AUGMENTATION = {
    "horizontal_flip": Field(boolean, False),
    "rotation": Field(number(0, 180), 0, "degrees, random in [-rotation, rotation]"),
    "width_shift": Field(number(0, 1, high_open=True), 0.0, "fraction of the width"),
    "height_shift": Field(number(0, 1, high_open=True), 0.0, "fraction of the height"),
    "zoom": Field(number(0, 1, high_open=True), 0.0, "fraction, random zoom in or out"),
    "crop_padding": Field(number(0, integer=True), 0, "pixels of zero padding before a random crop"),
}


def _layers(value, key):
    from cnnlab.models.layers import validate_layers

    return validate_layers(value, key)


def _family(value, key):
    from cnnlab.models import FAMILY_NAMES

    return choice(*FAMILY_NAMES)(value, key)


VARIANT = {
    "description": Field(optional(text), None),
    "family": Field(_family, "layers", "`layers` (the layer list below) or a named family"),
    "layers": Field(optional(_layers), None),
    "options": Field(lambda v, k: dict(v or {}), {}, "options of the named family"),
    "optimizer": Field(section(OPTIMIZER), {}),
    "batch_size": Field(number(1, integer=True), 32),
    "epochs": Field(number(1, integer=True), 10),
    "early_stopping": Field(optional_section(EARLY_STOPPING), None),
    "label_smoothing": Field(number(0, 1, high_open=True), 0.0),
    "augmentation": Field(section(AUGMENTATION), {}),
    "tta": Field(boolean, False, "test-time augmentation at evaluation: average with the flipped image"),
}


def validate_variant(variant, key):
    result = validate_section(variant, VARIANT, key)
    if result["family"] == "layers":
        if not result["layers"]:
            raise ConfigError(f"{key}.layers: missing; give a layer list or set {key}.family to a named family")
        if result["options"]:
            raise ConfigError(f"{key}.options: only for named families; {key}.family is 'layers'")
    else:
        if result["layers"]:
            raise ConfigError(f"{key}.layers: not used with family {result['family']!r}; remove it or set family: layers")
        from cnnlab.models import validate_family_options

        result["options"] = validate_family_options(result["family"], result["options"] or {}, f"{key}.options")
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
    "feature_map_images": Field(optional(lambda v, k: [number(0, integer=True)(i, f"{k}[{n}]") for n, i in enumerate(_as_list(v, k))]), None,
                                "test-image indices for feature maps; null = first image of each class"),
    "feature_map_channels": Field(number(1, 256, integer=True), 16, "channels drawn per conv layer"),
    "max_classes": Field(number(2, 200, integer=True), 20, "classes drawn in per-class charts before taking the top-k"),
}


def _as_list(value, key):
    if not isinstance(value, list):
        raise ConfigError(f"{key}: must be a list, got {value!r}")
    return value


SCHEMA = {
    "data": Field(section(DATA), {}),
    "train": Field(section(TRAIN), {}),
    "variants": Field(_variants),
    "plots": Field(section(PLOTS), {}),
}


def validate_params(raw, source="params.yaml"):
    """Validate a whole params mapping (as read from params.yaml); defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping with sections {', '.join(SCHEMA)}")
    for name in raw:
        if name not in SCHEMA:
            raise ConfigError(f"{name}: unknown section in {source}{did_you_mean(name, SCHEMA)}; known: {', '.join(SCHEMA)}")
    return {name: _check_top(field, raw, name) for name, field in SCHEMA.items()}


def load_params(path="params.yaml"):
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def variant_params(params, name):
    """One variant's settings, or a ConfigError listing the variants that exist."""
    try:
        return params["variants"][name]
    except KeyError:
        known = ", ".join(params["variants"])
        raise ConfigError(f"variants.{name}: no such variant{did_you_mean(name, params['variants'])}; known: {known}") from None
