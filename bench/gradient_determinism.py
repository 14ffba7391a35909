"""Does one training step's gradient come out the same every time? A family, in float32.

    python bench/gradient_determinism.py [--family googlenet] [--calls 8] [--threads N] [--no-grappler]

Builds the family at its params.yaml options on a fixed batch of 64 random 32x32 images, with
TensorFlow's op determinism on (what `train.deterministic: true` turns on), and calls the same
traced gradient step --calls times on the same weights. It prints how many distinct gradients
came out (1 means bit-identical), the first and last variable that differed, and the step time.
--threads 1 sets TensorFlow's intra- and inter-op thread pools to one thread each;
--no-grappler turns TensorFlow's graph optimizer (grappler) off for the traced step.

Found with it (2026-12-05, 2 AMD EPYC cores, TF 2.21, a training run sharing the CPU): googlenet's
gradient took 3-5 distinct values in 8 calls, every variable from its inception 4d outputs (the
map both auxiliary head 2 and inception 4e read) down to the stem differing, while alexnet and
resnet gave 1. With --no-grappler 1 of 8 in three tries, at 1.94-1.99 s per step against
1.92-1.94 s; with --threads 1, 1 of 8 at 2.25 s. Each of grappler's passes turned off alone
(arithmetic, remapping, layout, dependency, constant folding, and six more) left it varying.
"""

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cnnlab.tensorflow_startup import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

from cnnlab.config import validate_params  # noqa: E402
from cnnlab.models import families  # noqa: E402

BATCH, SIZE, CLASSES = 64, 32, 10


def gradient_step(model, images, labels):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            outputs = tf.nest.flatten(model(images, training=False))
            loss = tf.add_n([tf.reduce_mean(keras.losses.categorical_crossentropy(labels, out)) for out in outputs])
        return tape.gradient(loss, model.trainable_weights)

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="googlenet", choices=sorted(families.OPTIONS))
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--threads", type=int, help="intra- and inter-op threads (default: TensorFlow's)")
    parser.add_argument("--no-grappler", action="store_true", help="turn TensorFlow's graph optimizer off")
    args = parser.parse_args()
    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    if args.no_grappler:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()

    params = validate_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    variant = next(v for v in params["variants"].values() if v.get("family") == args.family)
    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, families.build_family(args.family, variant["options"], inputs, CLASSES))
    images = tf.random.normal([BATCH, SIZE, SIZE, 3])
    labels = tf.one_hot(tf.range(BATCH) % CLASSES, CLASSES)
    step = gradient_step(model, images, labels)

    reference = [g.numpy() for g in step()]
    started = time.perf_counter()
    differing, distinct = set(), {b"".join(g.tobytes() for g in reference)}
    for _ in range(args.calls - 1):
        grads = [g.numpy() for g in step()]
        distinct.add(b"".join(g.tobytes() for g in grads))
        pairs = zip(model.trainable_weights, reference, grads)
        differing |= {weight.path for weight, first, now in pairs if first.tobytes() != now.tobytes()}
    seconds = (time.perf_counter() - started) / max(1, args.calls - 1)
    names = [w.path for w in model.trainable_weights if w.path in differing]
    where = f"; differing: {names[0]} .. {names[-1]} ({len(names)} of {len(model.trainable_weights)})" if names else ""
    print(f"{args.family}: {len(distinct)} distinct gradients in {args.calls} calls, {seconds:.2f} s per step{where}")


if __name__ == "__main__":
    main()
