"""scripts/grid_table.py: seed 001's grid table from `dvc exp show --json`."""

import json
import subprocess
import sys

from tests.helpers import REPO, exp_show_row


def exp1(learning_rate, batch_size, epochs):
    return {"seed001_exp1": {"optimizer": {"learning_rate": learning_rate}, "batch_size": batch_size, "epochs": epochs}}


def run(rev, name, settings, accuracy):
    metrics = {"metrics/seed001_exp1.json": {"test_accuracy": accuracy}, "metrics/fast.json": {"test_accuracy": 0.85}}
    return exp_show_row(rev, name, {"variants": exp1(*settings)}, metrics)


SHOWN = [
    run("workspace", None, (0.001, 32, 10), 0.6412),
    exp_show_row(
        "0123456789",
        "main",
        {"variants": exp1(0.001, 32, 10)},
        {"metrics/seed001_exp1.json": {"test_accuracy": 0.6399}},
        experiments=[
            run("abc1234", "lr01-b64", (0.01, 64, 10), 0.3856),  # dvc lists the newest first
            run("abc1200", "old-lr01-b64", (0.01, 64, 10), 0.2),
            run("abc1111", "diverged", (0.01, 32, 5), 0.1),
            run("abc1000", "lr001-b32-e10", (0.001, 32, 10), 0.6285),
            exp_show_row("abc0999", "queued", {"variants": exp1(0.0001, 128, 15)}),
        ],
    ),
]


def table(text, *options):
    result = subprocess.run(
        [sys.executable, "scripts/grid_table.py", "-", *options], input=text, cwd=REPO, capture_output=True, text=True
    )
    return result


def test_each_cell_shows_our_newest_run_beside_the_original():
    result = table(json.dumps(SHOWN))
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()
    assert rows[0].startswith("Ours in bold") and "3 of 27 run" in rows[0]
    lr01 = next(row for row in rows if row.startswith("| 0.01 |")).split(" | ")
    assert lr01[1] == "**10.00 %** (10 %)"  # (32, 5)
    assert lr01[5] == "**38.56 %** (38.56 %)"  # (64, 10): the newer of two runs
    assert lr01[2] == "not run (10 %)"
    lr001 = next(row for row in rows if row.startswith("| 0.001 |"))
    assert "**62.85 %** (60.76 %)" in lr001  # the grid's own run, not the workspace's or the commit's
    assert "not run (60.01 %)" in next(row for row in rows if row.startswith("| 0.0001 |"))  # queued, no metrics


def test_input_without_the_grid_is_a_one_line_error():
    result = table(json.dumps([exp_show_row("workspace")]))
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: no run of seed001_exp1 with test metrics; run the grid first (README, Studies)"
    )
    result = table("Experiment,rev\n,workspace\n")
    assert result.returncode == 2
    assert result.stderr.startswith("error: -: not the output of `dvc exp show --json`")


def test_the_seed_spread_of_one_cell_is_printed_as_the_noise_floor(tmp_path):
    record = tmp_path / "seed001_exp1.json"
    record.write_text(json.dumps({"test_accuracies": [0.6295, 0.6412, 0.6350, 0.6201, 0.6330]}))

    result = table(json.dumps(SHOWN), "--spread", str(record))

    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    spread = "5 seeds: 63.18 ± 0.78 % (mean ± std), 62.01-64.12 %"
    assert first == f"Noise floor: seed001_exp1 at its params.yaml settings, {spread} ({record})."
    assert "| 0.01 |" in result.stdout, "the table follows"


def test_the_noise_floor_alone_needs_no_experiments(tmp_path):
    record = tmp_path / "seed001_exp1.json"
    record.write_text(json.dumps({"test_accuracies": [0.6295, 0.6412]}))

    result = subprocess.run(
        [sys.executable, "scripts/grid_table.py", "--spread", str(record)], cwd=REPO, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Noise floor: seed001_exp1 at its params.yaml settings, 2 seeds: 63.53 ± 0.83 % (mean ± std), "
        f"62.95-64.12 % ({record})."
    )
