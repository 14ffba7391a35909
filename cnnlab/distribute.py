"""Scale out on TensorFlow's own engines: tf.distribute strategies chosen per variant by
`variants.<name>.distribute`.

- `none`: the default strategy (one device).
- `mirrored`: MirroredStrategy over all local GPUs, or the CPU split into
  `variants.<name>.cpu_replicas` logical devices.
- `multi_worker`: MultiWorkerMirroredStrategy over the cluster that the `TF_CONFIG`
  environment variable describes (every worker runs the same command with its own task).
  Keras 3's `fit` fails under it (keras-team/keras#20585; reproduced with TensorFlow 2.21 /
  Keras 3.15 in `_maybe_symbolic_build` and `reduce_per_replica`), so cnnlab.multi_worker
  trains with its own `strategy.run` loop.

`batch_size` is per replica: the global batch is batch_size x replicas (all replicas of all
workers), and the learning rate is multiplied by the number of replicas (the linear scaling
rule of Goyal et al., 2017).
"""

import os

import tensorflow as tf

from cnnlab.errors import ConfigError


def make_strategy(settings, key):
    """Create the strategy a variant's `settings` (`distribute`, `cpu_replicas`) ask for, before
    any other TensorFlow work (logical devices must come first); `key` names the variant."""
    if settings["distribute"] == "none":
        return tf.distribute.get_strategy()
    if settings["distribute"] == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ConfigError(
                f"{key}.distribute: multi_worker needs the cluster and this worker's task in the "
                "TF_CONFIG environment variable; set TF_CONFIG on every worker"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy(_mirrored_devices(settings["cpu_replicas"]))


def gpu_capabilities():
    """The CUDA compute capability (major, minor) of each visible GPU; None where a GPU reports
    none (Apple's Metal plugin). Empty on a machine without GPUs."""
    return [
        tf.config.experimental.get_device_details(gpu).get("compute_capability")
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """The worker that writes outputs and checkpoints: the `chief` task, else worker 0."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


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
