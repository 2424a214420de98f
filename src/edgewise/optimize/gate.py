"""The quality gate (`--max-drop`) and the recommendation: the fastest variant that passes and fits (a near-tie
goes to the smaller one).

On a task scored item by item (accuracy), `--max-drop` is in absolute accuracy points (5% = 0.05 = five points) and
the gate reads the paired 95% interval of the drop, not its point estimate: a variant passes only when even the
worst end of the interval stays within the bound. Three verdicts follow (`gate_status`):

    pass             the interval shows the drop is at most --max-drop
    not shown safe   the measured drop is within the bound, but the interval reaches past it (too few items to tell)
    fail             the measured drop itself is past the bound (or the KLD ceiling is exceeded)

Other tasks (perplexity, nextword, retrieval, classify) gate as before: the relative drop of the primary metric.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgewise.errors import EdgewiseError
from edgewise.report.row import VariantRow

DEFAULT_MAX_DROP = "5%"
PASS, NOT_SHOWN_SAFE, FAIL, ERROR = "pass", "not shown safe", "fail", "error"


@dataclass(frozen=True)
class Gate:
    """max_drop: the largest relative loss in the task's primary metric (0.05 = 5%), or, on a task scored item by
    item, the largest loss in absolute accuracy points (0.05 = 5 points) that the paired 95% interval may reach;
    kld_max: a ceiling on the mean KL divergence from the full model (language-model tasks). Either may be None; a
    variant must pass both."""

    max_drop: float | None = 0.05
    kld_max: float | None = None

    def __post_init__(self):
        if self.max_drop is None and self.kld_max is None:
            raise EdgewiseError("the gate needs a maximum drop or a KLD ceiling, e.g. --max-drop 5% or --max-drop kld=0.05")
        if self.max_drop is not None and not 0 <= self.max_drop < 10:
            raise EdgewiseError(f"--max-drop must be a fraction like 0.05 or 5%, got {self.max_drop!r}")
        if self.kld_max is not None and not self.kld_max > 0:
            raise EdgewiseError(f"the KLD ceiling must be positive, got {self.kld_max!r}")

    def describe(self, primary: str, per_item: bool = False, kld: bool = True) -> str:
        parts = []
        if self.max_drop is not None:
            parts.append(f"{primary}: the 95% paired interval of its drop within {100 * self.max_drop:.1f} points "
                         "(absolute) of the full model" if per_item else
                         f"{primary} within {self.max_drop:.1%} of the full model")
        if kld and self.kld_max is not None:
            parts.append(f"mean KLD <= {self.kld_max:g}")
        return " and ".join(parts)

    def describe_tasks(self, tasks: list[tuple[str, str, bool]]) -> str:
        """The gate in words over (label, primary, per_item) of every task; one task reads as `describe`."""
        if len(tasks) == 1:
            return self.describe(tasks[0][1], tasks[0][2])
        parts = [f"{label}: {self.describe(primary, per_item, kld=False)}" for label, primary, per_item in tasks
                 if self.max_drop is not None]
        if self.kld_max is not None:
            parts.append(f"mean KLD <= {self.kld_max:g} (tasks that measure it)")
        return "; ".join(parts) + " (every task)"

    def check(self, drop: float | None, kld: float | None, kld_applies: bool = True) -> tuple[bool, str]:
        if self.max_drop is not None and (drop is None or drop > self.max_drop + 1e-12):
            return False, "no quality figure" if drop is None else f"drop {drop:.1%} > {self.max_drop:.1%}"
        return self._check_kld(kld, kld_applies)

    def _check_kld(self, kld: float | None, applies: bool) -> tuple[bool, str]:
        if self.kld_max is not None and applies:
            if kld is None:
                return False, "the task has no KLD (use a perplexity task or a relative drop)"
            if kld > self.kld_max:
                return False, f"KLD {kld:.3g} > {self.kld_max:g}"
        return True, "passes"

    def check_paired(self, diff: float, diff_ci: tuple[float, float], kld: float | None = None,
                     kld_applies: bool = True, items: int | None = None) -> tuple[str, str]:
        """(gate_status, reason) on a per-item task from the paired difference variant - full (absolute points,
        negative = worse) and its 95% interval. `items`: how many items would detect a drop of max_drop."""
        if self.max_drop is not None and -diff > self.max_drop + 1e-12:
            return FAIL, f"accuracy drop {-100 * diff:.1f} pts > {100 * self.max_drop:.1f} pts"
        ok, why = self._check_kld(kld, kld_applies)
        if not ok:
            return FAIL, why
        worst = -diff_ci[0]
        if self.max_drop is not None and worst > self.max_drop + 1e-12:
            more = f"; about {items} items would detect a {100 * self.max_drop:.1f}-point drop" if items else ""
            return NOT_SHOWN_SAFE, (f"not shown safe: the 95% interval allows a drop of {100 * worst:.1f} pts > "
                                    f"{100 * self.max_drop:.1f} pts{more}")
        return PASS, "passes"


def _fraction(text: str) -> float:
    t = text.strip()
    try:
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise EdgewiseError(f"--max-drop {text!r}: write a fraction (0.05), a percentage (5%) or kld=0.05") from None


def parse_gate(spec: str | float | None) -> Gate:
    """`5%`, `0.05`, `kld=0.05`, or both: `5%,kld=0.05`."""
    if spec is None:
        spec = DEFAULT_MAX_DROP
    if isinstance(spec, (int, float)):
        return Gate(max_drop=float(spec))
    drop = kld = None
    for part in filter(None, (p.strip() for p in str(spec).split(","))):
        key, eq, val = part.partition("=")
        if eq and key.strip().lower() == "kld":
            kld = _fraction(val)
        elif eq and key.strip().lower() in ("drop", "max_drop"):
            drop = _fraction(val)
        elif not eq:
            drop = _fraction(part)
        else:
            raise EdgewiseError(f"--max-drop {part!r}: use a number, a percentage, or kld=VALUE")
    return Gate(max_drop=drop, kld_max=kld)


def speed_of(v: VariantRow) -> float | None:
    """The figure 'fastest' compares: generation tokens/s for decoders, embeddings/s for encoders."""
    return v.speed


# Speeds this close to the fastest are a tie: one run on a shared machine does not order them (BENCHMARKS.md shows
# same-round ratios moving by more than this), so the tie goes to the variant with the fewest bits per weight.
SPEED_TIE = 0.05


def recommend(variants: list[VariantRow]) -> tuple[VariantRow | None, str]:
    """The fastest variant that passes the gate and fits the device, the smallest of those within SPEED_TIE of
    the fastest; the reason, in words."""
    ok = [v for v in variants if v.passes_gate and v.fits_device is not False and not v.error and v.speed]
    if not ok:
        return None, "no variant passes the gate and fits the device: loosen --max-drop or pick a larger device"
    fastest = max(ok, key=speed_of)
    tied = [v for v in ok if v.speed >= (1 - SPEED_TIE) * fastest.speed]
    best = min(tied, key=lambda v: (v.bits_per_weight if v.bits_per_weight is not None else float("inf"),
                                    -v.speed))
    unit = "tokens/s" if best.generation_tps else "embeddings/s"
    if best is fastest:
        return best, f"fastest variant that passes the gate and fits ({best.speed:.1f} {unit})"
    return best, (f"fewest bits per weight ({best.bits_per_weight:.2f}) among the variants that pass the gate, fit, "
                  f"and run within {SPEED_TIE:.0%} of the fastest ({best.speed:.1f} vs {fastest.name}'s "
                  f"{fastest.speed:.1f} {unit})")
