"""Throughput of the train stage with a variant's `distribute` none vs mirrored over 2 logical CPUs.

Usage: python bench/distribute.py [--images 10000] [--epochs 3] [--variant seed001_exp1] [--repeats 3]
The two alternate --repeats times and each keeps its best run (other work on a shared
machine only ever slows a run down). Prints one line: images/s of each, their ratio, every
run and the load average.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def write_data(directory, images):
    """Random 32x32x3 CIFAR-shaped arrays: throughput does not depend on the pixels."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True)
    for split, count in (("train", images), ("val", images // 10), ("test", 10)):
        np.savez(
            directory / f"{split}.npz",
            x=rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
            y=rng.integers(0, 10, count).astype("int64"),
        )
    card = {
        "name": "random",
        "classes": [str(i) for i in range(10)],
        "num_classes": 10,
        "shape": [32, 32, 3],
        "normalization": "scale",
        "mean": [0.0] * 3,
        "std": [1.0] * 3,
    }
    (directory / "card.json").write_text(json.dumps(card))


def images_per_second(workdir, variant_name, epochs, execution):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    variant = {**params["variants"][variant_name], "epochs": epochs, **execution}
    params.update(variants={variant_name: variant}, descriptions={})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "-m", "stages.train", variant_name], cwd=workdir, env=env, check=True, capture_output=True
    )
    training = json.loads((workdir / "models" / variant_name / "training.json").read_text())
    history = json.loads((workdir / "models" / variant_name / "history.json").read_text())
    steady = history["epoch_seconds"][1:] or history["epoch_seconds"]  # the first epoch includes tracing
    return training["train_images"] * len(steady) / sum(steady)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variant", default="seed001_exp1")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    modes = {"none": {"distribute": "none"}, "mirrored": {"distribute": "mirrored", "cpu_replicas": 2}}
    runs, loads = {mode: [] for mode in modes}, [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_data(workdir / "data" / "prepared", args.images)
        for _ in range(args.repeats):
            for mode, execution in modes.items():
                runs[mode].append(images_per_second(workdir, args.variant, args.epochs, execution))
                loads.append(os.getloadavg()[0])
    single, mirrored = max(runs["none"]), max(runs["mirrored"])
    every = ", ".join(f"{mode} {'/'.join(f'{value:.0f}' for value in values)}" for mode, values in runs.items())
    print(
        f"distribute {args.variant}: none {single:.0f} img/s, mirrored on 2 logical CPUs {mirrored:.0f} img/s, "
        f"ratio {mirrored / single:.2f} (runs {every}; load avg {min(loads):.1f}-{max(loads):.1f})"
    )


if __name__ == "__main__":
    main()
