"""DVC stage prepare: download (if needed) and convert the dataset of params.yaml `data:`
-> data/prepared/ (train/val/test.npz and card.json; see docs/design.md)."""
import argparse
import time

from cnnlab.config import load_params
from cnnlab.errors import exit_on_user_error
from cnnlab.layout import DOWNLOAD_DIR, PREPARED_DIR


def summary(card, seconds):
    counts = ", ".join(f"{card['counts'][split]:,} {split}" for split in ("train", "val", "test"))
    shape = "x".join(map(str, card["shape"]))
    return (f"prepared {card['name']}: {counts} images of {shape}, {card['num_classes']} classes, "
            f"in {seconds:.1f} s -> {PREPARED_DIR}")


@exit_on_user_error
def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    from cnnlab.data.preparation import prepare

    start = time.perf_counter()
    card = prepare(load_params()["data"], out_dir=PREPARED_DIR, download_dir=DOWNLOAD_DIR)
    print(summary(card, time.perf_counter() - start))


if __name__ == "__main__":
    main()
