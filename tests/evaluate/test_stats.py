"""Accuracy intervals, the paired comparison and the item count, on hand-made outcomes with known answers."""

import math

import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.evaluate.stats import (accuracy_interval, bootstrap_diff_interval, items_needed, mcnemar_exact, paired,
                                     wilson_interval)


def _wilson_by_hand(k, n, z=1.959963984540054):
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_wilson_matches_hand_computed_values():
    # Published values (Newcombe 1998, Table I style): 8/10 -> 0.4902..0.9433, 0/10 -> 0..0.2775, 50/100 -> 0.4038..0.5962.
    for (k, n), (lo, hi) in {(8, 10): (0.4902, 0.9433), (0, 10): (0.0, 0.2775), (50, 100): (0.4038, 0.5962),
                             (10, 10): (0.7225, 1.0)}.items():
        got = wilson_interval(k, n)
        assert got == pytest.approx((lo, hi), abs=5e-5), (k, n)
        assert got == pytest.approx(tuple(min(1, max(0, x)) for x in _wilson_by_hand(k, n)), abs=1e-12)
    acc, lo, hi = accuracy_interval([1, 1, 1, 1, 0, 1, 1, 0, 1, 1])
    assert acc == 0.8 and (lo, hi) == pytest.approx(wilson_interval(8, 10))
    # About +-7 points at 200 items around 50%, as the issue says.
    lo, hi = wilson_interval(100, 200)
    assert 0.065 < (hi - lo) / 2 < 0.072


def test_mcnemar_exact_is_the_two_sided_binomial():
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)  # 2 * (1/2)^5
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)  # 2 * (1 + 10) / 2^10 = 0.021484375
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(2, 6) == pytest.approx(2 * (1 + 8 + 28) / 256)
    assert 0 < mcnemar_exact(400, 600) < 1e-9  # exact integer arithmetic, no overflow


def test_paired_counts_discordant_items_and_its_interval_holds_the_difference():
    full = np.array([1] * 60 + [0] * 40, float)
    variant = full.copy()
    variant[:9] = 0  # 9 items lost ...
    variant[60:61] = 1  # ... and 1 gained
    p = paired(variant, full)
    assert (p.b, p.c) == (9, 1) and p.mcnemar_p == pytest.approx(22 / 1024)
    assert p.diff == pytest.approx(-0.08) and p.reference_accuracy == 0.6 and p.accuracy == pytest.approx(0.52)
    assert p.diff_ci[0] <= p.diff <= p.diff_ci[1] and p.diff_ci[1] < 0  # a real loss: the interval excludes 0
    assert p.discordance == pytest.approx(0.10)
    assert paired(variant, full) == p  # fixed seed: the same outcomes give the same interval
    same = paired(full, full)
    assert same.diff == 0 and same.diff_ci == (0.0, 0.0) and same.mcnemar_p == 1.0


def test_bootstrap_interval_shrinks_with_more_items():
    rng = np.random.default_rng(1)
    widths = []
    for n in (50, 200, 800):
        d = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=n)
        lo, hi = bootstrap_diff_interval(d)
        assert lo <= d.mean() <= hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # Width ~ 1/sqrt(n): quadrupling the items about halves it.
    assert 0.35 < widths[2] / widths[1] < 0.65


def test_items_needed_follows_the_formula_and_falls_with_the_drop():
    psi, drop = 0.10, 0.05
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    by_hand = (z_a * math.sqrt(psi) + z_b * math.sqrt(psi - drop ** 2)) ** 2 / drop ** 2
    assert items_needed(drop, psi) == math.ceil(by_hand) == 312  # 311.59 by hand
    drops = [0.01, 0.02, 0.05, 0.1, 0.2]
    counts = [items_needed(d, psi) for d in drops]
    assert counts == sorted(counts, reverse=True) and counts[0] > 10 * counts[2]
    assert items_needed(drop, 0.2) > items_needed(drop, 0.1)  # more disagreement, more items
    # No observed disagreement still needs the drop's own items to flip.
    assert items_needed(drop, 0.0) == items_needed(drop, drop)


@pytest.mark.parametrize("call", [
    lambda: accuracy_interval([]),
    lambda: accuracy_interval([0.5, 1.5]),
    lambda: paired([1, 0], [1, 0, 1]),
    lambda: items_needed(0, 0.1),
    lambda: wilson_interval(3, 2),
])
def test_bad_inputs_say_what_to_do(call):
    with pytest.raises(EdgewiseError):
        call()
