"""The `lookahead` variant setting: airbench94's exponential moving average of the weights."""

import keras
import numpy as np


class Lookahead(keras.callbacks.Callback):
    """From epoch `start_epoch` on, every `every` steps: average <- average + (1 - rho) *
    (weights - average), then weights <- average, with rho = decay**every * (step / total)**power,
    so the average follows the weights closely early on and smooths them ever more as the
    learning rate falls; after each epoch's last step the weights are set to the average once
    more (before Keras validates the epoch).

    So the weights a checkpoint saves, validation sees and `evaluate` scores are the averaged
    ones, and at every epoch boundary the average equals the weights: a run resumed from an
    epoch's checkpoint restarts the average from them, exactly as the uninterrupted run goes on.
    The trainable weights and BatchNorm's running statistics are averaged. The step is the
    optimizer's, saved in the checkpoint.
    """

    def __init__(self, total_steps, start_epoch, every, decay, decay_power):
        super().__init__()
        self.total_steps, self.start_epoch, self.every = total_steps, start_epoch, every
        self.decay, self.decay_power = decay, decay_power
        self.variables, self.average = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self.average = None
        if epoch >= self.start_epoch:
            self.variables = self.model.trainable_weights + [v for v in self.model.weights if _is_moving_stat(v)]
            self.average = [np.array(v.numpy()) for v in self.variables]

    def on_train_batch_end(self, batch, logs=None):
        if self.average is None:
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            rho = self.decay**self.every * (step / self.total_steps) ** self.decay_power
            self._pull(1.0 - rho)
        if batch + 1 == self.params.get("steps"):
            self._pull(0.0)  # here, not at on_epoch_end: Keras validates before it calls that

    def on_epoch_end(self, epoch, logs=None):
        if self.average is not None and not self.params.get("steps"):
            self._pull(0.0)  # an epoch of unknown length: its end is the first place to know it

    def _pull(self, rate):
        """Move the average `rate` of the way to the weights, and the weights onto it."""
        for average, variable in zip(self.average, self.variables):
            average += rate * (variable.numpy() - average)
            variable.assign(average)


def _is_moving_stat(variable):
    return not variable.trainable and variable.path.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance")
