"""`edgewise route eval`, the measurement: run an edge and a cloud model on tasks with references, and measure
routers held out (the command and what it writes: route/eval/command.py; the markdown table: route/eval/table.py).

1. Both models answer every item greedily (answers cached on disk, edgewise.route.eval.answers); each answer is
   scored by its task's rule (edgewise.evaluate.answers). An edge that can sample also answers k more times at a
   temperature (fixed seeds, cached too) for the consistency signal.
2. The items are split in two halves by a hash of their id, so the split is the same on every run and
   balanced within each family. Routers are fitted and their thresholds chosen on the calibration half only.
3. Signals (higher = the edge is more likely right; the router escalates the lowest), each with its cost in edge
   time beyond the greedy answer:
   - p10 / mean / min: statistics of the edge answer's token log-probs (no training; free);
   - consistency: the share of the k samples whose final answer (letter, number, normalised text) is the greedy
     answer's (k generations);
   - prompt: the learned prompt scorer, MiniLM embedding + logistic regression, P(edge is not worse);
   - knn: the share of the k most similar calibration prompts where the edge was not worse (one embedding each);
   - answer: one logistic regression over the answer's own signals only: the log-prob statistics and, when
     present, consistency (four or five features, so a calibration half of ~100 items can fit it; no embedding);
   - combined: one logistic regression over the prompt embedding, the three log-prob statistics and, when
     present, consistency.
   Learned signals pick their L2 strength (or k) by 5-fold cross-validation on the calibration half.
4. On the held-out half, per family and pooled: APGR with a bootstrap 95% interval over the items, CPT(50%),
   CPT(80%), the share escalated to reach 95% of cloud quality, the AUROC of the signal for "edge right"; beside
   them the random router (APGR 0.5 by construction, also averaged over random orders) and the oracle. The pooled
   policy's threshold, chosen on the calibration half, is then applied to the held-out half: what a deployed
   router would have done. Last, 5-fold cross-validated APGR over the whole set (fit on 4 folds, score the 5th).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.evaluate.stats import BOOTSTRAP_SEED, CONFIDENCE
from edgewise.route.confidence import (EmbedFn, KnnScorer, LogisticScorer, logprob_features, reads_consistency,
                                       sequence_confidence)
from edgewise.route.eval import calibrate as cal
from edgewise.route.eval.answers import FOLDS, EvalRow

LOGPROB_SIGNALS = ("p10", "mean", "min")
LEARNED_SIGNALS = ("prompt", "combined")  # logistic scorers a policy file can name (route/policies/confidence.py)
SIGNALS = LOGPROB_SIGNALS + ("consistency", "answer", "prompt", "knn", "combined")
L2_GRID = (1.0, 10.0, 100.0, 1000.0)
K_GRID = (5, 10, 20, 40)
RESAMPLES = 1000  # bootstrap resamples of the held-out items
RANDOM_ORDERS = 1000  # random routers averaged to check APGR 0.5


# --- signals ---------------------------------------------------------------------------------

def _good(rows: list[EvalRow]) -> np.ndarray:
    """The label a learned signal predicts: the edge's answer is not worse than the cloud's."""
    return np.array([r.edge_quality >= r.cloud_quality for r in rows], dtype=float)


def _folds(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(n)[i::k] for i in range(k)]


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))  # defined where a neighbour share is exactly 0 or 1, unlike log-loss


def _cv_pick(X: np.ndarray, y: np.ndarray, grid, fit, loss) -> tuple:
    """(the grid value with the best 5-fold loss, the out-of-fold predictions at that value);
    fit(X, y, value) returns a model with predict(X)."""
    best = (math.inf, grid[0], np.full(len(y), y.mean()))
    for g in grid:
        oof = np.full(len(y), y.mean())
        for test in _folds(len(y)):
            train = np.setdiff1d(np.arange(len(y)), test)
            if len(np.unique(y[train])) < 2:
                continue
            oof[test] = fit(X[train], y[train], g).predict(X[test])
        if (lo := loss(oof, y)) < best[0]:
            best = (lo, g, oof)
    return best[1], best[2]


@dataclass
class FittedSignals:
    """Scores for every row under every signal; learned ones are out-of-fold on the calibration half and
    fitted on the whole calibration half for the held-out one."""

    scores: dict[str, np.ndarray]
    models: dict[str, LogisticScorer | KnnScorer]
    l2: dict[str, float]
    knn_k: int | None = None


def fit_signals(rows: list[EvalRow], embed_fn: EmbedFn | None, embed_name: str = "minilm",
                calib: np.ndarray | None = None, emb: np.ndarray | None = None) -> FittedSignals:
    """Every signal's scores. `calib` marks the rows to fit on (default: the calibration half); `emb`, the
    prompts' embeddings when the caller already has them (else embed_fn makes them; neither: no prompt, knn
    or combined signal; `answer` needs no embedding)."""
    calib = np.array([r.calibration for r in rows]) if calib is None else calib
    scores = {m: np.array([sequence_confidence(r.edge_logprobs, m) for r in rows]) for m in LOGPROB_SIGNALS}
    cons = [r.consistency for r in rows]
    if cons and None not in cons:
        scores["consistency"] = np.array(cons, dtype=float)
    models, l2s, knn_k = {}, {}, None
    y = _good(rows)
    if len(np.unique(y[calib])) < 2 or calib.sum() < 10:
        return FittedSignals({s: scores[s] for s in SIGNALS if s in scores}, models, l2s, knn_k)
    extra = [np.stack([logprob_features(r.edge_logprobs) for r in rows])]
    features = "logprobs"
    if "consistency" in scores:
        extra.append(scores["consistency"][:, None])
        features += "+consistency"
    learned = [("answer", np.hstack(extra), features, "none")]
    if emb is not None or embed_fn is not None:
        emb = np.asarray(embed_fn([r.prompt for r in rows]) if emb is None else emb, dtype=float)
        learned += [("prompt", emb, "embed", embed_name),
                    ("combined", np.hstack([emb, *extra]), "embed+" + features, embed_name)]
    for name, X, feats, emb_name in learned:
        l2, oof = _cv_pick(X[calib], y[calib], L2_GRID, lambda a, b, g: LogisticScorer.fit(a, b, l2=g), _log_loss)
        model = LogisticScorer.fit(X[calib], y[calib], l2=l2, meta={
            "embed": emb_name, "label": "edge_quality >= cloud_quality", "features": feats,
            "rows": int(calib.sum()), "l2": l2})
        s = model.predict(X)
        s[calib] = oof  # never score a calibration row with a model that saw it
        scores[name], models[name], l2s[name] = s, model, l2
    if emb is not None:
        knn_k, oof = _cv_pick(emb[calib], y[calib], K_GRID, KnnScorer, _brier)
        models["knn"] = KnnScorer(emb[calib], y[calib], knn_k)
        scores["knn"] = models["knn"].predict(emb)
        scores["knn"][calib] = oof
    return FittedSignals({s: scores[s] for s in SIGNALS if s in scores}, models, l2s, knn_k)


def servable(fitted: FittedSignals) -> list[str]:
    """The signals a policy file can name today: log-probs, and the logistic scorers that need no samples."""
    ok = [s for s in LOGPROB_SIGNALS if s in fitted.scores]
    return ok + [s for s in LEARNED_SIGNALS
                 if s in fitted.models and not reads_consistency(fitted.models[s])]


# --- metrics ---------------------------------------------------------------------------------

def auroc(score: np.ndarray, good: np.ndarray) -> float:
    """P(a random good row outscores a random bad one), ties counting half; nan without both classes."""
    pos, neg = score[good == 1], score[good == 0]
    if not len(pos) or not len(neg):
        return math.nan
    s = np.concatenate([pos, neg])
    ranks = _avg_ranks(s)
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _avg_ranks(s: np.ndarray) -> np.ndarray:
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def routing_data(rows: list[EvalRow], score: np.ndarray) -> cal.Data:
    return cal.Data([r.prompt for r in rows], score, np.array([r.edge_quality for r in rows]),
                    np.array([r.cloud_quality for r in rows]))


def _apgr(score: np.ndarray, d: cal.Data, i: np.ndarray | slice = slice(None)) -> float:
    return cal.routellm_metrics(cal.Data([], score[i], d.edge_q[i], d.cloud_q[i])).apgr


def bootstrap_apgr(d: cal.Data, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED,
                   confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of APGR, resampling the items with replacement (an item's score and both qualities
    travel together). A resample where the cloud is no better than the edge has no APGR and is left out; with
    fewer than half defined the interval is (nan, nan)."""
    rng = np.random.default_rng(seed)
    n = len(d.score)
    vals = np.array([_apgr(d.score, d, rng.integers(0, n, n)) for _ in range(resamples)])
    vals = vals[~np.isnan(vals)]
    if len(vals) < max(1, resamples / 2):
        return math.nan, math.nan
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(vals, [alpha, 1 - alpha])
    return float(lo), float(hi)


