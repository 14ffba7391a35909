"""Seed 001's 27-run grid (learning rate x batch size x epochs on seed001_exp1), as a Markdown
table of our test accuracies beside the original experiment's, from `dvc exp show --json`.

    dvc exp show --json > /tmp/exps.json        # add --rev <commit> if the grid ran on an older one
    python scripts/grid_table.py /tmp/exps.json > docs/seed001_grid.md
    python scripts/grid_table.py /tmp/exps.json --spread metrics/repeats/seed001_exp1.json   # + the noise floor
    python scripts/grid_table.py --spread metrics/repeats/seed001_exp1.json   # the noise floor alone

Each cell takes the newest experiment with those three settings (the workspace or baseline
commit if no experiment has them); a cell no run covers says so.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab.errors import UserError, exit_on_user_error  # noqa: E402
from cnnlab.experiments import experiments, newest_per_cell, read_exp_show  # noqa: E402
from cnnlab.layout import metrics_path  # noqa: E402
from cnnlab.reported import GRID_BATCHES_EPOCHS, GRID_LEARNING_RATES, SEED001_GRID  # noqa: E402

VARIANT = "seed001_exp1"


def grid_results(runs):
    """{(learning rate, batch, epochs): our test accuracy in %}."""

    def cells_of(run):
        settings = run.params.get("variants", {}).get(VARIANT)
        if settings and test_accuracy(run) is not None:
            yield float(settings["optimizer"]["learning_rate"]), settings["batch_size"], settings["epochs"]

    return {cell: 100 * test_accuracy(run) for cell, run in newest_per_cell(runs, cells_of).items()}


def test_accuracy(run):
    return run.metrics.get(metrics_path(".", VARIANT).as_posix(), {}).get("test_accuracy")


def markdown(results):
    header = "| lr \\ (batch, epochs) | " + " | ".join(f"{b},{e}" for b, e in GRID_BATCHES_EPOCHS) + " |"
    lines = [header, "|" + " --- |" * (len(GRID_BATCHES_EPOCHS) + 1)]
    for lr in GRID_LEARNING_RATES:
        cells = []
        for batch, epochs in GRID_BATCHES_EPOCHS:
            ours = results.get((lr, batch, epochs))
            ours_text = "not run" if ours is None else f"**{ours:.2f} %**"
            cells.append(f"{ours_text} ({SEED001_GRID[(lr, batch, epochs)]:g} %)")
        lines.append(f"| {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def noise_floor(record, source):
    """One line on the seed spread of one cell (repeat@seed001_exp1's record): how far apart two
    runs of the same settings land, against which the grid's differences are to be read."""
    accuracies = [100 * accuracy for accuracy in record.get("test_accuracies", [])]
    if len(accuracies) < 2:
        raise UserError(f"{source}: needs at least 2 runs (repeats.runs.{VARIANT} in params.yaml)")
    mean, std = statistics.mean(accuracies), statistics.stdev(accuracies)
    return (
        f"Noise floor: {VARIANT} at its params.yaml settings, {len(accuracies)} seeds: {mean:.2f} ± {std:.2f} % "
        f"(mean ± std), {min(accuracies):.2f}-{max(accuracies):.2f} % ({source}).\n"
    )


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", help="the output of `dvc exp show --json` ('-' for standard input)")
    parser.add_argument("--spread", help=f"metrics/repeats/{VARIANT}.json: print the seed spread of one cell too")
    args = parser.parse_args(argv)
    if args.json is None and args.spread is None:
        parser.error("give the output of `dvc exp show --json`, --spread, or both")
    if args.spread:
        try:
            record = json.loads(Path(args.spread).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{args.spread}: not a repeats record ({error})") from None
        print(noise_floor(record, args.spread))
    if args.json is None:
        return
    shown = read_exp_show(args.json)
    results = grid_results(experiments(shown))
    if not results:
        raise UserError(f"no run of {VARIANT} with test metrics; run the grid first (README, Studies)")
    print(
        f"Ours in bold (test split, never used for selection), the original's in brackets; {len(results)} of 27 run.\n"
    )
    print(markdown(results))


if __name__ == "__main__":
    main()
