"""Time to a CIFAR-10 test accuracy of one variant, against seed000_cool3's epoch time.

    python bench/time_to_accuracy.py [--variant fast] [--target 0.8] [--baseline seed000_cool3]
    python bench/time_to_accuracy.py --variant airbench90 --target 0.9
    python bench/time_to_accuracy.py --variant airbench94 --target 0.94

Both variants come from params.yaml (through cnnlab.config.load_params) and are trained by
the pipeline's own code path, cnnlab.training.train_variant (tf.data input, dvclive,
checkpoints, validation each epoch), on CIFAR-10 from ../shared/datasets/cifar10-jpg.tar.gz
prepared by cnnlab.data.preparation.prepare as a `folder` dataset at 32x32x3 with the data section of
params.yaml otherwise (so 45,000 training images with the default val_fraction 0.1).

The bench adds one callback to the variant: test-split accuracy after each epoch (with the
variant's `tta` setting, as the evaluate stage would score it). Its time is left out of the
training time; this is a measurement, never used for model selection. The baseline trains
for --baseline-epochs epochs; its projected time is its steady-state epoch time (epochs after
the first) x its configured epochs.

Prints one final line:
fast: 80% at 8.4 min (epoch 9), final 83.1% (no tta 82.5%) in 9.3 min; seed000_cool3 61.2 s/epoch
-> 102 min/100 epochs; ratio 12.1; load 1.2
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cnnlab.config import load_params, variant_params  # noqa: E402
from cnnlab.data.prepared import read_split  # noqa: E402

CIFAR_JPG = REPO.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def cifar10_data_params(params, **overrides):
    """The params.yaml data section, reading the shared CIFAR-10 JPEG archive as a folder dataset."""
    return {
        **params["data"],
        "dataset": "folder",
        "source": str(CIFAR_JPG),
        "checksum": None,
        "image_size": [32, 32],
        "channels": 3,
        **overrides,
    }


def prepared_cifar10(data_params, cache_root=REPO / "data" / "bench"):
    """data/prepared-style folder for `data_params`, prepared once and cached (data/ is git-ignored)."""
    if not CIFAR_JPG.exists():
        sys.exit(f"error: {CIFAR_JPG} not found (the shared CIFAR-10 JPEG archive)")
    key = hashlib.sha256(json.dumps(data_params, sort_keys=True).encode()).hexdigest()[:12]
    out_dir = Path(cache_root) / f"cifar10-jpg-{key}"
    if not (out_dir / "card.json").exists():
        from cnnlab.data.preparation import prepare

        started = time.perf_counter()
        prepare(data_params, out_dir, Path(cache_root) / "downloads")
        print(f"prepared {out_dir} in {time.perf_counter() - started:.0f} s", flush=True)
    return out_dir


def train_with_extra_callbacks(name, variant, train_params, data_dir, work_dir, extra):
    """cnnlab.training.train_variant with `extra` callbacks appended after the pipeline's own."""
    from cnnlab import training

    original = training.make_callbacks

    def make_callbacks(*args, **kwargs):
        return original(*args, **kwargs) + list(extra)

    training.make_callbacks = make_callbacks
    try:
        training.train_variant(
            name,
            variant,
            train_params,
            data_dir,
            Path(work_dir) / "models" / name,
            Path(work_dir) / "dvclive" / name,
            Path(work_dir) / "checkpoints" / name,
        )
    finally:
        training.make_callbacks = original
    return json.loads((Path(work_dir) / "models" / name / "training.json").read_text())


def test_accuracy_callback(x_test, y_test, tta, target):
    import keras
    import numpy as np

    from cnnlab.evaluation import predict_probabilities

    class TestAccuracy(keras.callbacks.Callback):
        """Test accuracy after each epoch; `train_seconds` excludes the time spent here.

        With `tta`, the TTA score (what evaluate reports) is computed in the epochs whose plain
        accuracy is within 2 points of the target, and after the last: TTA has added at most
        ~1.1 points here, and 6 views of the test split cost minutes on a wide network.
        """

        def __init__(self):
            super().__init__()
            self.rows, self.eval_seconds = [], 0.0

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            begin = time.perf_counter()
            train_seconds = begin - self.started - self.eval_seconds
            plain = float(np.mean(predict_probabilities(self.model, x_test).argmax(1) == y_test))
            row = {"epoch": epoch + 1, "train_seconds": round(train_seconds, 1), "accuracy": plain}
            row["load"] = round(os.getloadavg()[0], 2)
            if tta and (plain >= target - 0.02 or epoch + 1 == self.params["epochs"]):
                scored = predict_probabilities(self.model, x_test, tta=tta)
                row["tta_accuracy"] = float(np.mean(scored.argmax(1) == y_test))
            self.rows.append(row)
            print("test:", json.dumps(row), flush=True)
            self.eval_seconds += time.perf_counter() - begin

    return TestAccuracy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="fast")
    parser.add_argument("--baseline", default="seed000_cool3")
    parser.add_argument("--baseline-epochs", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.80)
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parser.parse_args()

    params = load_params(args.params)
    variant, baseline = variant_params(params, args.variant), variant_params(params, args.baseline)
    data_dir = prepared_cifar10(cifar10_data_params(params))
    x_test, y_test = read_split(data_dir, "test")
    train_params = {**params["train"], "max_epochs": None}

    with tempfile.TemporaryDirectory(prefix="tta-bench-") as work:
        callback = test_accuracy_callback(x_test, y_test, variant["tta"], args.target)
        train_with_extra_callbacks(args.variant, variant, train_params, data_dir, work, [callback])
        rows = callback.rows
        # the baseline in a fresh process-level state is not needed: train_variant re-seeds and rebuilds
        base = train_with_extra_callbacks(
            args.baseline, baseline, {**train_params, "max_epochs": args.baseline_epochs}, data_dir, work, []
        )
        history = json.loads((Path(work) / "models" / args.baseline / "history.json").read_text())

    score = "tta_accuracy" if variant["tta"] else "accuracy"
    hit = next((row for row in rows if row.get(score, 0) >= args.target), None)
    last = rows[-1]
    steady = history["epoch_seconds"][1:] or history["epoch_seconds"]
    base_epoch = sum(steady) / len(steady)
    base_total_min = base_epoch * baseline["epochs"] / 60
    pct = f"{args.target:.0%}"
    final = f"final {last[score]:.1%}" + (f" (no tta {last['accuracy']:.1%})" if variant["tta"] else "")
    final += f" in {last['train_seconds'] / 60:.1f} min"
    loads = [row["load"] for row in rows]
    base_line = (
        f"{args.baseline} {base_epoch:.1f} s/epoch -> {base_total_min:.0f} min/{baseline['epochs']} epochs"
        f" ({base['images_per_second']:.0f} img/s)"
    )
    if hit:
        ratio = base_total_min / (hit["train_seconds"] / 60)
        head = f"{args.variant}: {pct} at {hit['train_seconds'] / 60:.1f} min (epoch {hit['epoch']}), {final}"
        tail = f"ratio {ratio:.1f}"
    else:
        best = max(rows, key=lambda row: row.get(score, row["accuracy"]))
        best_score = best.get(score, best["accuracy"])
        head = f"{args.variant}: {pct} NOT reached (best {best_score:.1%} at epoch {best['epoch']}), {final}"
        tail = "ratio n/a"
    print(f"{head}; {base_line}; {tail}; load avg during {args.variant} {min(loads):.1f}-{max(loads):.1f}")


if __name__ == "__main__":
    main()
