import csv
import json

import numpy as np
import pandas as pd
import pytest

import stages.evaluate
import stages.variant_stage
from cnnlab.config import PLOTS, validate_section
from cnnlab.errors import UserError
from cnnlab.evaluation import compute_metrics, evaluate_variant, predict_probabilities
from cnnlab.per_image import decode_correct
from tests.model_fixtures import card_for, identity_model, softmax, write_prepared, write_variant

CLASSES = ["cat", "dog", "bird"]
# 1 x 3 images; identity_model turns pixel k into output k, so these choose the predictions:
# true [cat, cat, dog, dog, bird, bird] -> predicted [cat, dog, dog, dog, bird, cat]
PIXELS = np.array([[200, 50, 0], [100, 180, 0], [0, 255, 30], [60, 120, 90], [0, 0, 255], [150, 20, 140]])
LABELS = np.array([0, 0, 1, 1, 2, 2])


def expected_probabilities():
    return softmax(10.0 * PIXELS / 255)


@pytest.fixture
def known_project(tmp_path, monkeypatch):
    """A project whose `known` variant makes the predictions described above."""
    card = write_prepared(tmp_path, PIXELS.reshape(-1, 1, 3, 1), LABELS, CLASSES)
    write_variant(tmp_path, "known", identity_model(3), card)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stages.variant_stage, "load_params", lambda: stage_params("known"))
    return tmp_path


def stage_params(variant):
    return {"variants": {variant: {"tta": False}}, "plots": validate_section({}, PLOTS, "plots")}


def read_metrics(root, variant="known"):
    return json.loads((root / "metrics" / f"{variant}.json").read_text())


def read_per_class(root, variant="known"):
    return pd.read_csv(root / "metrics" / "per_class" / f"{variant}.csv")


def test_metrics_match_hand_computed_values(known_project):
    stages.evaluate.main(["known"])
    metrics = read_metrics(known_project)

    assert metrics["test_accuracy"] == pytest.approx(4 / 6)
    per_class = read_per_class(known_project)
    assert list(per_class["class"]) == CLASSES
    np.testing.assert_allclose(per_class["precision"], [1 / 2, 2 / 3, 1.0], rtol=1e-5)
    np.testing.assert_allclose(per_class["recall"], [1 / 2, 1.0, 1 / 2], rtol=1e-5)
    np.testing.assert_allclose(per_class["f1"], [1 / 2, 0.8, 2 / 3], rtol=1e-5)
    assert list(per_class["support"]) == [2, 2, 2]
    assert metrics["macro_f1"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)
    true_class_probability = expected_probabilities()[np.arange(6), LABELS]
    assert metrics["test_loss"] == pytest.approx(-np.log(true_class_probability).mean(), rel=1e-5)
    assert "test_top5_accuracy" not in metrics  # only 3 classes


def test_metrics_carry_training_facts(known_project):
    stages.evaluate.main(["known"])
    metrics = read_metrics(known_project)

    assert metrics["params"] == 3 * 3 + 3
    assert (metrics["train_seconds"], metrics["epochs_run"]) == (12.5, 2)
    assert metrics["best_val_accuracy"] == 0.75  # best of the history's val_accuracy
    assert read_details(known_project)["best_epoch"] == 2  # a fact, not a `dvc exp show` column


def read_details(root, variant="known"):
    return json.loads((root / "metrics" / "details" / f"{variant}.json").read_text())


def test_details_record_which_test_images_were_right_for_git(known_project):
    stages.evaluate.main(["known"])
    details = read_details(known_project)

    assert details["correct"] == ["101110"]  # predicted [cat, dog, dog, dog, bird, cat]
    assert details["images"] == 6 and details["test_split"].startswith("sha256:")
    assert decode_correct(details["correct"]).mean() == read_metrics(known_project)["test_accuracy"]


def test_confusion_counts_are_a_small_git_tracked_chart_source(known_project):
    stages.evaluate.main(["known"])
    rows = (known_project / "metrics" / "confusion" / "known.csv").read_text().splitlines()

    assert rows[0] == "actual,predicted,images" and len(rows) == 1 + 9
    assert {"cat,cat,1", "cat,dog,1", "dog,dog,2", "bird,bird,1", "bird,cat,1", "dog,cat,0"} <= set(rows[1:])


def test_metrics_are_a_handful_of_flat_scalars(known_project):
    """`dvc exp show` makes a column of each key: no nesting, nothing per class, one timing."""
    stages.evaluate.main(["known"])

    assert list(read_metrics(known_project)) == [
        "test_accuracy",
        "test_loss",
        "macro_f1",
        "best_val_accuracy",
        "epochs_run",
        "params",
        "train_seconds",
        "dataset",
    ]


def test_predictions_csv_has_one_named_row_per_test_image(known_project):
    stages.evaluate.main(["known"])
    with open(known_project / "eval" / "known" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))

    assert [(row["index"], row["actual"], row["predicted"]) for row in rows] == [
        ("0", "cat", "cat"),
        ("1", "cat", "dog"),
        ("2", "dog", "dog"),
        ("3", "dog", "dog"),
        ("4", "bird", "bird"),
        ("5", "bird", "cat"),
    ]
    expected = expected_probabilities().max(axis=1)
    assert [float(row["probability"]) for row in rows] == pytest.approx(expected, abs=1e-5)


