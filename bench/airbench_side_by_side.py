"""The reference airbench94 (PyTorch) beside our preset (cnnlab, Keras), same CPU, same data, same epochs.

    python bench/airbench_side_by_side.py --reference airbench94.py --epochs 10 [--variant airbench90]
        [--repeats 1] [--threads 2] [--train-images N] [--venv ~/.cache/cnnlab/bench-torch-venv]

--reference is a local copy of legacy/airbench94.py at the commit bench/airbench_reference_cpu.py
pins (its sha256 is checked), for instance:
    curl -o airbench94.py https://raw.githubusercontent.com/KellerJordan/cifar10-airbench/\
f1c599c4af24aca803e3e65a6a7e52a502e09d0e/legacy/airbench94.py
The reference runs in a PyTorch virtual environment of the bench's own (made on first use:
`pip install torch==2.13.0 numpy`; never a dependency of cnnlab), with the CPU changes
airbench_reference_cpu.py names. Our side is the preset from params.yaml trained by cnnlab.training.train_variant, the
pipeline's own code path (as bench/time_to_accuracy.py), with the preset's epochs set to
--epochs. Both read data/prepared (`python -m stages.prepare` with data.source set to the
CIFAR-10 JPEG copy: 45,000 training and 10,000 test images); --train-images and --test-images
take stratified subsets, for a quick comparison of speed.

The reference computes in our side's precision (train.mixed_precision resolved for this CPU):
bfloat16 autocast where the CPU multiplies it natively, float32 elsewhere (emulated bfloat16
made its training step 16x slower on an AVX2-only CPU).

Each side runs in a process of its own with --threads threads; with --repeats > 1 the order
alternates (reference first, then ours first, ...), so that a change in the machine's load
falls on both. Seconds per epoch are the training loop's only, both sides: evaluation is left
out, and so is our validation pass (shown apart). Accuracy is plain test accuracy after each
epoch; the 6-view TTA accuracy after the last. The ratio is ours / the reference's, epoch by
epoch, and over the epochs after the first (graph tracing, whitening and the reference's
preprocessing fall in the first). Each side's process CPU seconds are shown too: on a machine
shared with other work they measure the work done, where wall-clock seconds mostly measure the
load (--threads 1 makes them comparable: no thread waits spinning for another).

Prints each run's table and one final line:
airbench90 / reference seconds per epoch after the first: ratio 0.92, CPU seconds 1.36; median of 1 run(s), ...
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TORCH_REQUIREMENTS = ["torch==2.13.0", "numpy"]  # PyPI; the CPU-only wheels: --pip-args "--index-url ..."


def torch_python(venv, pip_args):
    """The bench's PyTorch interpreter, the virtual environment made on first use."""
    python = Path(venv) / "bin" / "python"
    if not python.exists() or subprocess.run([python, "-c", "import torch, numpy"], capture_output=True).returncode:
        import venv as venv_module

        print(f"making {venv} with {' '.join(TORCH_REQUIREMENTS)}", flush=True)
        venv_module.create(venv, with_pip=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *TORCH_REQUIREMENTS, *pip_args], check=True)
    return python


def subset_data(data_dir, images, out_dir):
    """A prepared-data folder with stratified subsets of the splits, `images` = {split: count or None}."""
    import shutil

    import numpy as np
    from sklearn.model_selection import train_test_split

    from cnnlab.data.prepared import read_split

    for split in ("train", "val", "test"):
        x, y = read_split(data_dir, split)
        if images.get(split) and images[split] < len(y):
            keep, _ = train_test_split(np.arange(len(y)), train_size=images[split], stratify=y, random_state=0)
            x, y = x[np.sort(keep)], y[np.sort(keep)]
        np.savez(out_dir / f"{split}.npz", x=x, y=y)
    shutil.copy(Path(data_dir) / "card.json", out_dir / "card.json")
    return out_dir


