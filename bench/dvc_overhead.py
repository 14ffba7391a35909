"""What DVC itself spends around one stage, with ruamel.yaml's C parser (ruamel.yaml.clib, pinned
in requirements.txt) and with it hidden, in a fresh clone of this repository's HEAD: its dvc.yaml
and its whole dvc.lock, plus one stage whose command is `date`, so nearly all that is measured is
DVC loading the pipeline, reading dvc.lock, running the stage and rewriting the lock.

    python bench/dvc_overhead.py [--runs 5]

The two sides alternate --runs times (`dvc repro -f noop`); each run's wall time and the CPU time
of the process (user + system). Prints a line per side, then one final line (2026-12-05,
2 cores, beside a training run, load 2.9-3.4, --runs 3):
dvc repro -f <one trivial stage>: C parser cpu 2.9-3.6 s (median 3.5), pure Python 4.0-5.3 s (median 4.8), ratio 0.73
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOOP_STAGE = "  noop:\n    cmd: date > noop.txt\n    outs:\n      - noop.txt:\n          cache: false\n"
# DVC's command line with ruamel.yaml's C parser importable or not (ruamel falls back to Python)
DVC = "import sys{hide}; from dvc.cli import main; sys.exit(main(sys.argv[1:]))"
HIDE_C_PARSER = "; sys.modules['ruamel.yaml.clib'] = sys.modules['_ruamel_yaml'] = None"
SIDES = {"C parser": DVC.format(hide=""), "pure Python": DVC.format(hide=HIDE_C_PARSER)}


def clone_with_noop_stage(clone):
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    dvc_yaml = clone / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().replace("stages:\n", "stages:\n" + NOOP_STAGE, 1))
    return len((clone / "dvc.lock").read_text().splitlines())


def timed_repro(clone, program):
    """(wall seconds, CPU seconds) of one `dvc repro -f noop`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", program, "repro", "-f", "noop"], cwd=clone, check=True, stdout=subprocess.DEVNULL
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(values):
    return f"{min(values):.1f}-{max(values):.1f} s (median {statistics.median(values):.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each side, alternating")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="dvc-overhead-") as scratch:
        clone = Path(scratch) / "clone"
        lock_lines = clone_with_noop_stage(clone)
        timed_repro(clone, SIDES["C parser"])  # writes the noop entry into dvc.lock once
        times = {side: [] for side in SIDES}
        loads = []
        for _ in range(runs):
            for side, program in SIDES.items():
                times[side].append(timed_repro(clone, program))
                loads.append(os.getloadavg()[0])
    print(f"dvc.lock: {lock_lines:,} lines; {runs} runs per side; load {min(loads):.1f}-{max(loads):.1f}")
    cpu = {side: [cpu for _, cpu in pairs] for side, pairs in times.items()}
    for side, pairs in times.items():
        print(f"  {side:11}  wall {summary([wall for wall, _ in pairs])}, cpu {summary(cpu[side])}")
    ratio = statistics.median(cpu["C parser"]) / statistics.median(cpu["pure Python"])
    print(
        f"dvc repro -f <one trivial stage>: C parser cpu {summary(cpu['C parser'])}, "
        f"pure Python {summary(cpu['pure Python'])}, ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
