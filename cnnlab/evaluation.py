"""Test-set evaluation: metrics, confusion data and per-image predictions.

A model may have more outputs than the dataset has classes (a tutorial head such as
Dense(20, sigmoid) for 10 classes): predictions are the argmax over every output, an
output index >= num_classes counts as wrong and is named `output_<i>`, and per-class
metrics cover the real classes only.
"""

import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from cnnlab import saved_layers  # noqa: F401 (registers the custom layers model.keras files may hold)
from cnnlab.data.prepared import dataset_id, read_card, read_split
from cnnlab.errors import DataError
from cnnlab.fileio import atomic_path, load_json, require, write_json, write_text
from cnnlab.layout import (
    confusion_path,
    details_path,
    eval_dir,
    metrics_path,
    model_dir,
    per_class_path,
    prepared_dir,
    train_command,
)
from cnnlab.per_image import details_record, split_fingerprint

PREDICT_BATCH_SIZE = 256
TOP_K = 5


def load_test_split(root):
    """(x, y, card): the raw uint8 test images, their int labels and the dataset card."""
    prepared = prepared_dir(root)
    x, y = read_split(prepared, "test")
    if len(x) == 0:
        raise DataError(f"{prepared / 'test.npz'}: has no images; check data.max_test / the dataset source")
    return x, y, read_card(prepared)


def load_model(path, command):
    """A saved inference model; `command` is what produces it (named when it is missing)."""
    path = require(path, command)
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        # Keras calls such a file "File not found"
        raise DataError(
            f"{path}: damaged or cut short (not a complete .keras zip archive); rerun `{command}` to rebuild it"
        )
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # keras raises many types for a corrupt or foreign file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: cannot load the model ({first_line})") from None


def output_names(classes, width):
    """Names of the model's outputs: the class names, then `output_<i>` for any extra outputs."""
    if width < len(classes):
        raise DataError(f"the model has {width} outputs but the dataset has {len(classes)} classes")
    return list(classes) + [f"output_{i}" for i in range(len(classes), width)]


def check_input_shape(model, images, source):
    expected = tuple(model.input_shape[1:])
    if tuple(images.shape[1:]) != expected:
        raise DataError(
            f"{source}: images are {tuple(images.shape[1:])} but the model expects {expected}; "
            f"retrain after changing data.image_size or data.channels"
        )


def predict_probabilities(model, images, batch_size=PREDICT_BATCH_SIZE, tta=False):
    """Model outputs (float32, N x outputs) for raw 0-255 images, one batch at a time.

    `tta` (a variant's `tta` setting): true or "flip" averages each image's outputs with its
    mirror's; "flip_shift" (airbench94's test-time augmentation) also averages both mirrored
    and unmirrored copies shifted 1 pixel up-left and down-right, weighted 1/4, 1/4 and 1/8 each.
    """
    batches = []
    for start in range(0, len(images), batch_size):
        views = tta_views(images[start : start + batch_size].astype(np.float32), tta)
        outputs = sum(weight * np.asarray(model.predict_on_batch(view)) for weight, view in views)
        batches.append(np.asarray(outputs, dtype=np.float32))
    return np.concatenate(batches)


