"""Property: any params the user can write either builds a model or fails with a ConfigError
naming a key; nothing crashes with a traceback."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab import models
from cnnlab.config import validate_variant
from cnnlab.errors import ConfigError

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.floats(-1.5, 2.5, allow_nan=False),
    st.sampled_from(["same", "valid", "relu", "softmax", "classes", "x"]),
    st.lists(st.integers(-1, 5), max_size=3),
)
layer_types = st.sampled_from(
    ["conv", "maxpool", "avgpool", "dropout", "batchnorm", "flatten", "gap", "dense", "activation", "pool", 3]
)
layer_keys = st.sampled_from(
    ["filters", "kernel", "strides", "padding", "activation", "rate", "units", "pool", "function", "momentum", "size"]
)
layers = st.lists(
    st.fixed_dictionaries({"type": layer_types}, optional={}).flatmap(
        lambda base: st.dictionaries(layer_keys, values, max_size=3).map(lambda extra: {**extra, **base})
    ),
    min_size=0,
    max_size=7,
)
head = st.just([{"type": "flatten"}, {"type": "dense", "units": "classes", "activation": "softmax"}])
variants = st.fixed_dictionaries(
    {"layers": st.one_of(layers, st.tuples(layers, head).map(lambda t: t[0] + t[1]))},
    optional={
        "optimizer": st.dictionaries(st.sampled_from(["name", "learning_rate", "momentum", "lr"]), values, max_size=2),
        "batch_size": values,
        "epochs": values,
        "label_smoothing": values,
        "augmentation": st.dictionaries(st.sampled_from(["rotation", "zoom", "flip"]), values, max_size=2),
        "early_stopping": st.one_of(
            st.none(), st.dictionaries(st.sampled_from(["patience", "monitor"]), values, max_size=2)
        ),
    },
)
cards = st.sampled_from(
    [
        {"shape": [8, 8, 1], "num_classes": 10, "normalization": "scale", "mean": [0.0], "std": [1.0]},
        {"shape": [28, 28, 1], "num_classes": 10, "normalization": "standardize", "mean": [33.0], "std": [78.0]},
        {"shape": [32, 32, 3], "num_classes": 5, "normalization": "scale", "mean": [0.0] * 3, "std": [1.0] * 3},
    ]
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variant=variants, card=cards)
def test_any_variant_builds_or_names_the_bad_key(variant, card):
    try:
        checked = validate_variant(variant, "variants.v")
        _, model = models.build_model(checked, card, "variants.v")
    except ConfigError as error:
        message = str(error)
        assert message.startswith("variants.v"), message
        assert "\n" not in message
        return
    assert model.output.shape[-1] >= 1
    assert len(model.output.shape) == 2
