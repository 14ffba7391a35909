"""The comparison report a person reads to choose a model: report/index.html and report/README.md.

One table of every variant in params.yaml (best test accuracy first; variants without
metrics yet are listed as "not evaluated"), the seed variants' results beside what their
original experiments reported (cnnlab.reported), the accuracy vs parameters / training time
chart, and each evaluated variant's training curves and confusion matrix.

report/ is self-contained: images are copied in and referenced by relative paths, so the
Markdown renders on a git host (where the DVC-cached plots/ folder is absent) and
index.html opens from disk with no server, script or network access.
"""

import html
import re
from collections import namedtuple
from pathlib import Path
from urllib.parse import quote

from matplotlib.ticker import EngFormatter
from PIL import Image

from cnnlab.comparison import check_one_dataset, comparison_frame, variant_rows
from cnnlab.data.prepared import dataset_id, read_card
from cnnlab.errors import DataError, UserError
from cnnlab.fileio import atomic_path
from cnnlab.layout import EXPORT_FORMATS, REPORT_DIR, evaluate_command, export_command, plots_dir, prepared_dir
from cnnlab.plotting import plot_comparison, save_figure
from cnnlab.reported import DATASET, DIFFERENCE_REASONS, DIFFERENCE_TO_EXPLAIN, SEED_RESULTS
from cnnlab.significance import annotate, p_value
from cnnlab.statistics import MCNEMAR, PREDICTION, SIGNIFICANCE, WELCH, told_apart

CHART = "comparison.png"
VARIANT_IMAGES = {
    "curves.png": "training curves",
    "confusion.png": "confusion matrix",
    "per_class.png": "per-class precision and recall",
    "mistakes.png": "most confident mistakes, with Grad-CAM heatmaps of the predicted and the true class",
}
# Pixels: the pipeline's plots are up to 1400 wide (20-class confusion); smaller keeps the committed report light.
MAX_IMAGE_SIDE = 1000
MISSING = "—"
NOT_EVALUATED = "not evaluated"


def percent(value):
    return f"{value:.2%}"


def duration(seconds):
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def interval_text(interval):
    return f"{100 * interval.low:.2f}–{100 * interval.high:.2f}%"


def spread_text(spread):
    """Mean ± std (n) of a repeated variant's seeds; a single run says so."""
    return "single run" if spread.n == 1 else f"{spread.mean:.2%} ± {100 * spread.std:.2f} pt ({spread.n})"


def seed_range_text(spread):
    return "" if spread.n == 1 else f"{100 * spread.min:.2f}–{100 * spread.max:.2f}%"


TEST_NAMES = {MCNEMAR: "McNemar", WELCH: "Welch", PREDICTION: "t-test"}


def apart_text(comparison):
    """Whether a variant is told apart from the next one in the ranking, which way, and by which
    test: "yes, 1.10 pt higher (p = 0.0031, Welch, 5 seeds against 3)"."""
    test = TEST_NAMES[comparison.test] + ("" if comparison.test == MCNEMAR else f", {comparison.detail}")
    if comparison.undetermined:
        return f"no: {comparison.undetermined} ({test})"
    if not told_apart(comparison):
        return f"no ({100 * comparison.difference:+.2f} pt, {p_value(comparison.p)}, {test})"
    direction = "higher" if comparison.difference > 0 else "lower"
    return f"yes, {100 * abs(comparison.difference):.2f} pt {direction} ({p_value(comparison.p)}, {test})"


Column = namedtuple("Column", "key header format numeric")
# The scores first and the long architecture text last, so a narrow window shows what ranks them.
COLUMNS = (
    Column("variant", "variant", str, False),
    Column("test_accuracy", "test accuracy", percent, True),
    Column("interval", "95 % interval (test split)", interval_text, True),
    Column("spread", "seeds: mean ± std (n)", spread_text, True),
    Column("seed_range", "seed range", seed_range_text, True),
    Column("apart", "told apart from the next?", apart_text, False),
    Column("best_val_accuracy", "best val accuracy", percent, True),
    Column("test_loss", "test loss", "{:.4f}".format, True),
    Column("params", "params", "{:,}".format, True),
    Column("train_seconds", "train time", duration, True),
    Column("epochs_run", "epochs run", "{:d}".format, True),
    Column("images_per_second", "images/s", "{:,.0f}".format, True),
    Column("optimizer", "optimizer", str, False),
    Column("learning_rate", "learning rate", "{:g}".format, True),
    Column("batch_size", "batch", "{:d}".format, True),
    Column("architecture", "architecture", str, False),
)