def random_apgr(d: cal.Data, orders: int = RANDOM_ORDERS, seed: int = 0) -> float:
    """APGR averaged over random routers (uniform random orders of the items): 0.5 up to sampling noise, since a
    random order's expected quality rises linearly from the edge's to the cloud's."""
    rng = np.random.default_rng(seed)
    vals = [_apgr(rng.permutation(len(d.score)).astype(float), d) for _ in range(orders)]
    return float(np.mean(vals)) if vals and not any(map(math.isnan, vals)) else math.nan


@dataclass
class SignalResult:
    family: str
    signal: str
    n: int
    edge_quality: float
    cloud_quality: float
    apgr: float
    cpt50: float
    cpt80: float
    escalated_at_95: float  # share of held-out calls to the cloud needed to reach 95% of cloud quality
    auroc_edge_right: float  # separability of right and wrong edge answers under the signal
    apgr_lo: float = math.nan  # bootstrap 95% interval of the APGR over the held-out items
    apgr_hi: float = math.nan
    cv_apgr: float = math.nan  # 5-fold cross-validated APGR over the whole set (evaluate fills it)


def held_out_metrics(rows: list[EvalRow], scores: np.ndarray, family: str, signal: str,
                     target: float = 0.95, resamples: int = RESAMPLES) -> SignalResult:
    d = routing_data(rows, scores)
    m = cal.routellm_metrics(d)
    esc = cal.choose_threshold(d, target).share if d.cloud_q.mean() > 0 else 0.0
    right = np.array([r.edge_quality >= 1.0 for r in rows], dtype=float)
    lo, hi = bootstrap_apgr(d, resamples) if resamples > 0 else (math.nan, math.nan)
    return SignalResult(family, signal, len(rows), m.weak, m.strong, m.apgr, m.cpt50, m.cpt80, esc,
                        auroc(scores, right), lo, hi)


