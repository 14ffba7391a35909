"""End to end: the real DVC pipeline (`dvc repro`, `dvc exp run`, metrics and plots diff) in a
temporary git repository, offline on scikit-learn's digits."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import REPO, committed, small_variant

PROJECT_FILES = [
    "cnnlab",
    "stages",
    "dvc.yaml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvc/plots",
    ".dvcignore",
    "dvclive/_running/.gitkeep",
    ".gitignore",
    "pyproject.toml",
]
TOP_LEVEL_PLOTS = ["validation_accuracy", "validation_loss", "accuracy_vs_parameters", "accuracy_vs_training_time"]
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def run(directory, *command):
    result = subprocess.run(command, cwd=directory, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A clone-like project with two small variants on digits, after `dvc repro`."""
    directory = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source, target = REPO / name, directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    params = yaml.safe_load(committed("params.yaml"))
    params["data"].update(dataset="digits", image_size=[16, 16])
    params["variants"] = {"tiny_a": small_variant(epochs=3), "tiny_b": small_variant(epochs=2, batch_size=32)}
    params["descriptions"] = {"tiny_a": "three epochs", "tiny_b": "two epochs"}
    params["variants"]["tiny_a"]["mixed_precision"] = False  # float32: reruns bit for bit
    params["repeats"] = {"max_runs": None, "runs": {"tiny_a": 2}}
    # the artifacts of the shipped variants, for these two
    dvc_yaml = yaml.safe_load((directory / "dvc.yaml").read_text())
    dvc_yaml["artifacts"] = {name: {"path": f"models/{name}", "type": "model"} for name in params["variants"]}
    (directory / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml, sort_keys=False))
    params["plots"].update(samples=9, top_wrong=4)
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(directory, "git", "init", "-q")
    run(directory, "git", "add", "-A")
    run(directory, "git", "commit", "-qm", "project")
    run(directory, "dvc", "repro")
    return directory


def metrics(directory, variant):
    return json.loads((directory / "metrics" / f"{variant}.json").read_text())


def test_repro_trains_evaluates_and_plots_every_variant(pipeline):
    for variant in ("tiny_a", "tiny_b"):
        result = metrics(pipeline, variant)
        assert 0.5 < result["test_accuracy"] <= 1.0, "digits at 16x16 are learnable in 2-3 epochs"
        assert result["epochs_run"] == {"tiny_a": 3, "tiny_b": 2}[variant]
        per_class = (pipeline / "metrics" / "per_class" / f"{variant}.csv").read_text().splitlines()
        assert per_class[0] == "class,precision,recall,f1,support" and len(per_class) == 11
        live = (pipeline / "dvclive" / variant / "plots/metrics/eval/accuracy.tsv").read_text().splitlines()
        assert len(live) == 1 + result["epochs_run"]
        assert not (pipeline / "dvclive/_running" / f"{variant}.json").exists(), "the live summary ends with the run"
        details = json.loads((pipeline / "metrics" / "details" / f"{variant}.json").read_text())
        assert details["images"] == 360 and details["best_epoch"] <= result["epochs_run"]
        assert (pipeline / "models" / variant / "model.keras").is_file()
        assert (pipeline / "plots" / variant / "curves.png").is_file()
        assert (pipeline / "plots" / variant / "confusion.png").is_file()
    card = json.loads((pipeline / "data/prepared/card.json").read_text())
    assert card["counts"]["test"] + card["counts"]["train"] + card["counts"]["val"] == 1797
    table = (pipeline / "plots/comparison.md").read_text()
    assert "tiny_a" in table and "tiny_b" in table


def test_repeat_stage_records_the_main_run_and_the_next_seed(pipeline):
    record = json.loads((pipeline / "metrics" / "repeats" / "tiny_a.json").read_text())

    assert record["seeds"] == [42, 43] and record["n"] == 2 and record["images"] == 360
    assert record["test_accuracies"][0] == metrics(pipeline, "tiny_a")["test_accuracy"]
    assert record["correct"][0] == json.loads((pipeline / "metrics/details/tiny_a.json").read_text())["correct"]
    assert record["correct"][1] != record["correct"][0], "another seed, another model"
    assert 0.5 < record["test_accuracies"][1] <= 1 and record["std"] > 0
    assert not (pipeline / "metrics" / "repeats" / "tiny_b.json").exists(), "tiny_b is a single run"
    report = (pipeline / "report" / "README.md").read_text()
    assert "single run" in report and "(2)" in report


