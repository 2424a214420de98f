"""Choose the escalation threshold from the user's own data, and measure the router RouteLLM's way.

Data: JSONL, one prompt per line, already answered by both models (schema in docs/routing.md).
Escalating = sending the prompts with the lowest edge scores to the cloud. With n prompts sorted
by score, escalating the k lowest gives quality (sum cloud_q[:k] + sum edge_q[k:]) / n.

Metrics, as lm-sys/RouteLLM evals/evaluate.py computes them (weak = edge, strong = cloud):
- the curve: thresholds at the quantiles of the router score (`bins` equal bins, 10 by default),
  x = % of calls to the strong model, y = quality;
- AUC = trapezoid area under that curve over x in [0, 1];
- APGR = (AUC_router - AUC_weak) / (AUC_strong - AUC_weak), with the constant lines of the weak
  and strong model integrated over the same x points;
- CPT(x%) = the % of strong calls at which the performance gap recovered first reaches x%,
  interpolated linearly between curve points (RouteLLM's np.interp, made safe for curves that
  are not monotone).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.data.readers import jsonl_objects
from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import match_quality
from edgewise.route.confidence import DEFAULT_METHOD, check_method, sequence_confidence

# matplotlib is imported inside plot(): it costs about a second, and the Agg backend must be chosen before pyplot
# is imported.
MATCHES = ("exact", "contains")


@dataclass
class Data:
    prompts: list[str]
    score: np.ndarray  # edge confidence; higher = more confident; escalate the lowest
    edge_q: np.ndarray  # quality in [0, 1] if the edge answers
    cloud_q: np.ndarray  # quality in [0, 1] if the cloud answers


def load_data(path: str | Path, method: str = DEFAULT_METHOD, match: str = "contains",
              score_fn: Callable[[list[str]], np.ndarray] | None = None) -> Data:
    path = Path(path)
    if not path.is_file():
        raise EdgewiseError(f"calibration data {path} not found")
    check_method(method)
    if match not in MATCHES:
        raise EdgewiseError(f"--match must be one of {', '.join(MATCHES)}, got {match!r}")
    prompts, scores, eq, cq = [], [], [], []
    shape = 'one object per prompt: edge_score or edge_logprobs, edge_quality and cloud_quality (docs/routing.md)'
    for i, row in jsonl_objects(path.read_text(), path, "calibration data", shape):
        where = f"{path}:{i}"
        prompts.append(str(row.get("prompt", "")))
        if score_fn is None:
            scores.append(_score(row, method, where))
        eq.append(_quality(row, "edge", match, where))
        cq.append(_quality(row, "cloud", match, where))
    if len(eq) < 2:
        raise EdgewiseError(f"{path} holds {len(eq)} usable rows: calibration needs at least 2 (hundreds are better)")
    if score_fn is not None:
        if not all(prompts):
            raise EdgewiseError(f"{path}: every row needs a non-empty \"prompt\" to score with a learned scorer")
        scores = list(np.asarray(score_fn(prompts), dtype=float))
    return Data(prompts, np.asarray(scores, float), np.asarray(eq, float), np.asarray(cq, float))


def _score(row: dict, method: str, where: str) -> float:
    if "edge_score" in row:
        s = row["edge_score"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or math.isnan(s):
            raise EdgewiseError(f"{where}: edge_score must be a number, got {s!r}")
        return float(s)
    if "edge_logprobs" in row:
        lp = row["edge_logprobs"]
        if not isinstance(lp, list) or not all(isinstance(x, (int, float)) for x in lp):
            raise EdgewiseError(f"{where}: edge_logprobs must be a list of numbers")
        return sequence_confidence(lp, method)
    raise EdgewiseError(f"{where}: needs \"edge_score\" or \"edge_logprobs\" (or pass --scorer)")


def _quality(row: dict, who: str, match: str, where: str) -> float:
    key = f"{who}_quality"
    if key in row:
        q = row[key]
        if isinstance(q, bool):
            return float(q)
        if not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
            raise EdgewiseError(f"{where}: {key} must be a number in [0, 1], got {q!r}")
        return float(q)
    if f"{who}_answer" in row and "reference" in row:
        return match_quality(str(row[f"{who}_answer"]), row["reference"], match)
    raise EdgewiseError(f"{where}: needs \"{key}\", or \"reference\" and \"{who}_answer\"")


# --- the full-resolution curve and the threshold ---------------------------------------------

@dataclass
class Curve:
    k: np.ndarray  # number escalated at each operating point (only between distinct scores)
    threshold: np.ndarray  # escalate when score < threshold
    quality: np.ndarray  # mean quality of the mix
    coverage: np.ndarray  # share answered by the edge
    risk: np.ndarray  # 1 - mean edge quality over the prompts the edge keeps (nan at coverage 0)


def full_curve(d: Data) -> Curve:
    n = len(d.score)
    order = np.argsort(d.score, kind="stable")
    s, e, c = d.score[order], d.edge_q[order], d.cloud_q[order]
    ce = np.concatenate([[0.0], np.cumsum(c)])  # cloud quality of the k lowest
    ee = np.concatenate([[0.0], np.cumsum(e[::-1])])[::-1]  # edge quality of the rest
    # k may only stop between distinct scores: a threshold cannot split a tie.
    ks = [0] + [k for k in range(1, n) if s[k] > s[k - 1]] + [n]
    ks = np.array(sorted(set(ks)))
    thr = []
    for k in ks:
        if k == 0:
            thr.append(-math.inf)
        elif k == n:
            thr.append(math.inf)
        else:
            lo, hi = s[k - 1], s[k]
            thr.append(float(hi) if not math.isfinite(lo) else float((lo + hi) / 2))
    kept = n - ks
    with np.errstate(invalid="ignore", divide="ignore"):
        risk = np.where(kept > 0, 1.0 - ee[ks] / np.maximum(kept, 1), np.nan)
    return Curve(ks, np.array(thr), (ce[ks] + ee[ks]) / n, kept / n, risk)


@dataclass
class Choice:
    threshold: float
    escalated: int
    share: float  # share escalated
    quality: float
    of_cloud: float  # quality / cloud-only quality


def choose_threshold(d: Data, target: float, curve: Curve | None = None) -> Choice:
    """Fewest escalations whose mixed quality reaches target x cloud-only quality."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target <= 1.0:
        raise EdgewiseError(f"--target must be in (0, 1] (a share of cloud-only quality), got {target!r}")
    curve = curve or full_curve(d)
    cloud = float(d.cloud_q.mean())
    ok = np.nonzero(curve.quality >= target * cloud - 1e-12)[0]
    i = int(ok[0])  # always exists: escalating everything gives exactly the cloud's quality
    n = len(d.score)
    return Choice(float(curve.threshold[i]), int(curve.k[i]), int(curve.k[i]) / n, float(curve.quality[i]),
                  float(curve.quality[i] / cloud) if cloud > 0 else 1.0)


