"""`python -m stages.significance` and `python -m stages.pr_summary` on a temporary git repository
with two commits of metrics files, and the pull-request workflow that runs the summary."""

import json
import subprocess

import numpy as np
import pytest
import yaml
from scipy import stats

from cnnlab.errors import DataError
from cnnlab.fileio import write_json
from cnnlab.layout import details_path, metrics_path, repeats_path
from cnnlab.per_image import details_record
from cnnlab.repeats import repeats_record
from cnnlab.significance import annotate, load_result, repeats_of
from cnnlab.statistics import PREDICTION
from tests.helpers import REPO, markdown_table, run_stage

IMAGES = 1000
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def correct_from(offset, right, images=IMAGES):
    """`right` images right in a row from image `offset` on (wrapping round): two models with
    different offsets each get right some images the other gets wrong."""
    return np.roll(np.arange(images) < right, offset)


def write_results(root, variant, right, seeds=None, split="sha256:same", offset=0):
    """metrics/, metrics/details/ (and metrics/repeats/ for `seeds`) of a variant with `right` of IMAGES right."""
    write_json(metrics_path(root, variant), {"test_accuracy": right / IMAGES, "test_loss": 1.0 - right / IMAGES})
    write_json(details_path(root, variant), details_record(correct_from(offset, right), split, best_epoch=3))
    if seeds:
        runs = [correct_from(offset, round(accuracy * IMAGES)) for accuracy in seeds]
        write_json(repeats_path(root, variant), repeats_record(range(42, 42 + len(seeds)), seeds, runs, split))


