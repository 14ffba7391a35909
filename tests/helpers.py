"""Shared test helpers: tiny prepared datasets in the pipeline's on-disk format."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def committed(path):
    """The file as the last commit has it (the workspace copy outside a git checkout): tests of
    the committed results hold whatever a user's later runs leave in the workspace."""
    shown = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=REPO, capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else (REPO / path).read_text(encoding="utf-8")


def write_prepared(directory, shape=(16, 16, 3), num_classes=4, counts=(240, 48, 80), seed=0):
    """A learnable synthetic dataset: each class brightens its own quadrant."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    height, width, _ = shape
    for split, count in zip(("train", "val", "test"), counts):
        y = np.arange(count) % num_classes
        x = rng.integers(0, 170, (count, *shape)).astype("uint8")
        for label in range(num_classes):
            rows = slice(0, height // 2) if label % 2 == 0 else slice(height // 2, height)
            cols = slice(0, width // 2) if label // 2 % 2 == 0 else slice(width // 2, width)
            x[y == label, rows, cols] += 50
        np.savez(directory / f"{split}.npz", x=x, y=y.astype("int64"))
    card = {
        "name": "synthetic",
        "classes": [f"class{i}" for i in range(num_classes)],
        "num_classes": num_classes,
        "shape": list(shape),
        "counts": dict(zip(("train", "val", "test"), counts)),
        "normalization": "scale",
        "mean": [0.0] * shape[2],
        "std": [1.0] * shape[2],
    }
    (directory / "card.json").write_text(json.dumps(card))
    return card


def small_variant(**overrides):
    variant = {
        "layers": [
            {"type": "conv", "filters": 8},
            {"type": "maxpool"},
            {"type": "dropout", "rate": 0.2},
            {"type": "flatten"},
            {"type": "dense", "units": 16},
            {"type": "dense", "units": "classes", "activation": "softmax"},
        ],
        "optimizer": {"name": "adam", "learning_rate": 0.003},
        "batch_size": 16,
        "epochs": 3,
    }
    variant.update(overrides)
    return variant


def write_params(directory, variants, data=None, train=None):
    params = {"data": data or {"dataset": "digits"}, "train": train or {}, "variants": variants}
    (Path(directory) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_stage(directory, *args, check=True, timeout=300):
    """Run `python -m stages.<args>` in `directory` with the repository on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=directory, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def checkpointed_epochs(directory, variant="small"):
    """Epochs committed to the checkpoint of `variant`'s run in progress under `directory`."""
    from cnnlab.resume import resumed_epoch

    return max(
        (resumed_epoch(folder) for folder in (Path(directory) / "data/checkpoints" / variant).glob("*")), default=0
    )


def kill_once_checkpointed(processes, directory, epochs, timeout=120):
    """SIGKILL every process once the run under `directory` has checkpointed `epochs` epochs;
    fails if any of them ended before."""
    deadline = time.time() + timeout
    while time.time() < deadline and all(process.poll() is None for process in processes):
        if checkpointed_epochs(directory) >= epochs:
            break
        time.sleep(0.02)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    for process in processes:
        process.communicate()
    assert [process.returncode for process in processes] == [-signal.SIGKILL] * len(processes), (
        "training ended before it could be killed"
    )


STAGE_ENV = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}


def start_training(directory):
    """`python -m stages.train small` in `directory`, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "stages.train", "small"],
        cwd=directory,
        env=STAGE_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after_epochs_and_rerun(directory, epochs):
    """Train in a subprocess, kill -9 it once `epochs` epochs are checkpointed, rerun the stage;
    returns the epoch the rerun resumed after."""
    process = start_training(directory)
    kill_once_checkpointed([process], directory, epochs)
    assert not (directory / "models/small").exists()
    resumed = run_stage(directory, "stages.train", "small")
    return int(re.search(r"resuming small from its checkpoint after epoch (\d)", resumed.stdout).group(1))


def exp_show_row(rev, name=None, params=None, metrics=None, experiments=None):
    """One row of `dvc exp show --json`: a commit, the workspace or an experiment (the DVC 3 shape).
    A metrics value of None stands for a file DVC could not read."""
    files = {
        path: {"data": data} if data is not None else {"error": {"type": "FileNotFoundError"}}
        for path, data in (metrics or {}).items()
    }
    data = {"rev": rev, "params": {"params.yaml": {"data": params or {}}}, "metrics": files}
    experiments = [{"revs": [row], "name": row["name"], "executor": None} for row in experiments or []] or None
    return {"rev": rev, "name": name, "data": data, "error": None, "experiments": experiments}


def split_markdown_row(line):
    """Cells of a Markdown table row; `\\|` is a pipe inside a cell."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def markdown_table(markdown, index=0):
    """The cells of the document's `index`-th table."""
    tables = re.findall(r"(?:^\|.*\n?)+", markdown, re.MULTILINE)
    return [split_markdown_row(line) for line in tables[index].splitlines()]
