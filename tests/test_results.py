"""The committed full-length results: what a fresh clone shows before any training.

Read from the last commit (tests.helpers.committed), so runs a user makes afterwards in the
workspace do not change what these check.
"""

import json
import re
import statistics

import pytest
import yaml

from cnnlab.layout import EXPORT_FORMATS, details_path, export_metrics_path, metrics_path, repeats_path
from cnnlab.reported import DIFFERENCE_REASONS, DIFFERENCE_TO_EXPLAIN, SEED_RESULTS
from tests.helpers import committed, markdown_table

PARAMS = yaml.safe_load(committed("params.yaml"))
VARIANTS = list(PARAMS["variants"])


def committed_json(path):
    """The committed JSON file at `path` (a cnnlab.layout path)."""
    return json.loads(committed(path.as_posix()))


def committed_metrics(variant):
    return committed_json(metrics_path(".", variant))


def section(markdown, heading):
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(rf"^#{{1,{len(level)}}} ", markdown[start:], re.MULTILINE)
    return markdown[start : start + following.start()] if following else markdown[start:]


def table_lines(text):
    return [line for line in text.splitlines() if line.startswith("|")]


def test_every_variant_has_committed_test_metrics():
    for variant in VARIANTS:
        metrics = committed_metrics(variant)
        assert 0.1 < metrics["test_accuracy"] <= 1, variant
        assert metrics["epochs_run"] >= 1 and metrics["params"] > 0, variant


def test_the_committed_report_shows_every_variant_and_its_data_source():
    page = committed("report/index.html")
    assert all(f'id="variant-{variant}"' in page for variant in VARIANTS)
    assert "read from ../shared/datasets/cifar10-jpg.tar.gz" in page


def test_every_difference_over_three_points_is_explained():
    assert set(DIFFERENCE_REASONS) <= set(SEED_RESULTS)
    for variant, reported in SEED_RESULTS.items():
        difference = committed_metrics(variant)["test_accuracy"] - reported.accuracy
        if abs(difference) > DIFFERENCE_TO_EXPLAIN:
            assert DIFFERENCE_REASONS.get(variant), f"{variant}: {100 * difference:+.1f} pt needs a reason"


def test_readme_results_hold_the_committed_reproduction_table():
    report = section(committed("report/README.md"), "## Reproduction of the original experiments")
    readme = section(committed("README.md"), "## Results")
    assert table_lines(report) and "\n".join(table_lines(report)) in "\n".join(table_lines(readme))
    assert "docs/seed001_grid.md" in readme
    assert "docs/seed004_optimizers.md" in readme


def test_the_grid_table_has_all_27_runs():
    _, _, *rows = markdown_table(committed("docs/seed001_grid.md"))
    cells = [cell for row in rows for cell in row[1:]]
    assert len(cells) == 27 and not any("not run" in cell for cell in cells)


def test_the_optimizer_study_has_all_20_cells_and_its_adam_cells_are_the_committed_runs():
    _, _, *rows = markdown_table(committed("docs/seed004_optimizers.md"))
    cells = {row[0]: row[1:5] for row in rows}
    ours = [cell.split(" [")[0] for row in cells.values() for cell in row]  # theirs follow in [ ]
    assert len(ours) == 20 and not any("not run" in cell for cell in ours)
    for row, variant in [
        ("AlexNet", "alexnet"),
        ("VGG16, hand-built", "vgg16"),
        ("GoogLeNet (auxiliary heads)", "googlenet"),
        ("ResNet", "resnet"),
    ]:
        metrics = committed_metrics(variant)
        figures = f"**{100 * metrics['best_val_accuracy']:.2f} %** ({100 * metrics['test_accuracy']:.2f} %)"
        assert cells[row][0].startswith(figures), row


def test_repeated_variants_carry_their_committed_seed_spread():
    for variant, runs in PARAMS["repeats"]["runs"].items():
        record = committed_json(repeats_path(".", variant))
        accuracies = record["test_accuracies"]
        assert record["n"] == len(accuracies) == runs, variant
        assert record["seeds"] == [PARAMS["train"]["seed"] + offset for offset in range(runs)], variant
        assert accuracies[0] == committed_metrics(variant)["test_accuracy"], f"{variant}: the main run comes first"
        assert record["mean"] == pytest.approx(statistics.mean(accuracies)), variant
        assert record["std"] == pytest.approx(statistics.stdev(accuracies)), variant
        assert (record["min"], record["max"]) == (min(accuracies), max(accuracies)), variant


def test_every_variant_has_its_per_image_correctness():
    for variant in VARIANTS:
        details = committed_json(details_path(".", variant))
        correct = "".join(details["correct"])
        assert details["images"] == len(correct) == 10_000, variant
        assert correct.count("1") / 10_000 == committed_metrics(variant)["test_accuracy"], variant


def test_every_variant_is_exported_to_every_format_and_scores_as_its_evaluated_model():
    for variant in VARIANTS:
        exported = committed_json(export_metrics_path(".", variant))
        assert exported["dataset"] == committed_metrics(variant)["dataset"], variant
        assert exported["test_images"] == 10_000, variant
        if not PARAMS["variants"][variant].get("tta"):  # export rows are measured without test-time augmentation
            assert exported["keras"]["test_accuracy"] == committed_metrics(variant)["test_accuracy"], variant
        # the files are exported from the float32 model: a float file scores as it does, within 0.1 points
        reference = exported.get("keras_float32", exported["keras"])["test_accuracy"]
        for form in EXPORT_FORMATS:
            figures = exported[form]
            assert "skipped" not in figures, (variant, form, figures.get("skipped"))
            assert figures["size_bytes"] > 0 and figures["latency_ms"] > 0, (variant, form)
            assert 0.1 < figures["test_accuracy"] <= 1, (variant, form)
        for form in ("tflite", "onnx"):
            assert abs(exported[form]["test_accuracy"] - reference) <= 0.001, (variant, form)


def test_readme_results_hold_the_committed_variant_table():
    report = committed("report/README.md")
    variant_table = report[report.index("| variant |") : report.index("\n\n", report.index("| variant |"))]
    readme = section(committed("README.md"), "## Results")
    assert "\n".join(table_lines(variant_table)) in "\n".join(table_lines(readme))
