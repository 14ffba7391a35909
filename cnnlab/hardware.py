"""What `auto` means for train.mixed_precision and train.jit_compile: on by default only where
they make training faster. On this project's CPUs both were measured slower (float16 has no
fast CPU kernels; XLA's CPU code was no faster than oneDNN's), so they stay off without a GPU.

A GPU is described by its CUDA compute capability, (major, minor), or None when it reports
none (Apple's Metal plugin).
"""

TENSOR_CORES_FROM = (7, 0)  # Volta and newer multiply float16 on tensor cores


def describe(gpus, mixed_precision, xla):
    """One line for the log: where training runs and with what."""
    if not gpus:
        return "the CPU (no GPU found)"
    capabilities = ", ".join("Metal" if gpu is None else ".".join(map(str, gpu)) for gpu in gpus)
    extras = [name for name, on in (("mixed precision", mixed_precision), ("XLA", xla)) if on]
    plural = "s" if len(gpus) > 1 else ""
    return f"{len(gpus)} GPU{plural} (compute capability {capabilities})" + (
        f", {' and '.join(extras)}" if extras else ""
    )


def use_mixed_precision(setting, gpus):
    """float16 compute when every GPU has tensor cores; an explicit true/false wins."""
    if setting != "auto":
        return setting
    return bool(gpus) and all(gpu is not None and tuple(gpu) >= TENSOR_CORES_FROM for gpu in gpus)


def use_xla(setting, gpus, multi_worker=False):
    """XLA compilation of the training step on CUDA GPUs; an explicit true/false wins.

    Not under multi_worker: there XLA compiles only the forward and backward pass (no
    collectives on CPU), and with op determinism it failed (docs/design.md)."""
    if setting != "auto":
        return setting
    return bool(gpus) and all(gpu is not None for gpu in gpus) and not multi_worker