def commit(root, message):
    subprocess.run([*GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-qm", message], cwd=root, check=True)


@pytest.fixture
def history(tmp_path):
    """Commit 1: `better` 700/1000 right, `worse` 650 (images 100-749); commit 2 (HEAD): `better`
    720 (images 0-719), `worse` unchanged."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    write_results(tmp_path, "better", 700, seeds=[0.70, 0.69, 0.71])
    write_results(tmp_path, "worse", 650, offset=100)
    commit(tmp_path, "baseline")
    write_results(tmp_path, "better", 720, seeds=[0.72, 0.74, 0.73])
    commit(tmp_path, "a change")
    return tmp_path


def output_lines(output):
    return {line.split(":")[0]: line for line in output.splitlines()}


def test_two_single_runs_are_compared_on_the_same_test_images(history):
    output = run_stage(history, "stages.significance", "better@HEAD~1", "worse").stdout

    first, second = correct_from(0, 700), correct_from(100, 650)
    only_first, only_second = int(np.sum(first & ~second)), int(np.sum(~first & second))
    assert (only_first, only_second) == (100, 50), "each gets right images the other gets wrong"
    mcnemar = output_lines(output)["McNemar's exact test"]
    assert mcnemar.startswith("McNemar's exact test: difference +5.00 pt, 95 % interval")
    assert f"p = {stats.binomtest(only_first, only_first + only_second).pvalue:.2g} " in mcnemar
    assert "(of 1,000 images, 100 right only by the first, 50 only by the second): told apart" in mcnemar


def test_a_single_run_is_tested_against_the_seeds_of_a_repeated_one(history):
    output = run_stage(history, "stages.significance", "worse", "better").stdout
    lines = output_lines(output)

    # worse (650 right, one run) against better's seeds 72, 74, 73 %: is 65 % where a 4th seed could land?
    seeds = np.array([0.72, 0.74, 0.73])
    scale = np.std(seeds, ddof=1) * np.sqrt(1 + 1 / 3)
    p = 2 * stats.t.sf(abs(seeds.mean() - 0.65) / scale, df=2)
    low, high = 0.65 - np.array(stats.t.interval(0.95, df=2, loc=seeds.mean(), scale=scale))[::-1]
    assert lines["prediction-interval t-test"] == (
        f"prediction-interval t-test: difference -8.00 pt, 95 % interval {100 * low:+.2f} pt to {100 * high:+.2f} pt, "
        f"p = {p:.2g} (single run against 3 seeds): told apart at the 5 % level"
    )
    assert "McNemar's exact test" in lines, "the paired test on the same images is shown too"
    assert lines["deciding"] == "deciding: prediction-interval t-test (the seed spread, where there is one)"
    assert "Welch" not in output, "worse is a single run: no Welch"


def test_one_variant_in_two_revisions_uses_the_seed_spread(history):
    output = run_stage(history, "stages.significance", "better@HEAD~1", "better").stdout
    welch = stats.ttest_ind([0.70, 0.69, 0.71], [0.72, 0.74, 0.73], equal_var=False)

    assert "better@HEAD~1: test accuracy 70.00%" in output and "3 seeds: mean 70.00% ± 1.00 pt" in output
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


def test_details_without_images_are_one_error_line(history):
    write_json(details_path(history, "empty"), details_record(np.array([], bool), "sha256:same", best_epoch=1))
    write_json(metrics_path(history, "empty"), {"test_accuracy": 0.5})

    result = run_stage(history, "stages.significance", "empty", "worse", check=False)

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: metrics/details/empty.json in the workspace: holds no test images; rerun `dvc repro evaluate@empty`"
    )


def test_details_left_from_an_earlier_evaluation_name_both_files_and_the_command(history):
    write_results(history, "stale", 650)
    write_json(metrics_path(history, "stale"), {"test_accuracy": 0.7})  # evaluated again, details not rewritten

    with pytest.raises(DataError) as error:
        load_result("stale", root=history)

    assert str(error.value) == (
        "metrics/details/stale.json in the workspace: 65.00% of its 1,000 images right, but metrics/stale.json says "
        "test accuracy 70.00%: one of them is left from an earlier evaluation; rerun `dvc repro evaluate@stale` "
        "to write both"
    )


MAIN_RUN = {"test_accuracies": [0.70, 0.69, 0.71], "test_split": "sha256:same"}


def test_repeats_belong_to_the_main_run_they_start_with():
    assert repeats_of(MAIN_RUN, 0.70, "sha256:same") == [0.70, 0.69, 0.71]


@pytest.mark.parametrize(
    "accuracy, split", [(0.72, "sha256:same"), (0.70, "sha256:other")], ids=["older main run", "other test split"]
)
def test_repeats_left_from_an_older_main_run_are_ignored(accuracy, split):
    assert repeats_of(MAIN_RUN, accuracy, split) is None


def test_a_stale_repeats_record_makes_the_variant_a_single_run(history):
    write_results(history, "retrained", 660, seeds=[0.70, 0.69, 0.71])  # seeds of an earlier main run, 70 %

    assert load_result("retrained", root=history).seeds is None
    output = run_stage(history, "stages.significance", "retrained", "worse").stdout
    assert "seeds" not in output.splitlines()[0] and "Welch" not in output and "prediction" not in output


def test_the_report_ranks_by_best_estimate_and_every_neighbour_differs_the_same_way(tmp_path):
    rng = np.random.default_rng(19)
    rows, repeated_variants = [], []
    for index in range(12):  # v0 and v1 single runs at the top, then two in three repeated
        variant, right = f"v{index}", 760 - 10 * index if index < 2 else int(rng.integers(600, 700))
        seeds = None
        if index > 1 and index % 3:  # at 2 to 5 seeds scattered around the main run
            seeds = [right / IMAGES, *np.round(right / IMAGES + rng.normal(0, 0.02, rng.integers(1, 5)), 3)]
            repeated_variants.append(variant)
        write_results(tmp_path, variant, right, seeds=seeds, offset=int(rng.integers(IMAGES)))
        rows.append({"variant": variant, "evaluated": True, "test_accuracy": right / IMAGES})
    rows.sort(key=lambda row: row["test_accuracy"], reverse=True)  # as comparison.variant_rows gives them

    ranked = annotate([*rows, {"variant": "pending", "evaluated": False}], tmp_path, repeated_variants)

    assert ranked[-1]["variant"] == "pending"
    estimates = [row["estimate"] for row in ranked[:-1]]
    assert estimates == sorted(estimates, reverse=True)
    assert [row["variant"] for row in ranked[:-1]] != [row["variant"] for row in rows], "the seeds reorder some"
    comparisons = [row["apart"] for row in ranked[:-2]]
    assert {comparison.test for comparison in comparisons} == {"McNemar's exact test", "Welch's t-test", PREDICTION}
    for row, following, comparison in zip(ranked, ranked[1:], comparisons):
        assert comparison.difference == pytest.approx(row["estimate"] - following["estimate"], abs=1e-12)
        assert comparison.difference >= 0
    assert ranked[-2]["apart"] is None


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


def test_pr_summary_against_seeds_that_all_scored_the_same_is_undetermined(history):
    write_results(history, "worse", 660, seeds=[0.66, 0.66])  # repeated now, both seeds 660 right

    markdown = run_stage(history, "stages.pr_summary", "--base", "HEAD").stdout

    by_metric = {row[1]: row for row in markdown_table(markdown)[2:]}
    assert by_metric["test_accuracy"][5] == (
        "no, undetermined: no spread among the seeds (prediction-interval t-test, 2 seeds against a single run)"
    )


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
