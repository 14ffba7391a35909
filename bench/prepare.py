"""Time and memory of the prepare stage on all of CIFAR-10 (60,000 images at 32x32x3).

    python bench/prepare.py [ARCHIVE] [--dataset folder|cifar10]

ARCHIVE defaults to the shared JPEG copy (../shared/datasets/cifar10-jpg.tar.gz), read as a
folder dataset. With --dataset cifar10 it is an archive in the official python format
(cifar-10-batches-py/...); its own md5 is passed as data.checksum so a rebuilt copy passes.
Prepares into a temporary folder, then prints one final line:
    prepare cifar10: 14.2 s, peak RSS 0.61 GB, 60000 images
Peak RSS is the largest resident set of this process plus that of any child process.
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cnnlab.config import DATA, validate_section  # noqa: E402
from cnnlab.data.checksums import file_digest  # noqa: E402
from cnnlab.data.preparation import prepare  # noqa: E402

DEFAULT_ARCHIVE = REPO.parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def peak_rss_gb():
    usage = [resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage) / 1024**2  # ru_maxrss is in KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", nargs="?", default=str(DEFAULT_ARCHIVE))
    parser.add_argument("--dataset", choices=("folder", "cifar10"), default="folder")
    args = parser.parse_args()
    if not Path(args.archive).is_file():
        sys.exit(f"error: {args.archive} not found")
    checksum = f"md5:{file_digest(args.archive, 'md5')}" if args.dataset == "cifar10" else None
    data_params = validate_section(
        {"dataset": args.dataset, "source": args.archive, "checksum": checksum, "image_size": [32, 32], "channels": 3},
        DATA,
        "data",
    )
    with tempfile.TemporaryDirectory(prefix="prepare-bench-") as work:
        started = time.perf_counter()
        card = prepare(data_params, Path(work) / "prepared", Path(work) / "downloads")
        seconds = time.perf_counter() - started
    images = sum(card["counts"].values())
    print(f"prepare cifar10: {seconds:.1f} s, peak RSS {peak_rss_gb():.2f} GB, {images} images")


if __name__ == "__main__":
    main()
