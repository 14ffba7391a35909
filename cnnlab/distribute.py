"""Scale out on TensorFlow's own engines: tf.distribute strategies chosen by `train.distribute`.

MultiWorkerMirroredStrategy is not offered: Keras 3's `fit` fails under it (keras-team/keras
#20585; reproduced with TensorFlow 2.21 / Keras 3.15 in `_maybe_symbolic_build` and
`reduce_per_replica`).

`batch_size` is per replica: the global batch is batch_size x replicas, and the learning
rate is multiplied by the number of replicas (the linear scaling rule of Goyal et al., 2017).
"""
import tensorflow as tf


def make_strategy(train_params):
    """Create the strategy before any other TensorFlow work (logical devices must come first)."""
    if train_params["distribute"] == "none":
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(_mirrored_devices(train_params["cpu_replicas"]))


def _mirrored_devices(cpu_replicas):
    """All local GPUs, or the CPU split into `cpu_replicas` logical devices (no GPU needed)."""
    if not cpu_replicas:
        return None
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def shard_by_data(dataset):
    """Replicas split each batch's examples: our in-memory datasets have no files to shard."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