def test_metrics_show_prints_a_row_per_variant(pipeline):
    rows = run(pipeline, "dvc", "metrics", "show").splitlines()
    assert [row.split()[0] for row in rows] == ["Path", "metrics/tiny_a.json", "metrics/tiny_b.json"]
    assert "-" not in rows[1].split(), "no dashes: every column is a test metric of every variant"


def test_significance_compares_the_two_variants_from_git_tracked_files(pipeline):
    output = run(pipeline, sys.executable, "-m", "stages.significance", "tiny_a", "tiny_b")
    assert "McNemar's exact test: difference" in output and "of 360 images" in output


def test_repro_again_does_nothing(pipeline):
    output = run(pipeline, "dvc", "repro")
    assert "Data and pipelines are up to date" in output


def test_experiment_retrains_only_the_changed_variant_and_compares(pipeline):
    run(pipeline, "git", "add", "-A")
    run(pipeline, "git", "commit", "-qm", "baseline results")
    before = metrics(pipeline, "tiny_b")
    output = run(pipeline, "dvc", "exp", "run", "-S", "variants.tiny_a.optimizer.learning_rate=0.01")
    assert "train@tiny_a" in output and "Running stage 'train@tiny_b'" not in output
    assert metrics(pipeline, "tiny_b") == before

    shown = json.loads(run(pipeline, "dvc", "exp", "show", "--json"))
    assert len(shown) >= 1
    diff = json.loads(run(pipeline, "dvc", "metrics", "diff", "--json"))
    changed = {path for path, values in diff.items() for value in values.values() if value.get("diff")}
    assert changed == {"metrics/tiny_a.json"}, diff
    params_diff = json.loads(run(pipeline, "dvc", "params", "diff", "--json"))
    assert params_diff["params.yaml"]["variants.tiny_a.optimizer.learning_rate"]["new"] == 0.01

    run(pipeline, "dvc", "plots", "diff", "HEAD", "-o", "plots_html")
    html = (pipeline / "plots_html/index.html").read_text()
    assert "Validation accuracy per epoch, every variant" in html and "tiny_b confusion matrix" in html
    assert ".png" not in html, "dvc plots diff draws charts only; the pictures stay in plots/<variant>/"


def test_experiments_table_has_a_variant_per_row_and_an_experiment_per_column(pipeline):
    lines = run(pipeline, sys.executable, "-m", "stages.experiments", "--only-changed").splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:2] == ["", "workspace"] and len(header) == 4  # + the baseline commit and the experiment
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["tiny_a"]


def test_plots_show_opens_with_one_series_per_variant_and_draws_no_pictures(pipeline):
    rendered = json.loads(run(pipeline, "dvc", "plots", "show", "--json"))["data"]

    assert list(rendered)[:4] == TOP_LEVEL_PLOTS
    for name in TOP_LEVEL_PLOTS:
        (chart,) = rendered[name]
        assert chart["type"] == "vega"
        values = chart["content"]["data"]["values"]
        assert {value["variant"] for value in values} == {"tiny_a", "tiny_b"}, name
        assert chart["content"]["encoding"]["color"]["field"] == "variant"
    epochs = [
        value["epoch"]
        for value in rendered["validation_accuracy"][0]["content"]["data"]["values"]
        if value["variant"] == "tiny_a"
    ]
    assert epochs == ["1", "2", "3"]
    assert all(chart["type"] == "vega" for charts in rendered.values() for chart in charts)
    assert len(rendered) == 4 + 2 * 2  # + each variant's confusion matrix and per-class F1


LIVE_COLUMNS = 3  # step, eval.loss, eval.accuracy of dvclive/_running/<variant>.json while it trains


