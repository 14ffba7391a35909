"""DVC experiments as data, from `dvc exp show --json`, and one metric of every variant across
them: a variant per row, an experiment per column.

`dvc exp show` puts each experiment on a row and each variant's metric in a column of its own,
which a terminal cannot fit past a few variants; turned on its side the table stays readable
with any number of variants. The JSON form is read rather than the table (or dvc.api.exp_show)
because those shorten a metric's column to its bare key when only one file has it, which loses
the variant.
"""

import json
import subprocess
import sys
from collections import namedtuple
from numbers import Real

import pandas as pd

from cnnlab.errors import UserError
from cnnlab.layout import metrics_path, running_live_path

# params: params.yaml as a nested dict; metrics: {file: {key: value}} of the files DVC could read;
# baseline: the workspace or a commit rather than an experiment; baseline_params: the params of
# the commit an experiment ran on (a baseline's own)
Experiment = namedtuple("Experiment", "name params metrics baseline baseline_params")


def dvc_exp_show():
    """The parsed `dvc exp show --json` of the project in the current directory."""
    try:
        shown = subprocess.run(["dvc", "exp", "show", "--json"], capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("dvc: command not found; install requirements.txt (`make install`)") from None
    if shown.returncode != 0:
        reason = (shown.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"`dvc exp show --json` failed: {reason}")
    return json.loads(shown.stdout)


def read_exp_show(path):
    """The parsed output of `dvc exp show --json` saved at `path` ('-' for standard input)."""
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path, encoding="utf-8") as saved:
            return json.load(saved)
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not the output of `dvc exp show --json` ({error})") from None


UNFINISHED = {"queued", "running"}  # executor states of `dvc exp show --json`


def experiments(shown):
    """The rows of `dvc exp show`, in its order: the workspace, then each baseline commit followed
    by its experiments (newest first)."""
    runs = []
    for baseline in shown:
        base = row_experiment(baseline, baseline_params=None)
        runs.append(base)
        for experiment in baseline.get("experiments") or []:
            if (experiment.get("executor") or {}).get("state") in UNFINISHED:
                continue  # its files are the baseline's until its stages finish
            runs += [row_experiment(revision, base.params) for revision in experiment.get("revs", [])[:1]]
    return runs


def row_experiment(row, baseline_params):
    """The row as an Experiment: a baseline when `baseline_params` is None, else an experiment
    that ran on a commit with those params."""
    data = row.get("data") or {}
    params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
    metrics = {path: flat(found["data"]) for path, found in (data.get("metrics") or {}).items() if "data" in found}
    name = row.get("name") or (row["rev"] if row["rev"] == "workspace" else row["rev"][:7])
    is_baseline = baseline_params is None
    return Experiment(name, params, metrics, is_baseline, params if is_baseline else baseline_params)


def flat(tree, prefix=""):
    """Nested metrics as dotted keys, as `dvc exp show` names them: {"eval": {"loss": 1}} -> {"eval.loss": 1}."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[f"{prefix}{key}"] = value
    return items


def variant_metrics(run, variant):
    """The variant's metrics in `run`: the evaluate stage's, and the live summary of its latest
    epoch (step, eval.accuracy, eval.loss), which exists while it trains."""
    files = (metrics_path(".", variant), running_live_path(".", variant))
    return {key: value for path in files for key, value in run.metrics.get(path.as_posix(), {}).items()}


def newest_per_cell(runs, cells_of):
    """{cell: the run that fills it}, `cells_of(run)` naming the cells of a table a run has
    results for. Each cell takes the newest experiment that has it, a baseline (workspace or
    commit) only when no experiment does: `runs` in `dvc exp show`'s order lists experiments
    newest first."""
    cells = {}
    for run in sorted(runs, key=lambda run: run.baseline):  # stable: dvc's newest-first order stays
        for cell in cells_of(run):
            cells.setdefault(cell, run)
    return cells


def is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def variants_by_experiment(runs, metric="test_accuracy", only_changed=False):
    """A frame of `metric` (variants x experiments, in the order of `runs`), best variant of the
    first experiment first; experiments without that metric are left out."""
    columns, known = {}, set()
    for run in runs:
        values = {}
        for variant in run.params.get("variants") or {}:
            metrics = variant_metrics(run, variant)
            known.update(key for key, value in metrics.items() if is_number(value))
            if is_number(metrics.get(metric)):
                values[variant] = metrics[metric]
        if values:
            columns[run.name] = values
    if not columns:
        hint = f"known: {', '.join(sorted(known))}" if known else "run `dvc repro` or `dvc exp run` first"
        raise UserError(f"no experiment has {metric} in its variants' metrics; {hint}")
    frame = pd.DataFrame(columns)
    if only_changed:
        frame = frame[frame.nunique(axis=1, dropna=False) > 1]
    return frame.sort_values(frame.columns[0], ascending=False)
