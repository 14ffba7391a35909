"""export@<variant>: the trained model as the files a deployment runs (Keras 3's `model.export`:
LiteRT float, LiteRT with dynamic-range int8 weights, ONNX), each measured by the runtime that
runs it (cnnlab.runtimes): file size, batch-1 latency and test accuracy.

A format that cannot be exported, whose runtime is not installed on this platform, or that its
runtime cannot run (a LiteRT file needing TensorFlow's Flex ops) gets one line saying why; the
other formats are still written and measured.

The files are exported from the model as it runs at inference, in float32 (exportable_model): a
float file must score within 0.1 points of that, the `keras_float32` figures. The `keras` figures
are the model as trained (bfloat16 compute under mixed precision), shown beside them.
"""

import contextlib
import importlib.metadata
import importlib.util
import logging
import re
import shutil
import warnings

import keras
import numpy as np

from cnnlab import runtimes
from cnnlab.data.prepared import dataset_id
from cnnlab.evaluation import check_input_shape, load_test_split, load_variant_model, predict_probabilities
from cnnlab.fileio import atomic_path, require, write_json
from cnnlab.layout import (
    EXPORT_FORMATS,
    export_metrics_path,
    exports_dir,
    model_dir,
    prepared_dir,
    train_command,
)

RUNTIME_PACKAGES = {".tflite": "ai-edge-litert", ".onnx": "onnxruntime"}
# what a TensorFlow op that tf2onnx cannot convert usually comes from, and what converts instead
ONNX_OP_HINTS = {"Erfc": "exact GELU; `activation: gelu_tanh` converts"}
# Keras's augmentation layers pass images through unchanged at inference, but their training
# branch (ImageProjectiveTransformV3, random draws) stays in an exported graph, and tf2onnx
# cannot convert it; the exported model gets an Identity layer in their place.
INFERENCE_IDENTITY = (
    keras.layers.RandomFlip,
    keras.layers.RandomRotation,
    keras.layers.RandomTranslation,
    keras.layers.RandomZoom,
    keras.layers.RandomContrast,
    keras.layers.RandomBrightness,
)
FLOAT_TOLERANCE = 0.001  # a float export must score within 0.1 points of the float32 Keras model


class ExportFailed(Exception):
    """One format could not be exported; the message is one line saying why."""


def limit_tensorflow_threads(threads):
    """Let TensorFlow use `threads` threads within and across ops, as the exported files'
    runtimes do, so that the Keras latency compares with theirs. Must come before TensorFlow
    runs anything: its thread pools are made once."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def tensorflow_threads():
    """The threads TensorFlow may use within and across ops (0: its default, one per core)."""
    import tensorflow as tf

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def dtype_policy(model):
    """The model's compute precision: its layers' dtype policies other than float32 (a mixed
    precision model keeps a float32 output layer), or float32."""
    return "+".join(sorted({layer.dtype_policy.name for layer in model.layers} - {"float32"})) or "float32"


def exportable_model(model):
    """`model` as it runs at inference, in float32 compute throughout, with Identity in place of
    its augmentation layers (INFERENCE_IDENTITY). A mixed-precision model's weights are float32
    already; its bfloat16/float16 casts would end up in the exported graph (and tf2onnx refuses
    a model whose policy is not float32), so the layers are rebuilt under float32."""
    if all(
        layer.dtype_policy.name == "float32" and not isinstance(layer, INFERENCE_IDENTITY) for layer in model.layers
    ):
        return model

    def rebuild(layer):
        if isinstance(layer, INFERENCE_IDENTITY):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    def call_in_inference_mode(layer, *args, **kwargs):
        # the graph records training=True on augmentation nodes; replayed into an ONNX export,
        # it puts the BatchNorm layers after them in training mode (batch statistics)
        kwargs.pop("training", None)
        return layer(*args, **kwargs)

    copy = keras.models.clone_model(model, clone_function=rebuild, call_function=call_in_inference_mode)
    copy.set_weights(model.get_weights())
    return copy


def export_file(model, name, path):
    """Write format `name` of `model` to `path`; ExportFailed with one line when it cannot."""
    try:
        if name == "onnx":
            with quiet_tf2onnx() as errors:
                model.export(path, format="onnx", verbose=False)
            check_onnx_ops(path, errors)
        else:
            import tensorflow as tf

            quantized = {"optimizations": [tf.lite.Optimize.DEFAULT]} if name == "tflite_dynamic" else {}
            model.export(path, format="litert", verbose=False, **quantized)
    except ExportFailed:
        raise
    except Exception as error:  # the converters raise many types; the first line says what failed
        raise ExportFailed((str(error).strip().splitlines() or [type(error).__name__])[0]) from None


@contextlib.contextmanager
def quiet_tf2onnx():
    """Collect tf2onnx's error log lines instead of printing them (they are reported in one line)."""
    logger = logging.getLogger("tf2onnx")
    messages = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: messages.append(record.getMessage())
    saved = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [handler], False
    try:
        with warnings.catch_warnings():  # Keras's tf2onnx patch looks up np.object, which numpy 2 warns about
            warnings.simplefilter("ignore", FutureWarning)
            yield messages
    finally:
        logger.handlers, logger.propagate = saved


