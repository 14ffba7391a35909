"""The airbench family and the training settings its presets use (lookahead, alternating flip,
the one-cycle floors, 6-view TTA), on tiny data."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnlab import models
from cnnlab.config import load_params, validate_params, validate_variant
from cnnlab.errors import ConfigError
from cnnlab.evaluation import load_model, predict_probabilities, tta_views
from cnnlab.input_pipeline import batch_augmentation, epoch_batches
from cnnlab.lookahead import Lookahead
from cnnlab.models import family_airbench
from cnnlab.optimizers import OneCycle
from cnnlab.saved_layers import SameConv2D
from tests.helpers import (
    REPO,
    kill_after_epochs_and_rerun,
    run_stage,
    write_params,
    write_prepared,
)

PARAMS = load_params(REPO / "params.yaml")
CIFAR_CARD = {"shape": [32, 32, 3], "num_classes": 10, "normalization": "scale", "mean": [0, 0, 0], "std": [1, 1, 1]}


def tiny_airbench(**overrides):
    """airbench94's settings on a network small enough for 16x16 test images."""
    variant = {
        **{key: value for key, value in PARAMS["variants"]["airbench94"].items() if key not in ("family", "options")},
        "family": "airbench",
        "options": {"widths": [8, 16], "whiten_bias_epochs": 2},
        "batch_size": 16,
        "epochs": 5,
        "lookahead": {"start_epoch": 1, "every": 2},
    }
    variant.update(overrides)
    return validate_variant(variant, "variants.small")


def test_airbench94_preset_is_the_published_network():
    variant = PARAMS["variants"]["airbench94"]
    _, model = models.build_model(variant, CIFAR_CARD, "variants.airbench94", crop_flip_in_pipeline=True)
    # airbench94's 1.97 M parameters (its PyTorch model has the same count, BatchNorm statistics aside)
    assert model.count_params() == 1_973_944
    assert model.get_layer("whiten").kernel.shape == (2, 2, 3, 24) and not model.get_layer("whiten").trainable
    assert [model.get_layer(f"group{g}_conv2").filters for g in (1, 2, 3)] == [64, 256, 256]
    # airbench's floor pooling: 31 -> 15 -> 7 -> 3 px maps, ~0.24 GFLOP forward per image
    assert [model.get_layer(f"group{g}_pool").output.shape[1] for g in (1, 2, 3)] == [15, 7, 3]
    assert models.count_flops(model) == 236_294_720
    assert model.output_shape == (None, 10)


def test_conv_groups_start_as_identity_on_their_shared_channels():
    _, model = models.build_model(tiny_airbench(), CIFAR_CARD, "variants.a")
    kernel = model.get_layer("group2_conv1").kernel.numpy()  # 8 -> 16 channels
    assert np.array_equal(kernel[1, 1, :, :8], np.eye(8)) and not kernel[0, 0, :, :8].any()
    assert np.abs(kernel[..., 8:]).max() <= 1 / np.sqrt(9 * 8) and kernel[..., 8:].std() > 0


def test_whitening_decorrelates_the_training_patches():
    rng = np.random.default_rng(0)
    # correlated channels, as in photos
    base = rng.normal(120, 40, (600, 16, 16, 1))
    images = np.clip(base + rng.normal(0, 10, (600, 16, 16, 3)), 0, 255).astype(np.uint8)
    card = {**CIFAR_CARD, "shape": [16, 16, 3]}
    training_model, _ = models.build_model(tiny_airbench(), card, "variants.a")
    models.initialize_from_data(training_model, tiny_airbench(), card, images, seed=0)
    probe = keras.Model(training_model.input, training_model.get_layer("whiten_bias").output)
    features = probe.predict(images.astype("float32"), verbose=0)[..., :12].reshape(-1, 12)
    covariance = np.cov(features, rowvar=False)
    np.testing.assert_allclose(np.diag(covariance)[:6], 1.0, atol=0.02)  # well-conditioned directions
    off_diagonal = covariance - np.diag(np.diag(covariance))
    assert np.abs(off_diagonal).max() < 0.02
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=0.02)  # centred through the bias


