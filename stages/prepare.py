"""DVC stage prepare: download and normalize the dataset -> data/prepared/ (see docs/design.md)."""
import time
from pathlib import Path

from cnnlab.config import load_params
from cnnlab.data import prepare
from cnnlab.errors import exit_on_user_error

OUT_DIR = Path("data/prepared")
DOWNLOAD_DIR = Path("data/downloads")  # gitignored cache, not a DVC output


def summary(card, seconds):
    counts = ", ".join(f"{card['counts'][split]:,} {split}" for split in ("train", "val", "test"))
    shape = "x".join(map(str, card["shape"]))
    return (f"prepared {card['name']}: {counts} images of {shape}, {card['num_classes']} classes, "
            f"in {seconds:.1f} s -> {OUT_DIR}")


@exit_on_user_error
def main():
    start = time.perf_counter()
    params = load_params()
    card = prepare(params["data"], out_dir=OUT_DIR, download_dir=DOWNLOAD_DIR)
    print(summary(card, time.perf_counter() - start))


if __name__ == "__main__":
    main()
