"""Training: outputs, reproducibility, early stopping, and resuming after a kill -9."""

import csv
import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np

from tests.helpers import (
    STAGE_ENV,
    checkpointed_epochs,
    kill_after_epochs_and_rerun,
    run_stage,
    small_variant,
    start_training,
    write_params,
    write_prepared,
)


def project(tmp_path, name="run", **variant_overrides):
    directory = tmp_path / name
    write_prepared(directory / "data" / "prepared")
    write_params(directory, {"small": small_variant(**variant_overrides)})
    return directory


def read(directory, path):
    return json.loads((directory / path).read_text())


def test_train_writes_model_summary_history_and_dvclive(tmp_path):
    directory = project(tmp_path, epochs=3)
    run_stage(directory, "stages.train", "small")
    training = read(directory, "models/small/training.json")
    assert training["epochs_run"] == 3 and training["train_images"] == 240 and training["batch_size"] == 16
    assert training["train_seconds"] > 0 and training["images_per_second"] > 0
    history = read(directory, "models/small/history.json")
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"}
    assert len(history["val_accuracy"]) == 3
    assert history["accuracy"][-1] > 0.5, "the synthetic task is learnable"
    summary = read(directory, "models/small/summary.json")
    assert summary["total_params"] == 8 * (3 * 9 + 1) + (7 * 7 * 8 * 16 + 16) + (16 * 4 + 4)
    assert [row["type"] for row in summary["layers"]][:3] == ["Rescaling", "Conv2D", "MaxPooling2D"]
    assert "Total params" in (directory / "models/small/summary.txt").read_text()
    curve = (directory / "dvclive/small/plots/metrics/eval/accuracy.tsv").read_text().splitlines()
    assert len(curve) == 1 + 3
    assert not (directory / "dvclive/_running/small.json").exists(), "the live summary ends with the run"
    assert not (directory / "data/checkpoints/small").exists() or not any(
        (directory / "data/checkpoints/small").iterdir()
    )


def test_same_seed_gives_identical_history(tmp_path):
    first, second = project(tmp_path, "a", epochs=2), project(tmp_path, "b", epochs=2)
    for directory in (first, second):
        run_stage(directory, "stages.train", "small")
    strip = lambda h: {k: v for k, v in h.items() if k != "epoch_seconds"}  # noqa: E731
    assert strip(read(first, "models/small/history.json")) == strip(read(second, "models/small/history.json"))


def test_two_float32_runs_give_bit_identical_metrics(tmp_path):
    """`mixed_precision: false` (float32) with train.deterministic: a rerun is the same run, to the last bit."""
    runs = [project(tmp_path, name, epochs=2, mixed_precision=False) for name in ("a", "b")]
    for directory in runs:
        trained = run_stage(directory, "stages.train", "small")
        assert "mixed precision" not in trained.stdout, "float32 throughout"
        run_stage(directory, "stages.evaluate", "small")
    first, second = (read(directory, "metrics/small.json") for directory in runs)
    first.pop("train_seconds"), second.pop("train_seconds")
    assert first == second
    assert read(runs[0], "metrics/details/small.json") == read(runs[1], "metrics/details/small.json")
    probabilities = [(directory / "eval/small/probabilities.npy").read_bytes() for directory in runs]
    assert probabilities[0] == probabilities[1]


def test_a_variants_own_mixed_precision_overrides_trains(tmp_path):
    directory = project(tmp_path, epochs=1, mixed_precision="bfloat16")
    write_params(
        directory, {"small": small_variant(epochs=1, mixed_precision="bfloat16")}, train={"mixed_precision": False}
    )

    trained = run_stage(directory, "stages.train", "small")

    assert "training on the CPU (no GPU found), bfloat16 mixed precision" in trained.stdout


def test_max_epochs_caps_and_early_stopping_stops(tmp_path):
    directory = project(
        tmp_path,
        epochs=50,
        optimizer={"name": "sgd", "learning_rate": 1e-7},
        early_stopping={"monitor": "val_accuracy", "patience": 1},
    )
    write_params(
        directory,
        {
            "small": small_variant(
                epochs=50,
                optimizer={"name": "sgd", "learning_rate": 1e-7},
                early_stopping={"monitor": "val_accuracy", "patience": 1},
            )
        },
        train={"max_epochs": 6},
    )
    run_stage(directory, "stages.train", "small")
    training = read(directory, "models/small/training.json")
    assert training["epochs_planned"] == 6
    assert training["epochs_run"] < 6, "a learning rate of 1e-7 cannot improve val accuracy, so it stops early"


