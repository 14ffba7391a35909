#!/usr/bin/env python3
"""Check that every pin in requirements.txt has a wheel for each platform the README promises.

For each platform (Linux x86_64 and aarch64, macOS on Apple silicon, Windows amd64) and each
supported Python (3.11 and 3.13), run

    pip download --no-deps --only-binary=:all: --implementation cp \
        --python-version V --platform P [--platform P2 ...] NAME==VERSION ...

for all pins at once (then one pin at a time if that fails, to name the missing ones), and
print the wheel pip picked for each pin, and below each platform the oldest OS all those
wheels accept. Then read the `and-cuda` extra from the pinned tensorflow wheel's metadata and
check each of its requirements (the nvidia-* CUDA and cuDNN wheels) on Linux x86_64 the same way.

This is a check, not a test: it needs the package index (the test suite never does).
Wheels go to a cache folder (default ~/.cache/cnnlab/check_platforms) so a second run only
asks the index and downloads nothing; the first run fetches about 6 GB (tensorflow for every
platform and the CUDA wheels). Exit status: 0 when everything resolves, 1 otherwise.

    python scripts/check_platforms.py                 # everything
    python scripts/check_platforms.py --python 3.12 --platform macos-arm64 --no-cuda
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip always vendors it
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent

# Tags pip may pick on each platform. pip expands a macosx_X_Y tag to every older macOS
# version itself; manylinux tags are taken literally, so list them. The newest manylinux
# tag bounds the glibc a Linux machine needs (2.28: RHEL 8, Debian 10, Ubuntu 18.10 and later).
_MANYLINUX = [f"manylinux_2_{minor}" for minor in range(28, 16, -1)] + ["manylinux2014"]
PLATFORMS = {
    "linux-x86_64": [f"{tag}_x86_64" for tag in _MANYLINUX],
    "linux-aarch64": [f"{tag}_aarch64" for tag in _MANYLINUX],
    # What a Mac on macOS 14 or later gets, and the floor: macOS 12, the oldest TensorFlow supports.
    "macos-arm64": ["macosx_14_0_arm64"],
    "macos12-arm64": ["macosx_12_0_arm64"],
    "windows-amd64": ["win_amd64"],
}
PYTHONS = ["3.11", "3.13"]
# The environment markers of a pin (`name==version; sys_platform != "darwin" or ...`) are evaluated
# for each platform as below: a pin whose marker excludes a platform is not installed there and
# shows as "not needed". platform_release is the kernel: Darwin 23 is macOS 14, 21 is macOS 12.
MARKER_ENVIRONMENTS = {
    "linux-x86_64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    "linux-aarch64": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "aarch64"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "macos12-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
    "windows-amd64": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
}
PLATFORM_RELEASES = {"macos-arm64": "23.0.0", "macos12-arm64": "21.0.0", "windows-amd64": "10"}
NOT_NEEDED = "not needed"
CUDA_PLATFORM = "linux-x86_64"
CUDA_EXTRA = "and-cuda"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cnnlab" / "check_platforms"
WHEEL_LINE = re.compile(r"(?:Saved|File was already downloaded)\s+(\S+\.whl)")
NOT_FOUND = ("No matching distribution found", "Could not find a version that satisfies")


def read_pins(path):
    """`name==version` lines of a requirements file, comments and blank lines skipped."""
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise SystemExit(f"error: {path.name}: not a pin: {line!r}")
        pins.append(line)
    return pins


def pip_download(requirements, platform, python, dest):
    """Run one `pip download` for `requirements`: (return code, output)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp"]
    cmd += ["--python-version", python, "--progress-bar", "off", "--dest", str(dest)]
    for tag in PLATFORMS[platform]:
        cmd += ["--platform", tag]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        proc = subprocess.run(cmd + list(requirements), capture_output=True, text=True, env=env, timeout=3600)
    except subprocess.TimeoutExpired:
        return None, "pip download timed out"
    return proc.returncode, proc.stdout + proc.stderr


def wheel_for(requirement, output):
    """The wheel `pip download` saved (or found saved) for `requirement`, or None."""
    name = canonicalize_name(Requirement(requirement).name)
    for path in WHEEL_LINE.findall(output):
        if canonicalize_name(Path(path).name.split("-")[0]) == name:
            return Path(path).name
    return None


def applies(requirement, platform, python):
    """Whether pip installs `requirement` on `platform` with `python` (its environment marker)."""
    marker = Requirement(requirement).marker
    environment = {
        **MARKER_ENVIRONMENTS[platform],
        "platform_release": PLATFORM_RELEASES.get(platform, "6.0.0"),
        "python_version": python,
        "python_full_version": f"{python}.0",
    }
    return marker is None or marker.evaluate(environment)


