"""The committed full-length results: what a fresh clone shows before any training.

Read from the last commit (tests.helpers.committed), so runs a user makes afterwards in the
workspace do not change what these check.
"""

import json
import re

import yaml

from cnnlab.layout import metrics_path
from cnnlab.reported import DIFFERENCE_REASONS, DIFFERENCE_TO_EXPLAIN, SEED_RESULTS
from tests.helpers import committed, markdown_table

VARIANTS = list(yaml.safe_load(committed("params.yaml"))["variants"])


def committed_metrics(variant):
    return json.loads(committed(metrics_path(".", variant).as_posix()))


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


def test_the_grid_table_has_all_27_runs():
    _, _, *rows = markdown_table(committed("docs/seed001_grid.md"))
    cells = [cell for row in rows for cell in row[1:]]
    assert len(cells) == 27 and not any("not run" in cell for cell in cells)