# --- RouteLLM metrics ------------------------------------------------------------------------

@dataclass
class Metrics:
    weak: float
    strong: float
    pct: np.ndarray  # % strong calls at each curve point, ascending
    perf: np.ndarray
    auc: float
    apgr: float  # nan when the cloud is no better than the edge
    cpt50: float  # % strong calls; nan when undefined
    cpt80: float


def routellm_metrics(d: Data, bins: int = 10) -> Metrics:
    if not isinstance(bins, int) or bins < 1:
        raise EdgewiseError(f"--bins must be a positive integer, got {bins!r}")
    win = -d.score  # RouteLLM routes to the strong model when its win-rate score is high
    finite = win[np.isfinite(win)]
    if finite.size:  # -inf edge scores (empty answers) become the largest win rate, ties kept
        win = np.where(np.isposinf(win), finite.max() + 1.0, np.where(np.isneginf(win), finite.min() - 1.0, win))
    else:
        win = np.zeros_like(win)
    thresholds = np.quantile(win, np.linspace(0.0, 1.0, bins + 1))
    pts = []
    for i, t in enumerate(thresholds):
        sel = win >= t if i != len(thresholds) - 1 else win > t
        pts.append((sel.mean() * 100.0, float(np.where(sel, d.cloud_q, d.edge_q).mean())))
    pts.sort(key=lambda p: p[0])  # stable, like pandas sort_values on one key
    pct = np.array([p[0] for p in pts])
    perf = np.array([p[1] for p in pts])
    x = pct / 100.0
    weak, strong = float(d.edge_q.mean()), float(d.cloud_q.mean())
    auc = float(np.trapezoid(perf, x))
    weak_auc = float(np.trapezoid(np.full_like(x, weak), x))
    strong_auc = float(np.trapezoid(np.full_like(x, strong), x))
    apgr = (auc - weak_auc) / (strong_auc - weak_auc) if strong_auc != weak_auc else math.nan
    return Metrics(weak, strong, pct, perf, auc, apgr,
                   cpt(pct, perf, weak, strong, 0.5), cpt(pct, perf, weak, strong, 0.8))


