"""Every variant side by side: one row per variant from params.yaml, metrics/<variant>.json and
models/<variant>/training.json. Built here once, for the compare stage (plots/comparison.*)
and for the report."""

import sys
from operator import itemgetter

import pandas as pd

from cnnlab.config.families import FAMILIES
from cnnlab.errors import UserError
from cnnlab.fileio import load_json, write_text
from cnnlab.layout import (
    EXPORT_FORMATS,
    comparison_dir,
    details_path,
    evaluate_command,
    export_command,
    export_metrics_path,
    live_dir,
    metrics_path,
    model_dir,
    train_command,
)
from cnnlab.plotting import plot_comparison, save_figure

NOT_RECORDED = "data not recorded (metrics written before they named their dataset)"
CURVES = ("val_accuracy", "val_loss", "accuracy", "loss")
TRAINING_FACTS = ("optimizer", "learning_rate", "batch_size", "flops_per_image", "images_per_second")
TABLE_COLUMNS = {
    "variant": "variant",
    "params": "params",
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
    "best_val_accuracy": "best val accuracy",
    "epochs_run": "epochs run",
    "train_seconds": "train time (s)",
    "images_per_second": "images/s",
    "batch_size": "batch size",
    "optimizer": "optimizer",
    "learning_rate": "learning rate",
}
# The exported files (export@<variant>): batch-1 latency of the Keras model, then each format's
# file size, batch-1 latency and test accuracy scored by its own runtime.
EXPORT_FIGURES = {"size_kb": "size (kB)", "latency_ms": "ms/image", "test_accuracy": "test accuracy"}
TABLE_COLUMNS.update(
    {"keras_latency_ms": "Keras ms/image"}
    | {
        f"{name}_{figure}": f"{label} {header}"
        for name, (_, label) in EXPORT_FORMATS.items()
        for figure, header in EXPORT_FIGURES.items()
    }
)


def variant_rows(variants, root=".", descriptions=None):
    """One dict per variant of the validated `variants` params: evaluated ones by test accuracy
    (best first), then the others in params order with `evaluated` False."""
    descriptions = descriptions or {}
    rows = [
        {**variant_row(name, variant, root), "description": descriptions.get(name)}
        for name, variant in variants.items()
    ]
    evaluated = sorted((row for row in rows if row["evaluated"]), key=itemgetter("test_accuracy"), reverse=True)
    return evaluated + [row for row in rows if not row["evaluated"]]


def check_one_dataset(rows, expected=None, against=None):
    """Refuse evaluated rows whose metrics were computed on other data (their `dataset` key)
    than `expected` (`against` says where that is from, e.g. "data/prepared/card.json is"), or,
    without one, than most of the rows: one line naming the odd ones out. A metrics file
    without the key counts as other data."""
    evaluated = [row for row in rows if row["evaluated"]]
    datasets = [row.get("dataset") for row in evaluated]
    if expected is None:
        if len(set(datasets)) < 2:
            return
        expected = max(datasets, key=datasets.count)  # ties: the best-ranked row's
        against = f"the other {datasets.count(expected)} evaluated variants on"
    odd = {}
    for row in evaluated:
        if row.get("dataset") != expected:
            odd.setdefault(row.get("dataset") or NOT_RECORDED, []).append(row["variant"])
    if odd:
        found = "; ".join(f"{', '.join(names)} on {dataset}" for dataset, names in odd.items())
        raise UserError(
            f"metrics/ mixes datasets: {found}, but {against} {expected or NOT_RECORDED}; "
            "rerun `dvc repro` to evaluate every variant on the same prepared data"
        )


def variant_row(name, variant, root):
    row = {
        "variant": name,
        "architecture": architecture(variant),
        "optimizer": variant["optimizer"]["name"],
        "learning_rate": variant["optimizer"]["learning_rate"],
        "batch_size": variant["batch_size"],
    }
    path = metrics_path(root, name)
    if not path.exists():
        return {**row, "evaluated": False}
    metrics = load_json(path, evaluate_command(name))
    return {
        **row,
        **training_facts(root, name),
        **metrics,
        **evaluation_facts(root, name),
        **export_facts(root, name, metrics.get("dataset")),
        "evaluated": True,
    }


def evaluation_facts(root, variant):
    """The best epoch, from metrics/details/<variant>.json (git-tracked, no DVC metric)."""
    path = details_path(root, variant)
    return {"best_epoch": load_json(path, evaluate_command(variant)).get("best_epoch")} if path.exists() else {}


def training_facts(root, variant):
    """What the training run actually used (models/<variant>/training.json). Without it (models/
    not pulled from the DVC cache) the row keeps the settings from params.yaml."""
    path = model_dir(root, variant) / "training.json"
    if not path.exists():
        return {}
    training = load_json(path, train_command(variant))
    return {key: training[key] for key in TRAINING_FACTS if key in training}