def write_report(params, root="."):
    """Write report/ (replaced as a whole) for the variants of validated `params`; returns the rows."""
    rows = variant_rows(params["variants"], root, params["descriptions"])
    if not any(row["evaluated"] for row in rows):
        raise UserError("no variant has results yet (metrics/<variant>.json); run `dvc repro` first")
    rows = annotate(rows, root, params["repeats"]["runs"])
    card = read_card(prepared_dir(root))
    check_one_dataset(rows, dataset_id(card), f"{prepared_dir(root) / 'card.json'} (the report's data) is")
    with atomic_path(Path(root) / REPORT_DIR) as tmp:
        tmp.mkdir()
        chart = save_figure(plot_comparison(comparison_frame(rows)), tmp / CHART)
        save_small_png(chart, chart)
        images = {row["variant"]: copy_variant_images(root, row["variant"], tmp) for row in rows if row["evaluated"]}
        (tmp / "README.md").write_text(markdown_report(rows, card, images), encoding="utf-8")
        (tmp / "index.html").write_text(html_report(rows, card, images), encoding="utf-8")
    return rows


# --- the numbers ---


def table_cells(row):
    return [
        NOT_EVALUATED
        if column.key == "test_accuracy" and not row["evaluated"]
        else formatted(row.get("spread" if column.key == "seed_range" else column.key), column.format)
        for column in COLUMNS
    ]


def formatted(value, format_value):
    return MISSING if value is None else format_value(value)


# (header, HTML cell class): numbers align right, the prose column wraps.
REPRODUCTION_HEADERS = (
    ("variant", None),
    ("reported", "number"),
    ("ours", "number"),
    ("difference", "number"),
    ("our seeds: mean ± std (n)", "number"),
    ("seed range", "number"),
    ("reported inside our seed range?", None),
    ("params", "number"),
    ("epochs run", "number"),
    ("train time", "number"),
    ("why they differ", "prose"),
)
REPRODUCTION_TITLE = "Reproduction of the original experiments"
REPRODUCTION_INTRO = (
    "Reported: the test accuracy each seed experiment's write-up gives (those experiments validated "
    "on the test set). Ours: the test split, scored once, after training that selected on the "
    "validation split; our seeds: the same recipe trained at several seeds (repeats in params.yaml), "
    "whose range the reported figure may or may not fall in."
)


def reproduction_cells(rows, dataset):
    """One row of cells per evaluated variant that has a reported figure, in SEED_RESULTS order
    (none unless the run was on the dataset the originals used)."""
    if dataset != DATASET:
        return []
    evaluated = {row["variant"]: row for row in rows if row["evaluated"]}
    return [
        reproduction_row(evaluated[variant], reported)
        for variant, reported in SEED_RESULTS.items()
        if variant in evaluated
    ]


def reproduction_row(row, reported):
    difference = row["test_accuracy"] - reported.accuracy
    reason = DIFFERENCE_REASONS.get(row["variant"], MISSING) if abs(difference) > DIFFERENCE_TO_EXPLAIN else ""
    condition = f" ({reported.condition})" if reported.condition else ""
    spread = row.get("spread")
    return [
        row["variant"],
        f"{100 * reported.accuracy:g}%{condition}",
        percent(row["test_accuracy"]),
        f"{100 * difference:+.1f} pt",
        formatted(spread, spread_text),
        formatted(spread, seed_range_text),
        inside_seed_range(reported.accuracy, spread),
        formatted(row.get("params"), "{:,}".format),
        formatted(row.get("epochs_run"), "{:d}".format),
        formatted(row.get("train_seconds"), duration),
        reason,
    ]


def inside_seed_range(accuracy, spread):
    """Whether a reported accuracy lies within our runs' min-max (a single run has no range)."""
    if spread is None or spread.n == 1:
        return "single run"
    if spread.min <= accuracy <= spread.max:
        return "yes"
    side = "above" if accuracy > spread.max else "below"
    gap = accuracy - spread.max if accuracy > spread.max else spread.min - accuracy
    return f"no, {100 * gap:.1f} pt {side}"


EXPORT_TITLE = "Exported models"
EXPORT_INTRO = (
    "Each variant as the files a deployment runs (export@<variant>, Keras's model.export): LiteRT float, "
    "LiteRT with dynamic-range int8 weights, and ONNX. Latency: the median of batch-1 calls on this "
    "machine's CPU, after warm-up, in the runtime a deployment uses (ai-edge-litert, onnxruntime), and for "
    "Keras in TensorFlow given as many threads; test accuracy: scored by that runtime, the difference in "
    "points to the Keras model in float32, which the files are exported from (without test-time "
    "augmentation). The Keras columns are the model as trained: for one trained in mixed precision, a note "
    "gives its float32 accuracy."
)


