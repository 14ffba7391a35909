"""Thin DVC stage entry points: `python -m stages.<name>`; the logic lives in cnnlab."""

import atexit
import gc
import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# At exit Python's last garbage collections walk every object TensorFlow created, about 1 s
# per stage process (a quick look runs 30 of them). Frozen objects are skipped; the process
# is ending, so nothing is lost. atexit runs this last, after every other exit handler.
atexit.register(gc.freeze)
