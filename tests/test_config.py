"""params.yaml schema: defaults, and one-line errors that name the key."""

import copy

import pytest
import yaml

from cnnlab.config import load_params, validate_params
from cnnlab.errors import ConfigError
from tests.helpers import committed

SHIPPED = yaml.safe_load(open("params.yaml", encoding="utf-8"))


def params_with(path, value):
    """The shipped params with one dotted key set (a list index as an int part)."""
    params = copy.deepcopy(SHIPPED)
    *parents, last = path
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


def error_for(params):
    with pytest.raises(ConfigError) as raised:
        validate_params(params)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_shipped_params_validate_with_defaults_filled():
    params = load_params("params.yaml")
    # the workspace may hold an experiment's data settings (make run's offline quick look
    # applies -S data.dataset=digits); the default the project ships is in git
    assert validate_params(yaml.safe_load(committed("params.yaml")))["data"]["dataset"] == "cifar10"
    exp4 = params["variants"]["seed001_exp4"]
    assert exp4["augmentation"] == {
        "horizontal_flip": True,
        "rotation": 15,
        "width_shift": 0.1,
        "height_shift": 0.1,
        "zoom": 0.0,
        "crop_padding": 0,
        "crop_fill": "constant",
    }
    assert exp4["optimizer"]["schedule"] == "constant"
    assert exp4["early_stopping"] is None
    assert params["variants"]["seed001_exp1"]["layers"][0] == {
        "type": "conv",
        "filters": 32,
        "kernel": 3,
        "strides": 1,
        "padding": "valid",
        "activation": "relu",
        "use_bias": True,
    }


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("data", "dataset"), "cifar100", "data.dataset: unknown value 'cifar100' (did you mean 'cifar10'?)"),
        (("data", "val_fration"), 0.2, "data.val_fration: unknown key (did you mean 'val_fraction'?)"),
        (("data", "val_fraction"), 1.5, "data.val_fraction: must be >= 0 and < 1, got 1.5"),
        (("data", "image_size"), [32], "data.image_size: must be [height, width]"),
        (("train", "max_epochs"), "two", "train.max_epochs: must be an integer, got 'two' (str)"),
        (
            ("variants", "seed001_exp1", "optimizer", "name"),
            "adamax",
            "variants.seed001_exp1.optimizer.name: unknown value 'adamax'",
        ),
        (
            ("variants", "seed001_exp1", "optimizer", "learning_rate"),
            0,
            "variants.seed001_exp1.optimizer.learning_rate: must be > 0, got 0",
        ),
        (("variants", "seed001_exp1", "batch_size"), 0, "variants.seed001_exp1.batch_size: must be >= 1, got 0"),
        (("variants", "seed001_exp1", "batch_size"), 32.5, "variants.seed001_exp1.batch_size: must be an integer"),
        (
            ("variants", "seed001_exp2", "layers", 2, "rate"),
            -0.25,
            "variants.seed001_exp2.layers[2].rate: must be >= 0 and < 1, got -0.25",
        ),
        (
            ("variants", "seed001_exp2", "layers", 2, "rate"),
            1.0,
            "variants.seed001_exp2.layers[2].rate: must be >= 0 and < 1",
        ),
        (
            ("variants", "seed001_exp1", "layers", 0, "type"),
            "convolution",
            "variants.seed001_exp1.layers[0].type: unknown value 'convolution'",
        ),
        (
            ("variants", "seed001_exp1", "layers", 0, "filter"),
            8,
            "variants.seed001_exp1.layers[0].filter: unknown key (did you mean 'filters'?)",
        ),
        (
            ("variants", "seed001_exp1", "layers", 4, "activation"),
            "relu",
            "variants.seed001_exp1.layers[4]: the last layer must output class probabilities",
        ),
        (("variants", "seed001_exp1", "family"), "lenet", "variants.seed001_exp1.family: unknown value 'lenet'"),
        (
            ("variants", "seed001_exp1", "early_stopping"),
            {"patience": 0},
            "variants.seed001_exp1.early_stopping.patience: must be >= 1, got 0",
        ),
        (("variants", "bad-name"), {"family": "layers"}, "variants.bad-name: invalid variant name"),
        (("plots", "samples"), 0, "plots.samples: must be >= 1 and <= 100, got 0"),
    ],
)
def test_bad_values_name_the_key(path, value, expected):
    assert error_for(params_with(path, value)).startswith(expected)


def test_unknown_section_and_missing_variants():
    assert error_for({**SHIPPED, "trian": {}}).startswith(
        "trian: unknown section in params.yaml (did you mean 'train'?)"
    )
    without = {k: v for k, v in SHIPPED.items() if k != "variants"}
    assert error_for(without) == "variants: missing section in params.yaml"


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  dataset: [cifar10\n")
    with pytest.raises(ConfigError, match=r"params.yaml line \d+: not valid YAML"):
        load_params(path)


def test_every_variant_has_a_description_kept_outside_its_settings():
    params = load_params("params.yaml")
    assert set(params["descriptions"]) == set(params["variants"])
    assert all("description" not in variant for variant in params["variants"].values())


def test_a_description_inside_a_variant_says_where_it_moved():
    assert error_for(params_with(["variants", "fast", "description"], "quick")) == (
        "variants.fast.description: moved to descriptions.fast (a top-level section of params.yaml), "
        "so that editing a description retrains nothing"
    )


def test_a_description_of_no_variant_is_an_error():
    message = error_for(params_with(["descriptions", "fsat"], "typo"))
    assert message.startswith("descriptions.fsat: no such variant (did you mean 'fast'?); known: seed000_cool3, ")


@pytest.mark.parametrize("setting", ["jit_compile", "mixed_precision"])
def test_accelerator_settings_default_to_auto_and_reject_other_words(setting):
    assert load_params("params.yaml")["train"][setting] == "auto"
    assert error_for(params_with(["train", setting], "fast")).startswith(
        f"train.{setting}: unknown value 'fast'; choose one of auto, True, False"
    )


def test_a_variant_may_reuse_another_through_a_yaml_merge_key(tmp_path):
    shipped = committed("params.yaml")
    assert "\n  seed001_exp1:\n" in shipped and "\n  seed001_exp2:\n" in shipped
    text = shipped.replace("\n  seed001_exp1:\n", "\n  seed001_exp1: &exp1\n", 1)
    text = text.replace("\n  seed001_exp2:\n", "\n  exp1_longer:\n    <<: *exp1\n    epochs: 20\n  seed001_exp2:\n", 1)
    (tmp_path / "params.yaml").write_text(text)

    variants = load_params(tmp_path / "params.yaml")["variants"]

    assert variants["exp1_longer"]["epochs"] == 20, "the variant's own key overrides the merged one"
    assert variants["exp1_longer"]["layers"] == variants["seed001_exp1"]["layers"]
    assert variants["seed001_exp1"]["epochs"] == 10