def export_headers():
    """(header, HTML cell class) of the export table."""
    headers = [("variant", None), ("Keras test accuracy", "number"), ("Keras ms/image", "number")]
    for _, label in EXPORT_FORMATS.values():
        headers += [(f"{label} size", "number"), (f"{label} ms/image", "number"), (f"{label} test accuracy", "number")]
    return headers


def export_cells(rows):
    """(cell rows, notes): one row per exported variant, best first, and one line per format
    that was not exported (why), per variant trained in mixed precision (its float32 accuracy),
    and for the evaluated variants with no export record."""
    cell_rows, notes = [], []
    unexported = [row["variant"] for row in rows if row.get("evaluated") and row.get("keras_latency_ms") is None]
    for row in rows:
        if row.get("keras_latency_ms") is None:
            continue
        reference = row.get("keras_float32_test_accuracy", row.get("keras_test_accuracy", row["test_accuracy"]))
        if row.get("keras_dtype_policy", "float32") != "float32":
            notes.append(
                f"{row['variant']}: trained in {row['keras_dtype_policy']}; in float32, which the files are "
                f"exported from and their differences are against, the Keras model scores {reference:.2%}"
            )
        cells = [row["variant"], formatted(row.get("keras_test_accuracy"), percent), f"{row['keras_latency_ms']:.2f}"]
        for name, (_, label) in EXPORT_FORMATS.items():
            if f"{name}_skipped" in row:
                notes.append(f"{row['variant']}, {label}: {row[f'{name}_skipped']}")
            accuracy = row.get(f"{name}_test_accuracy")
            cells += [
                formatted(row.get(f"{name}_size_kb"), "{:,.1f} kB".format),
                formatted(row.get(f"{name}_latency_ms"), "{:.2f}".format),
                MISSING if accuracy is None else f"{accuracy:.2%} ({100 * (accuracy - reference):+.2f} pt)",
            ]
        cell_rows.append(cells)
    if cell_rows and unexported:
        notes.append(f"Not exported yet (run {export_command('VARIANT')}): {', '.join(unexported)}")
    return cell_rows, notes


def variant_details(row):
    """(label, text) facts shown under a variant's heading; unknown ones are left out."""
    flops = EngFormatter(unit="FLOPs", places=1)
    facts = (
        ("architecture", row["architecture"], str),
        ("best epoch", row.get("best_epoch"), lambda epoch: f"{epoch} of {row.get('epochs_run', MISSING)}"),
        ("top-5 test accuracy", row.get("test_top5_accuracy"), percent),
        ("macro F1", row.get("macro_f1"), "{:.4f}".format),
        ("compute per image", row.get("flops_per_image"), flops),
    )
    return [(label, format_value(value)) for label, value, format_value in facts if value is not None]


def dataset_summary(card):
    height, width, channels = card["shape"]
    counts = card["counts"]
    source = f"; read from {card['source']}" if card.get("source") else ""
    return (
        f"{card['name']}: {card['num_classes']} classes, {height}×{width}×{channels} images; "
        f"{counts['train']:,} train / {counts['val']:,} val / {counts['test']:,} test{source}"
    )


def best_summary(rows):
    best = rows[0]
    how = "one run" if best["spread"].n == 1 else f"mean of {best['spread'].n} seeds"
    return f"Best: {best['variant']}, test accuracy {percent(best['estimate'])} ({how})"


RANKING_NOTE = (
    "Ranked by each variant's best estimate of its test accuracy: the mean over its seeds where it was "
    "trained at 2 seeds or more (seeds column), else its one run's test accuracy. Test accuracy and its "
    "interval: the main run (train.seed). Told apart from the next: whether the variant differs from the "
    "next one down beyond noise, by Welch's t-test on the seeds where both were repeated, a t-test of the "
    "single run against the other's seeds where one was, else McNemar's exact test on the two runs' "
    "per-image correctness."
)


def multiple_comparisons_note(rows):
    """What the told-apart marks are worth together: one test per neighbouring pair."""
    pairs = sum(1 for row in rows if row.get("apart"))
    return (
        f"Each mark is a test at the {100 * SIGNIFICANCE:g} % level of one neighbouring pair, so of these "
        f'{pairs} pairs about {SIGNIFICANCE * pairs:.1f} (one in {1 / SIGNIFICANCE:.0f}) would be marked "yes" '
        'by chance even if no variant differed from the next; "no" means not shown to differ, not equal.'
    )


# --- the images ---


