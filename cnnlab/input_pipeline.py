"""The tf.data input of training and validation: reproducible per-epoch shuffles and the
augmentations that run in the pipeline (pad-and-crop, flips) rather than in the model."""

import numpy as np
import tensorflow as tf


def batch_augmentation(augmentation, card, train_images, seed):
    """Pad-and-crop and horizontal flip of a uint8 batch in the tf.data map, or None if neither.

    Measured a little cheaper here than as Keras layers in the model (it overlaps the training
    step; bench/overhead.py). Pixels shifted in take the value that normalizes to 0, as the
    in-model RandomTranslation fills (black for `scale`, the mean for `standardize`), or with
    crop_fill: reflect the mirrored border. With horizontal_flip: alternating the flips depend
    on each image's index in the `train_images` of the split.
    """
    pad, flip = augmentation["crop_padding"], augmentation["horizontal_flip"]
    reflect = augmentation["crop_fill"] == "reflect"
    if not (pad or flip):
        return None
    standardize = card["normalization"] == "standardize"
    fill = tf.constant(np.round(card["mean"]).astype(np.uint8) if standardize else [0] * card["shape"][-1], tf.uint8)
    # alternating flip (airbench): a random half of the images is mirrored in even epochs, the
    # other half in odd ones, so every two epochs show each image both ways (random flips
    # repeat a view half the time); airbench reports it as a free gain in short runs (not ablated here)
    mirrored_in_even_epochs = tf.random.stateless_uniform([train_images], [seed, 1], 0, 2, tf.int32)

    def augment(batch, seed, indices, epoch):
        count, height, width = tf.shape(batch)[0], batch.shape[1], batch.shape[2]
        if pad:
            shift = tf.random.stateless_uniform([count, 2], seed, -pad, pad + 1, tf.int32)
            rows, cols = tf.range(height) + shift[:, :1], tf.range(width) + shift[:, 1:]
            if reflect:  # mirror the image at its border (airbench's translate): no artificial edge
                rows, cols = _reflect(rows, height), _reflect(cols, width)
            batch = tf.gather(batch, tf.clip_by_value(rows, 0, height - 1), axis=1, batch_dims=1)
            batch = tf.gather(batch, tf.clip_by_value(cols, 0, width - 1), axis=2, batch_dims=1)
            if not reflect:
                inside = ((rows >= 0) & (rows < height))[:, :, None, None] & ((cols >= 0) & (cols < width))[
                    :, None, :, None
                ]
                batch = tf.where(inside, batch, fill)
        if flip == "alternating":
            mirror = tf.gather(mirrored_in_even_epochs, indices) != tf.cast(epoch % 2, tf.int32)
            batch = tf.where(mirror[:, None, None, None], tf.reverse(batch, [2]), batch)
        elif flip:
            mirror = tf.random.stateless_uniform([count, 1, 1, 1], seed[::-1], 0, 2, tf.int32) > 0
            batch = tf.where(mirror, tf.reverse(batch, [2]), batch)
        return batch

    return augment


def _reflect(index, size):
    """Indices outside 0..size-1 mirrored back inside, the border pixel not repeated."""
    index = tf.abs(index)
    return (size - 1) - tf.abs((size - 1) - index)


def epoch_batches(x, y, batch_size, seed, first_epoch, epochs, depth, num_outputs, augment=None):
    """Training batches for epochs first_epoch..epochs-1, reshuffled per epoch.

    Each epoch's order (and each batch's `augment`ation) depends only on (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one.
    """
    images, labels = tf.constant(x), tf.constant(y)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(len(x)), seed=tf.stack([seed, epoch]))
        # Full batches only: a short last training batch crashed oneDNN's kernels here (heap
        # corruption in a ResNet on 1293 digits, batch 32); the per-epoch reshuffle means a
        # different remainder is left out each epoch.
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True).enumerate()
        return batches.map(
            lambda number, indices: (
                indices,
                tf.random.experimental.stateless_fold_in(tf.stack([seed, epoch]), number),
                epoch,
            )
        )

    def gather(indices, batch_seed, epoch):
        batch_x = tf.gather(images, indices)
        batch_x = tf.cast(batch_x if augment is None else augment(batch_x, batch_seed, indices, epoch), tf.float32)
        batch_y = tf.one_hot(tf.gather(labels, indices), depth)
        return batch_x, (batch_y,) * num_outputs if num_outputs > 1 else batch_y

    epochs_ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return epochs_ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def eval_batches(x, y, batch_size, depth, num_outputs):
    labels = tf.one_hot(y, depth)
    ds = tf.data.Dataset.from_tensor_slices((x, (labels,) * num_outputs if num_outputs > 1 else labels))
    return ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(tf.data.AUTOTUNE)
