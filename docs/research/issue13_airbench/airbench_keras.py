"""airbench94 (Keller Jordan 2024) ported to Keras 3 / TensorFlow, CPU-oriented.

Pieces meant to be transplantable into cnnlab separately:
  * build(options, inputs, num_classes, key)      -- model family builder (normalized float in, softmax out)
  * whitening_kernel(x_norm, kernel_size, eps)    -- patch-whitening init from the *training split only*
  * set_whitening(model, kernel)                  -- load it into the frozen first conv
  * TriangleSchedule                              -- LearningRateSchedule (warmup/decay, per step)
  * make_optimizer(...)                           -- keras SGD, nesterov, decoupled weight decay
  * FreezeLayerCallback                           -- stop training the whitening bias after N epochs
  * LookaheadEMA                                  -- airbench "lookahead" EMA callback with get/set_state
  * flip_flags / translate_shifts / augment_batch -- alternating flip + translate as pure functions of
                                                     (seed, epoch, image index) -> resumable
  * tta_views / evaluate                          -- flip + 1-px-translate test-time augmentation
"""

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import keras
from keras import layers, ops

# ----------------------------------------------------------------------------------------------
# Model family
# ----------------------------------------------------------------------------------------------

DEFAULT_OPTIONS = {
    "widths": [64, 256, 256],      # conv groups
    "whiten": True,                # frozen patch-whitening first conv (else a trainable conv)
    "whiten_kernel": 2,            # whitening conv kernel (width = 2 * C * k * k)
    "bn_momentum": 0.6,            # keras convention (= PyTorch momentum 0.4)
    "bn_epsilon": 1e-12,
    "bias_lr_scale": 64.0,         # effective lr multiplier of BN biases (via sqrt reparametrization)
    "output_scale": 1 / 9,         # logits multiplier before softmax
    "activation": "gelu",          # gelu (erf) | gelu_tanh | relu
    "dirac_init": True,
}


@keras.saving.register_keras_serializable(package="airbench")
class DiracUniform(keras.initializers.Initializer):
    """PyTorch default conv init U(-1/sqrt(fan_in), 1/sqrt(fan_in)), then identity (dirac) on the
    first min(cin, cout) output channels (implicit residual)."""

    def __init__(self, dirac=True, seed=None):
        self.dirac = dirac
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, cin, cout = shape
        bound = 1.0 / math.sqrt(kh * kw * cin)
        w = keras.random.uniform(shape, -bound, bound, dtype=dtype or "float32", seed=self.seed)
        if not self.dirac:
            return w
        n = min(cin, cout)
        d = np.zeros((kh, kw, cin, cout), np.float32)
        mask = np.ones((kh, kw, cin, cout), np.float32)
        mask[..., :n] = 0.0
        for i in range(n):
            d[kh // 2, kw // 2, i, i] = 1.0
        return w * mask + d

    def get_config(self):
        return {"dirac": self.dirac, "seed": self.seed}


@keras.saving.register_keras_serializable(package="airbench")
class ScaledBias(layers.Layer):
    """y = x + multiplier * b.  With multiplier sqrt(s), SGD on b behaves like SGD with lr*s on the
    bias itself (and decoupled weight decay keeps the same relative strength) -- this is how the
    airbench `bias_scaler` (BN-bias lr x64) is expressed without per-variable learning rates."""

    def __init__(self, multiplier=1.0, **kwargs):
        super().__init__(**kwargs)
        self.multiplier = float(multiplier)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(input_shape[-1],), initializer="zeros")

    def call(self, x):
        return x + self.multiplier * self.bias

    def get_config(self):
        return {**super().get_config(), "multiplier": self.multiplier}


def _activation(name, x, layer_name):
    if name == "gelu":
        return layers.Activation(lambda t: keras.activations.gelu(t, approximate=False), name=layer_name)(x)
    if name == "gelu_tanh":
        return layers.Activation(lambda t: keras.activations.gelu(t, approximate=True), name=layer_name)(x)
    return layers.Activation(name, name=layer_name)(x)