def pin_only(requirement):
    """`name==version` without its marker: pip download evaluates markers on this machine, not the target."""
    parsed = Requirement(requirement)
    return f"{parsed.name}{parsed.specifier}"


def download(requirements, platform, python, dest):
    """{requirement: (status, wheel filename or message)}, status 'ok', 'MISSING' or 'ERROR'.

    One pip run for all requirements; when it fails, one run per requirement tells which."""
    dest.mkdir(parents=True, exist_ok=True)
    code, output = pip_download(requirements, platform, python, dest)
    if code == 0 and all(wheel_for(r, output) for r in requirements):
        return {r: ("ok", wheel_for(r, output)) for r in requirements}
    results = {}
    for requirement in requirements:
        code, output = pip_download([requirement], platform, python, dest)
        if code == 0 and wheel_for(requirement, output):
            results[requirement] = ("ok", wheel_for(requirement, output))
        elif any(text in output for text in NOT_FOUND):
            results[requirement] = ("MISSING", "no wheel")
        else:
            errors = [line for line in output.splitlines() if line.startswith("ERROR")] or output.splitlines()[-1:]
            results[requirement] = ("ERROR", errors[0] if errors else f"pip exited {code}")
    return results


def short_tag(wheel):
    """'numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.whl' -> 'manylinux_2_27'; pure Python -> 'any'."""
    _python, abi, platform = wheel[: -len(".whl")].split("-")[-3:]
    if platform == "any":
        return "any"
    platform = platform.split(".")[0]  # a multi-tag wheel: its first (oldest) tag
    platform = re.sub(r"_(x86_64|aarch64|arm64|universal2|amd64)$", "", platform)
    return f"{platform} abi3" if abi == "abi3" else platform


def cell(results):
    """One table cell for a package on one platform, over the Python versions."""
    missing = [python for python, (status, _) in results.items() if status not in ("ok", NOT_NEEDED)]
    if missing:
        return " ".join(f"{results[p][0]}({p})" for p in missing)
    if all(status == NOT_NEEDED for status, _ in results.values()):
        return f"{NOT_NEEDED} (marker)"
    tags = sorted({short_tag(wheel) for _, wheel in results.values()})
    return " | ".join(tags)


def floor(wheel):
    """The oldest OS a wheel installs on, as (kind, version): ('glibc', (2, 27)), ('macOS', (12, 0)) or None."""
    platform = wheel[: -len(".whl")].split("-")[-1]
    versions = []
    for tag in platform.split("."):
        legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
        if match := re.match(r"manylinux_(\d+)_(\d+)_", tag):
            versions.append(("glibc", (int(match[1]), int(match[2]))))
        elif match := re.match(r"(manylinux\d+)_", tag):
            versions.append(("glibc", legacy[match[1]]))
        elif match := re.match(r"macosx_(\d+)_(\d+)_", tag):
            versions.append(("macOS", (int(match[1]), int(match[2]))))
    return min(versions) if versions else None


def floor_row(results, platforms):
    """Per platform: the newest of the wheels' oldest OS, i.e. what the whole set needs."""
    row = []
    for platform in platforms:
        floors = [
            floor(detail)
            for by_platform in results.values()
            for status, detail in by_platform[platform].values()
            if status == "ok"
        ]
        floors = [f for f in floors if f]
        row.append(f"{max(floors)[0]} >= {'.'.join(map(str, max(floors)[1]))}" if floors else "")
    return row


def check(requirements, platforms, pythons, cache, jobs, folder=None):
    """{requirement: {platform: {python: (status, detail)}}}, one pip run per (platform, python).

    Each run has its own folder in `cache`, so that no two pips write one file; or all share
    `folder` (for wheels that fit every Python, such as CUDA's), one run at a time."""
    runs = [(platform, python) for platform in platforms for python in pythons]

    def run(platform, python):
        wanted = [r for r in requirements if applies(r, platform, python)]
        dest = cache / (folder or f"{platform}-py{python}")
        found = download([pin_only(r) for r in wanted], platform, python, dest) if wanted else {}
        return {r: found[pin_only(r)] if r in wanted else (NOT_NEEDED, "marker") for r in requirements}

    with ThreadPoolExecutor(max_workers=1 if folder else jobs) as pool:
        found = dict(zip(runs, pool.map(lambda r: run(*r), runs)))
    return {r: {p: {v: found[p, v][r] for v in pythons} for p in platforms} for r in requirements}


