"""`auto` for mixed precision and XLA: on only where they are faster (cnnlab.hardware)."""

import pytest

from cnnlab.hardware import linux_cpu_flags, use_mixed_precision, use_xla

CPU_ONLY = []
VOLTA, PASCAL, METAL = (7, 0), (6, 1), None


NO_BF16 = {"avx2", "fma"}


@pytest.mark.parametrize(
    "gpus, expected",
    [
        (CPU_ONLY, None),
        ([VOLTA], "float16"),
        ([(8, 9), (9, 0)], "float16"),
        ([PASCAL], None),
        ([VOLTA, PASCAL], None),
        ([METAL], None),
    ],
)
def test_auto_mixed_precision_needs_tensor_cores_on_every_gpu(gpus, expected):
    assert use_mixed_precision("auto", gpus, cpu_flags=NO_BF16 | {"avx512_bf16"} if gpus else NO_BF16) == expected


@pytest.mark.parametrize(
    "flags, expected", [(NO_BF16 | {"avx512_bf16"}, "bfloat16"), ({"amx_bf16"}, "bfloat16"), (NO_BF16, None)]
)
def test_auto_mixed_precision_on_a_cpu_is_bfloat16_where_it_multiplies_it_natively(flags, expected):
    assert use_mixed_precision("auto", CPU_ONLY, cpu_flags=flags) == expected


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\nbugs\t\t: spectre\n")
    assert linux_cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert linux_cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(
    "gpus, multi_worker, expected",
    [
        (CPU_ONLY, False, False),
        ([PASCAL], False, True),
        ([VOLTA, VOLTA], False, True),
        ([METAL], False, False),
        ([VOLTA], True, False),
    ],
)
def test_auto_xla_on_cuda_gpus_outside_multi_worker(gpus, multi_worker, expected):
    assert use_xla("auto", gpus, multi_worker) is expected


@pytest.mark.parametrize(
    "setting, compute", [(True, "float16"), (False, None), ("float16", "float16"), ("bfloat16", "bfloat16")]
)
def test_an_explicit_setting_wins(setting, compute):
    assert use_mixed_precision(setting, CPU_ONLY, cpu_flags=NO_BF16) == compute
    assert use_mixed_precision(setting, [VOLTA]) == compute


@pytest.mark.parametrize("setting", [True, False])
def test_an_explicit_xla_setting_wins(setting):
    assert use_xla(setting, CPU_ONLY) is setting
    assert use_xla(setting, [VOLTA], multi_worker=True) is setting


def test_this_machine_trains_without_xla_and_at_most_in_bfloat16(monkeypatch):
    from cnnlab import distribute

    gpus = distribute.gpu_capabilities()
    if gpus:
        pytest.skip(f"this machine has GPUs: {gpus}")
    assert use_mixed_precision("auto", gpus) in (None, "bfloat16") and not use_xla("auto", gpus)


def test_the_log_says_where_training_runs():
    from cnnlab.hardware import describe

    assert describe(CPU_ONLY, False, False) == "the CPU (no GPU found)"
    assert describe(CPU_ONLY, "bfloat16", False) == "the CPU (no GPU found), bfloat16 mixed precision"
    assert (
        describe([(8, 6), (8, 6)], "float16", True)
        == "2 GPUs (compute capability 8.6, 8.6), float16 mixed precision and XLA"
    )
    assert describe([METAL], False, False) == "1 GPU (compute capability Metal)"
