"""What lets a training run killed at any moment resume where it stopped.

A run's checkpoint folder holds `checkpoint.json` (the epochs completed, the files they left
and each file's sha256), that `.keras` file (weights and optimizer state), `history.csv` (one
row per epoch) and, with early stopping, `best-weights-NNNN.npz` (the best epoch's weights).
Each epoch writes them in the order the callbacks run (training.make_callbacks): best weights,
CSV row, then the checkpoint, whose atomic `checkpoint.json` is the commit point, then the
dvclive log. A kill before the commit leaves the previous epoch's checkpoint intact, the
resumed run drops the CSV rows of epochs it will train again, and rebuilds the dvclive log
from the committed rows.

`checkpoint.json` also keeps the epoch before (its files stay until the next commit), so a
damaged file (a full disk, a copy cut short, an edit) costs one epoch: `recover` checks every
file against its checksum before the run trusts it, falls back to the epoch before or to a
fresh start, and moves the damaged folder aside (never deletes it).
"""

import csv
import hashlib
import json
import shutil
from pathlib import Path

import keras
import numpy as np

from cnnlab.fileio import DiskFullError, atomic_path, write_json
from cnnlab.layout import running_live_path

CHECKPOINT = "checkpoint.json"
HISTORY = "history.csv"
BEST_WEIGHTS = "best-weights-{epoch:04d}.npz"


def resumed_epoch(backup_dir):
    """Epochs already completed by an interrupted run (0 without a checkpoint)."""
    return int(_checkpoint(backup_dir).get("epoch", 0))


def stopped_early(backup_dir):
    """Whether early stopping ended the interrupted run at its last checkpointed epoch (it
    was killed before writing its outputs): the resumed run must not train another epoch."""
    return bool(_checkpoint(backup_dir).get("stopped", False))


def _checkpoint(backup_dir):
    saved = Path(backup_dir) / CHECKPOINT
    return json.loads(saved.read_text()) if saved.exists() else {}


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def history_digest(history_csv, epochs):
    """sha256 of the CSV log's header and first `epochs` rows, line endings aside (a resumed run
    drops the rows after them and rewrites the file); None if it holds fewer."""
    lines = Path(history_csv).read_bytes().decode("utf-8").splitlines()
    if len(lines) < 1 + epochs:
        return None
    return hashlib.sha256("\n".join(lines[: 1 + epochs]).encode()).hexdigest()


def recover(backup_dir):
    """Check the checkpoint in `backup_dir` before a run trusts it: every file its
    `checkpoint.json` names must match its sha256. When one does not (or is missing, or
    checkpoint.json is unreadable), the folder is moved aside as `<folder>.damaged-N`, the
    files of the newest epoch that checks out are copied back, and a one-line warning saying
    so is returned (None when all is well)."""
    backup_dir = Path(backup_dir)
    if not (backup_dir / CHECKPOINT).exists():
        return None
    try:
        saved = json.loads((backup_dir / CHECKPOINT).read_bytes().decode("utf-8"))
        candidates = [saved, saved.get("previous")]
    except (ValueError, AttributeError):
        saved, candidates = {}, []
    problem = None if candidates else f"{CHECKPOINT} is unreadable"
    for entry in filter(None, candidates):
        entry_problem = _damage(backup_dir, entry)
        if entry_problem is None:
            if entry is saved:
                return None
            return _set_aside(backup_dir, problem, entry)
        problem = problem or entry_problem
    return _set_aside(backup_dir, problem, None)


def _damage(backup_dir, entry):
    """What is wrong with the files a checkpoint entry names, or None."""
    checksums = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(checksums, dict) or entry.get("weights") not in checksums:
        return f"{CHECKPOINT} has no checksums for epoch {entry.get('epoch') if isinstance(entry, dict) else '?'}"
    for name, expected in checksums.items():
        path = backup_dir / name
        if not path.is_file():
            return f"{name} is missing"
        try:
            actual = history_digest(path, int(entry["epoch"])) if name == HISTORY else file_digest(path)
        except (UnicodeDecodeError, OSError, KeyError, ValueError, TypeError):
            actual = None
        if actual != expected:
            return f"{name} does not match its checksum"
    return None


