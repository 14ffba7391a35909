"""`auto` for mixed precision and XLA: on only where they are faster (cnnlab.hardware)."""

import pytest

from cnnlab.hardware import use_mixed_precision, use_xla

CPU_ONLY = []
VOLTA, PASCAL, METAL = (7, 0), (6, 1), None


@pytest.mark.parametrize(
    "gpus, expected",
    [
        (CPU_ONLY, False),
        ([VOLTA], True),
        ([(8, 9), (9, 0)], True),
        ([PASCAL], False),
        ([VOLTA, PASCAL], False),
        ([METAL], False),
    ],
)
def test_auto_mixed_precision_needs_tensor_cores_on_every_gpu(gpus, expected):
    assert use_mixed_precision("auto", gpus) is expected


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


@pytest.mark.parametrize("setting", [True, False])
def test_an_explicit_setting_wins(setting):
    assert use_mixed_precision(setting, CPU_ONLY) is setting
    assert use_mixed_precision(setting, [VOLTA]) is setting
    assert use_xla(setting, CPU_ONLY) is setting
    assert use_xla(setting, [VOLTA], multi_worker=True) is setting


def test_this_machine_trains_without_either(monkeypatch):
    from cnnlab import distribute

    gpus = distribute.gpu_capabilities()
    if gpus:
        pytest.skip(f"this machine has GPUs: {gpus}")
    assert not use_mixed_precision("auto", gpus) and not use_xla("auto", gpus)


def test_the_log_says_where_training_runs():
    from cnnlab.hardware import describe

    assert describe(CPU_ONLY, False, False) == "the CPU (no GPU found)"
    assert describe([(8, 6), (8, 6)], True, True) == "2 GPUs (compute capability 8.6, 8.6), mixed precision and XLA"
    assert describe([METAL], False, False) == "1 GPU (compute capability Metal)"
