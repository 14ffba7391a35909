"""A pull request's metric changes as Markdown, with whether each change in test accuracy goes
beyond its noise (cnnlab.significance): `python -m stages.pr_summary --base main`, which the
GitHub Actions workflow .github/workflows/metrics-summary.yml writes to the job summary.

Everything is read from git (metrics/<variant>.json, metrics/details/, metrics/repeats/) at the
base revision and at the head (the workspace by default), so no DVC remote is needed.
"""

from numbers import Real

from cnnlab.errors import UserError
from cnnlab.layout import metrics_path, repeats_path
from cnnlab.revisions import WORKSPACE, json_files, read_json, resolve
from cnnlab.significance import deciding_comparison, load_result, p_value, points
from cnnlab.statistics import seed_spread, told_apart

MISSING = "—"
HEADERS = ("variant", "metric", "base", "head", "change", "beyond noise? (95 % interval of the change, test)")
SEEDS_ROW = "test_accuracy over seeds"


def is_number(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def shown(value):
    if value is None:
        return MISSING
    if is_number(value) and not isinstance(value, int):
        return f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def change(old, new):
    if not (is_number(old) and is_number(new)):
        return MISSING if old is None or new is None else "changed"
    difference = new - old
    return f"{difference:+,}" if isinstance(difference, int) else f"{difference:+.4g}"


def significance_cell(variant, base, head, root):
    """The deciding comparison of the variant's test accuracy, head against base, in one cell."""
    old = load_result(variant, base, root)
    new = load_result(variant, head, root)
    comparison = deciding_comparison(new, old)
    if comparison is None:
        return "unknown: no per-image correctness on the same test split in both revisions"
    test = comparison.test.replace(" exact test", "").replace("'s t-test", "")
    if comparison.undetermined:
        return f"no, undetermined: {comparison.undetermined} ({test}, {comparison.detail})"
    verdict = "**yes**" if told_apart(comparison) else "no, within noise"
    low, high = comparison.interval
    return f"{verdict} ({points(low)} to {points(high)}, {p_value(comparison.p)}, {test})"


def seeds_text(record):
    if not record or not record.get("test_accuracies"):
        return None
    spread = seed_spread(record["test_accuracies"])
    return f"{spread.mean:.4f} ± {spread.std:.4f} ({spread.n})" if spread.std is not None else f"{spread.mean:.4f} (1)"


def variant_rows(variant, base, head, root):
    old = read_json(metrics_path(".", variant).as_posix(), base, root) or {}
    new = read_json(metrics_path(".", variant).as_posix(), head, root) or {}
    if not old or not new:  # a variant added or removed: its test accuracy says enough
        cell = "new variant" if not old else "variant removed"
        return [[variant, "test_accuracy", shown(old.get("test_accuracy")), shown(new.get("test_accuracy")), "", cell]]
    keys = list(dict.fromkeys([*new, *old]))
    rows = []
    for key in keys:
        if old.get(key) == new.get(key):
            continue
        cell = significance_cell(variant, base, head, root) if key == "test_accuracy" else ""
        rows.append([variant, key, shown(old.get(key)), shown(new.get(key)), change(old.get(key), new.get(key)), cell])
    old_seeds = seeds_text(read_json(repeats_path(".", variant).as_posix(), base, root))
    new_seeds = seeds_text(read_json(repeats_path(".", variant).as_posix(), head, root))
    if old_seeds != new_seeds:
        rows.append([variant, SEEDS_ROW, old_seeds or MISSING, new_seeds or MISSING, "", ""])
    return rows


def summary_markdown(base, head=WORKSPACE, root="."):
    """The Markdown summary of every metric that changed from `base` to `head`."""
    base_commit = resolve(base, root)
    head_name = "the workspace" if head is WORKSPACE else f"`{head}` ({resolve(head, root)[:7]})"
    variants = sorted(set(json_files("metrics", base, root)) | set(json_files("metrics", head, root)))
    if not variants:
        raise UserError("metrics/: no metrics files in either revision; run `dvc repro` and commit its results")
    rows = [row for variant in variants for row in variant_rows(variant, base, head, root)]
    lines = [f"## Metrics: {head_name} against `{base}` ({base_commit[:7]})", ""]
    if not rows:
        return "\n".join(lines + [f"No metric of the {len(variants)} variants changed.", ""])
    lines += [
        "| " + " | ".join(HEADERS) + " |",
        "| --- | --- | ---: | ---: | ---: | --- |",
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
        "",
        "Beyond noise: Welch's t-test on the per-seed test accuracies where both revisions repeated the "
        "variant over seeds (`repeats:` in params.yaml), a t-test of the single run against the seeds where "
        "one did, else McNemar's exact test on the per-image correctness of the two runs on the same test "
        "images; at the 5 % level. Read from git-tracked files only (`python -m stages.pr_summary`).",
        "",
    ]
    return "\n".join(lines)