def check_onnx_ops(path, errors):
    """tf2onnx writes TensorFlow ops it cannot convert into the graph as they are, and ONNX
    Runtime then refuses the file: name them here instead."""
    import onnx

    unknown = sorted(
        {
            f"{node.domain}:{node.op_type}" if node.domain else node.op_type
            for node in onnx.load(path).graph.node
            if not onnx.defs.has(node.op_type, domain=node.domain)
        }
    )
    if not unknown and not errors:
        return
    if not unknown:
        raise ExportFailed(f"tf2onnx: {errors[0]}")
    hints = [f" ({ONNX_OP_HINTS[op]})" if op in ONNX_OP_HINTS else "" for op in unknown]
    ops = ", ".join(f"{op}{hint}" for op, hint in zip(unknown, hints))
    version = importlib.metadata.version("tf2onnx")
    raise ExportFailed(f"tf2onnx {version} cannot convert the TensorFlow op {ops}")


def missing_exporter(name):
    """The pip package format `name` needs, for export or to run it, when it is not installed here."""
    suffix = "." + EXPORT_FORMATS[name][0].rsplit(".", 1)[1]
    if suffix == ".onnx":
        for module, package in (("tf2onnx", "tf2onnx"), ("onnx", "onnx")):
            if importlib.util.find_spec(module) is None:
                return package
    return runtimes.missing_runtime(suffix)


def measure(call, images, labels, settings):
    """Test accuracy of `call` (raw images -> outputs) and its median batch-1 latency in ms."""
    outputs = runtimes.predict(call, images)
    return {
        "latency_ms": 1000
        * runtimes.median_latency(call, images[0], settings["latency_calls"], settings["warmup_calls"]),
        "test_accuracy": float(np.mean(outputs.argmax(axis=1) == labels)),
    }


def keras_row(root, variant, model, images, labels, settings):
    """The Keras model as trained, measured like the exports (without test-time augmentation)."""
    path = model_dir(root, variant) / "model.keras"
    return {
        "file": (model_dir(".", variant) / "model.keras").as_posix(),
        "dtype_policy": dtype_policy(model),
        "size_bytes": path.stat().st_size,
        "latency_ms": 1000
        * runtimes.median_latency(
            model.predict_on_batch, images[0], settings["latency_calls"], settings["warmup_calls"]
        ),
        "test_accuracy": keras_accuracy(model, images, labels),
    }


def keras_accuracy(model, images, labels):
    return float(np.mean(predict_probabilities(model, images).argmax(axis=1) == labels))


def float32_row(model, exportable, as_trained, images, labels):
    """The model the files are exported from (the model as trained, as it runs at inference in
    float32 compute): the reference a float export must match."""
    accuracy = as_trained["test_accuracy"] if exportable is model else keras_accuracy(exportable, images, labels)
    return {"dtype_policy": "float32", "test_accuracy": accuracy}


