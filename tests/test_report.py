import html
import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.figure import Figure
from PIL import Image
from scipy import stats

import stages.report
from cnnlab.config import load_params
from cnnlab.data.prepared import dataset_id
from cnnlab.errors import DataError, UserError
from cnnlab.fileio import write_json
from cnnlab.layout import details_path, repeats_path
from cnnlab.per_image import details_record
from cnnlab.repeats import repeats_record
from cnnlab.report import MAX_IMAGE_SIDE, write_report
from tests.helpers import markdown_table

HOSTILE = '<script>alert("x")</script> | a & b *bold* [link](http://evil.example) `code`'
CARD = {
    "name": "toy <b>set</b>",
    "classes": ["cat", "dog", "frog"],
    "num_classes": 3,
    "shape": [32, 32, 3],
    "counts": {"train": 45000, "val": 5000, "test": 10000},
    "source": "../shared/datasets/cifar10-jpg.tar.gz",
    "normalization": "scale",
    "mean": [0, 0, 0],
    "std": [1, 1, 1],
}
LAYERS = [
    {"type": "conv", "filters": 8},
    {"type": "maxpool"},
    {"type": "flatten"},
    {"type": "dense", "units": 16},
    {"type": "dense", "units": "classes", "activation": "softmax"},
]
VARIANTS = {
    "small": {"layers": LAYERS, "optimizer": {"name": "adam", "learning_rate": 0.001}},
    "wide_resnet": {
        "family": "resnet",
        "options": {"depth": 2, "width": 8},
        "optimizer": {"name": "sgd", "learning_rate": 0.01},
        "batch_size": 64,
    },
    "pending": {"layers": LAYERS},
}
DESCRIPTIONS = {"small": "baseline", "wide_resnet": HOSTILE}
METRICS = {
    "small": {
        "test_accuracy": 0.7123,
        "test_loss": 0.8123456,
        "test_top5_accuracy": 1.0,
        "macro_f1": 0.7,
        "params": 12345,
        "train_seconds": 75.4,
        "epochs_run": 10,
        "best_epoch": 8,
        "best_val_accuracy": 0.70,
    },
    "wide_resnet": {
        "test_accuracy": 0.8456,
        "test_loss": 0.45,
        "test_top5_accuracy": 1.0,
        "macro_f1": 0.84,
        "params": 1234567,
        "train_seconds": 3725.0,
        "epochs_run": 30,
        "best_epoch": 27,
        "best_val_accuracy": 0.851,
    },
}
TRAINING = {
    "small": {
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "flops_per_image": 2.5e6,
        "images_per_second": 1234.56,
    },
    "wide_resnet": {
        "batch_size": 64,
        "optimizer": "sgd",
        "learning_rate": 0.01,
        "flops_per_image": 4.1e7,
        "images_per_second": 99.4,
    },
}
EXPECTED_ORDER = ["wide_resnet", "small", "pending"]


def write_png(path, size_inches, dpi):
    figure = Figure(figsize=size_inches)
    figure.subplots().plot([0, 1, 2], [0.3, 0.6, 0.7])
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)


def build_project(root, variants=VARIANTS, metrics_by_variant=METRICS, training=TRAINING, card=CARD, repeats=None):
    """params.yaml with three variants, results for two of them, in the pipeline's file layout."""
    root = Path(root)
    descriptions = {name: text for name, text in DESCRIPTIONS.items() if name in variants}
    params = {"data": {"dataset": "cifar10"}, "variants": variants, "descriptions": descriptions}
    (root / "params.yaml").write_text(yaml.safe_dump({**params, "repeats": {"runs": repeats or {}}}))
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "card.json").write_text(json.dumps(card))
    for variant, metrics in metrics_by_variant.items():
        (root / "metrics").mkdir(exist_ok=True)
        # as the evaluate stage writes them: computed on the prepared data of `card`
        metrics = {"dataset": dataset_id(card), **metrics}
        (root / "metrics" / f"{variant}.json").write_text(json.dumps(metrics))
        (root / "models" / variant).mkdir(parents=True)
        (root / "models" / variant / "training.json").write_text(json.dumps(training[variant]))
        write_png(root / "plots" / variant / "curves.png", (12, 4.5), 100)  # wider than MAX_IMAGE_SIDE
        write_png(root / "plots" / variant / "confusion.png", (3, 3), 50)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = build_project(tmp_path_factory.mktemp("project"))
    write_report(load_params(root / "params.yaml"), root)
    return root


