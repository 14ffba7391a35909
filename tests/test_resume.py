"""Resuming a killed run: the checkpoint's commit point, the CSV log, dvclive, early stopping."""

import csv
import json

import keras
import numpy as np

from cnnlab.resume import (
    EpochCheckpoint,
    ResumableEarlyStopping,
    end_live_log,
    keep_history_before,
    live_log,
    read_history,
    resumed_epoch,
    stopped_early,
)
from cnnlab.training import progress_metrics


def tiny_model(value):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.set_weights([np.full((2, 1), value, np.float32), np.full((1,), value, np.float32)])
    return model


def test_checkpoint_restores_the_last_committed_epoch_and_keeps_one_weights_file(tmp_path):
    checkpoint = EpochCheckpoint(tmp_path)
    checkpoint.set_model(tiny_model(1.0))
    checkpoint.on_epoch_end(0)
    checkpoint.set_model(tiny_model(2.0))
    checkpoint.on_epoch_end(1)
    assert resumed_epoch(tmp_path) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint.json", "epoch-0002.keras"]

    restored = tiny_model(0.0)
    resumed = EpochCheckpoint(tmp_path)
    resumed.set_model(restored)
    resumed.on_train_begin()
    np.testing.assert_array_equal(restored.get_weights()[0], np.full((2, 1), 2.0))


def test_a_kill_while_saving_weights_leaves_the_previous_checkpoint_usable(tmp_path):
    checkpoint = EpochCheckpoint(tmp_path)
    checkpoint.set_model(tiny_model(1.0))
    checkpoint.on_epoch_end(0)
    (tmp_path / "epoch-0002.keras").write_bytes(b"PK half written")  # killed before the commit

    restored = tiny_model(0.0)
    resumed = EpochCheckpoint(tmp_path)
    resumed.set_model(restored)
    resumed.on_train_begin()
    assert resumed_epoch(tmp_path) == 1
    np.testing.assert_array_equal(restored.get_weights()[0], np.full((2, 1), 1.0))


def test_no_checkpoint_means_epoch_zero(tmp_path):
    assert (resumed_epoch(tmp_path), stopped_early(tmp_path)) == (0, False)


def test_checkpoint_records_that_early_stopping_ended_the_run(tmp_path):
    checkpoint = EpochCheckpoint(tmp_path)
    checkpoint.set_model(tiny_model(1.0))
    checkpoint.on_epoch_end(0)
    assert not stopped_early(tmp_path)
    checkpoint.model.stop_training = True  # as EarlyStopping, which runs before it, sets it
    checkpoint.on_epoch_end(1)
    assert (resumed_epoch(tmp_path), stopped_early(tmp_path)) == (2, True)


def test_resume_drops_the_log_rows_of_epochs_it_trains_again(tmp_path):
    """Killed after logging epoch 2 but before checkpointing it: the rerun starts at epoch 2."""
    log = tmp_path / "history.csv"
    log.write_text("epoch,loss\n0,1.0\n1,0.8\n2,0.7\n")
    keep_history_before(log, 2)
    assert log.read_text() == "epoch,loss\n0,1.0\n1,0.8\n"
    keep_history_before(tmp_path / "missing.csv", 2)
    assert not (tmp_path / "missing.csv").exists()


def test_read_history_leaves_out_metrics_some_epoch_lacks(tmp_path):
    log = tmp_path / "history.csv"
    log.write_text("epoch,loss,val_loss\n0,1.0,NA\n1,0.5,NA\n")
    assert read_history(log) == {"loss": [1.0, 0.5]}


def read_tsv(path):
    with open(path, newline="") as handle:
        return [(int(row["step"]), float(row[path.stem])) for row in csv.DictReader(handle, delimiter="\t")]


