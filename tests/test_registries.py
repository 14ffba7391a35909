"""Each concept params.yaml names has one list on the TensorFlow-free config side; the side that
implements it is checked against that list, so the two cannot drift apart (README "Layout")."""

import keras
import pytest

from cnnlab.config import DATASETS, OPTIMIZER, OPTIMIZERS, check_implemented
from cnnlab.config.families import OPTIONS
from cnnlab.config.fields import validate_section
from cnnlab.data.preparation import READERS
from cnnlab.models.families import _MODULES
from cnnlab.optimizers import make_optimizer


def test_every_family_of_the_config_has_exactly_one_builder_module():
    assert list(_MODULES) == list(OPTIONS)
    assert all(module.__name__ == f"cnnlab.models.family_{name}" for name, module in _MODULES.items())


def test_every_dataset_of_the_config_has_exactly_one_reader():
    assert sorted(READERS) == sorted(DATASETS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_of_the_config_is_the_keras_optimizer_of_that_name(name):
    settings = validate_section({"name": name, "momentum": 0.9, "nesterov": True}, OPTIMIZER, "optimizer")
    optimizer = make_optimizer(settings, total_steps=10)
    assert type(optimizer).__name__.lower() == name
    for setting in OPTIMIZERS[name]:
        assert getattr(optimizer, setting) == settings[setting]


def test_the_settings_each_optimizer_takes_are_settings_of_the_optimizer_section():
    assert {setting for settings in OPTIMIZERS.values() for setting in settings} <= set(OPTIMIZER)


def test_a_registry_that_drifts_from_its_list_fails_its_import_naming_both_sides():
    with pytest.raises(ImportError, match=r"^datasets: implemented \['a', 'c'\], but the config lists \['a', 'b'\]"):
        check_implemented(("a", "b"), {"a": 1, "c": 2}, "datasets")
    check_implemented(("a", "b"), {"b": 1, "a": 2}, "datasets")


def test_momentum_reaches_sgd_and_rmsprop_only():
    adam = make_optimizer(validate_section({"name": "adam", "momentum": 0.9}, OPTIMIZER, "optimizer"), 10)
    assert isinstance(adam, keras.optimizers.Adam) and not hasattr(adam, "momentum")