def test_max_batch_size_caps_the_batch_and_scales_the_learning_rate_with_it(tmp_path):
    directory = project(tmp_path, epochs=1)
    variant = small_variant(epochs=1, optimizer={"name": "sgd", "learning_rate": 0.1})
    write_params(directory, {"small": variant}, train={"max_batch_size": 4})
    run_stage(directory, "stages.train", "small")
    training = read(directory, "models/small/training.json")
    assert variant["batch_size"] == 16
    assert training["batch_size"] == 4 and training["learning_rate"] == 0.1 * 4 / 16


def test_unknown_variant_is_one_line_error(tmp_path):
    directory = project(tmp_path)
    result = run_stage(directory, "stages.train", "smal", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: variants.smal: no such variant (did you mean 'small'?); known: small"
    )


def test_killed_training_resumes_and_matches_uninterrupted_run(tmp_path):
    """kill -9 mid-epoch, rerun: it resumes after the last completed epoch and ends where an
    uninterrupted run ends."""
    settings = dict(epochs=5, batch_size=8)
    reference, interrupted = project(tmp_path, "reference", **settings), project(tmp_path, "killed", **settings)
    run_stage(reference, "stages.train", "small")

    resumed_after = kill_after_epochs_and_rerun(interrupted, epochs=2)
    assert 2 <= resumed_after < 5
    expected, actual = read(reference, "models/small/history.json"), read(interrupted, "models/small/history.json")
    assert len(actual["loss"]) == 5
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-4, err_msg=key)
    assert read(interrupted, "models/small/training.json")["epochs_run"] == 5
    with open(interrupted / "dvclive/small/plots/metrics/eval/accuracy.tsv", newline="") as handle:
        assert [row["step"] for row in csv.DictReader(handle, delimiter="\t")] == ["0", "1", "2", "3", "4"]