def print_table(title, results, platforms, labels=None):
    """One row per requirement (labelled by `labels`, default the requirement), one column per platform."""
    labels = labels or {}
    rows = [[labels.get(req, req)] + [cell(results[req][p]) for p in platforms] for req in results]
    rows.append(["(wheels need)"] + floor_row(results, platforms))
    header = ["package"] + platforms
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, ["-" * w for w in widths]] + rows:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths)).rstrip())


def cuda_requirements(tensorflow_wheel):
    """The Requires-Dist entries of the `and-cuda` extra that apply to Linux x86_64."""
    import zipfile

    with zipfile.ZipFile(tensorflow_wheel) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        lines = wheel.read(metadata).decode().splitlines()
    found = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        if requirement.marker is None:
            continue
        environment = {
            "extra": CUDA_EXTRA,
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "python_version": "3.11",
        }
        in_extra = requirement.marker.evaluate(environment)
        without_extra = requirement.marker.evaluate(dict(environment, extra=""))
        if in_extra and not without_extra:
            found.append(str(Requirement(f"{requirement.name}{requirement.specifier}")))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, default=REPO / "requirements.txt")
    parser.add_argument("--python", nargs="+", default=PYTHONS, metavar="X.Y")
    parser.add_argument("--platform", nargs="+", default=list(PLATFORMS), choices=list(PLATFORMS))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where wheels are kept (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=4, help="pip runs at once (default %(default)s)")
    parser.add_argument("--no-cuda", action="store_true", help="skip the tensorflow[and-cuda] check")
    args = parser.parse_args(argv)

    args.cache.mkdir(parents=True, exist_ok=True)
    pins = read_pins(args.requirements)
    start = time.monotonic()
    pip_version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True).stdout
    print(
        f"{len(pins)} pins from {args.requirements.name}; Python {', '.join(args.python)}; "
        f"{pip_version.split(' from ')[0]}; wheels cached in {args.cache}"
    )
    for platform in args.platform:
        print(f"  {platform}: --platform {' '.join(PLATFORMS[platform])}")
    print(
        "Each cell: the wheel's platform tag (for every Python checked), 'any' for pure Python, "
        "or MISSING/ERROR(python)."
    )

    results = check(pins, args.platform, args.python, args.cache, args.jobs)
    print_table(f"Pinned packages ({args.requirements.name})", results, args.platform)
    failed = [
        (req, plat, py, status, detail)
        for req, by_platform in results.items()
        for plat, by_python in by_platform.items()
        for py, (status, detail) in by_python.items()
        if status not in ("ok", NOT_NEEDED)
    ]

    tensorflow = next((r for r in pins if Requirement(r).name == "tensorflow"), None)
    if not args.no_cuda and tensorflow and CUDA_PLATFORM in args.platform:
        wheel = results[tensorflow][CUDA_PLATFORM][args.python[0]]
        if wheel[0] == "ok":
            extra = cuda_requirements(args.cache / f"{CUDA_PLATFORM}-py{args.python[0]}" / wheel[1])
            print(
                f"\n{tensorflow}[{CUDA_EXTRA}] adds {len(extra)} requirements on {CUDA_PLATFORM} "
                f"(from {wheel[1]}'s metadata)"
            )
            cuda = check(extra, [CUDA_PLATFORM], args.python, args.cache, args.jobs, folder=f"{CUDA_PLATFORM}-cuda")
            labels = {}
            for req, by_platform in cuda.items():
                status, wheel_name = by_platform[CUDA_PLATFORM][args.python[0]]
                labels[req] = f"{req} -> {wheel_name.split('-')[1]}" if status == "ok" else req
            print_table(f"{tensorflow}[{CUDA_EXTRA}] extra ({CUDA_PLATFORM})", cuda, [CUDA_PLATFORM], labels)
            failed += [
                (req, CUDA_PLATFORM, py, status, detail)
                for req, by_platform in cuda.items()
                for py, (status, detail) in by_platform[CUDA_PLATFORM].items()
                if status not in ("ok", NOT_NEEDED)
            ]
        else:
            failed.append(
                (
                    f"{tensorflow}[{CUDA_EXTRA}]",
                    CUDA_PLATFORM,
                    args.python[0],
                    "ERROR",
                    "no tensorflow wheel to read the extra from",
                )
            )

    print(f"\n{time.monotonic() - start:.0f} s")
    for req, plat, py, status, detail in failed:
        print(f"{status}: {req} on {plat}, Python {py}: {detail}")
    print("all resolved" if not failed else f"{len(failed)} missing or failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
