"""Pipeline overhead: the `fast` variant trained by cnnlab.training.train_variant vs a bare model.fit.

    python bench/overhead.py [--variant fast] [--images 20000] [--epochs 3]

Same model (cnnlab.models.build_model), same compile (cnnlab.training.compile_model), same
batch size and the same CIFAR-10 training images (a --images subset of the data that
bench/time_to_accuracy.py prepares) and the same validation images each epoch: one batch of
the val split, next to nothing.
  pipeline  train_variant: tf.data batches gathered from the uint8 arrays, per-epoch
            seeded shuffle (and crop/flip), CSV log and checkpoint every epoch, dvclive
  bare      model.fit(x_float32, y_onehot, batch_size) on numpy arrays, no callbacks;
            augmentation by the model's Keras preprocessing layers (build_model's default)
Images/s are over the epochs after the first (graph tracing left out), in one process; the
two sides alternate --repeats times and each keeps its best run (other work on a shared
machine only ever slows a run down).
Prints one final line: ... pipeline 1444 img/s, bare fit 1420 img/s, ratio 1.02 (runs ...; load 1.4-2.7)
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cnnlab.config import load_params, variant_params  # noqa: E402
from cnnlab.data.prepared import read_split  # noqa: E402
from time_to_accuracy import REPO, cifar10_data_params, prepared_cifar10  # noqa: E402


def subset_dir(data_dir, images, val_images, out_dir):
    """A prepared-data folder with the first `images` training and `val_images` validation images."""
    import numpy as np

    out_dir.mkdir(parents=True)
    x, y = read_split(data_dir, "train")
    x_val, y_val = read_split(data_dir, "val")
    np.savez(out_dir / "train.npz", x=x[:images], y=y[:images])
    np.savez(out_dir / "val.npz", x=x_val[:val_images], y=y_val[:val_images])
    shutil.copy(Path(data_dir) / "test.npz", out_dir / "test.npz")
    card = json.loads((Path(data_dir) / "card.json").read_text())
    (out_dir / "card.json").write_text(json.dumps(card))
    return x[:images], y[:images], (x_val[:val_images], y_val[:val_images]), card


def pipeline_images_per_second(name, variant, train_params, data_dir, work):
    from cnnlab.training import train_variant

    work.mkdir()
    train_variant(name, variant, train_params, data_dir, work / "models", work / "dvclive", work / "checkpoints")
    seconds = json.loads((work / "models" / "history.json").read_text())["epoch_seconds"][1:]
    train = json.loads((work / "models" / "training.json").read_text())
    return train["train_images"] * len(seconds) / sum(seconds)


def bare_images_per_second(name, variant, train_params, x, y, val, card):
    import keras
    import numpy as np

    from cnnlab import models
    from cnnlab.training import compile_model, configure_tensorflow

    configure_tensorflow(
        train_params["seed"], train_params["deterministic"], train_params["threads"], mixed_precision=None
    )
    model, _ = models.build_model(variant, card, f"variants.{name}", seed=train_params["seed"])
    compile_model(model, variant, math.ceil(len(x) / variant["batch_size"]) * variant["epochs"], jit_compile=False)
    x = x.astype(np.float32)
    y = keras.utils.to_categorical(y, card["num_classes"])
    val = (val[0].astype(np.float32), keras.utils.to_categorical(val[1], card["num_classes"]))
    fit = dict(batch_size=variant["batch_size"], validation_data=val, verbose=0)
    model.fit(x, y, epochs=1, **fit)  # traces the graph
    started = time.perf_counter()
    model.fit(x, y, epochs=variant["epochs"] - 1, **fit)
    return len(x) * (variant["epochs"] - 1) / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="fast")
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=3, help="at least 2: the first is left out")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    args = parser.parse_args()

    params = load_params(args.params)
    variant = {**variant_params(params, args.variant), "epochs": max(2, args.epochs), "early_stopping": None}
    train_params = {**params["train"], "max_epochs": None}
    data_dir = prepared_cifar10(cifar10_data_params(params))
    with tempfile.TemporaryDirectory(prefix="overhead-bench-") as work:
        work = Path(work)
        x, y, val, card = subset_dir(data_dir, args.images, variant["batch_size"], work / "data")
        loads, pipelines, bares = [os.getloadavg()[0]], [], []
        for repeat in range(args.repeats):
            pipelines.append(
                pipeline_images_per_second(args.variant, variant, train_params, work / "data", work / f"run{repeat}")
            )
            loads.append(os.getloadavg()[0])
            bares.append(bare_images_per_second(args.variant, variant, train_params, x, y, val, card))
            loads.append(os.getloadavg()[0])
    pipeline, bare = max(pipelines), max(bares)
    runs = f"pipeline {'/'.join(f'{v:.0f}' for v in pipelines)}, bare {'/'.join(f'{v:.0f}' for v in bares)}"
    print(
        f"{args.variant} ({len(x)} images x {variant['epochs'] - 1} timed epochs, batch {variant['batch_size']}): "
        f"pipeline {pipeline:.0f} img/s, bare fit {bare:.0f} img/s, ratio {pipeline / bare:.2f} "
        f"(runs {runs}; load avg {min(loads):.1f}-{max(loads):.1f})"
    )


if __name__ == "__main__":
    main()