def cpt(pct: np.ndarray, perf: np.ndarray, weak: float, strong: float, x: float) -> float:
    """% strong calls needed to recover x of the weak-to-strong gap: the first crossing of the
    curve, linearly interpolated (equal to RouteLLM's np.interp on a monotone curve)."""
    if strong <= weak:
        return math.nan
    goal = weak + x * (strong - weak)
    for i in range(len(perf)):
        if perf[i] >= goal - 1e-12:
            if i == 0 or perf[i] == perf[i - 1]:
                return float(pct[i])
            f = (goal - perf[i - 1]) / (perf[i] - perf[i - 1])
            return float(pct[i - 1] + f * (pct[i] - pct[i - 1]))
    return math.nan


# --- outputs ---------------------------------------------------------------------------------

def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return "inf" if v == math.inf else "-inf" if v == -math.inf else repr(v)
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def policy_toml(choice: Choice, m: Metrics, *, source: str, method: str, scorer: str | None, data: str,
                target: float, n: int, bins: int, by: str = "edgewise route calibrate") -> str:
    conf = {"source": source, "threshold": choice.threshold}
    if source == "logprobs":
        conf["method"] = method
    else:
        conf["scorer"] = scorer
    calib = {"data": data, "rows": n, "target": target, "escalated_share": round(choice.share, 6),
             "quality": round(choice.quality, 6), "share_of_cloud_quality": round(choice.of_cloud, 6),
             "edge_quality": round(m.weak, 6), "cloud_quality": round(m.strong, 6), "bins": bins,
             "apgr": m.apgr, "cpt50_pct": m.cpt50, "cpt80_pct": m.cpt80}
    lines = [
        f"# Routing policy written by `{by}`; load it with `edgewise serve --policy FILE`.",
        f"# At {target:g} of cloud-only quality the router escalates {choice.share:.1%} of requests.",
        "",
        "[router]",
        'prefer = "edge"',
        "",
        "[policies.privacy]",
        'mode = "redact"  # or "local-only" / "off"',
        "",
        "[policies.connectivity]",
        "fail_max = 5",
        "reset_timeout_s = 60.0",
        "",
        "[policies.confidence]",
        *(f"{k} = {_toml_value(v)}" for k, v in conf.items()),
        "",
        "# [policies.budget]",
        "# max_share = 0.3",
        "# max_per_hour = 1000",
        "",
        "[calibration]  # what the threshold was chosen on; the router ignores this table",
        *(f"{k} = {_toml_value(v)}" for k, v in calib.items()),
        "",
    ]
    return "\n".join(lines)


def plot(curve: Curve, m: Metrics, choice: Choice, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    ok = curve.coverage > 0
    a.plot(curve.coverage[ok], curve.risk[ok], "-", color="tab:blue", label="edge keeps the most confident")
    cov = 1 - choice.share
    if cov > 0:
        i = int(np.nonzero(curve.k == choice.escalated)[0][0])
        a.plot([cov], [curve.risk[i]], "o", color="tab:red", label=f"chosen: coverage {cov:.0%}")
    a.set_xlabel("coverage (share answered on the edge)")
    a.set_ylabel("risk (1 - edge quality on covered prompts)")
    a.set_title("Risk-coverage")
    a.set_xlim(0, 1.02)
    a.legend(loc="upper left", fontsize=8)
    b.plot(100 * curve.k / curve.k[-1], curve.quality, "-", color="tab:blue", label="router (all thresholds)")
    b.plot(m.pct, m.perf, ".", color="tab:purple", label=f"RouteLLM grid (APGR {m.apgr:.3f})")
    b.axhline(m.weak, color="grey", ls="--", label="edge only")
    b.axhline(m.strong, color="red", ls="--", label="cloud only")
    b.plot([100 * choice.share], [choice.quality], "o", color="tab:red", label="chosen")
    b.set_xlabel("cloud calls (%)")
    b.set_ylabel("quality")
    b.set_title("Quality vs cloud calls")
    b.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