def _bn(x, o, name):
    x = layers.BatchNormalization(momentum=o["bn_momentum"], epsilon=o["bn_epsilon"], center=False,
                                  scale=False, name=name)(x)
    return ScaledBias(math.sqrt(o["bias_lr_scale"]), name=name + "_bias")(x)


def build(options, inputs, num_classes, key="options"):
    o = {**DEFAULT_OPTIONS, **(options or {})}
    k = o["whiten_kernel"]
    cin = inputs.shape[-1]
    x = layers.Conv2D(2 * cin * k * k, k, padding="valid", use_bias=False,
                      trainable=not o["whiten"], kernel_initializer=DiracUniform(False), name="whiten")(inputs)
    x = ScaledBias(1.0, name="whiten_bias")(x)
    x = _activation(o["activation"], x, "whiten_act")
    for g, w in enumerate(o["widths"], start=1):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, kernel_initializer=DiracUniform(o["dirac_init"]),
                          name=f"group{g}_conv1")(x)
        x = layers.MaxPooling2D(2, name=f"group{g}_pool")(x)
        x = _bn(x, o, f"group{g}_bn1")
        x = _activation(o["activation"], x, f"group{g}_act1")
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, kernel_initializer=DiracUniform(o["dirac_init"]),
                          name=f"group{g}_conv2")(x)
        x = _bn(x, o, f"group{g}_bn2")
        x = _activation(o["activation"], x, f"group{g}_act2")
    x = layers.GlobalMaxPooling2D(name="pool")(x)  # == MaxPool2d(3) on the 3x3 map of 32x32 inputs
    bound = 1.0 / math.sqrt(o["widths"][-1])
    x = layers.Dense(num_classes, use_bias=False, name="head",
                     kernel_initializer=keras.initializers.RandomUniform(-bound, bound))(x)
    x = layers.Rescaling(o["output_scale"], name="logits")(x)
    return [layers.Activation("softmax", name="predictions")(x)]


# ----------------------------------------------------------------------------------------------
# Whitening initialiser (training split only)
# ----------------------------------------------------------------------------------------------

def whitening_kernel(x_norm, kernel_size=2, eps=5e-4):
    """x_norm: N,H,W,C normalized float training images (airbench uses the first 5000).
    Returns a (k,k,C,2*C*k*k) kernel: eigenvectors of the (uncentered) patch covariance scaled by
    1/sqrt(eigenvalue+eps), largest first, concatenated with their negatives."""
    x = np.asarray(x_norm, np.float64)
    n, h, w, c = x.shape
    k = kernel_size
    cols = [x[:, i:h - k + 1 + i, j:w - k + 1 + j, :] for i in range(k) for j in range(k)]
    patches = np.stack(cols, axis=3).reshape(-1, k * k * c)  # order (kh, kw, c) == keras kernel order
    cov = patches.T @ patches / len(patches)
    evals, evecs = np.linalg.eigh(cov)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    scaled = evecs / np.sqrt(evals + eps)  # columns
    kern = scaled.reshape(k, k, c, k * k * c)
    return np.concatenate([kern, -kern], axis=-1).astype(np.float32)


def set_whitening(model, kernel):
    model.get_layer("whiten").kernel.assign(kernel)


