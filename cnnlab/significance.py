"""Whether two results differ beyond their noise: any two variants, or one variant in two
revisions or experiments, read from git-tracked files (cnnlab.revisions), so a fresh clone or a
CI job can answer with no DVC remote and no training.

A result is a variant's main run (metrics/<variant>.json, its per-image correctness in
metrics/details/<variant>.json) and, when it was repeated, its runs over several seeds
(metrics/repeats/<variant>.json). Two results are compared
- over seeds, by Welch's t-test on the per-seed test accuracies, when both have at least 2 runs;
- where only one has, by a t-test of the other's single run against those seeds (could it be one
  more seed?). Either decides, since a seed moves a model more than the test split does;
- otherwise on the same test images, by McNemar's exact test on the two main runs' per-image
  correctness (when both were scored on the same test split).
A result's best estimate of its test accuracy is its seeds' mean where it has 2 or more, else its
one run's: the report ranks by it, and the deciding comparison measures exactly that difference,
so the ranking and the test never point different ways.
"""

import re
from collections import namedtuple

from cnnlab.errors import DataError, UserError
from cnnlab.layout import details_path, evaluate_command, metrics_path, repeats_path
from cnnlab.per_image import record_correct
from cnnlab.revisions import WORKSPACE, read_json
from cnnlab.statistics import (
    paired_comparison,
    seed_comparison,
    seed_spread,
    single_run_comparison,
    told_apart,
    wilson_interval,
)

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
    correct = checked_correct(details, metrics["test_accuracy"], variant, where) if details else None
    test_split = details.get("test_split") if details else None
    repeats = read_json(repeats_path(".", variant).as_posix(), revision, root)
    seeds = repeats_of(repeats, metrics["test_accuracy"], test_split)
    return Result(label or variant, metrics["test_accuracy"], correct, test_split, seeds)


def checked_correct(details, accuracy, variant, where):
    """The per-image correctness of a details record, checked to hold images and to agree with the
    metrics' test accuracy (a details file left from an earlier evaluation does not)."""
    details_file, metrics_file = details_path(".", variant), metrics_path(".", variant)
    correct = record_correct(details, details_file)
    rerun = f"rerun `{evaluate_command(variant)}`"
    if not len(correct):
        raise DataError(f"{details_file} in {where}: holds no test images; {rerun}")
    if abs(correct.mean() - accuracy) > 0.5 / len(correct):
        raise DataError(
            f"{details_file} in {where}: {correct.mean():.2%} of its {len(correct):,} images right, but "
            f"{metrics_file} says test accuracy {accuracy:.2%}: one of them is left from an earlier "
            f"evaluation; {rerun} to write both"
        )
    return correct


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


def repeated(result):
    return bool(result.seeds) and len(result.seeds) >= 2


def estimate(result):
    """The best estimate of a result's test accuracy: its seeds' mean (2 or more), else its one run's."""
    return seed_spread(result.seeds).mean if repeated(result) else result.accuracy


def over_seeds(a, b):
    """The comparison that uses the seed spread: Welch's where both have 2 runs or more, a single
    run against the other's seeds where one has, None where neither has."""
    if repeated(a) and repeated(b):
        return seed_comparison(a.seeds, b.seeds)
    if repeated(b):
        return single_run_comparison(a.accuracy, b.seeds, single_first=True)
    if repeated(a):
        return single_run_comparison(b.accuracy, a.seeds, single_first=False)
    return None


def deciding_comparison(a, b):
    """The comparison that says whether a and b are told apart: over seeds where either has them,
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
    if comparison.undetermined:
        noise = f"no interval and no p-value: {comparison.undetermined}"
    else:
        low, high = comparison.interval
        noise = f"95 % interval {points(low)} to {points(high)}, {p_value(comparison.p)}"
    return (
        f"{comparison.test}: difference {points(comparison.difference)}, {noise} ({comparison.detail}): "
        f"{verdict} at the 5 % level"
    )


def result_line(result):
    interval = interval_of(result)
    text = f"{result.label}: test accuracy {result.accuracy:.2%}"
    if interval:
        text += f" (95 % interval {interval.low:.2%} to {interval.high:.2%}, {len(result.correct):,} test images)"
    if repeated(result):
        spread = seed_spread(result.seeds)
        text += f"; {spread.n} seeds: mean {spread.mean:.2%} ± {100 * spread.std:.2f} pt, "
        text += f"{spread.min:.2%} to {spread.max:.2%}"
    return text


def report_lines(a, b):
    """What `python -m stages.significance A B` prints."""
    lines = [result_line(a), result_line(b)]
    comparisons = [comparison for comparison in (paired(a, b), over_seeds(a, b)) if comparison]
    if not comparisons:
        lines.append(
            "no test possible: neither per-image correctness on the same test split nor 2 seeds on either "
            "side (evaluate both with this version, or compare variants of the same data)"
        )
    lines += [comparison_line(comparison) for comparison in comparisons]
    deciding = deciding_comparison(a, b)
    if deciding and len(comparisons) > 1:
        lines.append(f"deciding: {deciding.test} (the seed spread, where there is one)")
    return lines


def annotate(rows, root=".", repeated_variants=()):
    """The report's rows ranked by their best estimate (evaluated ones first, best first; ties
    keep the rows' order), each evaluated one with its noise: `estimate`, `interval` (95 % Wilson
    interval of the test accuracy), `spread` (of its seeds; n = 1 for a variant not in
    `repeated_variants`) and `apart` (the deciding comparison with the next row, None for the last)."""
    evaluated = [row for row in rows if row["evaluated"]]
    results = {}
    for row in evaluated:
        result = load_result(row["variant"], WORKSPACE, root)
        results[row["variant"]] = result if row["variant"] in repeated_variants else result._replace(seeds=None)
    evaluated.sort(key=lambda row: estimate(results[row["variant"]]), reverse=True)
    ranked = [results[row["variant"]] for row in evaluated]
    for row, result, following in zip(evaluated, ranked, [*ranked[1:], None]):
        row["estimate"] = estimate(result)
        row["interval"] = interval_of(result)
        row["spread"] = seed_spread(result.seeds or [result.accuracy])
        row["apart"] = deciding_comparison(result, following) if following else None
    return evaluated + [row for row in rows if not row["evaluated"]]