def test_same_conv_has_conv2d_outputs_and_gradients():
    """SameConv2D's input gradient (a forward conv with the flipped kernel) is Conv2D's."""
    x = tf.random.stateless_normal([4, 7, 6, 5], seed=[0, 1])
    fast = SameConv2D(6, 3, padding="same", use_bias=False)
    plain = keras.layers.Conv2D(6, 3, padding="same", use_bias=False)
    fast.build(x.shape)
    plain.build(x.shape)
    plain.kernel.assign(fast.kernel)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = fast(x), plain(x)
        losses = [tf.reduce_sum(output * output) for output in outputs]
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-6)
    np.testing.assert_allclose(tape.gradient(losses[0], x), tape.gradient(losses[1], x), atol=1e-5)
    np.testing.assert_allclose(tape.gradient(losses[0], fast.kernel), tape.gradient(losses[1], plain.kernel), atol=1e-5)
    with pytest.raises(ValueError, match="stride 1"):
        SameConv2D(6, 3, strides=2, padding="same")


def train_tiny(tmp_path, name, variant):
    directory = tmp_path / name
    write_prepared(directory / "data" / "prepared")
    write_params(directory, {"small": variant})
    return directory


def test_whitening_is_computed_from_the_training_split_only(tmp_path):
    directory = train_tiny(tmp_path, "run", tiny_airbench(epochs=1))
    run_stage(directory, "stages.train", "small")
    saved = load_model(directory / "models/small/model.keras", "train")
    train = np.load(directory / "data/prepared/train.npz")["x"]
    card = json.loads((directory / "data/prepared/card.json").read_text())
    expected, _ = models.build_model(tiny_airbench(), card, "variants.small")
    models.initialize_from_data(expected, tiny_airbench(), card, train, seed=42)
    np.testing.assert_allclose(saved.get_layer("whiten").kernel.numpy(), expected.get_layer("whiten").kernel.numpy())
    others = np.concatenate([np.load(directory / f"data/prepared/{split}.npz")["x"] for split in ("val", "test")])
    models.initialize_from_data(expected, tiny_airbench(), card, others, seed=42)
    assert not np.allclose(saved.get_layer("whiten").kernel.numpy(), expected.get_layer("whiten").kernel.numpy())


def test_killed_airbench_run_resumes_like_an_uninterrupted_one(tmp_path):
    """The frozen whitening weights, the whitening-bias freeze, the lookahead average and the
    alternating flips all continue where the killed run left them."""
    reference, interrupted = (train_tiny(tmp_path, name, tiny_airbench()) for name in ("reference", "killed"))
    run_stage(reference, "stages.train", "small")
    assert 2 <= kill_after_epochs_and_rerun(interrupted, epochs=2) < 5
    expected, actual = (json.loads((d / "models/small/history.json").read_text()) for d in (reference, interrupted))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-4, err_msg=key)
    weights = [load_model(d / "models/small/model.keras", "train").get_weights() for d in (reference, interrupted)]
    for saved, resumed in zip(*weights):
        np.testing.assert_allclose(resumed, saved, rtol=1e-4, atol=1e-5)


class RecordWeights(keras.callbacks.Callback):
    """The weights after each optimizer step, before Lookahead (which runs after it) moves them."""

    def __init__(self):
        super().__init__()
        self.steps, self.epoch_starts = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_starts.append([w.numpy().copy() for w in self.model.trainable_weights])

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.steps.append((step, [w.numpy().copy() for w in self.model.trainable_weights]))