def _set_aside(backup_dir, problem, good):
    aside = next(
        backup_dir.with_name(f"{backup_dir.name}.damaged-{n}")
        for n in range(1, 10_000)
        if not backup_dir.with_name(f"{backup_dir.name}.damaged-{n}").exists()
    )
    backup_dir.rename(aside)
    backup_dir.mkdir()
    if good is None:
        outcome = "starting afresh"
    else:
        for name in good["sha256"]:
            shutil.copy2(aside / name, backup_dir / name)
        write_json(backup_dir / CHECKPOINT, {**good, "previous": None})
        outcome = f"resuming after epoch {good['epoch']} instead"
    return f"{backup_dir}: {problem}; {outcome} (the damaged checkpoint is kept in {aside})"


class EpochCheckpoint(keras.callbacks.Callback):
    """Keras's BackupAndRestore with a single commit point.

    BackupAndRestore overwrites its weights file in place and then its epoch count, so a kill
    during the weights or between the two left a checkpoint that failed to load or resumed
    the wrong epoch. Here each epoch's weights and optimizer state go to a new file, which
    `checkpoint.json`, replaced atomically, then names with the checksums of the files the
    epoch left; the files of epochs before the previous one are deleted after that.
    """

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = Path(backup_dir)

    def on_train_begin(self, logs=None):
        saved = _checkpoint(self.backup_dir)
        if saved:
            self.model.load_weights(self.backup_dir / saved["weights"])

    def on_epoch_end(self, epoch, logs=None):
        weights = f"epoch-{epoch + 1:04d}.keras"
        try:
            # a .keras archive, not save_weights' .weights.h5: h5py writing straight to a full
            # disk fails to close its file and crashes the interpreter at exit
            with atomic_path(self.backup_dir / weights) as tmp:
                self.model.save(tmp)
        except DiskFullError:
            raise DiskFullError(
                f"{self.backup_dir}: disk full while checkpointing epoch {epoch + 1}; free some "
                "space and rerun (training resumes from the last complete checkpoint)"
            ) from None
        previous = _checkpoint(self.backup_dir)
        previous.pop("previous", None)
        entry = {
            "epoch": epoch + 1,
            "weights": weights,
            # early stopping runs before this callback, so its decision for this epoch is known
            "stopped": bool(self.model.stop_training),
            "sha256": self._checksums(weights, epoch + 1),
        }
        write_json(self.backup_dir / CHECKPOINT, {**entry, "previous": previous or None})
        kept = set(entry["sha256"]) | set(previous.get("sha256", {}))
        for old in [*self.backup_dir.glob("epoch-*.keras"), *self.backup_dir.glob("best-weights-*.npz")]:
            if old.name not in kept:
                old.unlink()

    def _checksums(self, weights, epochs):
        checksums = {weights: file_digest(self.backup_dir / weights)}
        if (self.backup_dir / HISTORY).exists():
            checksums[HISTORY] = history_digest(self.backup_dir / HISTORY, epochs)
        best = sorted(self.backup_dir.glob("best-weights-*.npz"))
        best = [path for path in best if path.name <= BEST_WEIGHTS.format(epoch=epochs)]
        if best:
            checksums[best[-1].name] = file_digest(best[-1])
        return checksums


def best_weights_file(backup_dir):
    """The early-stopping best weights the checkpoint names, or None."""
    names = [name for name in _checkpoint(backup_dir).get("sha256", {}) if name.startswith("best-weights-")]
    return Path(backup_dir) / names[0] if names else None


def keep_history_before(history_csv, epoch):
    """Drop the CSV rows of epochs from `epoch` on: a run killed after logging an epoch but
    before checkpointing it trains that epoch again."""
    history_csv = Path(history_csv)
    if history_csv.exists():
        lines = history_csv.read_text().splitlines(keepends=True)
        with atomic_path(history_csv) as tmp:
            tmp.write_text("".join(lines[: 1 + epoch]))


def history_rows(history_csv):
    """The CSV log's epochs as dicts of floats; Keras's CSVLogger writes "NA" for a metric an
    epoch lacks (val_* without a validation split), left out here."""
    with open(history_csv, newline="") as handle:
        return [{key: float(value) for key, value in row.items() if value != "NA"} for row in csv.DictReader(handle)]


