"""`edgewise route eval`: run an edge and a cloud model on tasks with references, and measure routers held out.

1. Both models answer every item greedily (answers cached on disk, edgewise.route.answers); each answer is
   scored by its task's rule (edgewise.route.tasks).
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
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.progress import Progress
from edgewise.route import calibrate as cal
from edgewise.route.answers import AnswerCache, Answerer
from edgewise.route.confidence import (EmbedFn, LogisticScorer, logprob_features, LOGPROB_FEATURES,
                                       sequence_confidence)
from edgewise.route.tasks import TaskItem, score

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


def _data(rows: list[EvalRow], score: np.ndarray) -> cal.Data:
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
    d = _data(rows, scores)
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
        dc = _data([r for r, k in zip(ok, calib) if k], s[calib])
        dh = _data([r for r, k in zip(ok, held) if k], s[held])
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
            oracle[fam] = cal.routellm_metrics(_data(sub, gap)).apgr
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


# --- outputs ---------------------------------------------------------------------------------

def policy_for(report: dict, out: Path) -> str:
    """The pooled policy of the signal that did best on the calibration half (its APGR there), as TOML.
    A learned signal's model is saved beside the policy as `<policy stem>.scorer.npz`."""
    sig = report["best_signal"]
    dep = next(d for d in report["deployed"] if d["signal"] == sig)
    fam = next(r for r in report["held_out"] if r["signal"] == sig and r["family"] == "all")
    scorer = None
    if sig in LEARNED_SIGNALS:
        model: LogisticScorer = report["_fitted"].models[sig]
        scorer = str(model.save(out.with_suffix(".scorer.npz")).resolve())
    source = sig if sig in LEARNED_SIGNALS else "logprobs"
    choice = cal.Choice(dep["threshold"], round(dep["held_escalated"] * report["held_out_rows"]),
                        dep["held_escalated"], dep["held_quality"], dep["held_of_cloud"])
    m = cal.Metrics(fam["edge_quality"], fam["cloud_quality"], np.array([]), np.array([]), math.nan,
                    fam["apgr"], fam["cpt50"], fam["cpt80"])
    return cal.policy_toml(choice, m, source=source, method=sig if source == "logprobs" else cal.DEFAULT_METHOD,
                           scorer=scorer, data="route eval (held-out figures)", target=report["target"],
                           n=report["held_out_rows"], bins=10)


def plot(report: dict, path: str | Path) -> Path:
    """Held-out risk-coverage and quality-vs-cloud-calls for every signal: pooled, then per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[EvalRow] = report["_rows"]
    scores = report["_fitted"].scores
    held = np.array([not r.calibration for r in rows])
    families = ["all"] + sorted(report["families"])
    ncol = 3
    nrow = -(-(len(families) + 1) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.8 * nrow), squeeze=False)
    flat = list(axes.flat)
    rc = flat[0]
    for sig, s in scores.items():
        d = _data([r for r, k in zip(rows, held) if k], s[held])
        c = cal.full_curve(d)
        ok = c.coverage > 0
        rc.plot(c.coverage[ok], c.risk[ok], "-", label=sig)
    rc.set(xlabel="coverage (share kept on the edge)", ylabel="risk (edge error on kept)",
           title="Risk-coverage, held out, all families")
    rc.legend(fontsize=7)
    for ax, fam in zip(flat[1:], families):
        idx = held & np.array([fam == "all" or r.family == fam for r in rows])
        sub = [r for r, k in zip(rows, idx) if k]
        for sig, s in scores.items():
            d = _data(sub, s[idx])
            c = cal.full_curve(d)
            apgr = next(x["apgr"] for x in report["held_out"] if x["family"] == fam and x["signal"] == sig)
            ax.plot(100 * c.k / max(c.k[-1], 1), c.quality, "-", label=f"{sig} (APGR {apgr:.2f})")
        if sub:
            ax.axhline(np.mean([r.edge_quality for r in sub]), color="grey", ls="--", lw=0.8)
            ax.axhline(np.mean([r.cloud_quality for r in sub]), color="red", ls="--", lw=0.8)
        ax.set(xlabel="cloud calls (%)", ylabel="quality", title=f"{fam} (n={len(sub)}, held out)")
        ax.legend(fontsize=7, loc="lower right")
    for ax in flat[len(families) + 1:]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def json_report(report: dict, **extra) -> dict:
    """The report without its in-memory parts, with the run's settings added; nan (an undefined metric,
    e.g. CPT when the cloud is no better) becomes null, as strict JSON wants."""
    return _clean({**{k: v for k, v in report.items() if not k.startswith("_")}, **extra})


def _clean(o):
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (float, np.floating)):
        return None if not math.isfinite(o) else float(o)
    if isinstance(o, np.integer):
        return int(o)
    return o


def write_rows(rows: list[EvalRow], path: Path) -> Path:
    """Every answered item as JSONL in `edgewise route calibrate`'s schema, so the same data can be
    re-calibrated or inspected without rerunning the models."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({**asdict(r), "split": "calibration" if r.calibration else "held_out"}) + "\n")
    return path