def export_facts(root, variant, dataset=None):
    """Flat `<format>_<figure>` keys from metrics/export/<variant>.json, and `<format>_skipped`
    (why a format was not exported); nothing before export@<variant> has run, nor (with one
    line on stderr) when the file was made on other data than `dataset`, the variant's metrics'."""
    path = export_metrics_path(root, variant)
    if not path.exists():
        return {}
    export = load_json(path, export_command(variant))
    if export.get("dataset") != dataset:
        print(
            f"warning: {path}: made on {export.get('dataset') or NOT_RECORDED}, but metrics/{variant}.json "
            f"on {dataset or NOT_RECORDED}; its figures are left out: run `{export_command(variant)}`",
            file=sys.stderr,
        )
        return {}
    facts = {"keras_latency_ms": export["keras"]["latency_ms"], "keras_test_accuracy": export["keras"]["test_accuracy"]}
    if "keras_float32" in export:  # the model the files are exported from: their accuracy's reference
        facts["keras_float32_test_accuracy"] = export["keras_float32"]["test_accuracy"]
        facts["keras_dtype_policy"] = export["keras"]["dtype_policy"]
    for name in EXPORT_FORMATS:
        figures = export.get(name, {})
        if "size_bytes" in figures:
            figures = {**figures, "size_kb": figures["size_bytes"] / 1000}
        facts.update({f"{name}_{key}": value for key, value in figures.items() if key in EXPORT_FIGURES})
        if "skipped" in figures:
            facts[f"{name}_skipped"] = figures["skipped"]
    return facts


def architecture(variant):
    """The family and the options set away from its defaults (all of them would not fit a table)."""
    if variant["family"] == "layers":
        return f"layers ({len(variant['layers'])} layers)"
    defaults = FAMILIES[variant["family"]]
    options = ", ".join(
        f"{option}={value}" for option, value in variant["options"].items() if value != defaults.get(option)
    )
    return f"{variant['family']} ({options})" if options else variant["family"]


def comparison_frame(rows):
    """The evaluated rows as a table with TABLE_COLUMNS, in the rows' order."""
    return pd.DataFrame([row for row in rows if row["evaluated"]], columns=list(TABLE_COLUMNS))


def learning_curves(variants, root="."):
    """Every variant's scores per epoch (models/<variant>/history.json) in long format, one row
    per variant and epoch: the data of the cross-variant curves in `dvc plots show`."""
    frames = []
    for name in variants:
        frame = pd.DataFrame(epoch_history(root, name)).reindex(columns=list(CURVES))
        frame.insert(0, "epoch", range(1, len(frame) + 1))
        frame.insert(0, "variant", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).reindex(columns=["variant", "epoch", *CURVES])


def epoch_history(root, variant):
    """{metric: per-epoch values} from models/<variant>/history.json; without it (models/ is
    DVC-cached: a clone, or a machine that did not train the variant) the validation curves
    dvclive logged in git (dvclive/<variant>/plots/metrics/eval/), the training ones left out."""
    path = model_dir(root, variant) / "history.json"
    logged = live_dir(root, variant) / "plots" / "metrics" / "eval"
    if path.exists() or not logged.is_dir():
        history = load_json(path, train_command(variant))
        return {metric: history[metric] for metric in CURVES if metric in history}
    return {
        f"val_{metric}": logged_epochs(logged / f"{metric}.tsv")[metric].tolist()
        for metric in ("accuracy", "loss")
        if (logged / f"{metric}.tsv").exists()
    }


def logged_epochs(path):
    """A dvclive .tsv, one row per step (a resumed run logs the step it redid twice: the later wins)."""
    return pd.read_csv(path, sep="\t").drop_duplicates("step", keep="last").sort_values("step")


def write_comparison(variants, root="."):
    """plots/comparison.csv, .md and .png and plots/curves.csv of every variant; each must have
    been evaluated."""
    rows = variant_rows(variants, root)
    missing = [row["variant"] for row in rows if not row["evaluated"]]
    if missing:
        raise UserError(f"{metrics_path(root, missing[0])}: missing; run `{evaluate_command(missing[0])}` first")
    check_one_dataset(rows)
    frame = comparison_frame(rows)
    plots = comparison_dir(root)
    write_text(plots / "comparison.csv", frame.to_csv(index=False))
    write_text(
        plots / "comparison.md", frame.rename(columns=TABLE_COLUMNS).to_markdown(index=False, floatfmt=".4g") + "\n"
    )
    save_figure(plot_comparison(frame), plots / "comparison.png")
    write_text(plots / "curves.csv", learning_curves(variants, root).to_csv(index=False, float_format="%.6g"))
    return frame
