"""Training under MultiWorkerMirroredStrategy with a hand-written `strategy.run` loop.

Keras 3's `fit` fails under this strategy (keras-team/keras#20585), so this loop stands in
for it and keeps fit's contract: the same callbacks driven by hand through a
keras.callbacks.CallbackList, and epoch logs named as fit names them (`loss`, `accuracy`,
`val_...`; with auxiliary heads `<output>_loss` and `<main output>_accuracy`).

Each global batch is split between the replicas of all workers (distribute.shard_by_data);
every replica's loss is divided by the global batch size, and the Keras optimizer sums the
gradients over all replicas before its update, so a step equals a single-device step on the
global batch. Metrics are summed over all replicas, so every worker sees the same logs; the
chief's early-stopping decision binds them all.
"""

import functools

import keras
import tensorflow as tf

SUM = tf.distribute.ReduceOp.SUM


def fit(
    strategy,
    model,
    train_batches,
    val_batches,
    *,
    first_epoch,
    epochs,
    steps_per_epoch,
    global_batch_size,
    loss_weights,
    label_smoothing,
    jit_compile,
    callbacks,
):
    """Train `model` (compiled, so its optimizer exists) from `first_epoch` to `epochs`."""
    loss_of = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction="none")
    batch_sums = _batch_sums_function(model, loss_of, loss_weights)
    train_step = _train_step(strategy, model, batch_sums, global_batch_size, jit_compile)
    val_step = _val_step(strategy, batch_sums)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_progbar=True, model=model, verbose=2, epochs=epochs, steps=steps_per_epoch
    )
    # training.compile_model has built the optimizer on every worker alike, before any
    # checkpoint is restored: _copy_chief_state pairs variables by position
    model.stop_training = False
    callback_list.on_train_begin()
    _copy_chief_state(strategy, model.variables + model.optimizer.variables)
    batches = iter(strategy.experimental_distribute_dataset(train_batches))
    val_batches = None if val_batches is None else strategy.experimental_distribute_dataset(val_batches)
    logs = {}
    for epoch in range(first_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = _means(_add_up(train_step(batches) for _ in range(steps_per_epoch)))
        if val_batches is not None:
            logs.update({f"val_{name}": value for name, value in _means(_add_up(map(val_step, val_batches))).items()})
        callback_list.on_epoch_end(epoch, logs)
        # the chief's early-stopping decision binds every worker: only the chief's resumed
        # EarlyStopping has the logged epochs to replay
        model.stop_training = bool(chief_value(strategy, int(model.stop_training)))
        if model.stop_training:
            break
    callback_list.on_train_end(logs)


def _batch_sums_function(model, loss_of, loss_weights):
    """(x, y) -> (per-example weighted loss, sums of the logged metrics over the batch)."""
    multi_output = len(model.outputs) > 1
    names = model.output_names

    def batch_sums(x, y, training):
        outputs = model(x, training=training)
        outputs, targets = (list(outputs), list(y)) if multi_output else ([outputs], [y])
        losses = [tf.cast(loss_of(target, output), tf.float32) for target, output in zip(targets, outputs)]
        total = tf.add_n([weight * loss for weight, loss in zip(loss_weights, losses)])
        correct = tf.cast(tf.equal(tf.argmax(targets[0], -1), tf.argmax(outputs[0], -1)), tf.float32)
        sums = {
            "loss": tf.reduce_sum(total),
            "examples": tf.cast(tf.shape(total)[0], tf.float32),
            f"{names[0]}_accuracy" if multi_output else "accuracy": tf.reduce_sum(correct),
        }
        if multi_output:
            sums.update({f"{name}_loss": tf.reduce_sum(loss) for name, loss in zip(names, losses)})
        return total, sums

    return batch_sums


def _train_step(strategy, model, batch_sums, global_batch_size, jit_compile):
    def gradients_and_sums(x, y):
        with tf.GradientTape() as tape:
            per_example, sums = batch_sums(x, y, training=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled_loss = model.optimizer.scale_loss(loss)
        return tape.gradient(scaled_loss, model.trainable_variables), sums

    # XLA compiles no collectives on CPU, so the all-reduces stay outside the compiled part
    compute = tf.function(gradients_and_sums, jit_compile=jit_compile)

    def replica_step(x, y):
        gradients, sums = compute(x, y)
        # in replica context Keras' TensorFlow optimizer all-reduces (sums) the gradients itself
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return tf.distribute.get_replica_context().all_reduce(SUM, sums)

    @tf.function
    def train_step(batches):
        return _first_local(strategy, strategy.run(replica_step, args=next(batches)))

    return train_step


def _val_step(strategy, batch_sums):
    def replica_step(x, y):
        return tf.distribute.get_replica_context().all_reduce(SUM, batch_sums(x, y, training=False)[1])

    @tf.function
    def val_step(batch):
        return _first_local(strategy, strategy.run(replica_step, args=batch))

    return val_step


def _copy_chief_state(strategy, variables):
    """Give every worker the chief's variables: only the chief restores a checkpoint, and no
    filesystem needs to be shared between the workers."""
    values = _from_chief(strategy, [tf.convert_to_tensor(variable.value) for variable in variables])
    for variable, value in zip(variables, values):
        variable.assign(value)


def chief_value(strategy, number):
    """The chief's `number` (an int), on every worker."""
    return int(_from_chief(strategy, [tf.constant(number, tf.int64)])[0])


def _from_chief(strategy, values):
    """`values` (tensors) as the chief holds them: a sum over all replicas in which only
    replica 0 (the chief's first) contributes."""
    return _broadcast_function(strategy)(values)


@functools.cache
def _broadcast_function(strategy):
    """One tf.function per strategy, traced once per kind of `values`: a new one per call
    retraced at every epoch's chief_value, and TensorFlow warned about it."""

    def replica_values(values):
        context = tf.distribute.get_replica_context()
        from_chief = tf.equal(context.replica_id_in_sync_group, 0)
        # one all-reduce per value: a batched one concatenates them, which needs a single dtype
        return [context.all_reduce(SUM, tf.where(from_chief, value, tf.zeros_like(value))) for value in values]

    @tf.function
    def broadcast(values):
        return _first_local(strategy, strategy.run(replica_values, args=(values,)))

    return broadcast


def _first_local(strategy, per_replica):
    """All-reduced values are the same on every replica: take this worker's first copy."""
    return tf.nest.map_structure(lambda value: strategy.experimental_local_results(value)[0], per_replica)


def _add_up(step_sums):
    totals = {}
    for sums in step_sums:
        totals = {name: totals.get(name, 0.0) + value for name, value in sums.items()}
    return totals


def _means(totals):
    """Per-example means, as fit's metrics report them."""
    examples = float(totals.pop("examples"))
    return {name: float(value) / examples for name, value in totals.items()}
