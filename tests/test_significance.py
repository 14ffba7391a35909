"""`python -m stages.significance` and `python -m stages.pr_summary` on a temporary git repository
with two commits of metrics files, and the pull-request workflow that runs the summary."""

import json
import subprocess

import numpy as np
import pytest
import yaml
from scipy import stats

from cnnlab.fileio import write_json
from cnnlab.layout import details_path, metrics_path, repeats_path
from cnnlab.per_image import details_record
from cnnlab.repeats import repeats_record
from tests.helpers import REPO, markdown_table, run_stage

IMAGES = 1000
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def correct_first(right, images=IMAGES):
    return np.arange(images) < right


def write_results(root, variant, right, seeds=None, split="sha256:same"):
    """metrics/, metrics/details/ (and metrics/repeats/ for `seeds`) of a variant with `right` of IMAGES right."""
    write_json(metrics_path(root, variant), {"test_accuracy": right / IMAGES, "test_loss": 1.0 - right / IMAGES})
    write_json(details_path(root, variant), details_record(correct_first(right), split, best_epoch=3))
    if seeds:
        runs = [correct_first(round(accuracy * IMAGES)) for accuracy in seeds]
        write_json(repeats_path(root, variant), repeats_record(range(42, 42 + len(seeds)), seeds, runs, split))


def commit(root, message):
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=root, check=True)


@pytest.fixture
def history(tmp_path):
    """Commit 1: `better` 700/1000 right, `worse` 650; commit 2 (HEAD): `better` 720, `worse` unchanged."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_results(tmp_path, "better", 700, seeds=[0.70, 0.69, 0.71])
    write_results(tmp_path, "worse", 650)
    commit(tmp_path, "baseline")
    write_results(tmp_path, "better", 720, seeds=[0.72, 0.74, 0.73])
    commit(tmp_path, "a change")
    return tmp_path


def test_two_variants_are_compared_on_the_same_test_images(history):
    output = run_stage(history, "stages.significance", "better", "worse").stdout

    # 720 against 650 right: 70 images right only by `better`, none only by `worse`
    assert "better: test accuracy 72.00% (95 % interval" in output
    assert f"p = {stats.binomtest(70, 70).pvalue:.2g}" in output
    assert "McNemar's exact test: difference +7.00 pt" in output and "told apart at the 5 % level" in output
    assert "Welch" not in output, "worse is a single run: no seed comparison"


def test_one_variant_in_two_revisions_uses_the_seed_spread(history):
    output = run_stage(history, "stages.significance", "better@HEAD~1", "better").stdout
    welch = stats.ttest_ind([0.70, 0.69, 0.71], [0.72, 0.74, 0.73], equal_var=False)

    assert "better@HEAD~1: test accuracy 70.00%" in output and "3 seeds: mean 70.00% ± 1.00%" in output
    low, high = welch.confidence_interval()
    assert f"Welch's t-test: difference {100 * (0.70 - 0.73):+.2f} pt" in output
    assert f"95 % interval {100 * low:+.2f} pt to {100 * high:+.2f} pt, p = {welch.pvalue:.2g}" in output
    assert "deciding: Welch's t-test" in output


def test_identical_results_are_not_told_apart(history):
    output = run_stage(history, "stages.significance", "worse@HEAD~1", "worse@HEAD").stdout
    assert "difference +0.00 pt" in output and "p = 1 " in output and "not told apart" in output


def test_a_variant_at_an_unknown_revision_is_one_error_line(history):
    result = run_stage(history, "stages.significance", "better@nowhere", "better", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: nowhere: no such git revision or DVC experiment here (`dvc exp show` lists them)"
    )


def test_different_test_splits_are_never_paired(history):
    write_results(history, "other_data", 900, split="sha256:another")
    output = run_stage(history, "stages.significance", "worse", "other_data").stdout
    assert "no test possible" in output and "McNemar" not in output


def test_pr_summary_lists_changed_metrics_with_their_significance(history):
    markdown = run_stage(history, "stages.pr_summary", "--base", "HEAD~1").stdout

    header, _, *rows = markdown_table(markdown)
    assert header[:5] == ["variant", "metric", "base", "head", "change"]
    by_metric = {row[1]: row for row in rows}
    assert [row[0] for row in rows] == ["better"] * 3, "worse did not change"
    assert by_metric["test_accuracy"][2:5] == ["0.7", "0.72", "+0.02"]
    welch = stats.ttest_ind([0.72, 0.74, 0.73], [0.70, 0.69, 0.71], equal_var=False)
    low, high = welch.confidence_interval()
    expected = f"{100 * low:+.2f} pt to {100 * high:+.2f} pt, p = {welch.pvalue:.2g}, Welch"
    assert by_metric["test_accuracy"][5] == f"**yes** ({expected})"
    assert by_metric["test_accuracy over seeds"][2:4] == ["0.7000 ± 0.0100 (3)", "0.7300 ± 0.0100 (3)"]


def test_pr_summary_of_nothing_changed_says_so(history):
    markdown = run_stage(history, "stages.pr_summary", "--base", "HEAD").stdout
    assert "No metric of the 2 variants changed." in markdown


def test_the_pull_request_workflow_runs_the_same_command_on_git_tracked_files():
    workflow = yaml.safe_load((REPO / ".github/workflows/metrics-summary.yml").read_text())
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]

    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as true
    assert any("python -m stages.pr_summary --base" in run and "$GITHUB_STEP_SUMMARY" in run for run in runs)
    checkout = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the base branch's commits are needed"
    assert not any("dvc" in run for run in runs), "no DVC remote, no DVC"


def test_the_summary_imports_only_what_the_workflow_installs():
    heavy = "{'tensorflow', 'keras', 'yaml', 'pandas', 'dvc', 'sklearn'}"
    loaded = "{m.split('.')[0] for m in sys.modules}"
    code = f"import sys, stages.pr_summary, stages.significance; print(sorted({loaded} & {heavy}))"
    shown = subprocess.run(["python", "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout.replace("'", '"')) == []
