"""The offline quick look, timed as a new user runs it: a fresh clone of this repository's
HEAD, then `make quick-look` (the Makefile's QUICK_LOOK: digits, at most 4 epochs; every
variant, every stage, no network). The issue's target was 5 minutes on 2 cores; see README
("The first look, offline") for why 51 TensorFlow processes cannot make it.

    python bench/quick_look.py [--keep DIR]

Prints each stage's start offset, then one final line (2026-12-05, 2 cores, otherwise idle):
quick look: 17 variants, 64 stages in 20 min 4 s (load 1.0-2.9); test accuracy 76%-98%
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMAND = ["make", "--no-print-directory", "quick-look"]


def run_quick_look(clone):
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    start = time.perf_counter()
    stages = 0
    with subprocess.Popen(COMMAND, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as run:
        for line in run.stdout:
            if line.startswith("Running stage"):
                stages += 1
                print(f"{time.perf_counter() - start:6.1f} s  {line.strip()}", flush=True)
    if run.returncode:
        sys.exit(f"{' '.join(COMMAND)} failed with exit code {run.returncode}")
    return time.perf_counter() - start, stages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="clone into this (new) folder and keep it")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="quick-look-") as scratch:
        clone = args.keep or Path(scratch) / "clone"
        seconds, stages = run_quick_look(clone)
        accuracies = [json.loads(path.read_text())["test_accuracy"] for path in clone.glob("metrics/*.json")]
    loads = (load_before, os.getloadavg()[0])
    minutes, rest = divmod(round(seconds), 60)
    print(
        f"quick look: {len(accuracies)} variants, {stages} stages in {minutes} min {rest} s "
        f"(load {min(loads):.1f}-{max(loads):.1f}); test accuracy {min(accuracies):.0%}-{max(accuracies):.0%}"
    )


if __name__ == "__main__":
    main()
