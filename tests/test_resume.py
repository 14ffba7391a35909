"""Resuming a killed run: the checkpoint's commit point, the CSV log, dvclive, early stopping."""

import csv
import json

import keras
import numpy as np
import pytest

from cnnlab.resume import (
    EpochCheckpoint,
    ResumableEarlyStopping,
    end_live_log,
    keep_history_before,
    live_log,
    read_history,
    recover,
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
    checkpoint.set_model(tiny_model(3.0))
    checkpoint.on_epoch_end(2)
    assert resumed_epoch(tmp_path) == 3
    # the epoch before stays, to fall back to if the newest file turns out damaged
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "checkpoint.json",
        "epoch-0002.keras",
        "epoch-0003.keras",
    ]

    restored = tiny_model(0.0)
    resumed = EpochCheckpoint(tmp_path)
    resumed.set_model(restored)
    resumed.on_train_begin()
    np.testing.assert_array_equal(restored.get_weights()[0], np.full((2, 1), 3.0))


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
    with open(tmp_path / "best-weights-0002.npz", "wb") as handle:
        np.savez(handle, *best)
    (tmp_path / "best-weights-0004.npz").write_bytes(b"saved before a kill, never committed")
    (tmp_path / "checkpoint.json").write_text(json.dumps({"epoch": 3, "sha256": {"best-weights-0002.npz": "x"}}))
    stopping = ResumableEarlyStopping(
        tmp_path, first_epoch=3, monitor="val_loss", patience=3, restore_best_weights=True, mode="min"
    )
    stopping.set_model(model)

    stopping.on_train_begin()

    assert (stopping.wait, stopping.best, stopping.best_epoch) == (1, 0.7, 1)  # epoch 3 is not replayed
    assert not (tmp_path / "best-weights-0004.npz").exists()
    for restored, saved in zip(stopping.best_weights, best):
        np.testing.assert_array_equal(restored, saved)


# --- damaged checkpoints (resume.recover) ---


def checkpointed_run(directory, epochs):
    """A run's checkpoint folder after `epochs` epochs: CSV rows (CRLF, as Keras's CSVLogger
    writes them) and a checkpoint of tiny_model(epoch) after each."""
    checkpoint = EpochCheckpoint(directory)
    with open(directory / "history.csv", "w", newline="") as log:
        log.write("epoch,loss\r\n")
        for epoch in range(epochs):
            log.write(f"{epoch},{1.0 / (epoch + 1)}\r\n")
            log.flush()
            checkpoint.set_model(tiny_model(float(epoch + 1)))
            checkpoint.on_epoch_end(epoch)
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def restored_weight(directory):
    model = tiny_model(0.0)
    checkpoint = EpochCheckpoint(directory)
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    return float(model.get_weights()[0][0, 0])


def test_an_intact_checkpoint_is_left_as_it_is(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    files = checkpointed_run(run, 3)
    keep_history_before(run / "history.csv", 3)  # the resumed run rewrites the log: still intact
    assert recover(run) is None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]
    assert resumed_epoch(run) == 3 and restored_weight(run) == 3.0
    assert set(files) == {path.name for path in run.iterdir()}


def cut_short(data):
    return data[: len(data) // 2]


DAMAGES = {
    "truncated weights": ("epoch-0003.keras", cut_short, "epoch-0003.keras does not match its checksum", 2),
    "zeroed weights": (
        "epoch-0003.keras",
        lambda data: bytes(len(data)),
        "epoch-0003.keras does not match its checksum",
        2,
    ),
    "missing weights": ("epoch-0003.keras", None, "epoch-0003.keras is missing", 2),
    "checkpoint.json cut short": ("checkpoint.json", cut_short, "checkpoint.json is unreadable", 0),
    "garbage history.csv": (
        "history.csv",
        lambda data: b"\xff\xfe garbage" * 9,
        "history.csv does not match its checksum",
        0,
    ),
    "last history row cut short": ("history.csv", lambda data: data[:-4], "history.csv does not match its checksum", 2),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_checkpoint_falls_back_and_is_kept_aside(tmp_path, damage):
    name, change, problem, fallback = DAMAGES[damage]
    run = tmp_path / "run"
    run.mkdir()
    checkpointed_run(run, 3)
    if change is None:
        (run / name).unlink()
    else:
        (run / name).write_bytes(change((run / name).read_bytes()))
    found = {path.name: path.read_bytes() for path in run.iterdir()}

    warning = recover(run)

    outcome = f"resuming after epoch {fallback} instead" if fallback else "starting afresh"
    aside = tmp_path / "run.damaged-1"
    assert warning == f"{run}: {problem}; {outcome} (the damaged checkpoint is kept in {aside})"
    assert {path.name: path.read_bytes() for path in aside.iterdir()} == found, "kept as found"
    assert resumed_epoch(run) == fallback
    if fallback:
        assert restored_weight(run) == float(fallback)
        keep_history_before(run / "history.csv", fallback)
        assert read_history(run / "history.csv") == {"loss": [1.0, 0.5]}
        assert recover(run) is None, "the checkpoint it fell back to checks out"
    else:
        assert list(run.iterdir()) == []


def test_a_second_damage_is_kept_beside_the_first(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for _ in range(2):
        checkpointed_run(run, 2)
        (run / "checkpoint.json").write_text("{")
        recover(run)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run", "run.damaged-1", "run.damaged-2"]