@pytest.fixture(scope="module")
def markdown(project):
    return (project / "report" / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(project):
    return (project / "report" / "index.html").read_text(encoding="utf-8")


def table_by_variant(markdown):
    header, _, *rows = markdown_table(markdown)
    return {row[0]: dict(zip(header, row)) for row in rows}


class PageParser(HTMLParser):
    """Collects the attributes of every tag and the visible text."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_page(page):
    parser = PageParser()
    parser.feed(page)
    return parser


def test_rows_ordered_by_test_accuracy_with_unevaluated_last(markdown):
    _, _, *rows = markdown_table(markdown)
    assert [row[0] for row in rows] == EXPECTED_ORDER


def test_numbers_formatted_for_reading(markdown):
    table = table_by_variant(markdown)
    resnet, small = table["wide_resnet"], table["small"]
    assert resnet["test accuracy"] == "84.56%"
    assert resnet["best val accuracy"] == "85.10%"
    assert resnet["params"] == "1,234,567"
    assert resnet["train time"] == "1 h 02 min"
    assert resnet["images/s"] == "99"
    assert resnet["learning rate"] == "0.01"
    assert resnet["batch"] == "64"
    assert resnet["architecture"] == "resnet (depth=2, width=8)"
    assert small["test loss"] == "0.8123"
    assert small["train time"] == "1 min 15 s"
    assert small["images/s"] == "1,235"
    assert small["architecture"] == "layers (5 layers)"
    assert table["pending"]["test accuracy"] == "not evaluated"
    assert table["pending"]["params"] == "—"


def test_markdown_table_has_the_same_column_count_on_every_row(markdown):
    header, separator, *rows = markdown_table(markdown)
    assert len(rows) == len(VARIANTS)
    assert {len(row) for row in rows} == {len(header)} == {len(separator)}
    assert all(re.fullmatch(r"-{3,}:?", cell) for cell in separator)


def test_every_variant_appears_in_both_documents(markdown, page):
    visible_text = "".join(parse_page(page).text)
    for variant in VARIANTS:
        assert variant in markdown
        assert variant in visible_text


def test_images_copied_into_report_and_referenced_relatively(project, markdown, page):
    report = project / "report"
    markdown_images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    html_images = [attrs["src"] for tag, attrs in parse_page(page).tags if tag == "img"]
    expected = ["comparison.png"] + [
        f"{variant}/{name}" for variant in METRICS for name in ("curves.png", "confusion.png")
    ]
    assert sorted(markdown_images) == sorted(html_images) == sorted(expected)
    for path in markdown_images:
        with Image.open(report / path) as image:
            assert max(image.size) <= MAX_IMAGE_SIDE or path == "comparison.png"
    assert not (report / "pending").exists()


def test_hostile_text_is_escaped(page, markdown):
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "toy &lt;b&gt;set&lt;/b&gt;" in page
    assert "<script" not in markdown and "<b>" not in markdown
    assert "&lt;script&gt;" in markdown
    assert "\\| a &amp; b \\*bold\\* \\[link\\](http://evil.example) \\`code\\`" in markdown


def test_html_needs_no_network(page):
    tags = parse_page(page).tags
    links = [value for _, attrs in tags for name, value in attrs.items() if name in ("src", "href")]
    assert links and all(not re.match(r"[a-z]+:|//", link) for link in links)
    assert all(tag not in ("script", "link", "iframe") for tag, _ in tags)


def test_variant_without_plots_says_how_to_make_them(tmp_path):
    root = build_project(tmp_path)
    shutil.rmtree(root / "plots" / "small")
    write_report(load_params(root / "params.yaml"), root)
    assert "No plots yet: run \\`dvc repro evaluate@small\\`." in (root / "report" / "README.md").read_text()


def test_unreadable_plot_names_the_file_and_the_stage_to_rerun(tmp_path):
    root = build_project(tmp_path)
    (root / "plots" / "small" / "curves.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"plots/small/curves\.png: unreadable image .*dvc repro evaluate@small"):
        write_report(load_params(root / "params.yaml"), root)
    assert not (root / "report").exists()


def test_stage_replaces_the_whole_report_folder(tmp_path, monkeypatch, capsys):
    root = build_project(tmp_path)
    (root / "report").mkdir()
    (root / "report" / "stale.png").write_bytes(b"old")
    monkeypatch.chdir(root)
    stages.report.main([])
    assert "not evaluated: pending" in capsys.readouterr().out
    assert sorted(path.name for path in (root / "report").iterdir()) == [
        "README.md",
        "comparison.png",
        "index.html",
        "small",
        "wide_resnet",
    ]


def test_no_results_at_all_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    root = build_project(tmp_path)
    shutil.rmtree(root / "metrics")
    with pytest.raises(UserError, match="run `dvc repro`"):
        write_report(load_params(root / "params.yaml"), root)
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exit_info:
        stages.report.main([])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (root / "report").exists()


# --- the page in a real browser ---

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_SECONDS = 20
# Injected first in <head> of a test-only copy: records failed loads and script errors, and on
# load writes them with every image's natural width into the DOM, which --dump-dom prints.
CHECK_SCRIPT = """<script>
var problems = [];
window.addEventListener("error", function (event) {
  problems.push(event.target && event.target.src ? "failed to load " + event.target.src : String(event.message));
}, true);
window.addEventListener("load", function () {
  var images = Array.prototype.map.call(document.images, function (image) {
    return {src: image.getAttribute("src"), width: image.naturalWidth};
  });
  var result = document.createElement("pre");
  result.id = "browser-check";
  result.textContent = JSON.stringify({problems: problems, images: images});
  document.body.appendChild(result);
});
</script>"""


def run_headless(page_path, profile):
    """(dumped DOM, stderr) of Chromium loading `page_path`; killed with all its processes on timeout."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        page_path.as_uri(),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as browser:
        try:
            return browser.communicate(timeout=BROWSER_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.communicate()
            pytest.fail(f"chromium did not finish loading {page_path} within {BROWSER_SECONDS} s")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package `chromium`)")
def test_page_renders_in_a_headless_browser(project, page, tmp_path):
    checked_page = project / "report" / "browser_check.html"
    checked_page.write_text(page.replace("<head>", "<head>\n" + CHECK_SCRIPT, 1), encoding="utf-8")
    try:
        dom, log = run_headless(checked_page, tmp_path / "profile")
    finally:
        checked_page.unlink()

    found = re.search(r'<pre id="browser-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the page did not finish loading:\n{log[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    assert check["problems"] == []
    assert [line for line in log.splitlines() if ":CONSOLE" in line] == []
    assert len(check["images"]) == 1 + 2 * len(METRICS)
    assert all(image["width"] > 0 for image in check["images"]), check["images"]
    rendered_text = "".join(parse_page(dom.replace(found.group(0), "")).text)
    assert all(variant in rendered_text for variant in VARIANTS)


def test_the_dataset_line_names_where_the_data_came_from(markdown, page):
    expected = "45,000 train / 5,000 val / 10,000 test; read from ../shared/datasets/cifar10-jpg.tar.gz"
    assert expected in markdown and expected in page


SEEDS = {"seed001_exp1": VARIANTS["small"], "seed001_exp2": VARIANTS["small"], "seed002_conv": VARIANTS["small"]}
SEED_METRICS = {
    "seed001_exp1": {**METRICS["small"], "test_accuracy": 0.6500},  # reported 63.82 %: within 3 points
    "seed001_exp2": {**METRICS["small"], "test_accuracy": 0.6481},  # reported 69.81 %: explained
    "seed002_conv": {**METRICS["small"], "test_accuracy": 0.6000},  # reported 65 %: not yet explained
}


# seed001_exp1 and seed001_exp2 repeated over seeds (the main run first), seed002_conv a single run
SEED_REPEATS = {"seed001_exp1": [0.65, 0.63, 0.64, 0.66, 0.62], "seed001_exp2": [0.6481, 0.65, 0.655]}
TEST_IMAGES = 10_000


def correct_first(accuracy, images=TEST_IMAGES, offset=0):
    """Per-image correctness with the first `accuracy` share of the images right, counted from image
    `offset` on (wrapping round)."""
    return np.roll(np.arange(images) < round(accuracy * images), offset)


def write_per_image(root, repeats, metrics_by_variant=SEED_METRICS, offsets=None):
    """metrics/details/ of every evaluated variant and metrics/repeats/ of the repeated ones, each
    variant's right images counted from its offset on."""
    offsets = offsets or {}
    for variant, metrics in metrics_by_variant.items():
        correct = correct_first(metrics["test_accuracy"], offset=offsets.get(variant, 0))
        write_json(details_path(root, variant), details_record(correct, "sha256:same", best_epoch=8))
    for variant, accuracies in repeats.items():
        runs = [correct_first(accuracy, offset=offsets.get(variant, 0)) for accuracy in accuracies]
        write_json(
            repeats_path(root, variant), repeats_record(range(42, 42 + len(runs)), accuracies, runs, "sha256:same")
        )


def seed_report(root, dataset, repeats=None):
    """report/README.md of the three seed variants above, trained on `dataset`."""
    training = dict.fromkeys(SEED_METRICS, TRAINING["small"])
    build_project(
        root, SEEDS, SEED_METRICS, training, {**CARD, "name": dataset}, repeats=dict.fromkeys(repeats or {}, 5)
    )
    write_per_image(root, repeats or {})
    write_report(load_params(root / "params.yaml"), root)
    return (root / "report" / "README.md").read_text(encoding="utf-8")


def test_seed_variants_are_set_beside_what_their_experiments_reported(tmp_path, monkeypatch):
    monkeypatch.setattr("cnnlab.report.DIFFERENCE_REASONS", {"seed001_exp2": "dropout needs more than 10 epochs"})
    markdown = seed_report(tmp_path, "cifar10", SEED_REPEATS)

    header, _, *rows = markdown_table(markdown, index=1)
    assert header == [
        "variant",
        "reported",
        "ours",
        "difference",
        "our seeds: mean ± std (n)",
        "seed range",
        "reported inside our seed range?",
        "params",
        "epochs run",
        "train time",
        "why they differ",
    ]
    exp1 = ["64.00% ± 1.58 pt (5)", "62.00–66.00%", "yes"]
    exp2 = ["65.10% ± 0.36 pt (3)", "64.81–65.50%", "no, 4.3 pt above"]
    assert rows == [
        ["seed001_exp1", "63.82%", "65.00%", "+1.2 pt", *exp1, "12,345", "10", "1 min 15 s", ""],
        [
            "seed001_exp2",
            "69.81%",
            "64.81%",
            "-5.0 pt",
            *exp2,
            "12,345",
            "10",
            "1 min 15 s",
            "dropout needs more than 10 epochs",
        ],
        [
            "seed002_conv",
            "65% (train 78%)",
            "60.00%",
            "-5.0 pt",
            "single run",
            "",
            "single run",
            "12,345",
            "10",
            "1 min 15 s",
            "—",
        ],
    ]
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Reproduction of the original experiments" in page
    assert '<td class="prose">dropout needs more than 10 epochs</td>' in page


def noise_columns(markdown):
    header, _, *rows = markdown_table(markdown)
    names = ("variant", "test accuracy", "95 % interval (test split)", "seeds: mean ± std (n)", "seed range")
    columns = [header.index(name) for name in (*names, "told apart from the next?")]
    return [[row[i] for i in columns] for row in rows]


def test_every_variant_has_its_interval_spread_and_whether_it_is_told_apart_from_the_next(tmp_path):
    markdown = seed_report(tmp_path, "cifar10", SEED_REPEATS)

    table = noise_columns(markdown)
    # ranked by seed mean where there are seeds: seed001_exp2 (65.10 %) above seed001_exp1 (64.00 %),
    # though exp1's main run scored 65.00 % and exp2's 64.81 %
    assert [row[0] for row in table] == ["seed001_exp2", "seed001_exp1", "seed002_conv"]
    welch = stats.ttest_ind(SEED_REPEATS["seed001_exp2"], SEED_REPEATS["seed001_exp1"], equal_var=False).pvalue
    low, high = stats.binomtest(6481, TEST_IMAGES).proportion_ci(method="wilson")
    assert table[0] == [
        "seed001_exp2",
        "64.81%",
        f"{100 * low:.2f}–{100 * high:.2f}%",
        "65.10% ± 0.36 pt (3)",
        "64.81–65.50%",
        f"no (+1.10 pt, p = {welch:.2g}, Welch, 3 seeds against 5)",  # the seed spread decides where both have it
    ]
    # seed002_conv's single run (60.00 %) against seed001_exp1's 5 seeds: t = 4 / (s sqrt(1 + 1/5)), 4 df
    seeds = SEED_REPEATS["seed001_exp1"]
    t = (np.mean(seeds) - 0.60) / (np.std(seeds, ddof=1) * np.sqrt(1 + 1 / 5))
    assert table[1][3:] == [
        "64.00% ± 1.58 pt (5)",
        "62.00–66.00%",
        f"no (+4.00 pt, p = {2 * stats.t.sf(t, 4):.2g}, t-test, 5 seeds against a single run)",
    ]
    assert table[2][3:] == ["single run", "", "—"]  # the last has no next


def test_the_ranking_and_the_mark_never_point_different_ways(tmp_path):
    """`lucky`'s main run scored high among seeds that score low: ranked by main runs it stood above
    `steady`, whose seeds are significantly better, and was marked "yes"."""
    accuracies = {"lucky": 0.70, "steady": 0.69, "single_a": 0.66, "single_b": 0.64}
    metrics = {name: {**METRICS["small"], "test_accuracy": accuracy} for name, accuracy in accuracies.items()}
    repeats = {"lucky": [0.70, 0.66, 0.665, 0.67, 0.66], "steady": [0.69, 0.70, 0.705, 0.70, 0.695]}
    variants = dict.fromkeys(metrics, VARIANTS["small"])
    build_project(
        tmp_path, variants, metrics, dict.fromkeys(metrics, TRAINING["small"]), CARD, dict.fromkeys(repeats, 5)
    )
    # single_a gets images 500-7099 right, single_b images 0-6399: each gets right some the other gets wrong
    write_per_image(tmp_path, repeats, metrics, offsets={"single_a": 500})
    write_report(load_params(tmp_path / "params.yaml"), tmp_path)
    markdown = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")

    table = noise_columns(markdown)
    assert [row[0] for row in table] == ["steady", "lucky", "single_a", "single_b"]
    welch = stats.ttest_ind(repeats["steady"], repeats["lucky"], equal_var=False).pvalue
    assert welch < 0.05
    assert table[0][5] == f"yes, 2.70 pt higher (p = {welch:.2g}, Welch, 5 seeds against 5)"
    seeds = repeats["lucky"]
    t = (np.mean(seeds) - 0.66) / (np.std(seeds, ddof=1) * np.sqrt(1 + 1 / 5))
    assert table[1][5] == f"no (+1.10 pt, p = {2 * stats.t.sf(t, 4):.2g}, t-test, 5 seeds against a single run)"
    a, b = correct_first(0.66, offset=500), correct_first(0.64)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    assert (only_a, only_b) == (700, 500)
    assert table[2][5] == f"yes, 2.00 pt higher (p = {stats.binomtest(only_a, only_a + only_b).pvalue:.2g}, McNemar)"
    assert "Best: steady, test accuracy 69.80% (mean of 5 seeds)." in markdown


def test_the_report_says_how_it_ranks_and_what_the_marks_are_worth(tmp_path):
    markdown = seed_report(tmp_path, "digits", SEED_REPEATS)
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    ranking = "Ranked by each variant's best estimate of its test accuracy: the mean over its seeds where it was"
    caveat = (
        "Each mark is a test at the 5 % level of one neighbouring pair, so of these 2 pairs about 0.1 (one in 20) "
        'would be marked "yes" by chance even if no variant differed from the next; "no" means not shown to '
        "differ, not equal."
    )
    before, table, after = markdown.partition("\n| variant | test accuracy |")
    assert ranking in before and caveat in after.split("\n\n")[1]
    ranking, caveat = html.escape(ranking), html.escape(caveat)
    assert page.index(ranking) < page.index("<table>") < page.index(caveat)


def test_a_single_run_beside_seeds_without_spread_is_undetermined(tmp_path):
    repeats = {"seed001_exp1": [0.65, 0.65, 0.65], "seed001_exp2": [0.6481, 0.65, 0.655]}
    table = noise_columns(seed_report(tmp_path, "digits", repeats))

    assert [row[0] for row in table] == ["seed001_exp2", "seed001_exp1", "seed002_conv"]
    assert table[1][5] == "no: no spread among the seeds (t-test, 3 seeds against a single run)"


def test_no_reproduction_table_without_seed_variants(markdown, page):
    assert "Reproduction" not in markdown and "Reproduction" not in page


def test_no_reproduction_table_for_another_dataset(tmp_path):
    assert "Reproduction" not in seed_report(tmp_path, "digits")