def cross_validated(rows: list[EvalRow], emb: np.ndarray | None, embed_name: str) -> dict:
    """APGR per signal and family, each fold scored by signals fitted on the other four: {signal: {family:
    {"mean": mean over the folds with an APGR, "folds": per-fold APGRs (None where undefined)}}}."""
    fold = np.array([r.fold for r in rows])
    fams = {f: np.array([f == "all" or r.family == f for r in rows]) for f in _families(rows) + ["all"]}
    out: dict[str, dict[str, dict]] = {}
    for k in range(FOLDS):
        test = fold == k
        if not test.any() or test.all():
            continue
        fitted = fit_signals(rows, None, embed_name, calib=~test, emb=emb)
        for sig, s in fitted.scores.items():
            for fam, mask in fams.items():
                idx = test & mask
                sub = [r for r, x in zip(rows, idx) if x]
                a = cal.routellm_metrics(routing_data(sub, s[idx])).apgr if len(sub) >= 2 else math.nan
                out.setdefault(sig, {}).setdefault(fam, {"folds": []})["folds"].append(None if math.isnan(a) else a)
    for per in out.values():
        for v in per.values():
            got = [a for a in v["folds"] if a is not None]
            v["mean"] = float(np.mean(got)) if got else math.nan
    return out


def _families(rows: list[EvalRow]) -> list[str]:
    return sorted({r.family for r in rows})


def _mean_known(xs) -> float | None:
    known = [x for x in xs if x is not None]
    return float(np.mean(known)) if known else None


def signal_costs(rows: list[EvalRow], embed_fn: EmbedFn | None, fitted: FittedSignals, probes: int = 16) -> dict:
    """Edge seconds per item each signal costs beyond the greedy answer. The embedding is timed here, one prompt at
    a time as a router embeds them (median of `probes`); generation times are the ones kept with the answers."""
    embed_s = None
    if embed_fn is not None and any(s in fitted.scores for s in ("prompt", "knn")):
        times = []
        for r in rows[:probes]:
            t0 = time.perf_counter()
            embed_fn([r.prompt])
            times.append(time.perf_counter() - t0)
        embed_s = float(np.median(times))
    sample_s = _mean_known(r.sample_seconds for r in rows)
    extra = {s: 0.0 for s in LOGPROB_SIGNALS}
    extra["consistency"] = sample_s
    extra["prompt"] = extra["knn"] = embed_s
    comb = fitted.models.get("combined")
    uses_cons = comb is not None and reads_consistency(comb)
    extra["combined"] = (None if embed_s is None or (uses_cons and sample_s is None)
                         else embed_s + (sample_s if uses_cons else 0.0))
    ans = fitted.models.get("answer")
    extra["answer"] = sample_s if ans is not None and reads_consistency(ans) else 0.0
    return {"edge_answer_s": _mean_known(r.edge_seconds for r in rows), "embed_s": embed_s,
            "samples_k": max((len(r.edge_samples) for r in rows), default=0),
            "extra_edge_s": {s: extra[s] for s in fitted.scores}}


