"""Wall time and peak memory of each pipeline stage during a long `dvc repro`, sampled from outside.

    python bench/stage_resources.py watch run.log &     # while `dvc repro` runs; stop it afterwards
    python bench/stage_resources.py summary run.log     # one line per stage, then the run's peak

`watch` appends one line every --every seconds: the time, the 1-minute load average and each
running stage process (`python -m stages.<stage> [variant]`) with its resident memory, read
with `ps` (Linux and macOS). `summary` prints, per stage and variant, the time it was seen
running (samples x interval, so within one interval of its wall time), its peak RSS and the
load range while it ran; --variants keeps only those names (tests run stages of their own), and
--since/--until (ISO times, as the log writes them) only the samples in that window.
A run that spans sessions can append to the same log.
"""

import argparse
import os
import subprocess
import time
from collections import defaultdict
from datetime import datetime

STAGE_PREFIX = "-m stages."


def running_stages():
    """[(rss MB, "stage [variant]")] of the stage processes running now."""
    listing = subprocess.run(["ps", "-eo", "rss=,args="], capture_output=True, text=True, check=True).stdout
    stages = []
    for line in listing.splitlines():
        rss, _, args = line.strip().partition(" ")
        if STAGE_PREFIX in args:
            stages.append((int(rss) // 1024, " ".join(args.split(STAGE_PREFIX, 1)[1].split()[:2])))
    return stages


def watch(log, every):
    while True:
        stages = ";".join(f"{rss}:{name}" for rss, name in running_stages())
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"{datetime.now().isoformat(timespec='seconds')} {os.getloadavg()[0]:.2f} {stages}\n")
        time.sleep(every)


def summary(log, every, variants, since="", until="~"):
    seen, peak, loads = defaultdict(int), defaultdict(int), defaultdict(list)
    for line in open(log, encoding="utf-8"):
        stamp, load, *rest = line.split(" ", 2)
        if not since <= stamp < until:
            continue
        for sample in rest[0].strip().split(";") if rest else []:
            rss, _, name = sample.partition(":")
            words = name.split()
            if not words or (variants and len(words) > 1 and words[1] not in variants):
                continue
            key = "@".join(words)
            seen[key] += 1
            peak[key] = max(peak[key], int(rss))
            loads[key].append(float(load))
    for key in seen:
        minutes, load = seen[key] * every / 60, f"{min(loads[key]):.1f}-{max(loads[key]):.1f}"
        print(f"{key:32s} {minutes:6.1f} min  peak {peak[key]:6,d} MB  load {load}")
    if seen:
        print(f"total {sum(seen.values()) * every / 60:.1f} min of stage time, peak {max(peak.values()):,d} MB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["watch", "summary"])
    parser.add_argument("log")
    parser.add_argument("--every", type=float, default=15, help="seconds between samples")
    parser.add_argument("--variants", nargs="*", help="summary: only these variants (and variant-less stages)")
    parser.add_argument("--since", default="", help="summary: only samples from this time on (2026-12-05T15:00)")
    parser.add_argument("--until", default="~", help="summary: only samples before this time")
    args = parser.parse_args()
    if args.command == "watch":
        watch(args.log, args.every)
    else:
        summary(args.log, args.every, set(args.variants or ()), args.since, args.until)


if __name__ == "__main__":
    main()
