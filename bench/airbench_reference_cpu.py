"""The reference: Keller Jordan's legacy/airbench94.py, run on the CPU with the fewest changes a CPU needs.

Runs inside the bench's own PyTorch virtual environment (bench/airbench_side_by_side.py makes
it and starts this script); never imported by cnnlab. The reference's code is not copied here:
the file is read from --reference (a local copy of the pinned commit, checked by its sha256),
the CPU changes below are applied to its text, each one named, and the result runs in place
of the original. A change whose text is no longer found stops the run.

    <venv>/bin/python bench/airbench_reference_cpu.py --reference airbench94.py \
        --data data/prepared --epochs 10 [--threads 2] [--precision bfloat16]

Prints one JSON line per epoch ({"side": "reference", "epoch", "seconds", "accuracy"}; seconds
as the reference times them: its training loop only, evaluation left out) and a last one with
the 6-view TTA test accuracy.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path

# legacy/airbench94.py at KellerJordan/cifar10-airbench commit f1c599c4af24aca803e3e65a6a7e52a502e09d0e
REFERENCE_URL = (
    "https://raw.githubusercontent.com/KellerJordan/cifar10-airbench/"
    "f1c599c4af24aca803e3e65a6a7e52a502e09d0e/legacy/airbench94.py"
)
REFERENCE_SHA256 = "0b155e0ff0e696bc01ae136654ddae88a24cd053cd2b4313d44548c29ed6c91d"

# The CPU changes: (what and why, the reference's text, its replacement, times it occurs).
CPU_CHANGES = [
    (
        "no torchvision: the data comes from the prepared files (no CIFAR-10 download) and "
        "T.Normalize is its one-line equivalent (torchvision does not import beside the CPU torch wheel)",
        "import torchvision\nimport torchvision.transforms as T\n",
        "T = types.SimpleNamespace(Normalize=lambda mean, std: lambda x: (x - mean.to(x.dtype).view(-1, 1, 1))"
        " / std.to(x.dtype).view(-1, 1, 1))\n",
        1,
    ),
    (
        "the images load onto the CPU, not GPU 0",
        "map_location=torch.device(gpu)",
        "map_location='cpu'",
        1,
    ),
    (
        "the images in float32, not float16 (CPUs have no fast float16 arithmetic)",
        "self.images.half() / 255",
        "self.images.float() / 255",
        1,
    ),
    (
        "the model stays in float32 on the CPU (not .half().cuda()); bfloat16 comes from autocast",
        "net = net.half().cuda()",
        "net = net.float()",
        1,
    ),
    (
        "bfloat16 autocast over the training forward pass (the CPU's 16-bit type; PRECISION)",
        "            outputs = model(inputs)\n",
        "            with torch.autocast('cpu', torch.bfloat16, enabled=AUTOCAST):\n"
        "                outputs = model(inputs)\n",
        1,
    ),
    (
        "bfloat16 autocast over the evaluation forward passes (plain and TTA)",
        "    with torch.no_grad():\n",
        "    with torch.no_grad(), torch.autocast('cpu', torch.bfloat16, enabled=AUTOCAST):\n",
        1,
    ),
    (
        "wall-clock timing instead of CUDA events",
        "torch.cuda.Event(enable_timing=True)",
        "WallClockEvent()",
        2,
    ),
    ("no CUDA synchronisation (the CPU's work is done when the call returns)", "torch.cuda.synchronize()", "None", 3),
    (
        "bench: one JSON line per epoch with its training seconds and plain test accuracy",
        "        print_training_details(locals(), is_final_entry=False)\n",
        "        print_training_details(locals(), is_final_entry=False)\n"
        "        report_epoch(epoch, total_time_seconds, val_acc)\n",
        1,
    ),
]

PRELUDE = '''
import time, types, json

AUTOCAST = {autocast}


class WallClockEvent:
    """Milliseconds between two record() calls, as torch.cuda.Event; also sums the process's CPU seconds."""

    cpu_seconds = 0.0

    def record(self):
        self.time, self.cpu = time.perf_counter(), time.process_time()

    def elapsed_time(self, end):
        WallClockEvent.cpu_seconds += end.cpu - self.cpu
        return 1000 * (end.time - self.time)


_reported = [0.0, 0.0]


def report_epoch(epoch, total_time_seconds, val_acc):
    seconds = total_time_seconds - _reported[0]
    cpu_seconds = WallClockEvent.cpu_seconds - _reported[1]
    _reported[:] = total_time_seconds, WallClockEvent.cpu_seconds
    line = {{"side": "reference", "epoch": epoch + 1, "seconds": round(seconds, 2),
             "cpu_seconds": round(cpu_seconds, 2), "accuracy": val_acc}}
    print(json.dumps(line), flush=True)
'''


def patched_source(text, autocast):
    for name, old, new, count in CPU_CHANGES:
        if text.count(old) != count:
            sys.exit(f"error: the reference has changed: {name!r} expects {old!r} {count} time(s)")
        text = text.replace(old, new)
    return PRELUDE.format(autocast=autocast) + text


def write_reference_data(prepared, out_dir):
    """data/prepared's train and test splits as the reference's cifar10/{train,test}.pt."""
    import numpy as np
    import torch

    classes = json.loads((prepared / "card.json").read_text())["classes"]
    for split, name in (("train", "train.pt"), ("test", "test.pt")):
        with np.load(prepared / f"{split}.npz") as arrays:
            images, labels = torch.from_numpy(arrays["x"]), torch.from_numpy(arrays["y"].astype("int64"))
        torch.save({"images": images, "labels": labels, "classes": classes}, out_dir / name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help=f"a local copy of {REFERENCE_URL}")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16")
    args = parser.parse_args()

    source = Path(args.reference).read_bytes()
    if hashlib.sha256(source).hexdigest() != REFERENCE_SHA256:
        sys.exit(f"error: {args.reference} is not the pinned reference (sha256 {REFERENCE_SHA256}): {REFERENCE_URL}")
    import torch

    torch.set_num_threads(args.threads)  # CPU change: the threads the bench gives each side
    prepared = Path(args.data).resolve()
    module = types.ModuleType("airbench94_cpu")
    code = patched_source(source.decode(), args.precision == "bfloat16")
    with tempfile.TemporaryDirectory(prefix="airbench-reference-") as work:
        os.makedirs(Path(work) / "cifar10")
        write_reference_data(prepared, Path(work) / "cifar10")
        os.chdir(work)  # the reference reads cifar10/ relative to the working directory
        exec(compile(code, "airbench94_cpu.py", "exec"), module.__dict__)  # noqa: S102
        module.hyp["opt"]["train_epochs"] = args.epochs  # the bench's epoch count (the reference's own: 9.9)
        tta_accuracy = module.main(0)  # one run (the reference's __main__ runs 25)
    print(json.dumps({"side": "reference", "tta_accuracy": tta_accuracy}), flush=True)


if __name__ == "__main__":
    main()
