"""cnnlab.experiments: `dvc exp show --json` read as experiments, and one metric as a variant-per-row table."""

import pytest

from cnnlab.errors import UserError
from cnnlab.experiments import experiments, variants_by_experiment
from tests.helpers import exp_show_row

VARIANTS = {"variants": {"a": {"epochs": 10}, "b": {"epochs": 5}}}
SHOWN = [
    exp_show_row(
        "workspace",
        params=VARIANTS,
        metrics={
            "metrics/a.json": {"test_accuracy": 0.61},
            "metrics/b.json": {"test_accuracy": 0.83, "test_loss": 0.5},
            "dvclive/_running/a.json": {"step": 9, "eval": {"accuracy": 0.6}},
            "metrics/removed.json": {"test_accuracy": 0.99},  # a stale file of a variant no longer in params
        },
    ),
    exp_show_row(
        "0123456789abcdef",
        name="main",
        params=VARIANTS,
        metrics={"metrics/a.json": {"test_accuracy": 0.55}, "metrics/b.json": {"test_accuracy": 0.83}},
        experiments=[
            exp_show_row(
                "1a2b3c4d5e",
                "lr-0.01",
                params=VARIANTS,
                metrics={"metrics/a.json": None, "metrics/b.json": {"test_accuracy": 0.9}},
            ),
            exp_show_row("5d6e7f8a9b", "queued"),
        ],
    ),
]


def test_rows_in_dvc_order_with_their_params_and_readable_metrics():
    runs = experiments(SHOWN)
    assert [(run.name, run.baseline) for run in runs] == [
        ("workspace", True),
        ("main", True),
        ("lr-0.01", False),
        ("queued", False),
    ]
    assert runs[0].params["variants"]["a"]["epochs"] == 10
    assert runs[2].metrics == {"metrics/b.json": {"test_accuracy": 0.9}}  # metrics/a.json was unreadable
    assert experiments([exp_show_row("fedcba9876")])[0].name == "fedcba9"  # a commit without a branch


def test_each_run_carries_the_params_of_the_commit_it_ran_on():
    def params(epochs):
        return {"variants": {"a": {"epochs": epochs}}}

    shown = [
        exp_show_row("workspace", params=params(1)),
        exp_show_row("0123456789abcdef", "main", params(2), experiments=[exp_show_row("1a2b3c4d5e", "e", params(3))]),
        exp_show_row("fedcba9876543210", "old", params(4), experiments=[exp_show_row("5d6e7f8a9b", "f", params(5))]),
    ]
    assert [(run.name, run.baseline_params) for run in experiments(shown)] == [
        ("workspace", params(1)),
        ("main", params(2)),
        ("e", params(2)),
        ("old", params(4)),
        ("f", params(4)),
    ]


def test_an_experiment_still_running_is_left_out_it_shows_the_baselines_metrics():
    running = exp_show_row(
        "workspace", "still-training", params=VARIANTS, metrics={"metrics/a.json": {"test_accuracy": 0.55}}
    )
    shown = [exp_show_row("0123456789abcdef", name="main", params=VARIANTS, experiments=[running])]
    shown[0]["experiments"][0]["executor"] = {"state": "running", "name": "dvc-task"}

    assert [run.name for run in experiments(shown)] == ["main"]
    shown[0]["experiments"][0]["executor"]["state"] = "success"
    assert [run.name for run in experiments(shown)] == ["main", "still-training"]


def test_a_variant_per_row_an_experiment_per_column_best_first():
    table = variants_by_experiment(experiments(SHOWN))
    assert list(table.columns) == ["workspace", "main", "lr-0.01"]  # "queued" has no metrics yet
    assert list(table.index) == ["b", "a"]  # not "removed"
    assert table.loc["a"].tolist()[:2] == [0.61, 0.55]
    assert table.loc["b", "lr-0.01"] == 0.9
    assert table.loc["a"].isna().tolist() == [False, False, True]


def test_only_changed_keeps_the_variants_whose_metric_differs():
    assert list(variants_by_experiment(experiments(SHOWN)[:2], only_changed=True).index) == ["a"]


def test_another_metric_and_the_live_log_of_the_latest_epoch():
    assert variants_by_experiment(experiments(SHOWN), "test_loss").to_dict() == {"workspace": {"b": 0.5}}
    assert variants_by_experiment(experiments(SHOWN), "eval.accuracy").to_dict() == {"workspace": {"a": 0.6}}


def test_an_unknown_metric_lists_the_known_ones():
    known = r"known: eval\.accuracy, step, test_accuracy, test_loss$"
    with pytest.raises(UserError, match=rf"no experiment has accuracy in its variants' metrics; {known}"):
        variants_by_experiment(experiments(SHOWN), "accuracy")
