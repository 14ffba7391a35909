"""How far a test accuracy can be trusted, and whether two of them differ beyond their noise.

Three kinds of noise sit under a test accuracy: the sampling of the test images (an interval
from the per-image correctness), a rerun (none in float32 with op determinism), and the seed
(several runs). The functions here take plain numbers and boolean arrays; scipy does the
distributions. No TensorFlow.

- `wilson_interval`: the 95 % Wilson score interval of one accuracy (test-split sampling).
- `paired_comparison`: two models scored on the same test images: the difference in accuracy,
  its 95 % interval (Agresti-Min adjusted Wald interval of a paired difference) and McNemar's
  exact p-value (a two-sided binomial test on the images exactly one of them got right).
- `seed_spread` and `seed_comparison`: the per-seed accuracies of repeated runs: mean, standard
  deviation, range; Welch's t-test of two variants' seed distributions.
- `single_run_comparison`: a variant run once against another's seeds: whether the single run lies
  where one more seed of the repeated variant could land (the t statistic of a prediction interval).

A comparison with no spread to measure against (every seed scored the same) has no p-value: it is
undetermined, never told apart.
"""

import math
import warnings
from collections import namedtuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # a difference with p below this is told apart from noise

Interval = namedtuple("Interval", "low high")
MCNEMAR = "McNemar's exact test"
WELCH = "Welch's t-test"
PREDICTION = "prediction-interval t-test"
NO_SPREAD = "no spread among the seeds"

# difference: a - b in accuracy (0-1); interval: its 95 % interval; p: two-sided p-value;
# test: the test's name; detail: what it counted, in words; undetermined: why there is no
# interval and no p-value (both None then), None for a comparison that has them
Comparison = namedtuple("Comparison", "difference interval p test detail undetermined", defaults=(None,))
Spread = namedtuple("Spread", "mean std min max n")


def wilson_interval(correct, images, confidence=CONFIDENCE):
    """The Wilson score interval of `correct` right out of `images` (no continuity correction)."""
    if images <= 0:
        raise ValueError("an interval needs at least one image")
    low, high = stats.binomtest(int(correct), int(images)).proportion_ci(confidence, method="wilson")
    return Interval(float(low), float(high))


def paired_comparison(correct_a, correct_b, confidence=CONFIDENCE):
    """Model a against model b on the same test images, from their per-image correctness."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if correct_a.shape != correct_b.shape or correct_a.ndim != 1 or not len(correct_a):
        raise ValueError(f"paired test: both need the same test images, got {correct_a.shape} and {correct_b.shape}")
    images = len(correct_a)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant = only_a + only_b
    p = stats.binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    detail = f"of {images:,} images, {only_a:,} right only by the first, {only_b:,} only by the second"
    return Comparison(
        (only_a - only_b) / images,
        paired_difference_interval(only_a, only_b, images, confidence),
        float(p),
        MCNEMAR,
        detail,
    )


def paired_difference_interval(only_a, only_b, images, confidence=CONFIDENCE):
    """Agresti and Min's (2005) interval of a paired difference of proportions: the Wald interval
    after adding 1/2 to each cell of the 2x2 table, which keeps it sensible when few images
    differ (the plain Wald interval collapses to a point when none do)."""
    z = stats.norm.ppf(0.5 + confidence / 2)
    b, c, n = only_a + 0.5, only_b + 0.5, images + 2
    centre = (b - c) / n
    half = z * math.sqrt(max((b + c) - (b - c) ** 2 / n, 0.0)) / n
    return Interval(max(centre - half, -1.0), min(centre + half, 1.0))


def seed_spread(accuracies):
    """Mean, sample standard deviation (None for a single run), min, max and n of per-seed accuracies."""
    values = np.asarray(accuracies, float)
    if not len(values):
        raise ValueError("a spread needs at least one run")
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return Spread(float(values.mean()), std, float(values.min()), float(values.max()), len(values))


def no_spread(accuracies):
    """Every seed scored the same (tested exactly: the variance of equal floats can come out 1e-32)."""
    return np.ptp(accuracies) == 0


def seed_comparison(accuracies_a, accuracies_b, confidence=CONFIDENCE):
    """Welch's t-test of two variants' per-seed accuracies (at least 2 seeds each): the difference
    of the means, its 95 % interval and the two-sided p-value."""
    a, b = np.asarray(accuracies_a, float), np.asarray(accuracies_b, float)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's t-test needs at least 2 seeds per variant, got {len(a)} and {len(b)}")
    difference = float(a.mean() - b.mean())
    detail = f"{len(a)} seeds against {len(b)}"
    if no_spread(a) and no_spread(b):  # the t statistic is undefined
        return Comparison(difference, None, None, WELCH, detail, NO_SPREAD)
    with warnings.catch_warnings():  # scipy's warning on a side whose seeds all scored the same
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=False)
    low, high = result.confidence_interval(confidence)
    return Comparison(difference, Interval(float(low), float(high)), float(result.pvalue), WELCH, detail)


def single_run_comparison(single, accuracies, single_first=True, confidence=CONFIDENCE):
    """A variant trained once (test accuracy `single`) against another's per-seed accuracies (at
    least 2): could the single run be one more seed of the repeated variant? With the seeds'
    mean m, sample standard deviation s and count n, t = (m - x) / (s sqrt(1 + 1/n)) on n - 1
    degrees of freedom (the prediction interval of one new seed), two-sided; the single run is
    assumed to vary from seed to seed as much as the repeated variant does. The difference is
    single - mean (`single_first`) or mean - single, with its 95 % interval."""
    seeds = np.asarray(accuracies, float)
    if len(seeds) < 2:
        raise ValueError(f"a single run is tested against at least 2 seeds, got {len(seeds)}")
    n, sign = len(seeds), 1 if single_first else -1
    difference = sign * float(single - seeds.mean())
    detail = f"single run against {n} seeds" if single_first else f"{n} seeds against a single run"
    if no_spread(seeds):
        return Comparison(difference, None, None, PREDICTION, detail, NO_SPREAD)
    scale = float(np.std(seeds, ddof=1)) * math.sqrt(1 + 1 / n)
    p = 2 * stats.t.sf(abs(difference) / scale, n - 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * scale
    return Comparison(difference, Interval(difference - half, difference + half), float(p), PREDICTION, detail)


def told_apart(comparison, level=SIGNIFICANCE):
    """Whether the difference goes beyond its noise; an undetermined comparison never does."""
    return comparison.p is not None and comparison.p < level
