"""Seed 001's 27-run grid (learning rate x batch size x epochs on seed001_exp1), as a Markdown
table of our test accuracies beside the original experiment's, from `dvc exp show --csv`.

    dvc exp show --csv > /tmp/exps.csv
    python scripts/grid_table.py /tmp/exps.csv > docs/seed001_grid.md

Each grid cell takes the newest experiment (or the workspace/baseline row) whose three grid
parameters match and whose other seed001_exp1 settings are the committed ones; a cell no run
covers says so.
"""

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab.reported import GRID_BATCHES_EPOCHS as BATCHES_EPOCHS  # noqa: E402
from cnnlab.reported import GRID_LEARNING_RATES as LEARNING_RATES  # noqa: E402
from cnnlab.reported import SEED001_GRID as ORIGINAL  # noqa: E402

VARIANT = "seed001_exp1"
KEYS = {
    "learning_rate": f"variants.{VARIANT}.optimizer.learning_rate",
    "batch": f"variants.{VARIANT}.batch_size",
    "epochs": f"variants.{VARIANT}.epochs",
    "accuracy": f"metrics/{VARIANT}.json:test_accuracy",
}


def column(frame, key):
    """The column named `key` (a parameter may also carry its file: `params.yaml:<key>`)."""
    for name in (key, f"params.yaml:{key}"):
        if name in frame.columns:
            return frame[name]
    raise SystemExit(f"error: `dvc exp show --csv` has no column {key!r}; run the grid first (README, Studies)")


def grid_results(frame):
    """{(learning rate, batch, epochs): our test accuracy in %} from the exp show table."""
    rows = pd.DataFrame({name: pd.to_numeric(column(frame, key), errors="coerce") for name, key in KEYS.items()})
    rows = rows.dropna()
    results = {}
    for row in rows.itertuples():
        cell = (float(row.learning_rate), int(row.batch), int(row.epochs))
        results.setdefault(cell, 100 * row.accuracy)  # dvc lists the newest experiments first
    return results


def markdown(results):
    header = "| lr \\ (batch, epochs) | " + " | ".join(f"{b},{e}" for b, e in BATCHES_EPOCHS) + " |"
    lines = [header, "|" + " --- |" * (len(BATCHES_EPOCHS) + 1)]
    for lr in LEARNING_RATES:
        cells = []
        for batch, epochs in BATCHES_EPOCHS:
            ours = results.get((lr, batch, epochs))
            ours_text = "not run" if ours is None else f"**{ours:.2f} %**"
            cells.append(f"{ours_text} ({ORIGINAL[(lr, batch, epochs)]:g} %)")
        lines.append(f"| {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="the output of `dvc exp show --csv` ('-' for standard input)")
    args = parser.parse_args(argv)
    frame = pd.read_csv(sys.stdin if args.csv == "-" else args.csv)
    results = grid_results(frame)
    print(
        f"Ours in bold (test split, never used for selection), the original's in brackets; {len(results)} of 27 run.\n"
    )
    print(markdown(results))


if __name__ == "__main__":
    main()