def run_side(command, side):
    """Run one side; its JSON lines (the measurements) are returned, its other output passed on."""
    rows, started = [], time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO) as process:
        for line in process.stdout:
            if line.startswith("{") and f'"side": "{side}"' in line:
                rows.append(json.loads(line))
                print(f"  {side}: {line.strip()}", flush=True)
    if process.returncode:
        sys.exit(f"error: the {side} side failed (exit {process.returncode}): {' '.join(map(str, command))}")
    epochs = [row for row in rows if "epoch" in row]
    final = next((row for row in rows if "tta_accuracy" in row), {})
    return {"epochs": epochs, "tta_accuracy": final.get("tta_accuracy"), "wall": time.perf_counter() - started}


def ours(args):
    """Our side, in this process: the preset trained by the pipeline's code path."""
    from cnnlab.config import load_params, variant_params
    from cnnlab.data.prepared import read_split
    from time_to_accuracy import train_with_extra_callbacks

    params = load_params(args.params)
    variant = {**variant_params(params, args.variant), "epochs": args.epochs}
    train_params = {**variant_train_params(params, args.variant), "max_epochs": None, "threads": args.threads}
    x_test, y_test = read_split(args.data, "test")
    with tempfile.TemporaryDirectory(prefix="side-by-side-") as work:
        callback = per_epoch_report(x_test, y_test, variant["tta"])
        train_with_extra_callbacks(args.variant, variant, train_params, args.data, work, [callback])


def per_epoch_report(x_test, y_test, tta):
    import keras
    import numpy as np

    from cnnlab.evaluation import predict_probabilities

    def accuracy(model, tta=False):
        return float(np.mean(predict_probabilities(model, x_test, tta=tta).argmax(1) == y_test))

    class Report(keras.callbacks.Callback):
        """The training loop's seconds (to the start of validation), the validation's, and the
        plain test accuracy after each epoch; the TTA test accuracy after the last."""

        def on_epoch_begin(self, epoch, logs=None):
            self.begin, self.cpu_begin, self.validation_begin = time.perf_counter(), time.process_time(), None

        def on_test_begin(self, logs=None):
            self.validation_begin, self.cpu_end = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            loop_end = self.validation_begin or end
            cpu_seconds = (self.cpu_end if self.validation_begin else time.process_time()) - self.cpu_begin
            row = {"side": "ours", "epoch": epoch + 1, "seconds": round(loop_end - self.begin, 2)}
            row["cpu_seconds"] = round(cpu_seconds, 2)
            row["validation_seconds"] = round(end - loop_end, 2)
            row["accuracy"] = accuracy(self.model)
            print(json.dumps(row), flush=True)

        def on_train_end(self, logs=None):
            print(json.dumps({"side": "ours", "tta_accuracy": accuracy(self.model, tta)}), flush=True)

    return Report()


def our_precision(params_path, variant):
    """The compute type our side trains in (train.mixed_precision, `auto` resolved for this CPU),
    given to the reference too: without native bfloat16 (AVX512-BF16, AMX) the CPU emulates it,
    and the reference's bfloat16 autocast ran many times slower than float32 here (AMD EPYC, AVX2)."""
    from cnnlab import hardware
    from cnnlab.config import load_params

    setting = variant_train_params(load_params(params_path), variant)["mixed_precision"]
    return hardware.use_mixed_precision(setting, gpus=[]) or "float32"


def variant_train_params(params, name):
    """The `train:` settings with the variant's own `mixed_precision`, when it sets one."""
    from cnnlab.config import variant_params

    own = variant_params(params, name).get("mixed_precision")
    return params["train"] if own is None else {**params["train"], "mixed_precision": own}


def steady(run, key="seconds"):
    """The median over the epochs after the first."""
    values = [row[key] for row in run["epochs"]]
    return statistics.median(values[1:] or values)


