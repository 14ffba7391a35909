"""export@<variant>: the trained model as the files a deployment runs (Keras 3's `model.export`:
LiteRT float, LiteRT with dynamic-range int8 weights, ONNX), each measured by the runtime that
runs it (cnnlab.runtimes): file size, batch-1 latency and test accuracy.

A format that cannot be exported, or whose runtime is not installed on this platform, gets one
line saying why; the other formats are still written and measured.
"""

import contextlib
import importlib.metadata
import importlib.util
import logging
import shutil
import warnings

import keras
import numpy as np

from cnnlab import runtimes
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
FLOAT_TOLERANCE = 0.001  # a float export must score within 0.1 points of the Keras model


class ExportFailed(Exception):
    """One format could not be exported; the message is one line saying why."""


def float32_model(model):
    """`model` with float32 compute throughout. A mixed-precision model's weights are float32
    already; its bfloat16/float16 casts would end up in the exported graph (and tf2onnx refuses
    a model whose policy is not float32), so the layers are rebuilt under float32."""
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model

    def rebuild(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=rebuild)
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

    unknown = sorted({node.op_type for node in onnx.load(path).graph.node if not onnx.defs.has(node.op_type)})
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
    """The Keras model the exports come from, measured the same way (without test-time augmentation)."""
    path = model_dir(root, variant) / "model.keras"
    probabilities = predict_probabilities(model, images)
    return {
        "file": (model_dir(".", variant) / "model.keras").as_posix(),
        "size_bytes": path.stat().st_size,
        "latency_ms": 1000
        * runtimes.median_latency(
            model.predict_on_batch, images[0], settings["latency_calls"], settings["warmup_calls"]
        ),
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
    }


def export_variant(variant, settings, root=".", report=print):
    """Write exports/<variant>/ (each format of settings["formats"] and card.json) and
    metrics/export/<variant>.json; `report` gets one line per format. Returns the figures."""
    images, labels, _ = load_test_split(root)
    model = load_variant_model(root, variant)
    check_input_shape(model, images, prepared_dir(root) / "test.npz")
    figures = {
        "test_images": len(labels),
        "latency_calls": settings["latency_calls"],
        "warmup_calls": settings["warmup_calls"],
        "threads": settings["threads"],
        "keras": keras_row(root, variant, model, images, labels, settings),
    }
    report(f"{variant}: Keras {describe(figures['keras'])}")
    exportable = float32_model(model)
    with atomic_path(exports_dir(root, variant)) as tmp:
        tmp.mkdir()
        shutil.copyfile(require(model_dir(root, variant) / "card.json", train_command(variant)), tmp / "card.json")
        for name in settings["formats"]:
            figures[name] = export_format(exportable, name, tmp, exports_dir(".", variant), images, labels, settings)
            report(f"{variant}: {EXPORT_FORMATS[name][1]} {describe(figures[name])}")
            mismatch = float_mismatch(name, figures[name], figures["keras"])
            if mismatch:
                report(f"warning: {variant}: {mismatch}")
    write_json(export_metrics_path(root, variant), figures)
    return figures


def export_format(model, name, tmp, directory, images, labels, settings):
    """Export one format into `tmp` and measure it; {"skipped": why} when it cannot be done here."""
    package = missing_exporter(name)
    if package:
        return {"skipped": f"{package} is not installed on this platform"}
    filename = EXPORT_FORMATS[name][0]
    try:
        export_file(model, name, tmp / filename)
    except ExportFailed as error:
        (tmp / filename).unlink(missing_ok=True)
        return {"skipped": f"not exported: {error}"}
    suffix = (tmp / filename).suffix
    runtime = runtimes.load_exported(tmp / filename, settings["threads"])
    return {
        "file": (directory / filename).as_posix(),
        "size_bytes": (tmp / filename).stat().st_size,
        **measure(runtime, images, labels, settings),
        "runtime": f"{RUNTIME_PACKAGES[suffix]} {importlib.metadata.version(RUNTIME_PACKAGES[suffix])}",
    }


def float_mismatch(name, row, keras_figures):
    """One line when a float export scores more than 0.1 points away from the Keras model."""
    if name == "tflite_dynamic" or "skipped" in row:
        return None
    difference = row["test_accuracy"] - keras_figures["test_accuracy"]
    if abs(difference) <= FLOAT_TOLERANCE + 1e-12:
        return None
    return f"{EXPORT_FORMATS[name][1]} scores {100 * difference:+.2f} points against the Keras model"


def describe(row):
    if "skipped" in row:
        return row["skipped"]
    size, latency = row["size_bytes"] / 1000, row["latency_ms"]
    return f"{size:,.1f} kB, {latency:.3f} ms per image, test accuracy {row['test_accuracy']:.2%}"
