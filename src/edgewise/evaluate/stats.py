"""What a drop in accuracy means: intervals, the paired comparison of a variant with the full model, and how many
items a task needs. numpy and the standard library only.

    acc, lo, hi = accuracy_interval(outcomes)                   # Wilson score interval, 95%
    p = paired(variant_outcomes, full_outcomes)                 # diff, bootstrap interval, McNemar's exact p
    n = items_needed(0.05, p.discordance)                       # items to detect a 5-point drop

Outcomes are one score in [0, 1] per item, in the same item order for both models. McNemar's test counts an item as
right when its score is >= 0.5 (scores are 0/1 for every task kind that exists today).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from edgewise.errors import EdgewiseError

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # fixed: the same outcomes give the same interval in every run
POWER = 0.8


def _z(two_sided_confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + two_sided_confidence / 2)


def _outcomes(x, what: str = "outcomes") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise EdgewiseError(f"no {what}: a task needs at least one item")
    if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
        raise EdgewiseError(f"{what} must be scores in [0, 1], one per item: check the task's scorer")
    return a


def wilson_interval(k: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials. Unlike the normal (Wald) interval it stays inside [0, 1]
    and does not collapse to a point at 0/n or n/n, which small tasks hit."""
    if n <= 0:
        raise EdgewiseError("an accuracy interval needs at least one item")
    if not 0 <= k <= n:
        raise EdgewiseError(f"{k} successes out of {n} trials is impossible")
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(outcomes, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(accuracy, low, high): the mean score and its Wilson interval (the sum of scores counts as successes)."""
    a = _outcomes(outcomes)
    lo, hi = wilson_interval(float(a.sum()), a.size, confidence)
    return float(a.mean()), lo, hi


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs: under 'no difference' each discordant item goes
    either way with probability 1/2, so p = min(1, 2 * P(Binomial(b + c, 1/2) <= min(b, c))). Exact integer
    arithmetic, so it holds for any b + c."""
    if b < 0 or c < 0:
        raise EdgewiseError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def bootstrap_diff_interval(diffs, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                            confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean per-item difference, resampling items with replacement (the paired
    bootstrap: an item's two outcomes travel together, so what both models get right or wrong cancels)."""
    d = np.asarray(diffs, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise EdgewiseError("a paired interval needs at least one item")
    if resamples < 1:
        raise EdgewiseError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // d.size)  # bounds the index matrix at ~16 MB for any task size
    for s in range(0, resamples, chunk):
        k = min(chunk, resamples - s)
        means[s:s + k] = d[rng.integers(0, d.size, size=(k, d.size))].mean(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def items_needed(drop: float, discordance: float, confidence: float = CONFIDENCE, power: float = POWER) -> int:
    """Items a paired comparison needs to detect an accuracy drop of `drop` (absolute, 0.05 = 5 points) with
    McNemar's test at the two-sided `confidence` level and the given power (Connor 1987):

        n = (z_a * sqrt(psi) + z_b * sqrt(psi - drop^2))^2 / drop^2,   z_a = z(1 - alpha/2), z_b = z(power)

    psi is the discordance rate, the share of items on which the two models disagree (the mean squared per-item
    difference for scores that are not 0/1). A drop of `drop` needs at least that many items to flip, so psi is
    taken as max(psi, drop). For small drops this is also about the count at which a variant that loses nothing
    has a `power` chance of being shown within `drop` by the 95% paired interval."""
    if not 0 < drop <= 1:
        raise EdgewiseError(f"the drop to detect must be in (0, 1], got {drop!r}")
    psi = min(1.0, max(float(discordance), drop))
    za, zb = _z(confidence), NormalDist().inv_cdf(power)
    n = (za * math.sqrt(psi) + zb * math.sqrt(max(psi - drop * drop, 0.0))) ** 2 / (drop * drop)
    return int(math.ceil(n - 1e-9))


@dataclass(frozen=True)
class Paired:
    """Variant against the full model, item by item. diff = variant - full (negative = the variant is worse)."""

    n: int
    accuracy: float  # the variant's
    accuracy_ci: tuple[float, float]
    reference_accuracy: float
    diff: float
    diff_ci: tuple[float, float]  # paired bootstrap
    b: int  # items the full model gets right and the variant wrong
    c: int  # items the variant gets right and the full model wrong
    mcnemar_p: float
    discordance: float  # mean squared per-item difference; (b + c) / n for 0/1 scores

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "accuracy_ci": list(self.accuracy_ci), "diff": self.diff,
                "diff_ci": list(self.diff_ci), "discordant": [self.b, self.c], "mcnemar_p": self.mcnemar_p,
                "discordance": self.discordance, "n_items": self.n}


def paired(variant, full, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
           confidence: float = CONFIDENCE) -> Paired:
    """Compare a variant's per-item outcomes with the full model's (same items, same order)."""
    v, f = _outcomes(variant, "variant outcomes"), _outcomes(full, "full-model outcomes")
    if v.size != f.size:
        raise EdgewiseError(f"the variant scored {v.size} items and the full model {f.size}: score the same items")
    d = v - f
    acc, lo, hi = accuracy_interval(v, confidence)
    rv, rf = v >= 0.5, f >= 0.5
    b, c = int((rf & ~rv).sum()), int((rv & ~rf).sum())
    return Paired(n=int(v.size), accuracy=acc, accuracy_ci=(lo, hi), reference_accuracy=float(f.mean()),
                  diff=float(d.mean()), diff_ci=bootstrap_diff_interval(d, resamples, seed, confidence), b=b, c=c,
                  mcnemar_p=mcnemar_exact(b, c), discordance=float((d * d).mean()))


__all__ = ["wilson_interval", "accuracy_interval", "mcnemar_exact", "bootstrap_diff_interval", "items_needed",
           "paired", "Paired", "CONFIDENCE", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "POWER"]
