"""Stage repeat@<variant>: the variant trained again at more seeds, in one process, each run
scored on the test split exactly as evaluate@<variant> scores the main run; their accuracies,
per-image correctness and spread go to metrics/repeats/<variant>.json (cnnlab.per_image).

The seeds are train.seed (the main run, read back from its metrics rather than trained again),
train.seed + 1, ... Each extra run is training.train_variant with only the seed changed, so it
resumes from its epoch checkpoint after a kill like any training. A finished run's per-image
correctness is kept in data/checkpoints/<variant>/repeats/, named by the fingerprint of
everything that shaped it, the training code included (as its checkpoint is): a killed stage
goes on with the next seed, and asking for more runs later trains only the new seeds.
TensorFlow is imported only when a seed is trained, so a stage capped to the main run alone
(`repeats.max_runs: 1`, the quick look) takes about a second.
"""

import tempfile
from pathlib import Path

import numpy as np

from cnnlab.code_fingerprint import training_code_fingerprint
from cnnlab.data.prepared import read_split
from cnnlab.errors import ConfigError, DataError
from cnnlab.fileio import load_json, read_json, write_json
from cnnlab.layout import (
    checkpoint_dir,
    details_path,
    evaluate_command,
    prepared_dir,
    repeat_command,
    repeats_path,
)
from cnnlab.per_image import encode_correct, record_correct, split_fingerprint
from cnnlab.statistics import seed_spread


def repeat_seeds(seed, runs):
    """The seeds of `runs` runs: the main run's, then the next ones."""
    return [seed + offset for offset in range(runs)]


def repeat_variant(name, variant, train, runs, root="."):
    """Train `name` at the seeds after train.seed until it has `runs` runs, and write its record."""
    if variant["distribute"] == "multi_worker" or variant["cpu_replicas"]:
        raise ConfigError(
            f"repeats.runs.{name}: repeats train in one process, which variants.{name}.distribute: multi_worker "
            f"and variants.{name}.cpu_replicas cannot; run the seeds as experiments (`dvc exp run -S train.seed=...`)"
        )
    images, labels = read_split(prepared_dir(root), "test")
    test_split = split_fingerprint(images, labels)
    seeds = repeat_seeds(train["seed"], runs)
    accuracies, corrects = [], []
    for seed in seeds:
        if seed == train["seed"]:
            correct = main_run(root, name, test_split)
        else:
            correct = seed_run(root, name, variant, {**train, "seed": seed}, images, labels)
        accuracies.append(float(np.mean(correct)))
        corrects.append(correct)
        print(f"{name}: seed {seed}: test accuracy {accuracies[-1]:.4f}", flush=True)
    record = repeats_record(seeds, accuracies, corrects, test_split)
    write_json(repeats_path(root, name), record)
    return record


def repeats_record(seeds, accuracies, corrects, test_split):
    """metrics/repeats/<variant>.json: every run's seed, test accuracy and per-image correctness
    (the main run first), and the spread of the accuracies (n, mean, sample std, min, max)."""
    spread = seed_spread(accuracies)
    return {
        "n": spread.n,
        "mean": spread.mean,
        "std": spread.std,
        "min": spread.min,
        "max": spread.max,
        "seeds": list(seeds),
        "test_accuracies": [float(accuracy) for accuracy in accuracies],
        "test_split": test_split,
        "images": len(corrects[0]),
        "correct": [encode_correct(correct) for correct in corrects],
    }


def main_run(root, name, test_split):
    """The main run's per-image correctness (evaluate@<name>), checked to be on this test split."""
    details = load_json(details_path(root, name), evaluate_command(name))
    if details.get("test_split") != test_split:
        raise DataError(
            f"{details_path(root, name)}: scored on another test split than data/prepared/; "
            f"rerun `{evaluate_command(name)}` before `{repeat_command(name)}`"
        )
    return record_correct(details, details_path(root, name))


def results_dir(root, name):
    return Path(root) / "data" / "checkpoints" / name / "repeats"


def seed_run(root, name, variant, train, images, labels):
    """One extra seed: trained (or its kept result read back), then scored on the test split."""
    backup_dir = checkpoint_dir(
        root, name, [variant, train, training_code_fingerprint()], prepared_dir(root) / "card.json"
    )
    result = results_dir(root, name) / f"{backup_dir.name}.json"
    if result.exists():
        print(f"{name}: seed {train['seed']}: done before this run was interrupted, read back", flush=True)
        return record_correct(read_json(result), result)
    import keras

    from cnnlab.evaluation import load_model, predict_probabilities
    from cnnlab.training import train_variant

    keras.backend.clear_session()  # each run starts from the same global state as a fresh process
    with tempfile.TemporaryDirectory(prefix=f"cnnlab-{name}-seed{train['seed']}-") as scratch:
        out_dir = Path(scratch) / "model"
        train_variant(name, variant, train, prepared_dir(root), out_dir, live_dir=None, backup_dir=backup_dir)
        model = load_model(out_dir / "model.keras", repeat_command(name))
        probabilities = predict_probabilities(model, images, tta=variant["tta"])
    correct = probabilities.argmax(axis=1) == labels
    write_json(result, {"seed": train["seed"], "images": len(correct), "correct": encode_correct(correct)})
    return correct