def read_history(history_csv):
    """Per-epoch metrics from the CSV log, as lists by name (metrics every epoch has)."""
    rows = history_rows(history_csv)
    names = [key for key in (rows[0] if rows else {}) if key != "epoch" and all(key in row for row in rows)]
    return {name: [row[name] for row in rows] for name in names}


def live_summary(live_dir):
    """Where the latest epoch of the run logging into dvclive/<variant>/ is summarised while it
    trains (layout.running_live_path): not in dvclive/<variant>/metrics.json, which would stay
    a DVC metric, and a row of `dvc metrics show`, after the run."""
    live_dir = Path(live_dir)
    return running_live_path(live_dir.parent.parent, live_dir.name)


def end_live_log(live_dir):
    """The run is over: its latest epoch stops being a DVC metric (dvclive's plots stay)."""
    live_summary(live_dir).unlink(missing_ok=True)


def live_log(live_dir, history_csv, first_epoch, selected):
    """dvclive's Keras callback logging each epoch into `live_dir` as it ends, so `dvc exp show`
    and the DVC extension for VS Code follow a running or queued experiment: the per-epoch plots
    in `live_dir`, the latest epoch in `live_summary(live_dir)` until `end_live_log`.

    The log is rebuilt first from the epochs the checkpoint committed (the CSV rows before
    `first_epoch`), so it always matches the checkpoint: a kill can leave dvclive's own files
    an epoch ahead of it or behind it, and dvclive's `resume=True` continues from whatever step
    its files hold (and repeats step 0 after a single epoch). `selected(logs)` picks the
    metrics that are logged.
    """
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    summary = live_summary(live_dir)

    class RunningLive(Live):
        @property
        def metrics_file(self):
            return str(summary)

    class LiveLog(DVCLiveCallback):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, selected(logs or {}))

    summary.parent.mkdir(parents=True, exist_ok=True)
    callback = LiveLog(live=RunningLive(dir=str(live_dir), save_dvc_exp=False, dvcyaml=False, report=None))
    for row in history_rows(history_csv)[:first_epoch] if Path(history_csv).exists() else []:
        callback.on_epoch_end(int(row.pop("epoch")), row)
    return callback


class EpochSeededRandomness(keras.callbacks.Callback):
    """Pin each random layer's seed counter (dropout, augmentation) to the epoch.

    Their counters live outside the checkpoint, so a resumed run would otherwise draw
    different masks; this makes every epoch's randomness a function of (seed, epoch).
    """

    def on_epoch_begin(self, epoch, logs=None):
        for layer in self.model._flatten_layers():
            for generator in getattr(layer, "_seed_generators", []):
                seed = generator.state.numpy()[0]
                generator.state.assign(np.array([seed, epoch << 20], dtype=generator.state.dtype))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping whose state survives a kill, so a resumed run stops where an
    uninterrupted one would: the best weights are saved in the checkpoint folder, and a run
    resumed at `first_epoch` replays the logged epochs before it to recover the patience count.

    A kill after an epoch's best weights are saved but before its checkpoint leaves a file one
    epoch ahead, which the checkpoint does not name; the resumed run deletes it, trains that
    epoch again and saves them anew.
    """

    def __init__(self, backup_dir, first_epoch, **kwargs):
        super().__init__(**kwargs)
        self.backup_dir = Path(backup_dir)
        self.history_csv = self.backup_dir / HISTORY
        self.first_epoch = first_epoch

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for uncommitted in self.backup_dir.glob("best-weights-*.npz"):
            if uncommitted.name > BEST_WEIGHTS.format(epoch=self.first_epoch):
                uncommitted.unlink()
        if not self.first_epoch or not self.history_csv.exists():
            return  # a fresh run, or a non-chief worker (its chief keeps the log and decides when to stop)
        logged = read_history(self.history_csv).get(self.monitor, [])[: self.first_epoch]
        for epoch, value in enumerate(logged):
            super().on_epoch_end(epoch, {self.monitor: value})
        saved_best = best_weights_file(self.backup_dir)
        if self.restore_best_weights and saved_best:
            with np.load(saved_best) as saved:
                self.best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.restore_best_weights and self.best_epoch == epoch and self.best_weights is not None:
            with atomic_path(self.backup_dir / BEST_WEIGHTS.format(epoch=epoch + 1)) as tmp:
                np.savez(tmp, *self.best_weights)