def copy_variant_images(root, variant, report_dir):
    """Copy the variant's curves and confusion PNGs into report/<variant>/; returns
    {relative path: caption} for those that exist (the evaluate stage may not have run yet).
    A picture the previous report has but plots/<variant>/ lacks (plots/ is DVC-cached, the
    report committed: a clone has the report's copy only) is kept, and its caption says so."""
    copied = {}
    for name, caption in VARIANT_IMAGES.items():
        source = plots_dir(root, variant) / name
        previous = Path(root) / REPORT_DIR / variant / name
        if not source.exists() and previous.exists():
            source, caption = previous, f"{caption} (kept from the previous report: no plots/{variant}/ here)"
        if source.exists():
            (report_dir / variant).mkdir(exist_ok=True)
            copy_plot(source, report_dir / variant / name, variant)
            copied[f"{variant}/{name}"] = caption
    return copied


def copy_plot(source, destination, variant):
    try:
        save_small_png(source, destination)
    except OSError as error:
        raise DataError(f"{source}: unreadable image ({error}); rerun `{evaluate_command(variant)}`") from None


def save_small_png(source, destination):
    """Re-save as a 256-colour PNG (about a third of the bytes for charts), at most MAX_IMAGE_SIDE."""
    with Image.open(source) as image:
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        small = image.convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    small.save(destination, format="PNG", optimize=True)


def plots_missing_note(variant):
    return f"No plots yet: run `{evaluate_command(variant)}`."


# --- Markdown ---

# An underscore inside a word never starts emphasis, so variant names stay readable in the raw file.
MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|#]|(?<!\w)_|_(?!\w))")


def markdown_text(text):
    """Text shown literally in Markdown: one line, no emphasis, links, table breaks or raw HTML."""
    one_line = " ".join(str(text).split())
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def markdown_table(headers, numeric, cell_rows):
    lines = [markdown_row(headers), markdown_row("---:" if number else "---" for number in numeric)]
    return lines + [markdown_row(markdown_text(cell) for cell in cells) for cells in cell_rows]


def markdown_reproduction(rows, dataset):
    cells = reproduction_cells(rows, dataset)
    if not cells:
        return []
    headers = [header for header, _ in REPRODUCTION_HEADERS]
    numeric = [kind == "number" for _, kind in REPRODUCTION_HEADERS]
    intro = [f"## {REPRODUCTION_TITLE}", "", markdown_text(REPRODUCTION_INTRO), ""]
    return intro + markdown_table(headers, numeric, cells) + [""]


def markdown_export(rows):
    cells, notes = export_cells(rows)
    if not cells:
        return []
    headers = export_headers()
    intro = [f"## {EXPORT_TITLE}", "", markdown_text(EXPORT_INTRO), ""]
    table = markdown_table([h for h, _ in headers], [kind == "number" for _, kind in headers], cells)
    return intro + table + [""] + [f"- {markdown_text(note)}" for note in notes] + ([""] if notes else [])


def markdown_row(cells):
    return "| " + " | ".join(cells) + " |"


def markdown_report(rows, card, images):
    lines = [
        "# Model comparison",
        "",
        f"Dataset {markdown_text(dataset_summary(card))}.",
        "",
        f"{markdown_text(best_summary(rows))}.",
        "",
        markdown_text(RANKING_NOTE),
        "",
        *markdown_table(
            [column.header for column in COLUMNS], [column.numeric for column in COLUMNS], map(table_cells, rows)
        ),
        "",
        markdown_text(multiple_comparisons_note(rows)),
        "",
        *markdown_reproduction(rows, card["name"]),
        *markdown_export(rows),
        f"![test accuracy vs parameters and training time]({quote(CHART)})",
        "",
    ]
    for row in rows:
        if row["evaluated"]:
            lines += markdown_variant(row, images[row["variant"]])
    return "\n".join(lines)


def markdown_variant(row, images):
    variant = row["variant"]
    lines = [f"## {markdown_text(variant)}", ""]
    if row["description"]:
        lines += [markdown_text(row["description"]), ""]
    lines += [f"- {label}: {markdown_text(value)}" for label, value in variant_details(row)] + [""]
    if not images:
        return lines + [markdown_text(plots_missing_note(variant)), ""]
    return lines + [
        " ".join(f"![{markdown_text(f'{caption} of {variant}')}]({quote(path)})" for path, caption in images.items()),
        "",
    ]


