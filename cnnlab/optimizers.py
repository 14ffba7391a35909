"""Optimizers and learning-rate schedules of the `optimizer:` setting of a variant.

The optimizers are those of cnnlab.config.OPTIMIZERS, built by Keras from their names (so
that list is the only one: adding a Keras optimizer there is all it takes).
"""

import keras

from cnnlab.config import OPTIMIZERS


def learning_rate_schedule(optimizer, total_steps):
    """Constant, or warmup then decay: `onecycle` (linear up from warmup_from x peak, linear
    down to decay_to x peak) or `cosine`."""
    peak = optimizer["learning_rate"]
    if optimizer["schedule"] == "constant":
        return peak
    warmup = max(1, int(total_steps * optimizer["warmup_fraction"]))
    if optimizer["schedule"] == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            0.0, total_steps - warmup, warmup_target=peak, warmup_steps=warmup
        )
    return OneCycle(peak, warmup, total_steps, optimizer["warmup_from"], optimizer["decay_to"])


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Triangular one-cycle schedule (as in the fast CIFAR-10 recipes): start x peak -> peak ->
    end x peak, linear in the step; 0 -> peak -> 0 by default (airbench94: 0.2 -> 1 -> 0.07)."""

    def __init__(self, peak, warmup_steps, total_steps, start=0.0, end=0.0):
        self.peak, self.warmup_steps, self.total_steps = peak, warmup_steps, total_steps
        self.start, self.end = start, end

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = self.start + (1 - self.start) * step / self.warmup_steps
        down = self.end + (1 - self.end) * (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        return self.peak * keras.ops.maximum(min(self.start, self.end), keras.ops.minimum(up, down))

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "start": self.start,
            "end": self.end,
        }


def make_optimizer(optimizer, total_steps):
    """The Keras optimizer named optimizer["name"], with the settings of it that apply."""
    name = optimizer["name"]
    kwargs = {"learning_rate": learning_rate_schedule(optimizer, total_steps)}
    kwargs.update((setting, optimizer[setting]) for setting in OPTIMIZERS[name])
    if optimizer["weight_decay"] is not None:
        kwargs["weight_decay"] = optimizer["weight_decay"]
    return keras.optimizers.get({"class_name": name, "config": kwargs})