def tta_views(batch, tta):
    """(weight, images) pairs whose weighted outputs sum to the prediction; shifted views take
    the mirror image of the border row/column (reflect padding)."""
    if not tta:
        return [(1.0, batch)]
    mirrored = batch[:, :, ::-1, :]
    if tta in (True, "flip"):
        return [(0.5, batch), (0.5, mirrored)]
    padded = np.pad(batch, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    height, width = batch.shape[1:3]
    up_left, down_right = padded[:, :height, :width], padded[:, 2:, 2:]
    shifted = [up_left, up_left[:, :, ::-1, :], down_right, down_right[:, :, ::-1, :]]
    return [(0.25, batch), (0.25, mirrored)] + [(0.125, view) for view in shifted]


def crossentropy(labels, probabilities):
    """Mean sparse categorical crossentropy, as Keras computes it.

    The outputs are renormalized to sum to 1 first: for a softmax head this changes
    nothing, for a head such as Dense(20, sigmoid) it turns the outputs into a distribution.
    """
    distribution = probabilities / np.maximum(probabilities.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)
    losses = keras.losses.sparse_categorical_crossentropy(labels, distribution)
    return float(np.mean(keras.ops.convert_to_numpy(losses)))


def compute_metrics(labels, probabilities, classes):
    """The test scores metrics/<variant>.json holds, flat: accuracy, loss, top-5 (more than 5
    classes) and macro F1 over the real classes."""
    predicted = probabilities.argmax(axis=1)
    metrics = {
        "test_accuracy": float(accuracy_score(labels, predicted)),
        "test_loss": crossentropy(labels, probabilities),
    }
    if len(classes) > TOP_K:
        metrics["test_top5_accuracy"] = float(
            top_k_accuracy_score(labels, probabilities, k=TOP_K, labels=np.arange(probabilities.shape[1]))
        )
    metrics["macro_f1"] = float(
        f1_score(labels, predicted, labels=np.arange(len(classes)), average="macro", zero_division=0)
    )
    return metrics


def per_class_frame(labels, probabilities, classes):
    """Precision, recall, F1 and support of each class on the test split, in class order
    (eval/<variant>/per_class.csv, a DVC bar chart; kept out of the metrics so that `dvc exp
    show` has a handful of columns per variant whatever the number of classes)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, probabilities.argmax(axis=1), labels=np.arange(len(classes)), zero_division=0
    )
    return pd.DataFrame(
        {"class": list(classes), "precision": precision, "recall": recall, "f1": f1, "support": support}
    )


def training_metrics(directory, variant):
    """Size and training facts of a trained variant (summary.json, training.json, history.json).

    Only the training time is a timing here: it is what a person compares variants by, and a
    variant whose stages DVC did not rerun keeps its file, so `dvc exp show --only-changed`
    shows it for the retrained variants only. Throughput (images/s) stays in training.json and
    the comparison table."""
    command = train_command(variant)
    summary = load_json(Path(directory) / "summary.json", command)
    training = load_json(Path(directory) / "training.json", command)
    history = load_json(Path(directory) / "history.json", command)
    val_accuracy = history.get("val_accuracy")
    return {
        "best_val_accuracy": max(val_accuracy) if val_accuracy else None,
        "best_epoch": training.get("best_epoch"),
        "epochs_run": training.get("epochs_run"),
        "params": summary.get("total_params"),
        "train_seconds": training.get("train_seconds"),
    }


def predictions_frame(labels, probabilities, names):
    """One row per test image: index, actual and predicted names, probability of the prediction."""
    predicted = probabilities.argmax(axis=1)
    names = np.asarray(names, dtype=object)
    return pd.DataFrame(
        {
            "index": np.arange(len(labels)),
            "actual": names[labels],
            "predicted": names[predicted],
            "probability": probabilities[np.arange(len(labels)), predicted],
        }
    )


def confusion_frame(labels, probabilities, names, num_classes):
    """Counts, rows = actual class, columns = predicted output.

    Columns are the classes plus every extra output (`output_<i>`) that was predicted at
    least once; extra outputs never predicted are left out.
    """
    matrix = confusion_matrix(labels, probabilities.argmax(axis=1), labels=np.arange(len(names)))
    matrix = matrix[:num_classes]
    used = [i for i in range(num_classes, len(names)) if matrix[:, i].any()]
    columns = list(range(num_classes)) + used
    return pd.DataFrame(
        matrix[:, columns], index=pd.Index(names[:num_classes], name="actual"), columns=[names[i] for i in columns]
    )


def confusion_counts(confusion):
    """The confusion matrix in long format, a row per (actual, predicted) pair: the data of the
    variant's confusion chart in `dvc plots show` (.dvc/plots/confusion_counts.json), small
    enough for git where one row per test image is not."""
    long = confusion.rename_axis(columns="predicted").stack().rename("images").reset_index()
    return long[["actual", "predicted", "images"]]


def load_variant_model(root, variant):
    """The inference model in models/<variant>/model.keras."""
    return load_model(model_dir(root, variant) / "model.keras", train_command(variant))


def evaluate_variant(variant, root=".", tta=False, batch_size=PREDICT_BATCH_SIZE, model=None):
    """Evaluate models/<variant>/ on the test split; write metrics/<variant>.json and eval/<variant>/.

    `model`: the variant's model if the caller has loaded it already (load_variant_model)."""
    images, labels, card = load_test_split(root)
    directory = model_dir(root, variant)
    model = model or load_variant_model(root, variant)
    check_input_shape(model, images, prepared_dir(root) / "test.npz")
    probabilities = predict_probabilities(model, images, batch_size, tta)
    names = output_names(card["classes"], probabilities.shape[1])

    metrics = compute_metrics(labels, probabilities, card["classes"])
    facts = training_metrics(directory, variant)
    best_epoch = facts.pop("best_epoch")  # kept out of the metrics: `dvc exp show` columns are few
    metrics.update(facts)
    metrics["dataset"] = dataset_id(card)
    confusion = confusion_frame(labels, probabilities, names, card["num_classes"])
    with atomic_path(eval_dir(root, variant)) as tmp:
        tmp.mkdir()
        np.save(tmp / "probabilities.npy", probabilities)
        write_text(
            tmp / "predictions.csv",
            predictions_frame(labels, probabilities, names).to_csv(index=False, float_format="%.6f"),
        )
        write_text(tmp / "confusion.csv", confusion.to_csv())
    write_text(
        per_class_path(root, variant),
        per_class_frame(labels, probabilities, card["classes"]).to_csv(index=False, float_format="%.6f"),
    )
    write_text(confusion_path(root, variant), confusion_counts(confusion).to_csv(index=False))
    correct = probabilities.argmax(axis=1) == labels
    write_json(details_path(root, variant), details_record(correct, split_fingerprint(images, labels), best_epoch))
    write_json(metrics_path(root, variant), metrics)
    return metrics
