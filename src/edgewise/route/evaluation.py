"""`edgewise route eval`, the measurement: run an edge and a cloud model on tasks with references, and measure
routers held out (the command and what it writes: edgewise.route.eval_command).

1. Both models answer every item greedily (answers cached on disk, edgewise.route.answers); each answer is
   scored by its task's rule (edgewise.evaluate.answers).
2. The items are split in two halves by a hash of their id, so the split is the same on every run and
   balanced within each family. Routers are fitted and their thresholds chosen on the calibration half only.
3. Signals (higher = the edge is more likely right; the router escalates the lowest):
   - p10 / mean / min: statistics of the edge answer's token log-probs (no training);
   - prompt: the learned prompt scorer, MiniLM embedding + logistic regression, P(edge is not worse);
   - combined: one logistic regression over the prompt embedding and the three log-prob statistics.
   Learned signals pick their L2 strength by 5-fold cross-validation on the calibration half.
4. On the held-out half, per family and pooled: APGR, CPT(50%), CPT(80%), the share escalated to reach 95%
   of cloud quality, and the AUROC of the signal for "edge right". The pooled policy's threshold, chosen on
   the calibration half, is then applied to the held-out half: what a deployed router would have done.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import TaskItem, score
from edgewise.progress import Progress
from edgewise.route import calibrate as cal
from edgewise.route.answers import AnswerCache, Answerer
from edgewise.route.confidence import (EmbedFn, LogisticScorer, logprob_features,
                                       sequence_confidence)

LOGPROB_SIGNALS = ("p10", "mean", "min")
LEARNED_SIGNALS = ("prompt", "combined")
SIGNALS = LOGPROB_SIGNALS + LEARNED_SIGNALS
L2_GRID = (1.0, 10.0, 100.0, 1000.0)


@dataclass
class EvalRow:
    family: str
    id: str
    prompt: str
    edge_answer: str
    edge_logprobs: list[float]
    edge_quality: float
    cloud_answer: str
    cloud_quality: float
    error: str | None = None  # a model failed on this item (the row is left out of the metrics)

    @property
    def calibration(self) -> bool:
        """The half this row belongs to: fixed by its id, the same on every run."""
        return hashlib.sha256(f"split:{self.id}".encode()).digest()[0] % 2 == 0


def answer_items(items: list[TaskItem], edge: Answerer, cloud: Answerer, cache: AnswerCache,
                 progress: Progress | None = None) -> list[EvalRow]:
    """Both models' scored answers to every item, in item order (cached answers cost nothing). The edge answers
    all items first, then the cloud: on a small machine the two never compete for the cores."""
    progress = progress or Progress()
    got = {}
    for who, label in ((edge, "edge"), (cloud, "cloud")):
        progress.stage(f"{label} answers ({who.name})", len(items))
        for it in items:
            progress.step(it.family)
            got[label, it.id] = cache.answer(who, it.prompt, it.max_tokens)[0]
    progress.done()
    rows = []
    for it in items:
        e, c = got["edge", it.id], got["cloud", it.id]
        err = "; ".join(f"{k} {a.error}" for k, a in (("edge", e), ("cloud", c)) if a.error) or None
        rows.append(EvalRow(it.family, it.id, it.prompt, e.text, list(e.logprobs), score(it, e.text),
                            c.text, score(it, c.text), err))
    return rows


# --- signals ---------------------------------------------------------------------------------

def _good(rows: list[EvalRow]) -> np.ndarray:
    """The label a learned signal predicts: the edge's answer is not worse than the cloud's."""
    return np.array([r.edge_quality >= r.cloud_quality for r in rows], dtype=float)


def _folds(n: int, k: int = 5) -> list[np.ndarray]:
    return [np.arange(n)[i::k] for i in range(k)]


def _fit_l2(X: np.ndarray, y: np.ndarray, grid=L2_GRID) -> tuple[float, np.ndarray]:
    """(the L2 strength with the best 5-fold log-loss, the out-of-fold predictions at that strength)."""
    best = (math.inf, grid[0], np.full(len(y), y.mean()))
    for l2 in grid:
        oof = np.full(len(y), y.mean())
        for test in _folds(len(y)):
            train = np.setdiff1d(np.arange(len(y)), test)
            if len(np.unique(y[train])) < 2:
                continue
            oof[test] = LogisticScorer.fit(X[train], y[train], l2=l2).predict(X[test])
        p = np.clip(oof, 1e-6, 1 - 1e-6)
        loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        if loss < best[0]:
            best = (loss, l2, oof)
    return best[1], best[2]


@dataclass
class FittedSignals:
    """Scores for every row under every signal; learned ones are out-of-fold on the calibration half and
    fitted on the whole calibration half for the held-out one."""

    scores: dict[str, np.ndarray]
    models: dict[str, LogisticScorer]
    l2: dict[str, float]


def fit_signals(rows: list[EvalRow], embed_fn: EmbedFn | None, embed_name: str = "minilm") -> FittedSignals:
    calib = np.array([r.calibration for r in rows])
    scores = {m: np.array([sequence_confidence(r.edge_logprobs, m) for r in rows]) for m in LOGPROB_SIGNALS}
    models, l2s = {}, {}
    y = _good(rows)
    if embed_fn is not None and len(np.unique(y[calib])) == 2 and calib.sum() >= 10:
        emb = np.asarray(embed_fn([r.prompt for r in rows]), dtype=float)
        lpf = np.stack([logprob_features(r.edge_logprobs) for r in rows])
        for name, X in (("prompt", emb), ("combined", np.hstack([emb, lpf]))):
            l2, oof = _fit_l2(X[calib], y[calib])
            model = LogisticScorer.fit(X[calib], y[calib], l2=l2, meta={
                "embed": embed_name, "label": "edge_quality >= cloud_quality",
                "features": "embed" if name == "prompt" else "embed+logprobs", "rows": int(calib.sum()), "l2": l2})
            s = model.predict(X)
            s[calib] = oof  # never score a calibration row with a model that saw it
            scores[name], models[name], l2s[name] = s, model, l2
    return FittedSignals(scores, models, l2s)


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


def held_out_metrics(rows: list[EvalRow], scores: np.ndarray, family: str, signal: str,
                     target: float = 0.95) -> SignalResult:
    d = routing_data(rows, scores)
    m = cal.routellm_metrics(d)
    esc = cal.choose_threshold(d, target).share if d.cloud_q.mean() > 0 else 0.0
    right = np.array([r.edge_quality >= 1.0 for r in rows], dtype=float)
    return SignalResult(family, signal, len(rows), m.weak, m.strong, m.apgr, m.cpt50, m.cpt80, esc,
                        auroc(scores, right))


@dataclass
class Deployed:
    """The pooled policy: threshold chosen on the calibration half, applied to the held-out half."""

    signal: str
    threshold: float
    calib_apgr: float
    held_escalated: float
    held_quality: float
    held_of_cloud: float


def evaluate(rows: list[EvalRow], embed_fn: EmbedFn | None, target: float = 0.95, embed_name: str = "minilm") -> dict:
    """The whole report as a dict (JSON-ready): per-family and pooled held-out metrics for every signal,
    and the deployed pooled policy per signal. Rows with a failed answer are left out and counted."""
    if not 0.0 < target <= 1.0:
        raise EdgewiseError(f"--target must be in (0, 1], got {target}")
    ok = [r for r in rows if r.error is None]
    if len(ok) < 20:
        raise EdgewiseError(f"only {len(ok)} items were answered by both models: route eval needs at least 20 "
                            "(hundreds per family are better)")
    fitted = fit_signals(ok, embed_fn, embed_name)
    calib = np.array([r.calibration for r in ok])
    held = ~calib
    families = sorted({r.family for r in ok})
    results, deployed = [], []
    for sig, s in fitted.scores.items():
        for fam in families + ["all"]:
            idx = np.array([(fam == "all" or r.family == fam) for r in ok]) & held
            sub = [r for r, k in zip(ok, idx) if k]
            if len(sub) >= 2:
                results.append(held_out_metrics(sub, s[idx], fam, sig, target))
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
    oracle = {}
    for fam in families + ["all"]:
        sub = [r for r, k in zip(ok, held) if k and (fam == "all" or r.family == fam)]
        if len(sub) >= 2:
            gap = np.array([r.edge_quality - r.cloud_quality for r in sub])
            oracle[fam] = cal.routellm_metrics(routing_data(sub, gap)).apgr
    usable = [d for d in deployed if not math.isnan(d.calib_apgr)]
    best = max(usable, key=lambda d: d.calib_apgr).signal if usable else "p10"
    return {
        "items": len(rows), "answered": len(ok), "failed": len(rows) - len(ok), "target": target,
        "calibration_rows": int(calib.sum()), "held_out_rows": int(held.sum()),
        "families": {f: {"n": sum(r.family == f for r in ok),
                         "edge_quality": float(np.mean([r.edge_quality for r in ok if r.family == f])),
                         "cloud_quality": float(np.mean([r.cloud_quality for r in ok if r.family == f]))}
                     for f in families},
        "held_out": [asdict(r) for r in results],
        "oracle_apgr": oracle,
        "deployed": [asdict(d) for d in deployed],
        "l2": fitted.l2,
        "best_signal": best,
        "_fitted": fitted,  # not JSON: the caller saves the best learned model and drops this key
        "_rows": ok,
    }