def test_lookahead_leaves_the_moving_average_in_the_weights():
    """Replays the average from the raw steps: the model ends each epoch holding it, so the
    checkpoint, validation and evaluate all see the averaged weights."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    total_steps, start_epoch, every, decay, power = 16, 1, 2, 0.9, 3.0
    recorder = RecordWeights()
    lookahead = Lookahead(total_steps, start_epoch, every, decay, power)
    model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0, callbacks=[recorder, lookahead])

    average = None
    for step, weights in recorder.steps:
        epoch = (step - 1) // 4
        if epoch < start_epoch:
            continue
        if average is None or (step - 1) % 4 == 0:
            average = [w.copy() for w in recorder.epoch_starts[epoch]]
        if step % every == 0:
            rate = 1 - decay**every * (step / total_steps) ** power
            average = [a + rate * (w - a) for a, w in zip(average, weights)]
    for expected, actual in zip(average, model.get_weights()):
        np.testing.assert_allclose(actual, expected, rtol=1e-5)
    assert not np.allclose(recorder.steps[-1][1][0], model.get_weights()[0])  # the average, not the last step


def test_validation_scores_the_averaged_weights_the_checkpoint_keeps():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 4)).astype("float32"), rng.normal(size=(80, 1)).astype("float32")
    x_val, y_val = rng.normal(size=(32, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.2), loss="mse")
    # 5 steps per epoch, a pull every 2: the last step of epochs 1-3 is between pulls
    lookahead = Lookahead(total_steps=20, start_epoch=1, every=2, decay=0.5, decay_power=1.0)
    kept = []
    at_epoch_end = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: kept.append(model.get_weights()))
    history = model.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        validation_data=(x_val, y_val),
        shuffle=False,
        verbose=0,
        callbacks=[lookahead, at_epoch_end],
    )

    for epoch, weights in enumerate(kept):
        scorer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        scorer.compile(loss="mse")
        scorer.set_weights(weights)
        val_loss = scorer.evaluate(x_val, y_val, verbose=0)
        assert history.history["val_loss"][epoch] == pytest.approx(val_loss, rel=1e-5), f"epoch {epoch + 1}"


def test_alternating_flip_mirrors_each_image_in_every_other_epoch():
    images = np.zeros((40, 8, 8, 3), dtype=np.uint8)
    images[..., 0] = np.arange(8, dtype=np.uint8)[None, None, :]  # columns 0..7: a mirror starts with 7
    images[..., 1] = np.arange(40, dtype=np.uint8)[:, None, None]  # the image's index
    augment = batch_augmentation(
        {"crop_padding": 0, "crop_fill": "constant", "horizontal_flip": "alternating"},
        CIFAR_CARD | {"shape": [8, 8, 3]},
        40,
        seed=3,
    )
    mirrored = np.zeros((3, 40), dtype=bool)
    for epoch in range(3):
        for batch, _ in epoch_batches(images, np.zeros(40, dtype=int), 8, 3, epoch, epoch + 1, 10, 1, augment):
            batch = batch.numpy()
            mirrored[epoch, batch[:, 0, 0, 1].astype(int)] = batch[:, 0, 0, 0] == 7
    assert 10 <= mirrored[0].sum() <= 30  # a random half...
    assert (mirrored[1] == ~mirrored[0]).all() and (mirrored[2] == mirrored[0]).all()  # ...then the other half


@pytest.mark.parametrize("fill, expected_border", [("reflect", [3, 2]), ("constant", [0, 0])])
def test_shifted_images_fill_the_border_by_reflection_or_constant(fill, expected_border):
    images = np.tile(np.arange(1, 9, dtype=np.uint8)[None, None, :, None], (64, 8, 1, 3))  # columns 1..8
    augment = batch_augmentation(
        {"crop_padding": 2, "crop_fill": fill, "horizontal_flip": False}, CIFAR_CARD | {"shape": [8, 8, 3]}, 64, 0
    )
    shifted = augment(tf.constant(images), tf.constant([1, 2]), tf.range(64), tf.constant(0)).numpy()[:, 0, :, 0]
    right_by_two = shifted[shifted[:, 2] == 1]  # moved 2 px right: columns 1..6 at 2..7
    assert len(right_by_two) > 0
    assert right_by_two[0, :2].tolist() == expected_border and right_by_two[0, 2:].tolist() == [1, 2, 3, 4, 5, 6]


def test_one_cycle_floors_follow_warmup_from_and_decay_to():
    schedule = OneCycle(peak=0.75, warmup_steps=23, total_steps=100, start=0.2, end=0.07)
    values = [float(schedule(step)) for step in (0, 23, 100, 120)]
    np.testing.assert_allclose(values, [0.15, 0.75, 0.0525, 0.0525], rtol=1e-6)
    np.testing.assert_allclose(float(OneCycle(1.0, 10, 20)(20)), 0.0)  # the old 0 -> peak -> 0 by default


def test_flip_shift_tta_has_six_weighted_views_with_reflected_borders():
    batch = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1)
    views = tta_views(batch, "flip_shift")
    assert len(views) == 6 and sum(weight for weight, _ in views) == pytest.approx(1.0)
    up_left = views[2][1]
    np.testing.assert_array_equal(up_left[:, 1:, 1:], batch[:, :3, :3])
    np.testing.assert_array_equal(up_left[:, 0, 1:], batch[:, 1, :3])  # reflected, not zero
    assert [weight for weight, _ in tta_views(batch, True)] == [0.5, 0.5]


def test_flip_shift_tta_of_a_model_averages_its_views():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    images = np.random.default_rng(0).integers(0, 255, (5, 4, 4, 1)).astype(np.uint8)
    expected = sum(
        weight * model.predict_on_batch(view) for weight, view in tta_views(images.astype("float32"), "flip_shift")
    )
    np.testing.assert_allclose(predict_probabilities(model, images, tta="flip_shift"), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tta": "flip_shfit"}, "variants.v.tta: unknown value 'flip_shfit' (did you mean 'flip_shift'?)"),
        ({"lookahead": {"decay": 1.5}}, "variants.v.lookahead.decay: must be > 0 and < 1, got 1.5"),
        ({"lookahead": {"evry": 5}}, "variants.v.lookahead.evry: unknown key (did you mean 'every'?)"),
        ({"augmentation": {"horizontal_flip": "alternate"}}, "variants.v.augmentation.horizontal_flip: unknown value"),
        ({"optimizer": {"decay_to": 2}}, "variants.v.optimizer.decay_to: must be >= 0 and <= 1, got 2"),
        ({"options": {"widths": []}}, "variants.v.options.widths: must be a positive integer or a non-empty list"),
        ({"options": {"activation": "swish"}}, "variants.v.options.activation: unknown value 'swish'"),
    ],
)
def test_airbench_settings_are_checked_up_front(change, message):
    variant = {"family": "airbench", **change}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        validate_variant(variant, "variants.v")


def test_whitening_kernel_of_white_noise_is_a_scaled_rotation():
    x = np.random.default_rng(1).normal(size=(400, 8, 8, 1))
    kernel = family_airbench.whitening_kernel(x, 2)
    assert kernel.shape == (2, 2, 1, 8)
    filters = kernel[..., :4].reshape(4, 4)
    np.testing.assert_allclose(filters.T @ filters, np.eye(4), atol=0.15)
    np.testing.assert_array_equal(kernel[..., 4:], -kernel[..., :4])


@pytest.mark.parametrize(
    "variant, message",
    [
        (
            {"family": "airbench", "options": {"whiten_bias_epochs": 0}, "lookahead": True},
            "variants.v.lookahead: not supported with variants.v.distribute: multi_worker",
        ),
        ({"family": "airbench", "epochs": 5}, "variants.v.options.whiten_bias_epochs: freezing mid-run"),
    ],
)
def test_settings_that_need_fit_are_refused_with_multi_worker_training(variant, message):
    with pytest.raises(ConfigError, match=message):
        validate_params({"variants": {"v": {**variant, "distribute": "multi_worker"}}})
    validate_params({"variants": {"v": {**variant, "distribute": "mirrored"}}})


def test_saved_airbench_model_loads_in_a_stage_and_predicts_the_same(tmp_path):
    variant = tiny_airbench(options={"widths": [8, 16], "activation": "gelu_tanh"})
    card = {**CIFAR_CARD, "shape": [16, 16, 3]}
    _, model = models.build_model(variant, card, "variants.small")
    model.save(tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras", "python -m stages.train small")
    images = np.random.default_rng(0).integers(0, 255, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-6)
