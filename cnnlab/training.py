"""Train one experiment variant: seeded, logged every epoch, resumable after a kill (resume.py)."""

import functools
import shutil
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnlab import distribute, hardware, models, multi_worker, resume
from cnnlab.data.prepared import read_card, read_split
from cnnlab.errors import ConfigError, UserError
from cnnlab.fileio import atomic_path, write_json, write_text
from cnnlab.input_pipeline import batch_augmentation, epoch_batches, eval_batches
from cnnlab.lookahead import Lookahead
from cnnlab.optimizers import make_optimizer


def configure_tensorflow(seed, deterministic, threads, mixed_precision):
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    # a process that trains several runs (repeat@<variant>) comes here again: TensorFlow refuses
    # to change the thread count once it runs, even to the same value
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    keras.mixed_precision.set_global_policy(hardware.POLICIES[mixed_precision or None])


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds` to the epoch logs, so the CSV history keeps it across resumes."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_seconds"] = time.perf_counter() - self._start


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite: nothing after that point is worth keeping."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Fail the run at the first non-finite training loss, before that epoch is logged or
    checkpointed (the first callback of make_callbacks).

    Keras's TerminateOnNaN only stops training, and the stage would then save the diverged
    model as a success. The batch check is async-safe: Keras raises its error at the next
    batch, and at the latest before any callback sees the epoch's end."""

    async_safe = True

    def __init__(self, name, learning_rate, trained_learning_rate):
        super().__init__()
        self.name, self.learning_rate, self.trained_learning_rate = name, learning_rate, trained_learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check((logs or {}).get("loss"), f"epoch {self.epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check((logs or {}).get("loss"), f"epoch {epoch + 1}")

    def _check(self, loss, when):
        if loss is not None and not np.isfinite(loss):
            key = f"variants.{self.name}"
            scaled = ""
            if self.trained_learning_rate != self.learning_rate:
                scaled = f", {self.trained_learning_rate:g} as scaled for train.max_batch_size and replicas"
            raise TrainingDiverged(
                f"{key}: training diverged (loss {float(loss)}) in {when}; the learning rate "
                f"({key}.optimizer.learning_rate: {self.learning_rate:g}{scaled}) is the likely cause: lower it. "
                "No model was saved"
            )


def train_variant(name, variant, train_params, data_dir, out_dir, live_dir, backup_dir):
    """Train one variant and write models/<name>/ and dvclive/<name>/ as docs/design.md describes.

    Progress is checkpointed each epoch in `backup_dir` (outside DVC outputs): a run that is
    killed resumes there from its last completed epoch. In a multi-worker run only the chief
    writes outputs and checkpoints (and on resume shares its checkpoint with the others).
    """
    key = f"variants.{name}"
    configured_learning_rate = variant["optimizer"]["learning_rate"]
    variant = capped_variant(variant, train_params)
    data = load_inputs(data_dir, key, needs_validation=bool(variant["early_stopping"]))
    epochs = variant["epochs"]
    strategy, jit_compile = start_tensorflow(name, train_params, variant)
    replicas = strategy.num_replicas_in_sync
    batch_size = global_batch_size(variant["batch_size"], replicas, len(data.x_train), key)
    steps_per_epoch = len(data.x_train) // batch_size
    with strategy.scope():
        training_model, inference_model = models.build_model(
            variant, data.card, key, seed=train_params["seed"], crop_flip_in_pipeline=True
        )
        compile_model(training_model, variant, steps_per_epoch * epochs, jit_compile, replicas)

    chief = distribute.is_chief(strategy)
    # the other workers of a multi-worker run log and checkpoint to scratch, deleted at the end
    backup_dir = Path(backup_dir if chief else tempfile.mkdtemp(prefix=f"cnnlab-{name}-"))
    first_epoch, stopped = starting_point(strategy, backup_dir)
    if first_epoch:
        print(f"resuming {name} from its checkpoint after epoch {first_epoch} ({backup_dir})")
    else:  # a resumed run loads these weights from its checkpoint
        models.initialize_from_data(training_model, variant, data.card, data.x_train, train_params["seed"])
    depth, num_outputs = int(training_model.outputs[0].shape[-1]), len(training_model.outputs)
    train_batches = epoch_batches(
        data.x_train,
        data.y_train,
        batch_size,
        train_params["seed"],
        first_epoch,
        epochs,
        depth,
        num_outputs,
        batch_augmentation(variant["augmentation"], data.card, len(data.x_train), train_params["seed"]),
    )
    val_batches = eval_batches(data.x_val, data.y_val, batch_size, depth, num_outputs) if len(data.x_val) else None
    callbacks = make_callbacks(
        variant["early_stopping"],
        backup_dir,
        first_epoch,
        main_head_prefix(training_model),
        live_dir=live_dir if chief else None,
        validation=len(data.x_val) > 0,
        training=training_callbacks(variant, steps_per_epoch * epochs),
        guard=StopOnNonFiniteLoss(name, configured_learning_rate, variant["optimizer"]["learning_rate"] * replicas),
    )
    fit(
        strategy,
        training_model,
        train_batches,
        val_batches,
        callbacks,
        first_epoch=first_epoch,
        epochs=first_epoch if stopped else epochs,  # if stopped: only on_train_end is left
        steps_per_epoch=steps_per_epoch,
        global_batch_size=batch_size,
        jit_compile=jit_compile,
        loss_weights=models.loss_weights(variant, num_outputs),
        label_smoothing=variant["label_smoothing"],
    )
    if chief:
        history = main_head_history(resume.read_history(backup_dir / "history.csv"), main_head_prefix(training_model))
        summary = training_summary(variant, history, len(data.x_train), len(data.x_val), epochs, replicas)
        save_model_outputs(out_dir, inference_model, data.card, history, summary)
        if live_dir is not None:
            resume.end_live_log(live_dir)
    shutil.rmtree(backup_dir, ignore_errors=True)


def capped_variant(variant, train_params):
    """The variant as train.max_epochs and train.max_batch_size cap it (the quick look): a smaller
    batch scales the learning rate by the same factor, the linear scaling rule replicas follow too."""
    batch_size = min(variant["batch_size"], train_params["max_batch_size"] or variant["batch_size"])
    learning_rate = variant["optimizer"]["learning_rate"] * batch_size / variant["batch_size"]
    return {
        **variant,
        "epochs": min(variant["epochs"], train_params["max_epochs"] or variant["epochs"]),
        "batch_size": batch_size,
        "optimizer": {**variant["optimizer"], "learning_rate": learning_rate},
    }


def start_tensorflow(name, train_params, variant):
    """The variant's tf.distribute strategy (created first: logical devices must come before any
    other TensorFlow work), seeds, determinism and precision; returns it and whether to XLA-compile."""
    strategy = distribute.make_strategy(variant, f"variants.{name}")
    gpus = distribute.gpu_capabilities()
    mixed_precision = hardware.use_mixed_precision(train_params["mixed_precision"], gpus)
    configure_tensorflow(train_params["seed"], train_params["deterministic"], train_params["threads"], mixed_precision)
    jit_compile = hardware.use_xla(train_params["jit_compile"], gpus, distribute.is_multi_worker(strategy))
    print(f"{name}: training on {hardware.describe(gpus, mixed_precision, jit_compile)}", flush=True)
    return strategy, jit_compile


TrainingData = namedtuple("TrainingData", "card x_train y_train x_val y_val")


def load_inputs(data_dir, key, needs_validation):
    """The prepared training and validation splits and the dataset card."""
    data = TrainingData(read_card(data_dir), *read_split(data_dir, "train"), *read_split(data_dir, "val"))
    if needs_validation and len(data.x_val) == 0:
        raise ConfigError(f"{key}.early_stopping: needs a validation split; set data.val_fraction > 0")
    return data


def global_batch_size(batch_size, replicas, train_images, key):
    """`batch_size` is per replica; every replica takes one share of each global batch."""
    if train_images < batch_size * replicas:
        raise ConfigError(f"{key}.batch_size: {batch_size * replicas} is more than the {train_images} training images")
    return batch_size * replicas


def starting_point(strategy, backup_dir):
    """Epochs already completed by an interrupted run, and whether early stopping had ended
    it; the chief's on every worker. A damaged checkpoint is set aside first (resume.recover)."""
    warning = resume.recover(backup_dir)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    epoch, stopped = resume.resumed_epoch(backup_dir), int(resume.stopped_early(backup_dir))
    if distribute.is_multi_worker(strategy):
        epoch, stopped = (multi_worker.chief_value(strategy, number) for number in (epoch, stopped))
    return epoch, bool(stopped)


def fit(
    strategy,
    model,
    train_batches,
    val_batches,
    callbacks,
    *,
    first_epoch,
    epochs,
    steps_per_epoch,
    global_batch_size,
    jit_compile,
    loss_weights,
    label_smoothing,
):
    train_batches = distribute.shard_by_data(train_batches)
    val_batches = None if val_batches is None else distribute.shard_by_data(val_batches)
    if distribute.is_multi_worker(strategy):
        multi_worker.fit(
            strategy,
            model,
            train_batches,
            val_batches,
            first_epoch=first_epoch,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            global_batch_size=global_batch_size,
            loss_weights=loss_weights or [1.0],
            label_smoothing=label_smoothing,
            jit_compile=jit_compile,
            callbacks=callbacks,
        )
        return
    model.fit(
        train_batches,
        initial_epoch=first_epoch,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_batches,
        callbacks=callbacks,
        shuffle=False,  # epoch_batches already shuffles, reproducibly per epoch
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar on a terminal, one line per epoch in a log
    )


def compile_model(model, variant, total_steps, jit_compile, replicas=1):
    num_outputs = len(model.outputs)
    optimizer = {**variant["optimizer"], "learning_rate": variant["optimizer"]["learning_rate"] * replicas}
    # Metric and optimizer variables exist before fit (the string "accuracy" and the optimizer's
    # slots would be created lazily in the first step): tf.function traces a step that creates
    # variables twice, which cost a deep network 4 s of every short run.
    accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=make_optimizer(optimizer, total_steps),
        loss=[keras.losses.CategoricalCrossentropy(label_smoothing=variant["label_smoothing"])] * num_outputs,
        loss_weights=models.loss_weights(variant, num_outputs),
        metrics=[[accuracy]] + [[] for _ in range(num_outputs - 1)] if num_outputs > 1 else [accuracy],
        jit_compile=jit_compile,
    )
    model.optimizer.build(model.trainable_variables)


def main_head_prefix(model):
    """Keras names a multi-output model's metrics after each output (`predictions_accuracy`)."""
    return f"{model.output_names[0]}_" if len(model.outputs) > 1 else ""


def main_head_history(history, prefix):
    """History in the main head's terms (`accuracy`, `loss`, `val_...`); with auxiliary heads
    the weighted sum they train on is kept as `total_loss`."""
    if not prefix:
        return history
    history = dict(history)
    for split in ("", "val_"):
        if f"{split}loss" in history:
            history[f"{split}total_loss"] = history.pop(f"{split}loss")
        for metric in ("accuracy", "loss"):
            if f"{split}{prefix}{metric}" in history:
                history[f"{split}{metric}"] = history.pop(f"{split}{prefix}{metric}")
    return history


def training_callbacks(variant, total_steps):
    """The callbacks that are part of how a variant trains: its family's, then `lookahead`."""
    callbacks = models.training_callbacks(variant)
    if variant["lookahead"]:
        settings = variant["lookahead"]
        callbacks.append(
            Lookahead(
                total_steps, settings["start_epoch"], settings["every"], settings["decay"], settings["decay_power"]
            )
        )
    return callbacks


def make_callbacks(
    early_stopping,
    backup_dir,
    first_epoch,
    metric_prefix="",
    live_dir=None,
    validation=True,
    training=(),
    guard=None,
):
    """The callbacks of a run that starts at `first_epoch` (> 0 when resuming a killed run),
    in the order cnnlab/resume.py relies on: the `guard` (which fails a diverged epoch before
    anything records it), the `training` ones (which change the weights an epoch ends with),
    the checkpoint, then the live log (if `live_dir`)."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    resume.keep_history_before(backup_dir / "history.csv", first_epoch)
    callbacks = [*([guard] if guard else []), EpochTimer(), resume.EpochSeededRandomness(), *training]
    if early_stopping:
        monitored = early_stopping["monitor"].replace("val_", f"val_{metric_prefix}", 1)
        callbacks.append(
            resume.ResumableEarlyStopping(
                backup_dir,
                first_epoch,
                monitor=monitored,
                patience=early_stopping["patience"],
                min_delta=early_stopping["min_delta"],
                restore_best_weights=early_stopping["restore_best"],
                mode="min" if early_stopping["monitor"] == "val_loss" else "max",
            )
        )
    callbacks += [
        keras.callbacks.CSVLogger(str(backup_dir / "history.csv"), append=first_epoch > 0),
        resume.EpochCheckpoint(backup_dir),
    ]
    if live_dir is not None:
        callbacks.append(
            resume.live_log(
                live_dir,
                backup_dir / "history.csv",
                first_epoch,
                functools.partial(progress_metrics, prefix=metric_prefix, validation=validation),
            )
        )
    return callbacks


def progress_metrics(logs, prefix="", validation=True):
    """The epoch metrics a person follows live, named as in history.json: the main head's loss
    and accuracy on the validation split (on the training split when there is none). Three
    columns per variant in `dvc exp show` with dvclive's step; the rest stays in history.json."""
    split = "val_" if validation else ""
    return {
        f"{split}{metric}": logs[f"{split}{prefix}{metric}"]
        for metric in ("loss", "accuracy")
        if f"{split}{prefix}{metric}" in logs
    }


def training_summary(variant, history, train_images, val_images, epochs, replicas):
    seconds = sum(history.get("epoch_seconds", []))
    epochs_run = len(history.get("loss", []))
    return {
        "train_seconds": round(seconds, 3),
        "epochs_run": epochs_run,
        "epochs_planned": epochs,
        "best_epoch": best_epoch(history, variant["early_stopping"]),
        "images_per_second": round(train_images * epochs_run / seconds, 1) if seconds else None,
        "train_images": train_images,
        "val_images": val_images,
        "batch_size": variant["batch_size"],
        "replicas": replicas,
        "optimizer": variant["optimizer"]["name"],
        "learning_rate": variant["optimizer"]["learning_rate"],
    }


def best_epoch(history, early_stopping):
    """1-based epoch with the best validation score (the monitored one under early stopping)."""
    monitor = early_stopping["monitor"] if early_stopping else "val_accuracy"
    values = history.get(monitor) or history.get("accuracy") or []
    if not values:
        return None
    pick = np.argmin if monitor.endswith("loss") else np.argmax
    return int(pick(values)) + 1


def save_model_outputs(out_dir, inference_model, card, history, training):
    training = {**training, "flops_per_image": models.count_flops(inference_model)}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        inference_model.save(tmp / "model.keras")
        write_json(tmp / "card.json", card)
        write_json(tmp / "history.json", history)
        write_json(tmp / "training.json", training)
        rows = models.layer_table(inference_model)
        write_json(
            tmp / "summary.json",
            {
                "layers": rows,
                "total_params": int(inference_model.count_params()),
                "trainable_params": int(sum(np.prod(w.shape) for w in inference_model.trainable_weights)),
            },
        )
        lines = []
        inference_model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
        write_text(tmp / "summary.txt", "\n".join(lines) + "\n")
