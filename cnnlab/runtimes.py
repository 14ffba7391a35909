"""Exported models run by the runtime a user deploys them with: LiteRT (`ai-edge-litert`) for
.tflite files, ONNX Runtime for .onnx files. TensorFlow-free: these are what a deployment has.

Both take raw 0-255 float32 pixels (N x H x W x C) and return the model's outputs, like the
Keras model they were exported from (the normalization is inside).
"""

import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

RUNTIME_MODULES = {".tflite": ("ai_edge_litert", "ai-edge-litert"), ".onnx": ("onnxruntime", "onnxruntime")}
PREDICT_BATCH = 256


def missing_runtime(suffix):
    """The pip package that runs `suffix` files when it is not installed here, else None."""
    module, package = RUNTIME_MODULES[suffix]
    return None if importlib.util.find_spec(module) else package


def load_exported(path, threads=1):
    """A LiteRTModel or OnnxModel for an exported file; one line when it cannot be run here."""
    path = Path(path)
    if path.suffix not in RUNTIME_MODULES:
        raise DataError(f"{path}: not an exported model (.tflite or .onnx)")
    if not path.is_file():
        raise DataError(f"{path}: missing; run `dvc repro export@<variant>` to write it")
    package = missing_runtime(path.suffix)
    if package:
        raise DataError(f"{path}: needs {package}, which is not installed here (`pip install {package}`)")
    try:
        return open_exported(path, threads)
    except Exception as error:  # each runtime has its own exception types for a bad file
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{path}: cannot load it ({first_line})") from None


def open_exported(path, threads=1):
    """The runtime model of an exported file; the runtime's own exception when it cannot load it."""
    return (LiteRTModel if Path(path).suffix == ".tflite" else OnnxModel)(path, threads)


class RuntimeModel:
    """What cnnlab.evaluation asks of a model: `input_shape` (None, H, W, C) and `predict_on_batch`."""

    def predict_on_batch(self, images):
        return self(images)


class LiteRTModel(RuntimeModel):
    def __init__(self, path, threads):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_shape = (None, *(int(size) for size in self.input["shape_signature"][1:]))
        self.batch = None

    def _resize(self, batch):
        if batch != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.input_shape[1:]])
            self.interpreter.allocate_tensors()
            self.batch = batch

    def __call__(self, images):
        self._resize(len(images))
        self.interpreter.set_tensor(self.input["index"], np.ascontiguousarray(images, dtype=np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


class OnnxModel(RuntimeModel):
    def __init__(self, path, threads):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = (None, *self.session.get_inputs()[0].shape[1:])

    def __call__(self, images):
        return self.session.run(None, {self.input_name: np.asarray(images, dtype=np.float32)})[0]


def predict(model, images, batch_size=PREDICT_BATCH):
    """Outputs (float32, N x outputs) of a runtime model for raw 0-255 images, a batch at a time."""
    return np.concatenate(
        [
            np.asarray(model(images[start : start + batch_size]), dtype=np.float32)
            for start in range(0, len(images), batch_size)
        ]
    )


def median_latency(call, image, calls, warmup):
    """Median seconds of `calls` timed calls of `call` on one image (a batch of 1), after `warmup` untimed ones."""
    batch = np.asarray(image[None], dtype=np.float32)
    for _ in range(warmup):
        call(batch)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
