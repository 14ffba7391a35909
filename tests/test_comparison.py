"""The comparison of every variant (cnnlab.comparison): one table for the compare stage and the report."""

import json

import keras
import pandas as pd
import pytest

import stages.compare
from cnnlab.comparison import architecture, comparison_frame, learning_curves, variant_rows, write_comparison
from cnnlab.config import validate_variant
from cnnlab.errors import UserError
from cnnlab.plotting import plot_comparison
from tests.model_fixtures import VARIANT, trained_project, write_variant

LAYERS = {"layers": [{"type": "flatten"}, {"type": "dense", "units": "classes", "activation": "softmax"}]}


def variants(*names):
    return {name: validate_variant(LAYERS, f"variants.{name}") for name in names}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = trained_project(tmp_path_factory)
    metrics = json.loads((root / "metrics" / f"{VARIANT}.json").read_text())
    better = {**metrics, "test_accuracy": 0.99, "params": 10_000, "train_seconds": 40.0}
    (root / "metrics" / "better.json").write_text(json.dumps(better))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    write_variant(root, "better", model, {}, training={"batch_size": 64, "optimizer": "sgd", "learning_rate": 0.1})
    return root


def test_compare_stage_writes_table_and_chart_best_first(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.setattr(stages.compare, "load_params", lambda: {"variants": variants(VARIANT, "better")})

    stages.compare.main([])

    table = pd.read_csv(project / "plots" / "comparison.csv")
    assert list(table["variant"]) == ["better", VARIANT]
    assert table.loc[0, "optimizer"] == "sgd" and table.loc[0, "params"] == 10_000
    markdown = (project / "plots" / "comparison.md").read_text().splitlines()
    assert [cell.strip() for cell in markdown[0].split("|")[1:4]] == ["variant", "params", "test accuracy"]
    assert [line.split("|")[1].strip() for line in markdown[2:]] == ["better", VARIANT]
    curves = pd.read_csv(project / "plots" / "curves.csv")
    assert list(curves.columns) == ["variant", "epoch", "val_accuracy", "val_loss", "accuracy", "loss"]
    assert list(curves["variant"].drop_duplicates()) == [VARIANT, "better"]
    assert list(curves.loc[curves["variant"] == "better", "epoch"]) == [1, 2]
    chart = plot_comparison(comparison_frame(variant_rows(variants(VARIANT, "better"), project)))
    assert [[t.get_text() for t in ax.texts] for ax in chart.axes] == [["better", VARIANT]] * 2


def test_rows_put_unevaluated_variants_last_in_params_order(project):
    rows = variant_rows(variants("waiting", VARIANT, "better", "also_waiting"), project)

    assert [(row["variant"], row["evaluated"]) for row in rows] == [
        ("better", True),
        (VARIANT, True),
        ("waiting", False),
        ("also_waiting", False),
    ]
    assert list(comparison_frame(rows)["variant"]) == ["better", VARIANT]


def test_training_json_overrides_the_params_settings(project):
    (row,) = variant_rows(variants("better"), project)
    assert (row["optimizer"], row["learning_rate"], row["batch_size"]) == ("sgd", 0.1, 64)


def test_architecture_names_the_family_and_the_options_set_away_from_its_defaults():
    resnet = validate_variant({"family": "resnet", "options": {"depth": 1, "width": 16}}, "variants.r")
    assert architecture(resnet) == "resnet (depth=1)"  # width 16 is the default
    assert architecture(validate_variant({"family": "resnet"}, "variants.r")) == "resnet"
    assert architecture(variants("v")["v"]) == "layers (2 layers)"


def test_comparison_of_an_unevaluated_variant_names_evaluate(project):
    with pytest.raises(UserError, match=r"metrics/nothing.json: missing; run `dvc repro evaluate@nothing`"):
        write_comparison(variants("nothing"), project)


def test_learning_curves_take_each_variants_history(project):
    curves = learning_curves(variants("better"), project)

    assert curves["val_accuracy"].tolist() == [0.4, 0.75] and curves["loss"].tolist() == [1.0, 0.5]


def test_learning_curves_without_the_model_read_dvclives_validation_log(tmp_path):
    logged = tmp_path / "dvclive" / "cloned" / "plots" / "metrics" / "eval"
    logged.mkdir(parents=True)
    # a resumed run logs the step it redid twice; the later value is the run's
    (logged / "accuracy.tsv").write_text("step\taccuracy\n0\t0.3\n1\t0.5\n1\t0.6\n2\t0.7\n")
    (logged / "loss.tsv").write_text("step\tloss\n0\t1.9\n1\t1.4\n2\t1.1\n")

    curves = learning_curves(variants("cloned"), tmp_path)

    assert curves["epoch"].tolist() == [1, 2, 3]
    assert curves["val_accuracy"].tolist() == [0.3, 0.6, 0.7] and curves["val_loss"].tolist() == [1.9, 1.4, 1.1]
    assert curves["accuracy"].isna().all() and curves["loss"].isna().all()
