"""`edgewise route eval`, the command: its config, the run from tasks to files, and what it writes (the JSON report,
the answers, the plot and the policy). The measurement itself is edgewise.route.eval.evaluation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.evaluate.task_files import load_task
from edgewise.progress import Progress
from edgewise.route.confidence import EMBEDDERS, LogisticScorer
from edgewise.route.eval import calibrate as cal
from edgewise.route.eval.answers import (AnswerCache, Answerer, CloudAnswerer, ConsistencyConfig, EdgeAnswerer,
                                         EvalRow, answer_items)
from edgewise.route.eval.evaluation import LEARNED_SIGNALS, evaluate, routing_data
from edgewise.route.eval.table import markdown_table

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
                           n=report["held_out_rows"], bins=10, by="edgewise route eval")


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
        d = routing_data([r for r, k in zip(rows, held) if k], s[held])
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
            d = routing_data(sub, s[idx])
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
    limits: tuple[int | None, ...] = ()  # per task, in tasks' order, where it differs from `limit` (None: `limit`)
    seed: int = 0
    target: float = 0.95
    embed: str = "minilm"  # minilm | hash | none (log-prob signals only)
    cache: Path | None = None
    cloud_model_hash: str | None = None
    cloud_key_env: str | None = None
    cloud_deadline_s: float = 300.0
    calibrate_out: Path | None = None
    samples: int = 4  # answer consistency: extra sampled edge answers per item (0: off, the signal is left out)
    sample_temperature: float = 0.7
    overlap: bool = False  # the cloud answers while the edge does (see answer_items): for a cloud in another process

    def __post_init__(self):
        ConsistencyConfig(self.samples, self.sample_temperature)  # checks both, one-line errors
        if not self.tasks:
            raise EdgewiseError("route eval needs at least one --task KIND:FILE")
        if self.embed not in ("minilm", "hash", "none"):
            raise EdgewiseError(f"--embed must be minilm, hash or none, got {self.embed!r}")
        if self.limit is not None and self.limit < 1:
            raise EdgewiseError(f"--limit must be a positive integer, got {self.limit}")
        if self.limits and len(self.limits) != len(self.tasks):
            raise EdgewiseError(f"limits names {len(self.limits)} tasks' item counts for {len(self.tasks)} tasks: "
                                "give one per task (None for the common --limit)")
        if any(n is not None and n < 1 for n in self.limits):
            raise EdgewiseError(f"a task's item count must be a positive integer, got {self.limits}")
        if not 0.0 < self.target <= 1.0:
            raise EdgewiseError(f"--target must be in (0, 1], got {self.target}")

    def task_limit(self, i: int) -> int | None:
        """Items of task i: its own count where limits gives one, else the common limit."""
        own = self.limits[i] if self.limits else None
        return self.limit if own is None else own


def run_route_eval(cfg: RouteEvalConfig, progress: Progress | None = None, *, edge: Answerer | None = None,
                   cloud: Answerer | None = None) -> tuple[dict, dict[str, Path]]:
    """Answer, score, fit and report; returns (JSON report, written files). `edge`/`cloud` replace the
    answerers built from cfg (a benchmark that already holds a loaded model)."""
    items = [it for i, spec in enumerate(cfg.tasks) for it in load_task(spec, cfg.task_limit(i), cfg.seed)]
    cache = AnswerCache(cfg.cache)
    try:
        edge = edge or EdgeAnswerer(cfg.edge, cfg.backend, cfg.precision, cfg.threads)
        cloud = cloud or CloudAnswerer(cfg.cloud_url, cfg.cloud_model, model_hash=cfg.cloud_model_hash,
                                       deadline_s=cfg.cloud_deadline_s, key_env=cfg.cloud_key_env)
        rows = answer_items(items, edge, cloud, cache, progress,
                            ConsistencyConfig(cfg.samples, cfg.sample_temperature) if cfg.samples else None,
                            overlap=cfg.overlap)
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
                       tasks=list(cfg.tasks), limit=cfg.limit, limits=list(cfg.limits) or None, seed=cfg.seed,
                       embed=cfg.embed)
    files["report"] = cfg.out / "route-eval.json"
    files["report"].write_text(json.dumps(data, indent=1, default=str, allow_nan=False) + "\n")
    files["table"] = cfg.out / "route-eval.md"
    files["table"].write_text(markdown_table(data) + "\n")
    return data, files
