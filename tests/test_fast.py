"""The `fast` variant of params.yaml: its size (the CPU time budget) and one training step."""

import numpy as np

from cnnlab import models
from cnnlab.config import load_params
from cnnlab.input_pipeline import batch_augmentation, epoch_batches
from cnnlab.training import compile_model

FAST = load_params("params.yaml")["variants"]["fast"]
CIFAR_CARD = {"shape": [32, 32, 3], "num_classes": 10, "normalization": "scale", "mean": [0, 0, 0], "std": [1, 1, 1]}


def test_fast_is_a_small_airbench_network_within_the_flop_budget():
    training_model, model = models.build_model(FAST, CIFAR_CARD, "variants.fast", crop_flip_in_pipeline=True)
    assert FAST["family"] == "airbench" and FAST["options"]["widths"] == [32, 64, 128]
    assert model.count_params() == 295_544
    # ~0.04 GFLOP forward per image: 6 epochs of CIFAR-10 in ~3 min on 2 cores
    assert models.count_flops(model) == 39_774_784
    # crop and flip run in the tf.data pipeline, so the model has no augmentation layers
    assert not [layer.name for layer in training_model.layers if layer.name.startswith("random")]
    assert FAST["augmentation"]["crop_padding"] > 0 and FAST["augmentation"]["horizontal_flip"] == "alternating"
    assert FAST["optimizer"]["schedule"] == "onecycle" and FAST["label_smoothing"] > 0
    assert FAST["lookahead"] and FAST["tta"] == "flip_shift"


def test_fast_trains_one_step_on_tiny_data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    y = np.arange(8) % 10
    training_model, model = models.build_model(FAST, CIFAR_CARD, "variants.fast", crop_flip_in_pipeline=True)
    compile_model(training_model, FAST, total_steps=2, jit_compile=False)
    before = [w.numpy().copy() for w in training_model.trainable_weights]
    augment = batch_augmentation(FAST["augmentation"], CIFAR_CARD, len(x), seed=0)
    history = training_model.fit(
        epoch_batches(x, y, 4, 0, 0, 1, 10, 1, augment), epochs=1, steps_per_epoch=2, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, training_model.trainable_weights))
    probabilities = model.predict(x[:2].astype("float32"), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
