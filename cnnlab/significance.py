"""Whether two results differ beyond their noise: any two variants, or one variant in two
revisions or experiments, read from git-tracked files (cnnlab.revisions), so a fresh clone or a
CI job can answer with no DVC remote and no training.

A result is a variant's main run (metrics/<variant>.json, its per-image correctness in
metrics/details/<variant>.json) and, when it was repeated, its runs over several seeds
(metrics/repeats/<variant>.json). Two results are compared
- over seeds, by Welch's t-test on the per-seed test accuracies, when both have at least 2 runs:
  this is the comparison that decides, since a seed moves a model more than the test split does;
- otherwise on the same test images, by McNemar's exact test on the two main runs' per-image
  correctness (when both were scored on the same test split).
"""

import re
from collections import namedtuple

from cnnlab.errors import UserError
from cnnlab.layout import details_path, metrics_path, repeats_path
from cnnlab.per_image import record_correct
from cnnlab.revisions import WORKSPACE, read_json
from cnnlab.statistics import paired_comparison, seed_comparison, seed_spread, told_apart, wilson_interval

# label: how to name it ("fast", "fast@main"); accuracy: the main run's test accuracy; correct:
# its per-image correctness or None; test_split: the split's fingerprint; seeds: the per-seed
# accuracies of its repeats (the main run first) or None for a single run
Result = namedtuple("Result", "label accuracy correct test_split seeds")
SPEC = re.compile(r"^(?P<variant>[A-Za-z][A-Za-z0-9_]*)(@(?P<revision>.+))?$")


def parse_spec(spec):
    """`variant` (the workspace) or `variant@revision` (a git revision or a DVC experiment name)."""
    found = SPEC.match(spec)
    if not found:
        raise UserError(f"{spec}: expected VARIANT or VARIANT@REVISION (a commit, branch, tag or experiment name)")
    return found["variant"], found["revision"]


def load_result(variant, revision=WORKSPACE, root=".", label=None):
    """The variant's result in the workspace or at `revision`; a UserError if it has no metrics there."""
    where = "the workspace" if revision is WORKSPACE else revision
    metrics = read_json(metrics_path(".", variant).as_posix(), revision, root)
    if not metrics or "test_accuracy" not in metrics:
        raise UserError(f"{metrics_path('.', variant)}: not in {where}; evaluate the variant first (dvc repro)")
    details = read_json(details_path(".", variant).as_posix(), revision, root)
    correct = record_correct(details, details_path(".", variant)) if details else None
    test_split = details.get("test_split") if details else None
    repeats = read_json(repeats_path(".", variant).as_posix(), revision, root)
    seeds = repeats_of(repeats, metrics["test_accuracy"], test_split)
    return Result(label or variant, metrics["test_accuracy"], correct, test_split, seeds)


def repeats_of(record, accuracy, test_split):
    """The per-seed accuracies of a repeats record that belongs to this main run (its first run
    is the main run, on the same test split), else None: a record left from an older main run."""
    if not record or not record.get("test_accuracies"):
        return None
    first = record["test_accuracies"][0]
    if abs(first - accuracy) > 1e-9 or record.get("test_split") != test_split:
        return None
    return list(record["test_accuracies"])


def load_spec(spec, root="."):
    variant, revision = parse_spec(spec)
    return load_result(variant, revision, root, label=spec)


def paired(a, b):
    """McNemar's comparison of the main runs, or None when they were not scored on the same images."""
    if a.correct is None or b.correct is None or a.test_split != b.test_split or len(a.correct) != len(b.correct):
        return None
    return paired_comparison(a.correct, b.correct)


def over_seeds(a, b):
    """Welch's comparison of the seed distributions, or None unless both have 2 runs or more."""
    if not a.seeds or not b.seeds or len(a.seeds) < 2 or len(b.seeds) < 2:
        return None
    return seed_comparison(a.seeds, b.seeds)


def deciding_comparison(a, b):
    """The comparison that says whether a and b are told apart: over seeds where both have them,
    else on the same test images; None when neither is possible."""
    return over_seeds(a, b) or paired(a, b)


def interval_of(result):
    """The 95 % Wilson interval of the main run's test accuracy (None without per-image data)."""
    if result.correct is None:
        return None
    return wilson_interval(int(result.correct.sum()), len(result.correct))


def points(value):
    return f"{100 * value:+.2f} pt"


def p_value(p):
    return f"p = {p:.2g}"


def comparison_line(comparison):
    verdict = "told apart" if told_apart(comparison) else "not told apart"
    low, high = comparison.interval
    return (
        f"{comparison.test}: difference {points(comparison.difference)}, 95 % interval {points(low)} to "
        f"{points(high)}, {p_value(comparison.p)} ({comparison.detail}): {verdict} at the 5 % level"
    )


def result_line(result):
    interval = interval_of(result)
    text = f"{result.label}: test accuracy {result.accuracy:.2%}"
    if interval:
        text += f" (95 % interval {interval.low:.2%} to {interval.high:.2%}, {len(result.correct):,} test images)"
    if result.seeds and len(result.seeds) > 1:
        spread = seed_spread(result.seeds)
        text += f"; {spread.n} seeds: mean {spread.mean:.2%} ± {spread.std:.2%}, {spread.min:.2%} to {spread.max:.2%}"
    return text


def report_lines(a, b):
    """What `python -m stages.significance A B` prints."""
    lines = [result_line(a), result_line(b)]
    comparisons = [comparison for comparison in (paired(a, b), over_seeds(a, b)) if comparison]
    if not comparisons:
        lines.append(
            "no test possible: neither per-image correctness on the same test split nor 2 seeds each "
            "(evaluate both with this version, or compare variants of the same data)"
        )
    lines += [comparison_line(comparison) for comparison in comparisons]
    deciding = deciding_comparison(a, b)
    if deciding and len(comparisons) > 1:
        lines.append(f"deciding: {deciding.test} (seed spread where both variants have it)")
    return lines


def annotate(rows, root=".", repeated=()):
    """Add to each evaluated row of the report (best first) its noise: `interval` (95 % Wilson
    interval of the test accuracy), `spread` (of its seeds; n = 1 for a variant not in
    `repeated`) and `apart` (the deciding comparison with the next row, None for the last)."""
    evaluated = [row for row in rows if row["evaluated"]]
    results = []
    for row in evaluated:
        result = load_result(row["variant"], WORKSPACE, root)
        results.append(result if row["variant"] in repeated else result._replace(seeds=None))
    for row, result, following in zip(evaluated, results, [*results[1:], None]):
        row["interval"] = interval_of(result)
        row["spread"] = seed_spread(result.seeds or [result.accuracy])
        row["apart"] = deciding_comparison(result, following) if following else None
    return rows