# ----------------------------------------------------------------------------------------------
# Optimizer, schedule, callbacks
# ----------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="airbench")
class TriangleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr * piecewise-linear: start -> 1 at peak*total_steps -> end at total_steps (airbench triangle)."""

    def __init__(self, lr, total_steps, start=0.2, peak=0.23, end=0.07):
        self.lr, self.total_steps, self.start, self.peak, self.end = lr, total_steps, start, peak, end

    def __call__(self, step):
        s = ops.cast(step, "float32")
        p = float(int(self.peak * self.total_steps))
        t = float(self.total_steps)
        up = self.start + (1.0 - self.start) * s / p
        down = 1.0 + (self.end - 1.0) * (s - p) / (t - p)
        f = ops.where(s < p, up, ops.maximum(down, self.end))
        return self.lr * f

    def get_config(self):
        return dict(lr=self.lr, total_steps=self.total_steps, start=self.start, peak=self.peak, end=self.end)


def airbench_to_keras_hparams(lr=11.5, momentum=0.85, weight_decay=0.0153, batch_size=1024):
    """Translate airbench's decoupled hyperparameters (per 1024 examples, summed loss, PyTorch coupled
    L2 through Nesterov momentum) into keras SGD settings (batch-mean loss, decoupled weight decay
    applied as w -= lr_t * wd * w, outside momentum).

    PyTorch: lr_p = lr / (1024 * (1 + 1/(1-m))) per *summed* example loss -> mean-loss lr = 1024 * lr_p
    times batch size (airbench keeps the per-example lr fixed when the batch changes).  Coupled L2 coefficient wd_p/lr_p passes
    through momentum, so the per-step shrink is sched * wd_p / (1-m); decoupled keras wd = that / lr_k.
    """
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr_p = lr / kilostep
    wd_p = weight_decay * batch_size / kilostep  # airbench multiplies by batch_size
    lr_k = lr_p * batch_size
    wd_k = wd_p / (1 - momentum) / lr_k
    return lr_k, wd_k


def make_optimizer(lr, wd, momentum, total_steps):
    return keras.optimizers.SGD(learning_rate=TriangleSchedule(lr, total_steps), momentum=momentum,
                                nesterov=True, weight_decay=wd)


class FreezeLayerCallback(keras.callbacks.Callback):
    """Make `layer_name` non-trainable from epoch `epoch` on (airbench: whitening bias for 3 epochs).
    Re-creates the train function so the change takes effect (one retrace).  Decided from the epoch
    index passed to on_epoch_begin, so a run resumed with fit(initial_epoch=k) gets the same state."""

    def __init__(self, layer_name, epoch):
        super().__init__()
        self.layer_name, self.epoch = layer_name, epoch

    def _apply(self, epoch):
        layer = self.model.get_layer(self.layer_name)
        want = epoch < self.epoch
        if layer.trainable != want:
            layer.trainable = want
            self.model.make_train_function(force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._apply(epoch)


class LookaheadEMA(keras.callbacks.Callback):
    """airbench94 'lookahead': from epoch `start_epoch`, every `every` steps
    ema <- lerp(ema, w, 1 - rho), w <- ema, with rho = decay_base**every * (step/total)**decay_pow;
    at each epoch end w <- ema.  Covers all float model variables (BN moving stats included).
    State (ema values + whether initialised) via get_state/set_state for checkpointing."""

    def __init__(self, total_steps, steps_per_epoch, start_epoch=3, decay_base=0.95, decay_pow=3.0, every=5):
        super().__init__()
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.start_epoch, self.decay_base, self.decay_pow, self.every = start_epoch, decay_base, decay_pow, every
        self.ema = None
        self.epoch = 0

    def _vars(self):
        return [v for v in self.model.weights if "float" in str(v.dtype)]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())  # completed steps, global
        if self.epoch < self.start_epoch or step % self.every != 0:
            return
        vs = self._vars()
        if self.ema is None:
            self.ema = [v.numpy().copy() for v in vs]
            return
        rho = self.decay_base ** self.every * (step / self.total_steps) ** self.decay_pow
        self._update(vs, rho)

    def _update(self, vs, rho):
        for e, v in zip(self.ema, vs):
            e += (1.0 - rho) * (v.numpy() - e)
            v.assign(e)

    def on_epoch_end(self, epoch, logs=None):
        if self.ema is not None:
            self._update(self._vars(), 1.0)

    def get_state(self):
        return {"ema": self.ema}

    def set_state(self, state):
        self.ema = state["ema"]


# ----------------------------------------------------------------------------------------------
# Augmentation: alternating flip + random translate, pure functions of (seed, epoch, index)
# ----------------------------------------------------------------------------------------------

def _hash(idx, seed, salt):
    """Cheap integer hash (int64 tensors) -> uint32-ish values, deterministic."""
    h = tf.cast(idx, tf.int64) * 2654435761 + (seed * 97531 + salt) * 40503
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 13)) * 1274126177
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
    return tf.math.floormod(h, 2 ** 31)


def flip_flags(idx, seed, epoch):
    """airbench alternating flip: a fixed random half is flipped in even epochs, the other half in
    odd epochs (base mask drawn once per image from seed; XOR with epoch parity)."""
    base = tf.math.floormod(_hash(idx, seed, 1), 2)
    return tf.math.floormod(base + tf.cast(epoch, tf.int64), 2) > 0


def translate_shifts(idx, seed, epoch, pad):
    h = _hash(idx, seed, 1000003 * (tf.cast(epoch, tf.int64) + 1))
    dy = tf.math.floormod(h, 2 * pad + 1)
    dx = tf.math.floormod(tf.math.floordiv(h, 2 * pad + 1), 2 * pad + 1)
    return tf.cast(dy, tf.int32), tf.cast(dx, tf.int32)


def augment_batch(x, idx, seed, epoch, pad=2, flip=True):
    """x: B,H,W,C float batch of normalized images; idx: their dataset indices."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    if flip:
        x = tf.where(flip_flags(idx, seed, epoch)[:, None, None, None], tf.reverse(x, [2]), x)
    if pad:
        xp = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        dy, dx = translate_shifts(idx, seed, epoch, pad)
        rows = dy[:, None] + tf.range(h)[None, :]
        cols = dx[:, None] + tf.range(w)[None, :]
        x = tf.gather(xp, rows, axis=1, batch_dims=1)
        x = tf.gather(x, cols, axis=2, batch_dims=1)
    return x


