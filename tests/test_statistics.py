"""The statistics behind every interval and every "told apart" mark, checked against independent
computations: published Wilson intervals, the exact binomial sum, Welch's formula by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from cnnlab.per_image import decode_correct, encode_correct, split_fingerprint
from cnnlab.statistics import (
    paired_comparison,
    paired_difference_interval,
    seed_comparison,
    seed_spread,
    single_run_comparison,
    told_apart,
    wilson_interval,
)

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Statistics in
# Medicine 17: 857-872, table I, method 3 (Wilson score interval without continuity correction).
NEWCOMBE_WILSON = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize("correct, images, low, high", NEWCOMBE_WILSON)
def test_wilson_interval_matches_newcombes_published_values(correct, images, low, high):
    interval = wilson_interval(correct, images)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


def test_wilson_interval_of_all_right_mirrors_all_wrong():
    none, every = wilson_interval(0, 20), wilson_interval(20, 20)
    assert every.high == pytest.approx(1.0) and every.low == pytest.approx(1 - none.high)


def test_wilson_interval_is_about_09_points_at_70_percent_of_10000():
    interval = wilson_interval(7000, 10000)
    assert interval.high - interval.low == pytest.approx(2 * 0.009, abs=0.0005)


def exact_mcnemar(only_a, only_b):
    """The two-sided exact McNemar p-value summed by hand: twice the smaller binomial tail, at most 1."""
    discordant = only_a + only_b
    tail = sum(math.comb(discordant, k) for k in range(min(only_a, only_b) + 1)) / 2**discordant
    return min(1.0, 2 * tail)


def models(only_a, only_b, both=0, neither=0):
    """Per-image correctness of two models with the given counts of each kind of image."""
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return np.array(a), np.array(b)


@pytest.mark.parametrize("only_a, only_b", [(12, 3), (40, 55), (7, 7), (1, 0), (250, 190)])
def test_mcnemar_p_value_is_the_exact_binomial_sum(only_a, only_b):
    a, b = models(only_a, only_b, both=500, neither=200)
    comparison = paired_comparison(a, b)

    assert comparison.p == pytest.approx(exact_mcnemar(only_a, only_b), rel=1e-9)
    assert comparison.p == pytest.approx(stats.binomtest(only_a, only_a + only_b).pvalue, rel=1e-9)
    assert comparison.difference == pytest.approx((only_a - only_b) / len(a))
    assert comparison.interval.low < comparison.difference < comparison.interval.high


def test_identical_models_are_not_told_apart():
    correct = np.array([True, False, True, True] * 250)
    comparison = paired_comparison(correct, correct.copy())

    assert comparison.difference == 0 and comparison.p == 1.0 and not told_apart(comparison)
    assert comparison.interval.low == pytest.approx(-comparison.interval.high)
    assert comparison.interval.high == pytest.approx(1.96 / (1000 + 2), rel=1e-3)  # Agresti-Min: 1/2 per cell


def test_all_right_against_all_wrong():
    a, b = models(30, 0)
    comparison = paired_comparison(a, b)

    assert comparison.difference == 1.0 and comparison.p == pytest.approx(2 * 0.5**30)
    assert told_apart(comparison) and comparison.interval.high == 1.0 and comparison.interval.low > 0.8


def test_paired_interval_is_agresti_and_mins_adjusted_wald():
    # 2x2 table (both right 60, a only 15, b only 5, neither 20): by hand, 1/2 added to each cell
    b, c, n = 15.5, 5.5, 102
    centre, se = (b - c) / n, math.sqrt(b + c - (b - c) ** 2 / n) / n
    interval = paired_difference_interval(15, 5, 100)
    assert interval.low == pytest.approx(centre - 1.959964 * se, rel=1e-6)
    assert interval.high == pytest.approx(centre + 1.959964 * se, rel=1e-6)


def test_paired_comparison_needs_the_same_test_images():
    with pytest.raises(ValueError, match="same test images"):
        paired_comparison([True, False], [True, False, True])


def test_seed_spread_of_several_runs_and_of_a_single_one():
    spread = seed_spread([0.70, 0.72, 0.71, 0.69, 0.73])
    assert (spread.mean, spread.min, spread.max, spread.n) == (pytest.approx(0.71), 0.69, 0.73, 5)
    assert spread.std == pytest.approx(math.sqrt(0.001 / 4))  # sample standard deviation
    single = seed_spread([0.7])
    assert (single.mean, single.std, single.min, single.max, single.n) == (0.7, None, 0.7, 0.7, 1)


def test_welch_test_matches_the_formula_by_hand():
    a, b = [0.70, 0.72, 0.71, 0.69, 0.73], [0.68, 0.69, 0.70, 0.66]
    va, vb, na, nb = np.var(a, ddof=1), np.var(b, ddof=1), len(a), len(b)
    se = math.sqrt(va / na + vb / nb)
    df = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    t = (np.mean(a) - np.mean(b)) / se

    comparison = seed_comparison(a, b)

    assert comparison.p == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    half = stats.t.ppf(0.975, df) * se
    assert comparison.interval.low == pytest.approx(np.mean(a) - np.mean(b) - half, rel=1e-9)
    assert comparison.interval.high == pytest.approx(np.mean(a) - np.mean(b) + half, rel=1e-9)


def test_welch_test_needs_two_seeds_each_and_without_spread_is_undetermined():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_comparison([0.7], [0.6, 0.65])
    same = seed_comparison([0.7, 0.7, 0.7], [0.7, 0.7])  # np.var of the three is 1.2e-32, not 0
    assert same.difference == pytest.approx(0) and same.p is None and not told_apart(same)
    # no spread to measure the gap against: neither p = 0 (told apart) nor any other p-value
    apart = seed_comparison([0.8, 0.8], [0.7, 0.7])
    assert apart.difference == pytest.approx(0.1) and (apart.p, apart.interval) == (None, None)
    assert apart.undetermined == "no spread among the seeds" and not told_apart(apart)
    # one side without spread: Welch's t is defined, its standard error and degrees of freedom the other side's
    one_sided = seed_comparison([0.8, 0.8], [0.70, 0.72])
    standard_error = np.std([0.70, 0.72], ddof=1) / math.sqrt(2)
    assert one_sided.p == pytest.approx(2 * stats.t.sf(0.09 / standard_error, df=1), rel=1e-6)


def prediction_t_test(single, seeds):
    """Independently: the two-sided p-value of `single` as one more draw from the seeds' normal,
    from scipy's t distribution and its prediction interval (the t interval of a mean, widened)."""
    n, mean, sd = len(seeds), np.mean(seeds), np.std(seeds, ddof=1)
    scale = sd * math.sqrt(1 + 1 / n)
    p = 2 * stats.t.cdf(-abs(mean - single) / scale, df=n - 1)
    low, high = stats.t.interval(0.95, df=n - 1, loc=mean, scale=scale)  # where a new seed lands
    return p, low, high