def test_probabilities_and_confusion_are_saved(known_project):
    stages.evaluate.main(["known"])
    saved = np.load(known_project / "eval" / "known" / "probabilities.npy")
    confusion = (known_project / "eval" / "known" / "confusion.csv").read_text().splitlines()

    assert saved.dtype == np.float32
    np.testing.assert_allclose(saved, expected_probabilities(), rtol=1e-5, atol=1e-7)
    assert confusion == ["actual,cat,dog,bird", "cat,1,1,0", "dog,0,2,0", "bird,1,0,1"]


def test_evaluate_stage_also_draws_the_variant_pictures(known_project):
    stages.evaluate.main(["known"])

    drawn = sorted(path.name for path in (known_project / "plots" / "known").iterdir())
    assert drawn == [
        "confused_pairs.png",
        "confusion.png",
        "confusion_normalized.png",
        "curves.png",
        "filters.png",
        "mistakes.png",
        "per_class.png",
        "predictions.png",
    ]  # no conv: no feature maps


def test_extra_outputs_are_wrong_predictions_named_output_i(tmp_path):
    """A Dense(5, sigmoid) head for 3 classes: outputs 3 and 4 are no class."""
    pixels = np.array([[255, 0, 0, 0, 0], [0, 200, 0, 0, 250], [0, 0, 220, 0, 0], [0, 0, 0, 180, 0]])
    labels = np.array([0, 1, 2, 0])
    card = write_prepared(tmp_path, pixels.reshape(-1, 1, 5, 1), labels, CLASSES)
    write_variant(tmp_path, "wide", identity_model(5, activation="sigmoid"), card)

    metrics = evaluate_variant("wide", tmp_path)

    assert metrics["test_accuracy"] == 0.5
    per_class = read_per_class(tmp_path, "wide").set_index("class")
    assert per_class.loc["cat", "recall"] == 0.5 and per_class.loc["cat", "precision"] == 1.0
    assert per_class.loc["dog"].tolist() == [0.0, 0.0, 0.0, 1]
    assert list(per_class.index) == CLASSES
    outputs = 1 / (1 + np.exp(-10.0 * pixels / 255))
    renormalized = outputs / outputs.sum(axis=1, keepdims=True)
    assert metrics["test_loss"] == pytest.approx(-np.log(renormalized[np.arange(4), labels]).mean(), rel=1e-5)
    predictions = (tmp_path / "eval" / "wide" / "predictions.csv").read_text().splitlines()
    assert [line.split(",")[2] for line in predictions[1:]] == ["cat", "output_4", "bird", "output_3"]
    confusion = (tmp_path / "eval" / "wide" / "confusion.csv").read_text().splitlines()
    assert confusion == ["actual,cat,dog,bird,output_3,output_4", "cat,1,0,0,1,0", "dog,0,0,0,0,1", "bird,0,0,1,0,0"]


def test_top5_accuracy_counts_true_class_among_five_highest():
    classes = [f"c{i}" for i in range(7)]
    ranks = np.array(
        [
            [7, 6, 5, 4, 3, 2, 1],  # true c0 ranked 1st
            [3, 7, 6, 5, 4, 2, 1],  # true c0 ranked 5th
            [2, 7, 6, 5, 4, 3, 1],
        ]
    )  # true c0 ranked 6th
    probabilities = ranks / ranks.sum(axis=1, keepdims=True)

    metrics = compute_metrics(np.zeros(3, dtype=int), probabilities, classes)

    assert metrics["test_top5_accuracy"] == pytest.approx(2 / 3)
    assert metrics["test_accuracy"] == pytest.approx(1 / 3)


def test_batched_prediction_equals_one_pass_and_tta_averages_the_mirror():
    model = identity_model(3)
    images = PIXELS.reshape(-1, 1, 3, 1).astype(np.uint8)

    batched = predict_probabilities(model, images, batch_size=4)
    mirrored = predict_probabilities(model, images[:, :, ::-1], batch_size=6)
    with_tta = predict_probabilities(model, images, batch_size=4, tta=True)

    np.testing.assert_allclose(batched, expected_probabilities(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(with_tta, (batched + mirrored) / 2, rtol=1e-6)


def test_missing_model_names_the_file_and_the_command(known_project, capsys, monkeypatch):
    monkeypatch.setattr(stages.variant_stage, "load_params", lambda: stage_params("ghost"))
    with pytest.raises(SystemExit) as exit_info:
        stages.evaluate.main(["ghost"])

    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(error.splitlines()) == 1
    assert "models/ghost/model.keras" in error and "dvc repro train@ghost" in error


def test_missing_test_split_names_prepare(tmp_path):
    with pytest.raises(UserError, match=r"data/prepared/test.npz.*dvc repro prepare"):
        evaluate_variant("known", tmp_path)


def test_model_with_other_input_shape_is_a_one_line_error(tmp_path):
    write_prepared(tmp_path, PIXELS.reshape(-1, 1, 3, 1), LABELS, CLASSES)
    write_variant(tmp_path, "other", identity_model(4), card_for(CLASSES, (1, 4, 1), 6))

    with pytest.raises(UserError, match=r"test.npz: images are \(1, 3, 1\) but the model expects \(1, 4, 1\)"):
        evaluate_variant("other", tmp_path)
