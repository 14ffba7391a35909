"""Importing TensorFlow without the C++ start-up lines every process prints (the stages and
`cnnlab-predict` call this before anything imports Keras)."""

import os
import sys
import tempfile

# Lines TensorFlow's C++ libraries print while loading, before its logging is set up, so that
# TF_CPP_MIN_LOG_LEVEL cannot silence them: twice per stage process, every stage. The CUDA ones
# say there is no GPU, which the train stage reports in words of its own ("training on CPU").
STARTUP_NOISE = (
    b"All log messages before absl::InitializeLog() is called",
    b"oneDNN custom operations are on",
    b"cpu_feature_guard",
    b"This TensorFlow binary is optimized",
    b"Could not find cuda drivers",
    b"failed call to cuInit",
)


def import_tensorflow_quietly():
    """Import TensorFlow and Keras, and look for GPUs, with their C++ start-up lines filtered
    out of stderr; every other line (a Python warning, a CUDA problem) is passed on."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's info and warning logs
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow

            tensorflow.config.list_physical_devices()  # CUDA's initialisation prints here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().splitlines(keepends=True):
                if not any(noise in line for noise in STARTUP_NOISE):
                    os.write(2, line)
