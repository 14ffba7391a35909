"""Seed 004's optimizer study (each family x adam, adadelta, adagrad, sgd), as a Markdown table of
our best validation and test accuracies beside the original's, from `dvc exp show --json`.

    dvc exp show --json > /tmp/exps.json        # add --rev <commit> if the study ran on an older one
    python scripts/optimizer_table.py /tmp/exps.json

Each cell takes the newest experiment with that family (vgg16 by its `implementation`) and
optimizer, the workspace or baseline commit if no experiment has them; a cell no run covers says
so. An experiment counts only if it is one of the study's runs: apart from the family's optimizer
(and, for the keras.applications row, the options that make it), its variant, `train` and `data`
settings are its baseline commit's (`data.source` and `data.checksum` aside: a local copy of the
data lives in the workspace only). Others, such as a rerun at another seed, are named and left out.
A run "did not learn" when its best validation accuracy stays within LEARNED_MARGIN of chance.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnnlab.errors import UserError, exit_on_user_error  # noqa: E402
from cnnlab.experiments import experiments, newest_per_cell, read_exp_show, variant_metrics  # noqa: E402
from cnnlab.reported import SEED004_BEST, SEED004_FAMILIES, SEED004_OPTIMIZERS, SEED004_STUDY  # noqa: E402

# The options README's KERAS_VGG16 sets to turn the vgg16 variant into the keras.applications row.
ROW_OPTIONS = {"VGG16, keras.applications": ("implementation", "batchnorm", "width")}
LOCAL_DATA_KEYS = ("source", "checksum")
LEARNED_MARGIN = 0.05  # 5 points above chance (1 / classes): below it the network never left a near-constant guess
CLASSES = 10


def study_results(runs):
    """({(row, optimizer): (best validation accuracy, test accuracy)} of our runs, the names of
    the experiments of a study family left out because they change more than the study does)."""
    left_out = []

    def cells_of(run):
        for row, (variant, implementation) in SEED004_FAMILIES.items():
            settings = run.params.get("variants", {}).get(variant)
            scores = scores_of(run, variant)
            if not settings or scores is None:
                continue
            if implementation and settings.get("options", {}).get("implementation", "hand") != implementation:
                continue
            if not same_study_settings(run, variant, ROW_OPTIONS.get(row, ())):
                left_out.append(run.name)
                continue
            yield row, settings.get("optimizer", {}).get("name", "adam")

    def scores_of(run, variant):
        metrics = variant_metrics(run, variant)
        if metrics.get("test_accuracy") is None or metrics.get("best_val_accuracy") is None:
            return None
        return metrics["best_val_accuracy"], metrics["test_accuracy"]

    cells = newest_per_cell(runs, cells_of)
    results = {cell: scores_of(run, SEED004_FAMILIES[cell[0]][0]) for cell, run in cells.items()}
    return results, list(dict.fromkeys(left_out))


def same_study_settings(run, variant, row_options):
    """Whether `run` changed nothing of its baseline's `variant`, `train` and `data` settings but
    the optimizer and `row_options` (a baseline is its own)."""

    def settings(params):
        family = dict((params.get("variants") or {}).get(variant) or {})
        family.pop("optimizer", None)
        options = family.pop("options", None) or {}
        data = params.get("data") or {}
        return (
            family,
            {key: value for key, value in options.items() if key not in row_options},
            params.get("train"),
            {key: value for key, value in data.items() if key not in LOCAL_DATA_KEYS},
        )

    return settings(run.params) == settings(run.baseline_params)


def learned(accuracy, classes=CLASSES):
    return accuracy >= 1 / classes + LEARNED_MARGIN


def ours_text(scores):
    if scores is None:
        return "not run"
    validation, test = scores
    verdict = "" if learned(validation) else ", did not learn"
    return f"**{100 * validation:.2f} %** ({100 * test:.2f} %{verdict})"


def theirs_text(reported):
    if reported is None:
        return "not run"
    if reported.accuracy is None:
        return reported.condition
    figure = f"{100 * reported.accuracy:g} %"
    if reported.condition in ("above", "about"):
        return f"{reported.condition} {figure}"
    return f"{figure}, {reported.condition}" if reported.condition else figure


def best_optimizer(row, scores_by_optimizer):
    """The optimizer with the best validation accuracy among those that learned, or None."""
    learned_ones = {name: scores[0] for name, scores in scores_by_optimizer.items() if scores and learned(scores[0])}
    return max(learned_ones, key=learned_ones.get) if learned_ones else None


def their_best(row):
    figures = {
        name: SEED004_STUDY[(row, name)].accuracy
        for name in SEED004_OPTIMIZERS
        if (row, name) in SEED004_STUDY and SEED004_STUDY[(row, name)].accuracy is not None
    }
    learned_ones = {
        name: value for name, value in figures.items() if SEED004_STUDY[(row, name)].condition != "never learned"
    }
    return max(learned_ones, key=learned_ones.get) if learned_ones else None


def markdown(results):
    lines = [
        "| family | " + " | ".join(SEED004_OPTIMIZERS) + " | best: ours (theirs) |",
        "|" + " --- |" * (len(SEED004_OPTIMIZERS) + 2),
    ]
    for row in SEED004_FAMILIES:
        scores = {name: results.get((row, name)) for name in SEED004_OPTIMIZERS}
        cells = [f"{ours_text(scores[name])} [{theirs_text(SEED004_STUDY.get((row, name)))}]" for name in scores]
        ours, theirs = best_optimizer(row, scores), their_best(row)
        ran = any(scores.values())
        cells.append(f"{ours or ('none learned' if ran else 'not run')} ({theirs or 'no figure'})")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="the output of `dvc exp show --json` ('-' for standard input)")
    args = parser.parse_args(argv)
    shown = read_exp_show(args.json)
    results, left_out = study_results(experiments(shown))
    if not results:
        raise UserError("no run of alexnet, vgg16, googlenet or resnet with test metrics; run the study first")
    total = len(SEED004_FAMILIES) * len(SEED004_OPTIMIZERS)
    print(
        "Ours in bold: best validation accuracy (what seed 004 compared), then test accuracy in brackets, "
        f"CIFAR-10, 10 classes; theirs in square brackets, 5-class flowers. {len(results)} of {total} run. "
        f"Their best overall: {100 * SEED004_BEST.accuracy:g} % ({SEED004_BEST.condition}).\n"
    )
    print(markdown(results))
    if left_out:
        print(f"\nLeft out, as they change more than the optimizer: {', '.join(left_out)}.")


if __name__ == "__main__":
    main()
