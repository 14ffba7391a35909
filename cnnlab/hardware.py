"""What `auto` means for train.mixed_precision and train.jit_compile: on by default only where
they make training faster. float16 runs on GPUs with tensor cores; on CPUs it has no fast
kernels, but bfloat16 does where the CPU multiplies it natively (AVX512-BF16 or AMX, read from
/proc/cpuinfo): on the reference machine's 2 cores a training step of airbench94's network ran
1.4-1.5x faster and of the small CNNs ~1.1x. XLA's CPU code was no faster than oneDNN's, so it
stays off without a GPU.

A GPU is described by its CUDA compute capability, (major, minor), or None when it reports
none (Apple's Metal plugin).
"""

TENSOR_CORES_FROM = (7, 0)  # Volta and newer multiply float16 on tensor cores


BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
POLICIES = {"float16": "mixed_float16", "bfloat16": "mixed_bfloat16", None: "float32"}


def describe(gpus, mixed_precision, xla):
    """One line for the log: where training runs and with what (`mixed_precision`: None,
    "float16" or "bfloat16")."""
    if not gpus:
        return "the CPU (no GPU found)" + (f", {mixed_precision} mixed precision" if mixed_precision else "")
    capabilities = ", ".join("Metal" if gpu is None else ".".join(map(str, gpu)) for gpu in gpus)
    extras = [name for name, on in ((f"{mixed_precision} mixed precision", mixed_precision), ("XLA", xla)) if on]
    plural = "s" if len(gpus) > 1 else ""
    return f"{len(gpus)} GPU{plural} (compute capability {capabilities})" + (
        f", {' and '.join(extras)}" if extras else ""
    )


def use_mixed_precision(setting, gpus, cpu_flags=None):
    """The compute type of mixed precision, or None for float32 throughout: with `auto`,
    float16 when every GPU has tensor cores, bfloat16 on a CPU without GPUs that multiplies it
    natively; an explicit setting wins (true means float16)."""
    if setting != "auto":
        return {True: "float16", False: None}.get(setting, setting)
    if gpus:
        tensor_cores = all(gpu is not None and tuple(gpu) >= TENSOR_CORES_FROM for gpu in gpus)
        return "float16" if tensor_cores else None
    flags = cpu_flags if cpu_flags is not None else linux_cpu_flags()
    return "bfloat16" if any(flag in flags for flag in BFLOAT16_CPU_FLAGS) else None


def linux_cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags Linux reports (empty elsewhere)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def use_xla(setting, gpus, multi_worker=False):
    """XLA compilation of the training step on CUDA GPUs; an explicit true/false wins.

    Not under multi_worker: there XLA compiles only the forward and backward pass (no
    collectives on CPU), and with op determinism it failed (docs/design.md)."""
    if setting != "auto":
        return setting
    return bool(gpus) and all(gpu is not None for gpu in gpus) and not multi_worker
