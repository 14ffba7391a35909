"""The offline quick look, timed as a new user runs it: a fresh clone of this repository's
HEAD, then `make quick-look` (the Makefile's QUICK_LOOK: digits, at most 4 epochs; every
variant, every stage, no network; its stages started warm by scripts/warm_python.py). The
issue's target: under 5 minutes on 2 cores.

    python bench/quick_look.py [--keep DIR]

Prints each stage's start offset, then where the time went (seconds per kind of stage, and the
TensorFlow start-up a train, evaluate or export stage would pay in a process of its own, against
the warm start the quick look gives it), then one final line. On the AVX-512 machine, idle,
2026-12-06, 5 runs (in the last two, TensorFlow's cold start took 4.1-4.2 s against 3.4-3.6 s):
quick look: 17 variants, 64 stages in 4 min 25 s (load 0.4-1.2); test accuracy 74%-98%
quick look: 17 variants, 64 stages in 4 min 36 s (load 0.9-1.2); test accuracy 74%-98%
quick look: 17 variants, 64 stages in 4 min 35 s (load 0.9-0.9); test accuracy 74%-98%
quick look: 17 variants, 64 stages in 4 min 56 s (load 0.5-1.0); test accuracy 74%-98%
quick look: 17 variants, 64 stages in 4 min 51 s (load 0.4-1.0); test accuracy 74%-98%
and before the warm starts and the other changes (README, "The first look, offline"), the same day:
quick look: 17 variants, 64 stages in 8 min 50 s (load 0.9-1.1); test accuracy 74%-98%
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["make", "--no-print-directory", "quick-look"]
# The kinds of stage whose command loads a model, so starts TensorFlow (dvc.yaml).
TENSORFLOW_STAGES = ("train", "evaluate", "export")
WARM_PYTHON = "scripts/warm_python.py"


def run_quick_look(clone):
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    start = time.perf_counter()
    starts = []
    with subprocess.Popen(COMMAND, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        for line in run.stdout:
            if line.startswith("Running stage"):
                starts.append((time.perf_counter() - start, line.split("'")[1]))
                print(f"{starts[-1][0]:6.1f} s  {line.strip()}", flush=True)
    if run.returncode:
        sys.exit(f"{' '.join(COMMAND)} failed with exit code {run.returncode}")
    return time.perf_counter() - start, starts


def seconds_by_kind(starts, end):
    """{stage kind: (stages, seconds)} from each stage's start offset; a stage lasts until the
    next one starts (the last one until `end`), so DVC's own work between them counts too."""
    totals = collections.defaultdict(lambda: [0, 0.0])
    for (offset, stage), (following, _) in zip(starts, [*starts[1:], (end, None)]):
        kind = totals[stage.split("@")[0]]
        kind[0] += 1
        kind[1] += following - offset
    return {kind: tuple(total) for kind, total in totals.items()}


def tensorflow_start_seconds(clone, tries=3):
    """(cold, warm): the fastest of `tries` starts of a `python -m` process that imports TensorFlow
    and Keras, started as usual and through scripts/warm_python.py (as `make quick-look` starts
    its stages; the server's own start-up not counted)."""
    with tempfile.TemporaryDirectory(prefix="tensorflow-start-") as scratch:
        Path(scratch, "tensorflow_start.py").write_text("import tensorflow, keras\n")
        timed = (
            f"for try in $(seq {tries}); do s=$(date +%s.%N); python -m tensorflow_start; "
            'e=$(date +%s.%N); echo "$s $e"; done'
        )
        cold = ["sh", "-c", timed]
        warm = [sys.executable, str(clone / WARM_PYTHON), "sh", "-c", f"sleep 10; {timed}"]  # the server imports first
        return tuple(fastest_start(command, scratch) for command in (cold, warm))


def fastest_start(command, cwd):
    """The shortest of the start-to-end times `command` prints, a "start end" pair a line."""
    output = subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout
    return min(float(end) - float(begin) for begin, end in map(str.split, output.splitlines()))


def breakdown(starts, end, start_seconds):
    by_kind = seconds_by_kind(starts, end)
    lines = [f"  DVC before the first stage: {starts[0][0]:.1f} s"] if starts else []
    lines += [f"  {kind:9} {count:3} stages {seconds / 60:5.1f} min" for kind, (count, seconds) in by_kind.items()]
    started = sum(by_kind.get(kind, (0, 0))[0] for kind in TENSORFLOW_STAGES)
    cold, warm = start_seconds
    lines.append(
        f"  TensorFlow start-up per process: {cold:.1f} s started as usual, {warm:.2f} s forked from "
        f"{WARM_PYTHON}'s server; x {started} stages = {cold * started / 60:.1f} min against "
        f"{warm * started / 60:.1f} min"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="clone into this (new) folder and keep it")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="quick-look-") as scratch:
        clone = args.keep or Path(scratch) / "clone"
        seconds, starts = run_quick_look(clone)
        accuracies = [json.loads(path.read_text())["test_accuracy"] for path in clone.glob("metrics/*.json")]
        print(breakdown(starts, seconds, tensorflow_start_seconds(clone)))
    loads = (load_before, os.getloadavg()[0])
    minutes, rest = divmod(round(seconds), 60)
    print(
        f"quick look: {len(accuracies)} variants, {len(starts)} stages in {minutes} min {rest} s "
        f"(load {min(loads):.1f}-{max(loads):.1f}); test accuracy {min(accuracies):.0%}-{max(accuracies):.0%}"
    )


if __name__ == "__main__":
    main()