SEEDS = [0.637, 0.649, 0.654, 0.645, 0.632]  # mean 64.34 %, standard deviation 0.89 points


@pytest.mark.parametrize("single", [0.639, 0.65, 0.62, 0.60, 0.70])
def test_single_run_against_seeds_is_the_prediction_interval_t_test(single):
    p, low, high = prediction_t_test(single, SEEDS)

    comparison = single_run_comparison(single, SEEDS)

    assert comparison.p == pytest.approx(p, rel=1e-9)
    assert comparison.difference == pytest.approx(single - np.mean(SEEDS))
    # the interval of single - (a new seed): zero inside it exactly when single is inside the prediction interval
    assert comparison.interval.low == pytest.approx(single - high, rel=1e-9)
    assert comparison.interval.high == pytest.approx(single - low, rel=1e-9)
    assert told_apart(comparison) == (not low <= single <= high)
    assert comparison.detail == "single run against 5 seeds"


def test_a_one_point_gap_within_the_seed_spread_is_not_told_apart_though_mcnemar_would():
    single = float(np.mean(SEEDS)) - 0.01
    assert 100 * np.std(SEEDS, ddof=1) == pytest.approx(0.89, abs=0.005)
    seeds_first = single_run_comparison(single, SEEDS, single_first=False)

    assert seeds_first.difference == pytest.approx(0.01) and seeds_first.detail == "5 seeds against a single run"
    assert seeds_first.p == pytest.approx(prediction_t_test(single, SEEDS)[0]) and seeds_first.p > 0.3
    assert not told_apart(seeds_first)
    # the same 1-point gap on 10,000 shared images, 1,300 right only by one model and 1,200 only by the
    # other: McNemar sees only the test split's noise and tells them apart
    a, b = models(1300, 1200, both=5100, neither=2400)
    mcnemar = paired_comparison(a, b)
    assert mcnemar.difference == pytest.approx(0.01) and mcnemar.p == pytest.approx(0.048, abs=0.001)
    assert told_apart(mcnemar)


def test_single_run_against_seeds_needs_two_and_without_spread_is_undetermined():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        single_run_comparison(0.7, [0.6])
    flat = single_run_comparison(0.7, [0.7, 0.7, 0.7])
    assert flat.difference == pytest.approx(0) and flat.p is None
    flat = single_run_comparison(0.6, [0.7, 0.7, 0.7])
    assert flat.difference == pytest.approx(-0.1) and (flat.p, flat.interval) == (None, None)
    assert flat.undetermined == "no spread among the seeds" and not told_apart(flat)


def test_correctness_rows_round_trip_and_fingerprint_the_split():
    correct = np.random.default_rng(0).random(1234) < 0.7
    rows = encode_correct(correct)

    assert [len(row) for row in rows] == [100] * 12 + [34]
    np.testing.assert_array_equal(decode_correct(rows), correct)
    images, labels = np.zeros((3, 2, 2, 1), np.uint8), np.array([0, 1, 2])
    assert split_fingerprint(images, labels) == split_fingerprint(images.copy(), labels.copy())
    assert split_fingerprint(images, labels) != split_fingerprint(images, labels[::-1])