def train_dataset(x_norm, y_onehot, batch_size, seed, first_epoch, last_epoch, pad=2, flip=True):
    """Epochs first_epoch..last_epoch-1 back to back; each epoch a seeded permutation, drop remainder."""
    n = len(x_norm)
    xs = tf.constant(x_norm)
    ys = tf.constant(y_onehot)
    steps = n // batch_size

    def epoch_ds(e):
        perm = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), e]))
        perm = perm[: steps * batch_size]
        ds = tf.data.Dataset.from_tensor_slices(tf.reshape(perm, [steps, batch_size]))
        return ds.map(lambda idx: (augment_batch(tf.gather(xs, idx), idx, seed, e, pad, flip), tf.gather(ys, idx)))

    ds = tf.data.Dataset.range(first_epoch, last_epoch).flat_map(epoch_ds)
    return ds.prefetch(2), steps


# ----------------------------------------------------------------------------------------------
# Evaluation with TTA
# ----------------------------------------------------------------------------------------------

def tta_views(x):
    """The 6 airbench tta_level=2 views: identity, flip, and both translated by 1px
    (up-left / down-right, reflect pad), each also flipped."""
    xp = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    h, w = x.shape[1], x.shape[2]
    a = xp[:, 0:h, 0:w]
    b = xp[:, 2:h + 2, 2:w + 2]
    return [x, tf.reverse(x, [2]), a, tf.reverse(a, [2]), b, tf.reverse(b, [2])]


def evaluate(logits_fn, x_norm, y, batch=1000, tta=True):
    """Returns dict: acc (plain), acc_flip (mean of 2 views), acc_tta (airbench weighting 0.25/0.25 +
    4 x 0.125 of logits), acc_tta_prob (same weighting of softmax probabilities)."""
    res = {"plain": [], "flip": [], "tta": [], "tta_prob": []}
    for i in range(0, len(x_norm), batch):
        xb = tf.constant(x_norm[i:i + batch])
        views = tta_views(xb) if tta else [xb]
        lg = [logits_fn(v).numpy() for v in views]
        res["plain"].append(lg[0])
        if tta:
            res["flip"].append(0.5 * (lg[0] + lg[1]))
            wts = [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]
            res["tta"].append(sum(w * l for w, l in zip(wts, lg)))
            pr = [tf.nn.softmax(l).numpy() for l in lg]
            res["tta_prob"].append(sum(w * p for w, p in zip(wts, pr)))
    out = {}
    for k, v in res.items():
        if v:
            out["acc" if k == "plain" else "acc_" + k] = float((np.concatenate(v).argmax(1) == y).mean())
    return out


