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

import pandas as pd

VARIANT = "seed001_exp1"
LEARNING_RATES = (0.01, 0.001, 0.0001)
BATCHES_EPOCHS = [(batch, epochs) for batch in (32, 64, 128) for epochs in (5, 10, 15)]
# test-set accuracy (%) as seed 001's report gives it, by (learning rate, batch, epochs)
ORIGINAL = dict(
    zip(
        [(lr, batch, epochs) for lr in LEARNING_RATES for batch, epochs in BATCHES_EPOCHS],
        [10, 10, 35.75, 36.51, 38.56, 46.85, 49.63, 54.24, 39.3]
        + [60.68, 60.76, 62.08, 59.24, 62.72, 64.01, 60.27, 64.03, 62.23]
        + [55.73, 60.44, 62.57, 54.87, 58.24, 61, 50.31, 57.53, 60.01],
    )
)
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
