"""cnnlab.experiments: `dvc exp show` records turned into a variant-per-row table."""

import pytest

from cnnlab.errors import UserError
from cnnlab.experiments import variants_by_experiment

RECORDS = [
    {
        "Experiment": None,
        "rev": "workspace",
        "metrics/a.json:test_accuracy": 0.61,
        "metrics/b.json:test_accuracy": 0.83,
        "metrics/b.json:test_loss": 0.5,
        "dvclive/a/metrics.json:eval.accuracy": 0.6,
        "variants.a.epochs": 10,
    },
    {"Experiment": None, "rev": "main", "metrics/a.json:test_accuracy": 0.55, "metrics/b.json:test_accuracy": 0.83},
    {
        "Experiment": "lr-0.01",
        "rev": "1a2b3c4",
        "metrics/a.json:test_accuracy": "!",
        "metrics/b.json:test_accuracy": 0.9,
    },
    {"Experiment": "queued", "rev": "5d6e7f8", "metrics/a.json:test_accuracy": None},
]


def test_a_variant_per_row_an_experiment_per_column_best_first():
    table = variants_by_experiment(RECORDS)
    assert list(table.columns) == ["workspace", "main", "lr-0.01"]
    assert list(table.index) == ["b", "a"]
    assert table.loc["a"].tolist()[:2] == [0.61, 0.55]
    assert table.loc["b", "lr-0.01"] == 0.9
    assert table.loc["a", "lr-0.01"] != table.loc["a", "lr-0.01"]  # "!" (unreadable) is missing, not a value


def test_only_changed_keeps_the_variants_whose_metric_differs():
    assert list(variants_by_experiment(RECORDS[:2], only_changed=True).index) == ["a"]


def test_another_metric():
    assert variants_by_experiment(RECORDS, "test_loss").to_dict() == {"workspace": {"b": 0.5}}


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(UserError, match=r"metrics/<variant>\.json:accuracy; known: test_accuracy, test_loss$"):
        variants_by_experiment(RECORDS, "accuracy")
