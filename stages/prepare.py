"""DVC stage prepare: download (if needed) and convert the dataset of params.yaml `data:`
-> data/prepared/ (train/val/test.npz and card.json; see docs/design.md)."""

import argparse
import time

from cnnlab.config import load_params
from cnnlab.errors import exit_on_user_error
from cnnlab.layout import DOWNLOAD_DIR, PREPARED_DIR

UNREACHABLE = 3  # --check's exit code when a download the dataset needs cannot be made from here


def summary(card, seconds):
    counts = ", ".join(f"{card['counts'][split]:,} {split}" for split in ("train", "val", "test"))
    shape = "x".join(map(str, card["shape"]))
    return (
        f"prepared {card['name']}: {counts} images of {shape}, {card['num_classes']} classes, "
        f"in {seconds:.1f} s -> {PREPARED_DIR}"
    )


def check(data_params):
    """Exit 0 when the dataset can be read here (local, cached, bundled, or every URL answers),
    else print one line naming the unreachable URL and exit UNREACHABLE; downloads nothing."""
    from cnnlab.data.download import unreachable
    from cnnlab.data.preparation import downloads_needed

    for url in downloads_needed(data_params, DOWNLOAD_DIR):
        problem = unreachable(url)
        if problem:
            print(
                f"{data_params['dataset']}: {problem}; no local copy (data.source, the Keras cache or "
                f"{DOWNLOAD_DIR}/) either"
            )
            raise SystemExit(UNREACHABLE)


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"only check that the dataset can be read here (exit {UNREACHABLE} if a download "
        "it needs cannot reach its server); downloads and writes nothing",
    )
    args = parser.parse_args(argv)
    data_params = load_params()["data"]
    if args.check:
        check(data_params)
        return
    from cnnlab.data.preparation import prepare

    start = time.perf_counter()
    card = prepare(data_params, out_dir=PREPARED_DIR, download_dir=DOWNLOAD_DIR)
    print(summary(card, time.perf_counter() - start))


if __name__ == "__main__":
    main()