def print_run(number, reference, ours_run, variant):
    """The run's table, its summary line; returns the ratios of wall-clock and CPU seconds."""
    print(f"run {number}: epoch | reference acc, s (CPU s) | {variant} acc, s (CPU s) +validation s | ratio")
    for ref, our in zip(reference["epochs"], ours_run["epochs"]):
        print(
            f"  {ref['epoch']:>2} | {ref['accuracy']:.2%} {ref['seconds']:6.1f} ({ref['cpu_seconds']:6.1f})"
            f" | {our['accuracy']:.2%} {our['seconds']:6.1f} ({our['cpu_seconds']:6.1f})"
            f" +{our['validation_seconds']:.1f} | {our['seconds'] / ref['seconds']:.2f}"
        )
    ratio, cpu_ratio = (steady(ours_run, key) / steady(reference, key) for key in ("seconds", "cpu_seconds"))
    minutes = [sum(row["seconds"] for row in run["epochs"]) / 60 for run in (reference, ours_run)]
    print(
        f"  reference: TTA {reference['tta_accuracy']:.2%}, {minutes[0]:.1f} min training, {steady(reference):.1f}"
        f" s/epoch; {variant}: TTA {ours_run['tta_accuracy']:.2%}, {minutes[1]:.1f} min training,"
        f" {steady(ours_run):.1f} s/epoch; ratio {ratio:.2f} (CPU seconds {cpu_ratio:.2f})",
        flush=True,
    )
    return ratio, cpu_ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="local copy of legacy/airbench94.py (see airbench_reference_cpu.py)")
    parser.add_argument("--variant", default="airbench90")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--train-images", type=int, help="a stratified subset of the training split")
    parser.add_argument("--test-images", type=int, help="a stratified subset of the test split")
    parser.add_argument("--data", default=str(REPO / "data" / "prepared"))
    parser.add_argument("--params", default=str(REPO / "params.yaml"))
    parser.add_argument("--venv", default=str(Path.home() / ".cache" / "cnnlab" / "bench-torch-venv"))
    parser.add_argument("--pip-args", default="", help="extra pip arguments for the venv's torch")
    parser.add_argument("--side", choices=("ours",), help=argparse.SUPPRESS)  # internal: one side
    args = parser.parse_args()
    if args.side == "ours":
        return ours(args)
    if not args.reference:
        sys.exit("error: --reference: the path of a local copy of legacy/airbench94.py is needed")
    if not (Path(args.data) / "train.npz").exists():
        sys.exit(f"error: {args.data}/train.npz not found: prepare CIFAR-10 first (python -m stages.prepare)")
    python = torch_python(args.venv, args.pip_args.split())

    with tempfile.TemporaryDirectory(prefix="side-by-side-data-") as scratch:
        data = Path(args.data)
        if args.train_images or args.test_images:
            data = subset_data(data, {"train": args.train_images, "test": args.test_images}, Path(scratch))
        common = ["--data", str(data), "--epochs", str(args.epochs), "--threads", str(args.threads)]
        reference_command = [python, REPO / "bench" / "airbench_reference_cpu.py", "--reference", args.reference]
        reference_command += ["--precision", our_precision(args.params, args.variant)]
        ours_command = [sys.executable, __file__, "--side", "ours", "--variant", args.variant, "--params", args.params]
        ratios, loads = [], []
        for number in range(1, args.repeats + 1):
            sides = [("reference", reference_command + common), ("ours", ours_command + common)]
            results = {}
            for side, command in sides if number % 2 else sides[::-1]:
                loads.append(os.getloadavg()[0])
                results[side] = run_side(command, side)
            ratios.append(print_run(number, results["reference"], results["ours"], args.variant))
    wall, cpu = zip(*ratios)
    runs = f" (runs: {', '.join(f'{ratio:.2f}' for ratio in wall)})" if len(ratios) > 1 else ""
    print(
        f"{args.variant} / reference seconds per epoch after the first: ratio {statistics.median(wall):.2f}{runs},"
        f" CPU seconds {statistics.median(cpu):.2f}; median of {len(ratios)} run(s), {args.epochs} epochs,"
        f" {args.threads} thread(s), load {min(loads):.1f}-{max(loads):.1f}"
    )


if __name__ == "__main__":
    main()