def export_variant(variant, settings, root=".", report=print):
    """Write exports/<variant>/ (each format of settings["formats"] and card.json) and
    metrics/export/<variant>.json; `report` gets one line per format. Returns the figures."""
    images, labels, card = load_test_split(root)
    model = load_variant_model(root, variant)
    check_input_shape(model, images, prepared_dir(root) / "test.npz")
    exportable = exportable_model(model)
    figures = {
        "dataset": dataset_id(card),
        "test_images": len(labels),
        "latency_calls": settings["latency_calls"],
        "warmup_calls": settings["warmup_calls"],
        "threads": settings["threads"],
        "tensorflow_threads": tensorflow_threads(),
        "keras": keras_row(root, variant, model, images, labels, settings),
    }
    figures["keras_float32"] = float32_row(model, exportable, figures["keras"], images, labels)
    report(f"{variant}: Keras {describe(figures['keras'])}")
    if figures["keras"]["dtype_policy"] != "float32":
        report(
            f"{variant}: Keras in float32, which the files are exported from: "
            f"test accuracy {figures['keras_float32']['test_accuracy']:.2%}"
        )
    with atomic_path(exports_dir(root, variant)) as tmp:
        tmp.mkdir()
        shutil.copyfile(require(model_dir(root, variant) / "card.json", train_command(variant)), tmp / "card.json")
        for name in settings["formats"]:
            row = export_format(exportable, name, tmp, exports_dir(".", variant), images, labels, settings)
            mismatch = float_mismatch(name, row, figures["keras_float32"])
            if mismatch:  # a file that answers otherwise than the model it comes from is not shipped
                (tmp / EXPORT_FORMATS[name][0]).unlink()
                row = {"skipped": f"exported, but not kept: it {mismatch}"}
            figures[name] = row
            report(f"{'warning: ' if mismatch else ''}{variant}: {EXPORT_FORMATS[name][1]} {describe(row)}")
    write_json(export_metrics_path(root, variant), figures)
    return figures


def export_format(model, name, tmp, directory, images, labels, settings):
    """Export one format into `tmp` and measure it; {"skipped": why} when it cannot be done here."""
    package = missing_exporter(name)
    if package:
        return {"skipped": f"{package} is not installed on this platform"}
    path = tmp / EXPORT_FORMATS[name][0]
    try:
        export_file(model, name, path)
    except ExportFailed as error:
        path.unlink(missing_ok=True)
        return {"skipped": f"not exported: {error}"}
    package = RUNTIME_PACKAGES[path.suffix]
    try:
        measured = measure(runtimes.open_exported(path, settings["threads"]), images, labels, settings)
    except Exception as error:  # each runtime raises its own types, at load or at the first call
        path.unlink()
        return {"skipped": f"exported, but {package} cannot run it: {runtime_failure(error, package)}"}
    return {
        "file": (directory / path.name).as_posix(),
        "size_bytes": path.stat().st_size,
        **measured,
        "runtime": f"{package} {importlib.metadata.version(package)}",
    }


def runtime_failure(error, package):
    """Why a runtime could not run an exported file, in one line."""
    flex = re.findall(r"\(Flex(\w+)\) failed to prepare", str(error))
    if flex:  # the LiteRT converter falls back on TensorFlow ops, which only TensorFlow's own interpreter has
        return f"it needs the TensorFlow op {', '.join(flex)} (Select TF ops), and {package} has no Flex delegate"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def float_mismatch(name, row, reference):
    """What is wrong when a float export scores more than 0.1 points away from `reference`, the
    float32 Keras model it was exported from; None when nothing is."""
    if name == "tflite_dynamic" or "skipped" in row:
        return None
    difference = row["test_accuracy"] - reference["test_accuracy"]
    if abs(difference) <= FLOAT_TOLERANCE + 1e-12:
        return None
    return f"scores {100 * difference:+.2f} points against the float32 Keras model it comes from"


def describe(row):
    if "skipped" in row:
        return row["skipped"]
    size, latency = row["size_bytes"] / 1000, row["latency_ms"]
    return f"{size:,.1f} kB, {latency:.3f} ms per image, test accuracy {row['test_accuracy']:.2%}"