def test_dvclive_shows_each_epoch_while_training_runs(tmp_path):
    """While the stage runs, `dvc exp show` reads dvclive/_running/<variant>.json and the VS Code
    extension dvclive/<variant>/."""
    directory = project(tmp_path, epochs=40, batch_size=4)
    process = start_training(directory)
    live = directory / "dvclive/_running/small.json"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            if live.exists() and json.loads(live.read_text() or "{}").get("step", 0) >= 1:
                break
            time.sleep(0.05)
        summary = json.loads(live.read_text())
        assert process.poll() is None, "the run ended before its log could be read"
    finally:
        process.kill()
        process.communicate()

    assert summary["step"] >= 1 and set(summary["eval"]) == {"loss", "accuracy"}
    with open(directory / "dvclive/small/plots/metrics/eval/accuracy.tsv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle, delimiter="\t")]
    assert steps[:2] == [0, 1] and steps == list(range(len(steps)))
    assert not (directory / "models/small").exists(), "the model is written only when training ends"


# min_delta 10: no epoch improves on the first, so patience 2 stops after epoch 3 and restores epoch 1
STOPS_AFTER_3_EPOCHS = dict(
    epochs=8, batch_size=4, early_stopping={"monitor": "val_accuracy", "patience": 2, "min_delta": 10}
)


def assert_same_history_and_weights(directory, reference):
    expected, actual = read(reference, "models/small/history.json"), read(directory, "models/small/history.json")
    for key in ("loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-4, err_msg=key)
    for ours, theirs in zip(
        *(keras.saving.load_model(d / "models/small/model.keras").get_weights() for d in (directory, reference))
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_killed_run_with_early_stopping_stops_and_restores_like_an_uninterrupted_run(tmp_path):
    """The early-stopping count and best weights survive the kill: with min_delta 10 no epoch
    improves on the first, so patience 2 stops after epoch 3 and restores epoch 1's weights.
    A resumed run that forgot them would count again from its first epoch and stop later."""
    reference, interrupted = (project(tmp_path, name, **STOPS_AFTER_3_EPOCHS) for name in ("reference", "killed"))
    run_stage(reference, "stages.train", "small")

    assert kill_after_epochs_and_rerun(interrupted, epochs=2) == 2

    assert read(reference, "models/small/training.json")["epochs_run"] == 3
    assert read(interrupted, "models/small/training.json") == {
        **read(reference, "models/small/training.json"),
        **{key: read(interrupted, "models/small/training.json")[key] for key in ("train_seconds", "images_per_second")},
    }
    assert_same_history_and_weights(interrupted, reference)


# stages.train with one more callback, after the checkpoint's: kill -9 once the last epoch is committed
TRAIN_KILLED_BEFORE_OUTPUTS = """
import os, signal, keras
from cnnlab import training
from stages import train

class KillAtTrainEnd(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        os.kill(os.getpid(), signal.SIGKILL)

make_callbacks = training.make_callbacks
training.make_callbacks = lambda *args, **kwargs: make_callbacks(*args, **kwargs) + [KillAtTrainEnd()]
train.main(["small"])
"""


def test_run_killed_after_early_stopping_ended_it_trains_no_further_epoch(tmp_path):
    """Killed after checkpointing the epoch early stopping ended on, before writing the
    outputs: the rerun writes the uninterrupted run's outputs (3 epochs, epoch 1's weights)
    instead of training a fourth epoch."""
    reference, interrupted = (project(tmp_path, name, **STOPS_AFTER_3_EPOCHS) for name in ("reference", "killed"))
    run_stage(reference, "stages.train", "small")

    killed = subprocess.run(
        [sys.executable, "-c", TRAIN_KILLED_BEFORE_OUTPUTS],
        cwd=interrupted,
        env=STAGE_ENV,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert checkpointed_epochs(interrupted) == 3 and not (interrupted / "models/small").exists()
    rerun = run_stage(interrupted, "stages.train", "small")

    assert "resuming small from its checkpoint after epoch 3" in rerun.stdout
    assert read(interrupted, "models/small/training.json")["epochs_run"] == 3
    assert_same_history_and_weights(interrupted, reference)


def test_mirrored_over_two_logical_cpus(tmp_path):
    directory = project(tmp_path)
    write_params(directory, {"small": small_variant(epochs=4, distribute="mirrored", cpu_replicas=2)})
    run_stage(directory, "stages.train", "small")
    training = read(directory, "models/small/training.json")
    assert training["replicas"] == 2 and training["epochs_run"] == 4
    assert read(directory, "models/small/history.json")["accuracy"][-1] > 0.5


def test_auxiliary_heads_report_the_main_head(tmp_path):
    """GoogLeNet trains on three outputs; its history, best epoch and early stopping speak of
    the main head."""
    directory = project(tmp_path)
    write_params(
        directory,
        {
            "inception": {
                "family": "googlenet",
                "options": {"width": 0.125},
                "epochs": 2,
                "batch_size": 16,
                "early_stopping": {"monitor": "val_accuracy", "patience": 3},
            }
        },
    )
    run_stage(directory, "stages.train", "inception")
    history = read(directory, "models/inception/history.json")
    assert {"accuracy", "val_accuracy", "loss", "val_loss", "total_loss", "val_total_loss"} <= set(history)
    assert not any(key.startswith(("predictions_", "val_predictions_")) for key in history)
    assert all(total > main for total, main in zip(history["total_loss"], history["loss"])), "aux losses add up"
    assert read(directory, "models/inception/training.json")["best_epoch"] in (1, 2)


def test_training_without_a_validation_split(tmp_path):
    directory = tmp_path / "run"
    write_prepared(directory / "data" / "prepared", counts=(240, 0, 80))
    write_params(directory, {"small": small_variant(epochs=2)})
    run_stage(directory, "stages.train", "small")
    history = read(directory, "models/small/history.json")
    assert len(history["accuracy"]) == 2 and "val_accuracy" not in history
    assert read(directory, "models/small/training.json")["best_epoch"] == int(np.argmax(history["accuracy"])) + 1
