"""Where each file of the pipeline lives and the command that produces it (docs/design.md).

Paths are relative to the project root `root`. Keras-free, so every stage can name a path
or the command to run without loading TensorFlow.
"""

import hashlib
import json
from pathlib import Path

PREPARE = "dvc repro prepare"
PREPARED_DIR = Path("data/prepared")
DOWNLOAD_DIR = Path("data/downloads")  # gitignored cache, not a DVC output
CHECKPOINTS_DIR = Path("data/checkpoints")  # resume state, outside DVC's outputs
REPORT_DIR = Path("report")
RUNNING_DIR = Path("dvclive/_running")  # a top-level DVC metric folder; empty when nothing trains


def train_command(variant):
    return f"dvc repro train@{variant}"


def evaluate_command(variant):
    return f"dvc repro evaluate@{variant}"


def export_command(variant):
    return f"dvc repro export@{variant}"


def prepared_dir(root="."):
    return Path(root) / PREPARED_DIR


def model_dir(root, variant):
    return Path(root) / "models" / variant


def live_dir(root, variant):
    """dvclive's per-epoch log of the variant's training."""
    return Path(root) / "dvclive" / variant


def eval_dir(root, variant):
    return Path(root) / "eval" / variant


def metrics_path(root, variant):
    return Path(root) / "metrics" / f"{variant}.json"


def per_class_path(root, variant):
    """Per-class precision/recall/F1 on the test split: git-tracked, beside the DVC-cached eval files."""
    return Path(root) / "metrics" / "per_class" / f"{variant}.csv"


def details_path(root, variant):
    """What evaluate@<variant> records beside its metrics that is no `dvc exp show` column: the best
    epoch and each test image's correctness (git-tracked, cnnlab.per_image)."""
    return Path(root) / "metrics" / "details" / f"{variant}.json"


def confusion_path(root, variant):
    """Confusion counts on the test split, long format (actual, predicted, images): git-tracked, a DVC plot."""
    return Path(root) / "metrics" / "confusion" / f"{variant}.csv"


def repeats_path(root, variant):
    """repeat@<variant>'s runs over several seeds: per-seed accuracy and correctness, and their spread."""
    return Path(root) / "metrics" / "repeats" / f"{variant}.json"


def running_live_path(root, variant):
    """The latest epoch of a training still running (dvclive's summary): a DVC metric only while
    the file exists, so `dvc exp show` follows the run and `dvc metrics show` lists finished
    variants once each."""
    return Path(root) / RUNNING_DIR / f"{variant}.json"


def repeat_command(variant):
    return f"dvc repro repeat@{variant}"


# What export@<variant> writes into exports/<variant>/: each format's file, and its name in tables.
EXPORT_FORMATS = {
    "tflite": ("model.tflite", "LiteRT float"),
    "tflite_dynamic": ("model_dynamic.tflite", "LiteRT dynamic-range int8"),
    "onnx": ("model.onnx", "ONNX"),
}


def exports_dir(root, variant):
    """The variant's exported files (one per format) and the card.json predict needs beside them."""
    return Path(root) / "exports" / variant


def export_metrics_path(root, variant):
    """Size, latency and test accuracy of each exported file: a plain output, not a DVC metric
    (keeps `dvc exp show` at a handful of columns per variant)."""
    return Path(root) / "metrics" / "export" / f"{variant}.json"


def plots_dir(root, variant):
    return Path(root) / "plots" / variant


def comparison_dir(root="."):
    return Path(root) / "plots"


def checkpoint_dir(root, variant, settings, card_path):
    """Resume state of one training run, keyed by everything that shapes it (`settings`: the
    variant's and train's, and cnnlab.code_fingerprint.training_code_fingerprint(); and the
    dataset card), so a changed variant or code never resumes from a stale checkpoint."""
    fingerprint = json.dumps(settings, sort_keys=True).encode() + Path(card_path).read_bytes()
    return Path(root) / CHECKPOINTS_DIR / variant / hashlib.sha256(fingerprint).hexdigest()[:16]