def test_live_log_is_rebuilt_from_the_committed_epochs_then_continues(tmp_path):
    log, live = tmp_path / "history.csv", tmp_path / "dvclive" / "small"
    log.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss,epoch_seconds\n0,0.5,1.2,0.4,1.3,9\n"
        "1,0.6,1.0,0.55,1.1,9\n2,0.7,0.9,0.6,1.0,9\n"
    )
    (live / "plots/metrics/eval").mkdir(parents=True)
    (live / "plots/metrics/eval/accuracy.tsv").write_text("step\taccuracy\n0\t0.4\n1\t0.55\n2\t0.6\n3\t0.9\n")

    # killed after epoch 3 was logged live but before it was checkpointed: the run resumes at epoch 2
    callback = live_log(live, log, first_epoch=2, selected=progress_metrics)
    callback.on_epoch_end(2, {"accuracy": 0.8, "loss": 0.5, "val_accuracy": 0.65, "val_loss": 0.9})

    assert read_tsv(live / "plots/metrics/eval/accuracy.tsv") == [(0, 0.4), (1, 0.55), (2, 0.65)]
    summary = json.loads((tmp_path / "dvclive/_running/small.json").read_text())
    assert summary == {"eval": {"accuracy": 0.65, "loss": 0.9}, "step": 2}
    assert not (live / "metrics.json").exists(), "a finished run's latest epoch is no row of `dvc metrics show`"
    end_live_log(live)
    assert not (tmp_path / "dvclive/_running/small.json").exists()


def test_a_single_committed_epoch_resumes_at_step_one(tmp_path):
    """dvclive's own resume=True would log the next epoch at step 0 again."""
    log = tmp_path / "history.csv"
    log.write_text("epoch,loss,val_loss\n0,1.2,1.3\n")
    callback = live_log(tmp_path / "dvclive" / "small", log, first_epoch=1, selected=progress_metrics)
    callback.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.1})

    assert read_tsv(tmp_path / "dvclive/small/plots/metrics/eval/loss.tsv") == [(0, 1.3), (1, 1.1)]


def test_progress_metrics_are_the_main_heads_validation_scores():
    logs = {
        "loss": 2.0,
        "val_loss": 1.9,
        "val_predictions_loss": 1.5,
        "val_predictions_accuracy": 0.6,
        "val_aux1_accuracy": 0.5,
        "predictions_accuracy": 0.7,
        "epoch_seconds": 3.0,
    }
    assert progress_metrics(logs, prefix="predictions_") == {"val_loss": 1.5, "val_accuracy": 0.6}
    assert progress_metrics({"loss": 1.0, "accuracy": 0.5}, validation=False) == {"loss": 1.0, "accuracy": 0.5}


def test_resumed_early_stopping_without_a_log_starts_afresh(tmp_path):
    """A multi-worker run's other workers resume with the chief's epoch but no log of their own."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    stopping = ResumableEarlyStopping(
        tmp_path, first_epoch=3, monitor="val_loss", patience=2, restore_best_weights=True
    )
    stopping.set_model(model)

    stopping.on_train_begin()

    assert (stopping.wait, stopping.best, stopping.best_weights) == (0, None, None)


def test_resumed_early_stopping_replays_the_logged_epochs(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,0.9\n1,0.8,0.7\n2,0.7,0.75\n3,0.6,0.8\n")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = [np.full((2, 1), 7.0, np.float32), np.full((1,), 7.0, np.float32)]
    with open(tmp_path / "best_weights.npz", "wb") as handle:
        np.savez(handle, *best)
    stopping = ResumableEarlyStopping(
        tmp_path, first_epoch=3, monitor="val_loss", patience=3, restore_best_weights=True, mode="min"
    )
    stopping.set_model(model)

    stopping.on_train_begin()

    assert (stopping.wait, stopping.best, stopping.best_epoch) == (1, 0.7, 1)  # epoch 3 is not replayed
    for restored, saved in zip(stopping.best_weights, best):
        np.testing.assert_array_equal(restored, saved)