# --- the whole command -----------------------------------------------------------------------

@dataclass(frozen=True)
class RouteEvalConfig:
    edge: str
    cloud_url: str
    cloud_model: str
    tasks: tuple[str, ...]
    out: Path
    backend: str = "ort"
    precision: str = "auto"
    threads: int | None = None
    limit: int | None = None  # items per task (a seeded sample)
    seed: int = 0
    target: float = 0.95
    embed: str = "minilm"  # minilm | hash | none (log-prob signals only)
    cache: Path | None = None
    cloud_model_hash: str | None = None
    cloud_key_env: str | None = None
    cloud_deadline_s: float = 300.0
    calibrate_out: Path | None = None

    def __post_init__(self):
        if not self.tasks:
            raise EdgewiseError("route eval needs at least one --task KIND:FILE")
        if self.embed not in ("minilm", "hash", "none"):
            raise EdgewiseError(f"--embed must be minilm, hash or none, got {self.embed!r}")
        if self.limit is not None and self.limit < 1:
            raise EdgewiseError(f"--limit must be a positive integer, got {self.limit}")
        if not 0.0 < self.target <= 1.0:
            raise EdgewiseError(f"--target must be in (0, 1], got {self.target}")


def run_route_eval(cfg: RouteEvalConfig, progress: Progress | None = None, *, edge: Answerer | None = None,
                   cloud: Answerer | None = None) -> tuple[dict, dict[str, Path]]:
    """Answer, score, fit and report; returns (JSON report, written files). `edge`/`cloud` replace the
    answerers built from cfg (a benchmark that already holds a loaded model)."""
    import json

    from edgewise.route.answers import CloudAnswerer, EdgeAnswerer
    from edgewise.route.confidence import EMBEDDERS
    from edgewise.route.tasks import load_task

    items = [it for spec in cfg.tasks for it in load_task(spec, cfg.limit, cfg.seed)]
    cache = AnswerCache(cfg.cache)
    try:
        edge = edge or EdgeAnswerer(cfg.edge, cfg.backend, cfg.precision, cfg.threads)
        cloud = cloud or CloudAnswerer(cfg.cloud_url, cfg.cloud_model, model_hash=cfg.cloud_model_hash,
                                       deadline_s=cfg.cloud_deadline_s, key_env=cfg.cloud_key_env)
        rows = answer_items(items, edge, cloud, cache, progress)
    finally:
        cache.close()
    embed_fn = None if cfg.embed == "none" else EMBEDDERS[cfg.embed]()
    report = evaluate(rows, embed_fn, cfg.target, cfg.embed)
    cfg.out.mkdir(parents=True, exist_ok=True)
    files = {"rows": write_rows(rows, cfg.out / "answers.jsonl"), "plot": plot(report, cfg.out / "route-eval.png")}
    if cfg.calibrate_out is not None:
        cfg.calibrate_out.parent.mkdir(parents=True, exist_ok=True)
        cfg.calibrate_out.write_text(policy_for(report, cfg.calibrate_out))
        files["policy"] = cfg.calibrate_out
    data = json_report(report, edge=getattr(edge, "name", cfg.edge), cloud=getattr(cloud, "name", cfg.cloud_model),
                       tasks=list(cfg.tasks), limit=cfg.limit, seed=cfg.seed, embed=cfg.embed)
    files["report"] = cfg.out / "route-eval.json"
    files["report"].write_text(json.dumps(data, indent=1, default=str, allow_nan=False) + "\n")
    return data, files
