"""Small unit checks of the transplantable pieces (CPU, seconds).  python -m pytest -q test_airbench_keras.py"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import keras

import airbench_keras as ab


def test_hparam_translation():
    lr, wd = ab.airbench_to_keras_hparams()
    assert abs(lr - 1.5) < 1e-9          # == hyp lr 1.5/1024 per example (research-airbench form)
    assert abs(wd * lr * (1 - 0.85) - 1.33e-3 * 1.5 / 1.5 * 1.0) < 2e-5 or abs(wd - 0.008869) < 1e-5
    lr512, wd512 = ab.airbench_to_keras_hparams(batch_size=512)
    assert abs(lr512 - 0.75) < 1e-9 and abs(wd512 - wd) < 1e-12


def test_whitening_kernel_whitens():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8, 8, 3)).astype(np.float32)
    x[..., 1] += 0.8 * x[..., 0]  # correlated channels
    k = ab.whitening_kernel(x, 2, eps=1e-8)
    assert k.shape == (2, 2, 3, 24)
    y = tf.nn.conv2d(x, k, 1, "VALID").numpy().reshape(-1, 24)[:, :12]
    cov = y.T @ y / len(y)
    assert np.allclose(cov, np.eye(12), atol=1e-3)


def test_flip_alternates_and_is_deterministic():
    idx = tf.range(1000, dtype=tf.int64)
    f0 = ab.flip_flags(idx, 0, 0).numpy()
    f1 = ab.flip_flags(idx, 0, 1).numpy()
    f2 = ab.flip_flags(idx, 0, 2).numpy()
    assert np.all(f0 != f1) and np.all(f0 == f2)
    assert 0.4 < f0.mean() < 0.6
    assert not np.all(ab.flip_flags(idx, 1, 0).numpy() == f0)


def test_translate_is_a_reflect_crop():
    x = tf.random.normal((16, 8, 8, 2))
    idx = tf.range(16, dtype=tf.int64)
    y = ab.augment_batch(x, idx, 3, 5, pad=2, flip=False).numpy()
    dy, dx = [t.numpy() for t in ab.translate_shifts(idx, 3, 5, 2)]
    assert dy.min() >= 0 and dy.max() <= 4 and dx.min() >= 0 and dx.max() <= 4
    xp = np.pad(x.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    for i in range(16):
        assert np.allclose(y[i], xp[i, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8])
    y2 = ab.augment_batch(x, idx, 3, 5, pad=2, flip=False).numpy()
    assert np.array_equal(y, y2)


def test_triangle_schedule():
    s = ab.TriangleSchedule(1.0, 100)
    v = [float(s(i)) for i in (0, 23, 100)]
    assert np.allclose(v, [0.2, 1.0, 0.07], atol=1e-6)


def test_build_shapes_and_softmax():
    inp = keras.Input((32, 32, 3))
    out = ab.build({"widths": [8, 16, 16]}, inp, 10)[0]
    m = keras.Model(inp, out)
    p = m(np.random.normal(size=(2, 32, 32, 3)).astype("float32")).numpy()
    assert p.shape == (2, 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    k = m.get_layer("group2_conv1").kernel.numpy()  # 8 -> 16: first 8 outputs are identity
    assert k[1, 1, 3, 3] == 1.0 and k[0, 0, 3, 3] == 0.0 and k[1, 1, 2, 3] == 0.0