@dataclass
class Deployed:
    """The pooled policy: threshold chosen on the calibration half, applied to the held-out half."""

    signal: str
    threshold: float
    calib_apgr: float
    held_escalated: float
    held_quality: float
    held_of_cloud: float


def evaluate(rows: list[EvalRow], embed_fn: EmbedFn | None, target: float = 0.95, embed_name: str = "minilm",
             resamples: int = RESAMPLES, random_orders: int = RANDOM_ORDERS) -> dict:
    """The whole report as a dict (JSON-ready once json_report drops the "_" keys): per-family and pooled held-out
    metrics for every signal with bootstrap intervals and cross-validated APGR, the random router and the oracle,
    each signal's cost, and the deployed pooled policy per signal. Rows with a failed answer are left out and
    counted."""
    if not 0.0 < target <= 1.0:
        raise EdgewiseError(f"--target must be in (0, 1], got {target}")
    ok = [r for r in rows if r.error is None]
    if len(ok) < 20:
        raise EdgewiseError(f"only {len(ok)} items were answered by both models: route eval needs at least 20 "
                            "(hundreds per family are better)")
    emb = None if embed_fn is None else np.asarray(embed_fn([r.prompt for r in ok]), dtype=float)
    fitted = fit_signals(ok, None, embed_name, emb=emb)
    cv = cross_validated(ok, emb, embed_name)
    calib = np.array([r.calibration for r in ok])
    held = ~calib
    families = _families(ok)
    results, deployed = [], []
    for sig, s in fitted.scores.items():
        for fam in families + ["all"]:
            idx = np.array([(fam == "all" or r.family == fam) for r in ok]) & held
            sub = [r for r, k in zip(ok, idx) if k]
            if len(sub) >= 2:
                res = held_out_metrics(sub, s[idx], fam, sig, target, resamples)
                res.cv_apgr = cv.get(sig, {}).get(fam, {}).get("mean", math.nan)
                results.append(res)
        dc = routing_data([r for r, k in zip(ok, calib) if k], s[calib])
        dh = routing_data([r for r, k in zip(ok, held) if k], s[held])
        choice = cal.choose_threshold(dc, target)
        esc = dh.score < choice.threshold
        q = float(np.where(esc, dh.cloud_q, dh.edge_q).mean())
        cloud = float(dh.cloud_q.mean())
        deployed.append(Deployed(sig, choice.threshold, cal.routellm_metrics(dc).apgr, float(esc.mean()), q,
                                 q / cloud if cloud > 0 else 1.0))
    # The best any router could do on the held-out half: escalate first where the cloud is right and the edge
    # wrong. APGR's ceiling depends on the two accuracies (well below 1 when the cloud is often wrong too).
    oracle, rand = {}, {}
    for fam in families + ["all"]:
        sub = [r for r, k in zip(ok, held) if k and (fam == "all" or r.family == fam)]
        if len(sub) >= 2:
            d = routing_data(sub, np.array([r.edge_quality - r.cloud_quality for r in sub]))
            oracle[fam] = {"apgr": cal.routellm_metrics(d).apgr,
                           "escalated_at_95": cal.choose_threshold(d, target).share if d.cloud_q.mean() > 0 else 0.0}
            rand[fam] = {"by_construction": 0.5, "simulated": random_apgr(d, random_orders), "orders": random_orders}
    can_serve = servable(fitted)
    usable = [d for d in deployed if d.signal in can_serve and not math.isnan(d.calib_apgr)]
    best = max(usable, key=lambda d: d.calib_apgr).signal if usable else "p10"
    return {
        "items": len(rows), "answered": len(ok), "failed": len(rows) - len(ok), "target": target,
        "calibration_rows": int(calib.sum()), "held_out_rows": int(held.sum()),
        "families": {f: {"n": sum(r.family == f for r in ok),
                         "edge_quality": float(np.mean([r.edge_quality for r in ok if r.family == f])),
                         "cloud_quality": float(np.mean([r.cloud_quality for r in ok if r.family == f]))}
                     for f in families},
        "signals": list(fitted.scores), "servable_signals": can_serve,
        "held_out": [asdict(r) for r in results],
        "oracle_apgr": {f: v["apgr"] for f, v in oracle.items()},
        "oracle": oracle,
        "random_apgr": rand,
        "bootstrap": {"resamples": resamples, "seed": BOOTSTRAP_SEED, "confidence": CONFIDENCE},
        "cv": {"folds": FOLDS, "apgr": cv},
        "cost": signal_costs(ok, embed_fn, fitted),
        "deployed": [asdict(d) for d in deployed],
        "l2": fitted.l2,
        "knn_k": fitted.knn_k,
        "best_signal": best,
        "_fitted": fitted,  # not JSON: the caller saves the best learned model and drops this key
        "_rows": ok,
    }