# --- HTML ---

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1320px; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 0.3rem; margin-top: 2.5rem; }
.summary { color: #59636e; margin: 0.2rem 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.5rem; text-align: left; }
td { white-space: nowrap; }
th { background: #f6f8fa; vertical-align: bottom; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.prose { white-space: normal; min-width: 24rem; }
tbody tr:nth-child(even) { background: #fafbfc; }
tr.not-evaluated { color: #8c959f; font-style: italic; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.15rem 1rem; }
dt { color: #59636e; }
dd { margin: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figcaption { color: #59636e; font-size: 0.85rem; }
img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
"""


def text(value):
    return html.escape(str(value))


def html_report(rows, card, images):
    sections = "\n".join(html_variant(row, images[row["variant"]]) for row in rows if row["evaluated"])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model comparison: {text(card["name"])}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Model comparison</h1>
<p class="summary">Dataset {text(dataset_summary(card))}</p>
<p><strong>{text(best_summary(rows))}</strong></p>
<p>{text(RANKING_NOTE)}</p>
<div class="table-wrap">
{html_table(rows)}
</div>
<p>{text(multiple_comparisons_note(rows))}</p>
{html_reproduction(rows, card["name"])}
{html_export(rows)}
<h2>Test accuracy vs parameters and training time</h2>
<img src="{text(quote(CHART))}" alt="test accuracy vs parameters and training time">
{sections}
</body>
</html>
"""


def html_table(rows):
    header = "".join(f"<th>{text(column.header)}</th>" for column in COLUMNS)
    body = "\n".join(html_table_row(row) for row in rows)
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def html_reproduction(rows, dataset):
    cell_rows = reproduction_cells(rows, dataset)
    if not cell_rows:
        return ""
    header = "".join(f"<th>{text(name)}</th>" for name, _ in REPRODUCTION_HEADERS)
    body = "\n".join(
        "<tr>" + "".join(html_cell(text(cell), kind) for cell, (_, kind) in zip(cells, REPRODUCTION_HEADERS)) + "</tr>"
        for cells in cell_rows
    )
    table = f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    heading = f"<h2>{text(REPRODUCTION_TITLE)}</h2>\n<p>{text(REPRODUCTION_INTRO)}</p>"
    return f'{heading}\n<div class="table-wrap">\n{table}\n</div>'


def html_export(rows):
    cell_rows, notes = export_cells(rows)
    if not cell_rows:
        return ""
    headers = export_headers()
    header = "".join(f"<th>{text(name)}</th>" for name, _ in headers)
    body = "\n".join(
        "<tr>" + "".join(html_cell(text(cell), kind) for cell, (_, kind) in zip(cells, headers)) + "</tr>"
        for cells in cell_rows
    )
    table = f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    listed = "".join(f"<li>{text(note)}</li>" for note in notes)
    notes_html = f"\n<ul>{listed}</ul>" if notes else ""
    heading = f"<h2>{text(EXPORT_TITLE)}</h2>\n<p>{text(EXPORT_INTRO)}</p>"
    return f'{heading}\n<div class="table-wrap">\n{table}\n</div>{notes_html}'


def html_cell(content, css_class):
    """A table cell of already escaped `content`."""
    return f'<td class="{css_class}">{content}</td>' if css_class else f"<td>{content}</td>"


def html_table_row(row):
    cells = []
    for column, cell in zip(COLUMNS, table_cells(row)):
        content = text(cell)
        if column.key == "variant" and row["evaluated"]:
            content = f'<a href="#{text(variant_anchor(row["variant"]))}">{content}</a>'
        cells.append(html_cell(content, "number" if column.numeric else None))
    row_class = "" if row["evaluated"] else ' class="not-evaluated"'
    return f"<tr{row_class}>{''.join(cells)}</tr>"


def variant_anchor(variant):
    return f"variant-{variant}"


def html_variant(row, images):
    variant = row["variant"]
    description = f"<p>{text(row['description'])}</p>" if row["description"] else ""
    details = "".join(f"<dt>{text(label)}</dt><dd>{text(value)}</dd>" for label, value in variant_details(row))
    figures = "".join(html_figure(path, caption, variant) for path, caption in images.items())
    body = f'<div class="figures">{figures}</div>' if images else f"<p>{text(plots_missing_note(variant))}</p>"
    return (
        f'<section id="{text(variant_anchor(variant))}">\n<h2>{text(variant)}</h2>\n{description}\n'
        f"<dl>{details}</dl>\n{body}\n</section>"
    )


def html_figure(path, caption, variant):
    """The image at its relative `path`, linked to itself for full size where the page scales it down."""
    source = text(quote(path))
    return (
        f'<figure><a href="{source}"><img src="{source}" alt="{text(f"{caption} of {variant}")}"></a>'
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )
