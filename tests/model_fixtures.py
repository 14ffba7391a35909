"""Tiny projects in the docs/design.md layout (data/prepared/, models/<variant>/), built here
so the evaluation, plotting and predict tests do not depend on the prepare/train code."""

import functools
from pathlib import Path

import keras
import numpy as np

from cnnlab.evaluation import evaluate_variant
from cnnlab.fileio import write_json

CLASSES = ["airplane", "bird", "cat", "deer", "dog", "frog"]
SHAPE = (16, 16, 3)
VARIANT = "tiny"


def card_for(classes, shape, test_count):
    return {
        "name": "synthetic",
        "classes": list(classes),
        "num_classes": len(classes),
        "shape": list(shape),
        "counts": {"train": 0, "val": 0, "test": test_count},
        "normalization": "scale",
        "mean": [127.5] * shape[-1],
        "std": [64.0] * shape[-1],
        "val_fraction": 0.1,
        "seed": 0,
    }


def write_prepared(root, images, labels, classes):
    """data/prepared/test.npz and card.json; returns the card."""
    prepared = Path(root) / "data" / "prepared"
    prepared.mkdir(parents=True, exist_ok=True)
    np.savez(prepared / "test.npz", x=images.astype(np.uint8), y=labels.astype(np.int64))
    card = card_for(classes, images.shape[1:], len(images))
    write_json(prepared / "card.json", card)
    return card


def write_variant(root, name, model, card, history=None, training=None):
    """models/<name>/ with model.keras, card.json, summary.json, history.json, training.json."""
    directory = Path(root) / "models" / name
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    write_json(directory / "card.json", card)
    write_json(
        directory / "summary.json",
        {"layers": [], "total_params": model.count_params(), "trainable_params": model.count_params()},
    )
    write_json(
        directory / "history.json",
        history or {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.75]},
    )
    write_json(
        directory / "training.json",
        training
        or {
            "train_seconds": 12.5,
            "epochs_run": 2,
            "best_epoch": 2,
            "images_per_second": 800.0,
            "batch_size": 32,
            "optimizer": "adam",
            "learning_rate": 0.001,
        },
    )
    return directory


def synthetic_images(count, shape, num_classes, seed):
    """Images whose class shows as a colour and a bright band position, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    rng.shuffle(labels)
    height, width, channels = shape
    colours = np.linspace(40, 215, num_classes)
    images = rng.normal(0, 25, size=(count, *shape))
    for index, label in enumerate(labels):
        images[index] += colours[label] * np.linspace(0.6, 1.4, channels)
        band = label * height // num_classes
        images[index, band : band + max(1, height // num_classes)] += 60
    return np.clip(images, 0, 255).astype(np.uint8), labels


def tiny_cnn(shape, num_classes, seed=0):
    """Rescaling -> Conv2D -> MaxPool -> Conv2D -> Flatten -> Dense softmax."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Rescaling(1 / 255, name="scale"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(20, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_classes, activation="softmax", name="classes"),
        ],
        name=VARIANT,
    )


def train_briefly(model, shape, num_classes, epochs=3):
    """A few epochs on synthetic data: partly right, partly wrong (mistakes to plot)."""
    x, y = synthetic_images(192, shape, num_classes, seed=1)
    x_val, y_val = synthetic_images(48, shape, num_classes, seed=2)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    fit = model.fit(
        x.astype(np.float32),
        y,
        validation_data=(x_val.astype(np.float32), y_val),
        epochs=epochs,
        batch_size=32,
        verbose=0,
    )
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def trained_project(tmp_path_factory):
    """A project root with test data, the trained `tiny` variant and its evaluation; built once
    per test session however many test modules ask for it."""
    return _build_project(tmp_path_factory.getbasetemp() / "tiny_project")


@functools.cache
def _build_project(root):
    root.mkdir()
    images, labels = synthetic_images(60, SHAPE, len(CLASSES), seed=3)
    labels[::4] = (labels[::4] + 1) % len(CLASSES)  # mislabelled: mistakes and confused pairs to plot
    card = write_prepared(root, images, labels, CLASSES)
    model = tiny_cnn(SHAPE, len(CLASSES))
    history = train_briefly(model, SHAPE, len(CLASSES))
    best = int(np.argmax(history["val_accuracy"])) + 1
    write_variant(
        root,
        VARIANT,
        model,
        card,
        history,
        {
            "train_seconds": 1.5,
            "epochs_run": len(history["loss"]),
            "best_epoch": best,
            "images_per_second": 128.0,
            "batch_size": 32,
            "optimizer": "adam",
            "learning_rate": 0.01,
        },
    )
    evaluate_variant(VARIANT, root)
    return root


def identity_model(width, activation="softmax", scale=10.0):
    """Input 1 x width x 1 -> Rescaling(1/255) -> Flatten -> Dense(width) with kernel scale*I, bias 0.

    Output = activation(scale * pixels / 255): the pixels choose the predictions."""
    model = keras.Sequential(
        [
            keras.Input((1, width, 1)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(width, activation=activation),
        ]
    )
    model.layers[-1].set_weights([np.eye(width, dtype=np.float32) * scale, np.zeros(width, np.float32)])
    return model


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
