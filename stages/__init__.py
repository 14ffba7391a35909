"""Thin DVC stage entry points: `python -m stages.<name>`; the logic lives in cnnlab."""
import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides the stage's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