# ----------------------------------------------------------------------------------------------
# Experiment driver
# ----------------------------------------------------------------------------------------------

class EpochLogger(keras.callbacks.Callback):
    """Times training per epoch (eval excluded), then evaluates and appends a CSV row."""

    def __init__(self, run, csv_path, logits_model, x_test, y_test, n_train, tta_from_epoch=0, tta_every=1,
                 epochs=None, batch_size=None):
        super().__init__()
        self.batch_size = batch_size
        self.run, self.csv_path, self.logits_model = run, csv_path, logits_model
        self.x_test, self.y_test, self.n_train = x_test, y_test, n_train
        self.tta_from_epoch, self.tta_every, self.epochs = tta_from_epoch, tta_every, epochs
        self.cum = 0.0
        self.logits_fn = tf.function(lambda x: logits_model(x, training=False), jit_compile=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.load0 = os.getloadavg()
        self.nb = 0
        self.first_step_s = None

    def on_train_batch_end(self, batch, logs=None):
        self.nb += 1
        if self.first_step_s is None:
            self.first_step_s = time.perf_counter() - self.t0

    def on_epoch_end(self, epoch, logs=None):
        dt = time.perf_counter() - self.t0
        self.cum += dt
        load = os.getloadavg()
        steps = self.nb
        lr = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        last = self.epochs is not None and epoch == self.epochs - 1
        tta = (epoch >= self.tta_from_epoch and (epoch - self.tta_from_epoch) % self.tta_every == 0) or last
        t1 = time.perf_counter()
        acc = evaluate(self.logits_fn, self.x_test, self.y_test, tta=tta)
        et = time.perf_counter() - t1
        row = dict(run=self.run, epoch=epoch + 1, epoch_s=round(dt, 1), cum_train_s=round(self.cum, 1),
                   steps=steps, img_s=round(steps * self.batch_size / dt, 1), first_step_s=round(self.first_step_s, 1),
                   load1_begin=round(self.load0[0], 2), load1_end=round(load[0], 2), load5_end=round(load[1], 2),
                   train_loss=round(float(logs.get("loss", float("nan"))), 4), lr_end=round(lr, 4),
                   acc=acc.get("acc"), acc_flip=acc.get("acc_flip", ""), acc_tta=acc.get("acc_tta", ""),
                   acc_tta_prob=acc.get("acc_tta_prob", ""), eval_s=round(et, 1))
        new = not Path(self.csv_path).exists()
        with open(self.csv_path, "a", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(row))
            if new:
                wr.writeheader()
            wr.writerow(row)
        print("EPOCH", json.dumps(row), flush=True)


def load_split(data_dir, name):
    z = np.load(Path(data_dir) / f"{name}.npz")
    return z["x"], z["y"]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", default="/work/lab13/data")
    ap.add_argument("--widths", default="64,256,256")
    ap.add_argument("--epochs", type=float, default=9.9)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=11.5, help="airbench lr per 1024 examples")
    ap.add_argument("--momentum", type=float, default=0.85)
    ap.add_argument("--wd", type=float, default=0.0153, help="airbench wd per 1024 examples")
    ap.add_argument("--label_smoothing", type=float, default=0.2)
    ap.add_argument("--whiten_bias_epochs", type=int, default=3)
    ap.add_argument("--ema_start", type=int, default=3)
    ap.add_argument("--no_ema", action="store_true")
    ap.add_argument("--no_whiten", action="store_true")
    ap.add_argument("--activation", default="gelu")
    ap.add_argument("--translate", type=int, default=2)
    ap.add_argument("--xla", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tta_from", type=int, default=0, help="first epoch (0-based) with TTA eval")
    ap.add_argument("--tta_every", type=int, default=1)
    ap.add_argument("--bench_steps", type=int, default=0, help="only time this many steps")
    ap.add_argument("--csv", default="/work/lab13/logs/runs.csv")
    a = ap.parse_args(argv)

    keras.utils.set_random_seed(a.seed)
    xtr, ytr = load_split(a.data, "train")
    xte, yte = load_split(a.data, "test")
    card = json.loads((Path(a.data) / "card.json").read_text())
    mean, std = np.array(card["mean"], np.float32), np.array(card["std"], np.float32)
    xtr = (xtr.astype(np.float32) - mean) / std
    xte = (xte.astype(np.float32) - mean) / std
    nc = card["num_classes"]
    ytr1 = np.eye(nc, dtype=np.float32)[ytr]

    widths = [int(w) for w in a.widths.split(",")]
    opts = dict(widths=widths, whiten=not a.no_whiten, activation=a.activation)
    inputs = keras.Input((32, 32, 3), name="image")
    out = build(opts, inputs, nc)[0]
    model = keras.Model(inputs, out)
    logits_model = keras.Model(inputs, model.get_layer("logits").output)
    if not a.no_whiten:
        t = time.perf_counter()
        set_whitening(model, whitening_kernel(xtr[:5000], 2))
        print(f"whitening init {time.perf_counter() - t:.2f}s", flush=True)

    steps_per_epoch = len(xtr) // a.batch
    total_steps = math.ceil(steps_per_epoch * a.epochs)
    n_epochs = math.ceil(a.epochs)
    lr_k, wd_k = airbench_to_keras_hparams(a.lr, a.momentum, a.wd, a.batch)
    print(f"keras lr {lr_k:.4f} wd {wd_k:.5f} steps/epoch {steps_per_epoch} total {total_steps}", flush=True)
    opt = make_optimizer(lr_k, wd_k, a.momentum, total_steps)
    model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(label_smoothing=a.label_smoothing),
                  jit_compile=bool(a.xla))
    print("params", model.count_params(), flush=True)

    ds, _ = train_dataset(xtr, ytr1, a.batch, a.seed, 0, n_epochs + 1, pad=a.translate)

    if a.bench_steps:
        it = iter(ds)
        model.train_on_batch(*next(it))  # compile
        model.train_on_batch(*next(it))
        l0 = os.getloadavg()
        t = time.perf_counter()
        for _ in range(a.bench_steps):
            model.train_on_batch(*next(it))
        dt = time.perf_counter() - t
        per = dt / a.bench_steps
        # inference throughput
        lf = tf.function(lambda x: logits_model(x, training=False), jit_compile=True)
        xb = tf.constant(xte[:1000]); lf(xb)
        t2 = time.perf_counter()
        for i in range(3):
            lf(xb).numpy()
        inf = 3000 / (time.perf_counter() - t2)
        row = dict(run=a.run, widths=a.widths, batch=a.batch, xla=a.xla, act=a.activation, s_per_step=round(per, 3),
                   img_s=round(a.batch / per, 1), epoch_s_45k=round(per * steps_per_epoch, 1),
                   infer_img_s=round(inf, 1), load1_begin=round(l0[0], 2), load1_end=round(os.getloadavg()[0], 2))
        print("BENCH", json.dumps(row), flush=True)
        with open("/work/lab13/logs/bench.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        return

    callbacks = [EpochLogger(a.run, a.csv, logits_model, xte, yte, steps_per_epoch * a.batch,
                             tta_from_epoch=a.tta_from, tta_every=a.tta_every, epochs=n_epochs, batch_size=a.batch)]
    if not a.no_whiten:
        callbacks.insert(0, FreezeLayerCallback("whiten_bias", a.whiten_bias_epochs))
    if not a.no_ema:
        # must run before the logger so that eval sees the EMA weights
        callbacks.insert(len(callbacks) - 1, LookaheadEMA(total_steps, steps_per_epoch, start_epoch=a.ema_start))

    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) >= total_steps:
                self.model.stop_training = True
    callbacks.insert(0, StopAt())
    print("config", json.dumps(vars(a)), flush=True)
    # keras counts a partial last epoch as a full one in params; steps_per_epoch is fixed.
    model.fit(ds, epochs=n_epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks, verbose=0)


if __name__ == "__main__":
    main()
