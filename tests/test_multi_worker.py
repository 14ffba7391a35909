"""`variants.<name>.distribute: multi_worker`: two worker processes on loopback train one model."""

import csv
import json
import os
import re
import socket
import subprocess
import sys

import numpy as np

from tests.helpers import REPO, kill_once_checkpointed, run_stage, small_variant, write_params, write_prepared

# no dropout or augmentation: a run's only randomness is the seeded data order and initial weights
DETERMINISTIC_LAYERS = [
    {"type": "conv", "filters": 8},
    {"type": "maxpool"},
    {"type": "flatten"},
    {"type": "dense", "units": 16},
    {"type": "dense", "units": "classes", "activation": "softmax"},
]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def tf_config(addresses, index):
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def start_workers(directories, variant):
    """`python -m stages.train <variant>` as worker i of a loopback cluster, in directories[i]."""
    addresses = [f"localhost:{port}" for port in free_ports(len(directories))]
    return [
        subprocess.Popen(
            [sys.executable, "-m", "stages.train", variant],
            cwd=directory,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "TF_CONFIG": tf_config(addresses, index),
                # a killed worker's scratch directory stays in the test's tmp_path
                "TMPDIR": str(directory.parent),
            },
        )
        for index, directory in enumerate(directories)
    ]


def finish(processes, timeout=120):
    """Each worker's stdout once all exited 0; their output otherwise (killed if still running)."""
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for index, (process, (stdout, stderr)) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index} exited {process.returncode}:\n{stdout}\n{stderr}"
        assert "retracing" not in stderr, f"worker {index}: a warning the user cannot act on:\n{stderr}"
    return [stdout for stdout, _ in outputs]


def read(directory, path):
    return json.loads((directory / path).read_text())


def project(directory, variant, train=None):
    write_prepared(directory / "data" / "prepared")
    write_params(directory, {"small": variant}, train=train)
    return directory


def test_two_workers_killed_and_rerun_train_like_one_process_on_the_global_batch(tmp_path):
    """Worker 0 and 1 (batch 8 each, learning rate x 2), killed after epoch 2 and rerun, end
    with the same loss curve as one uninterrupted process on batch 16 with the doubled learning
    rate: each global batch is split between the workers and their gradients summed (not two
    trainings side by side), and on resume worker 1 continues from the chief's checkpoint."""
    per_worker = small_variant(
        layers=DETERMINISTIC_LAYERS, epochs=5, batch_size=8, optimizer={"name": "adam", "learning_rate": 0.003}
    )
    # float32: bfloat16 (auto on CPUs with native bfloat16) sums in a different order per split
    float32 = {"mixed_precision": False}
    workers = [
        project(tmp_path / f"worker{index}", {**per_worker, "distribute": "multi_worker"}, train=float32)
        for index in range(2)
    ]
    single = project(
        tmp_path / "single",
        {**per_worker, "batch_size": 16, "optimizer": {"name": "adam", "learning_rate": 0.006}},
        train=float32,
    )
    chief, other = workers

    kill_once_checkpointed(start_workers(workers, "small"), chief, epochs=2)
    assert not (chief / "models/small").exists()
    outputs = finish(start_workers(workers, "small"))
    run_stage(single, "stages.train", "small")

    resumed_after = [
        int(re.search(r"resuming small from its checkpoint after epoch (\d)", stdout).group(1)) for stdout in outputs
    ]
    assert resumed_after[0] == resumed_after[1] and 2 <= resumed_after[0] < 5
    training = read(chief, "models/small/training.json")
    assert training["replicas"] == 2 and training["epochs_run"] == 5 and training["batch_size"] == 8
    history = read(chief, "models/small/history.json")
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"}
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    with open(chief / "dvclive/small/plots/metrics/eval/accuracy.tsv", newline="") as handle:
        assert [row["step"] for row in csv.DictReader(handle, delimiter="\t")] == ["0", "1", "2", "3", "4"]
    assert not list((chief / "data/checkpoints").glob("small/*/*")), "the chief's checkpoint is removed when done"
    prepared = [f"data/prepared/{name}" for name in ("card.json", "test.npz", "train.npz", "val.npz")]
    assert sorted(path.relative_to(other).as_posix() for path in other.glob("**/*")) == [
        "data",
        "data/prepared",
        *prepared,
        "params.yaml",
    ], "worker 1 writes nothing"

    expected = read(single, "models/small/history.json")
    # the same float32 sums in another order (two half batches, then the all-reduce): measured ~1e-7 apart
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-5, atol=1e-5, err_msg=key)


def test_multi_worker_without_tf_config_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    directory = project(tmp_path, small_variant(distribute="multi_worker"))
    result = run_stage(directory, "stages.train", "small", check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: variants.small.distribute: multi_worker needs") and "set TF_CONFIG" in last