def test_exp_show_has_at_most_12_metric_columns_per_variant_even_while_training(pipeline):
    header = run(pipeline, "dvc", "exp", "show", "--csv").splitlines()[0].split(",")
    for variant in ("tiny_a", "tiny_b"):
        columns = [name for name in header if name.startswith(f"metrics/{variant}.json:")]
        assert f"metrics/{variant}.json:dataset" in columns  # which prepared data they were computed on
        assert 9 <= len(columns) <= 12 - LIVE_COLUMNS, columns
    assert not any(name.startswith("dvclive/") for name in header), "no run is training"


def test_a_training_in_progress_is_a_metric_until_it_ends(pipeline):
    running = pipeline / "dvclive/_running/tiny_a.json"
    running.write_text(json.dumps({"eval": {"loss": 0.5, "accuracy": 0.8}, "step": 1}))
    try:
        shown = json.loads(run(pipeline, "dvc", "metrics", "show", "--json"))
        files = shown[""]["data"]
        assert files["dvclive/_running/tiny_a.json"]["data"] == {"eval": {"loss": 0.5, "accuracy": 0.8}, "step": 1}
        header = run(pipeline, "dvc", "exp", "show", "--csv").splitlines()[0].split(",")
        assert len([name for name in header if "eval." in name or name.endswith("step")]) == LIVE_COLUMNS
    finally:
        running.unlink()


def test_editing_a_description_retrains_and_reevaluates_nothing(pipeline):
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["descriptions"]["tiny_a"] = "three epochs, described anew"
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        status = json.loads(run(pipeline, "dvc", "status", "--json"))
        assert list(status) == ["report"], status  # the report shows descriptions; nothing else reads them
    finally:
        run(pipeline, "git", "checkout", "params.yaml")


def test_artifacts_get_fetches_what_predict_takes(pipeline, tmp_path):
    run(pipeline, "git", "add", "-A")
    run(pipeline, "git", "commit", "-qm", "results", "--allow-empty")
    run(pipeline, "gto", "register", "tiny_b")  # the model registry's version tag, tiny_b@v0.0.1
    run(pipeline, "dvc", "artifacts", "get", ".", "tiny_b", "-o", str(tmp_path / "tiny_b"))
    image = tmp_path / "digit.png"
    shutil.copy(pipeline / "plots" / "tiny_b" / "predictions.png", image)

    output = run(
        pipeline, sys.executable, "-m", "stages.predict", "--model", str(tmp_path / "tiny_b"), "--json", str(image)
    )

    (result,) = json.loads(output)
    assert len(result["predictions"]) == 3 and result["predictions"][0]["class"] in [str(d) for d in range(10)]


def test_queued_grid_runs_in_parallel_workers_and_lists_every_run(pipeline):
    """The study recipe from the README on a 2x2 grid: queue, run with 2 workers, compare."""
    run(
        pipeline,
        "dvc",
        "exp",
        "run",
        "--queue",
        "evaluate@tiny_a",
        "-S",
        "variants.tiny_a.optimizer.learning_rate=0.01,0.003",
        "-S",
        "variants.tiny_a.batch_size=16,32",
    )
    run(pipeline, "dvc", "queue", "start", "--jobs", "2")
    deadline = time.time() + 420
    while time.time() < deadline and re.search(r"Queued|Running", run(pipeline, "dvc", "queue", "status")):
        time.sleep(3)
    status = run(pipeline, "dvc", "queue", "status")
    assert status.count("Success") == 4, status

    runs = {}
    for baseline in json.loads(run(pipeline, "dvc", "exp", "show", "--json")):
        for experiment in baseline.get("experiments") or []:
            data = experiment["revs"][0]["data"]
            variant = data["params"]["params.yaml"]["data"]["variants"]["tiny_a"]
            accuracy = data["metrics"]["metrics/tiny_a.json"]["data"]["test_accuracy"]
            runs[(variant["optimizer"]["learning_rate"], variant["batch_size"])] = accuracy
    assert set(runs) >= {(0.01, 16), (0.01, 32), (0.003, 16), (0.003, 32)}
    assert all(0.3 < accuracy <= 1 for accuracy in runs.values())
