"""`edgewise route ...`: calibrate a routing policy, train a prompt scorer, check PII detection."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edgewise.cli.app import app
from edgewise.errors import EdgewiseError

# numpy and edgewise.route are imported inside the commands: every command module loads when `edgewise` starts.

route_app = typer.Typer(help="Hybrid edge-cloud routing: evaluate routers, calibrate policies, train scorers.",
                        no_args_is_help=True)
app.add_typer(route_app, name="route")


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f}%"


@route_app.command()
def calibrate(
    data: Path = typer.Option(..., "--data", help="JSONL rows scored for both models (see docs/routing.md)."),
    target: float = typer.Option(0.95, "--target", help="Share of cloud-only quality to reach."),
    out: Path = typer.Option(..., "--out", help="Policy file to write (TOML)."),
    plot: Path | None = typer.Option(None, "--plot", help="Also write a risk-coverage PNG here."),
    method: str = typer.Option("p10", "--method", help="Score for rows with edge_logprobs: mean, min, p10, p25."),
    match: str = typer.Option("contains", "--match", help="Quality for rows with a reference: exact or contains."),
    scorer: Path | None = typer.Option(None, "--scorer", help="Score prompts with this learned scorer (.npz)."),
    bins: int = typer.Option(10, "--bins", help="Threshold bins for the RouteLLM metrics (RouteLLM uses 10)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Choose the escalation threshold that reaches --target of cloud quality with the fewest escalations."""
    from edgewise.route.eval import calibrate as cal

    if out.exists() and not force:
        raise EdgewiseError(f"{out} exists: pass --force to overwrite it")
    score_fn = None
    if scorer is not None:
        from edgewise.route.confidence import load_prompt_scorer

        score_fn = load_prompt_scorer(scorer).score_many
    d = cal.load_data(data, method=method, match=match, score_fn=score_fn)
    curve = cal.full_curve(d)
    choice = cal.choose_threshold(d, target, curve)
    m = cal.routellm_metrics(d, bins)
    text = cal.policy_toml(choice, m, source="prompt" if scorer else "logprobs", method=method,
                           scorer=str(scorer.resolve()) if scorer else None, data=str(data), target=target,
                           n=len(d.score), bins=bins)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)

    t = Table(title=f"Routing calibration on {data.name} ({len(d.score)} prompts)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("edge-only quality", f"{m.weak:.4f}")
    t.add_row("cloud-only quality", f"{m.strong:.4f}")
    t.add_row(f"threshold (escalate when score < t) at target {target:g}", f"{choice.threshold:.6g}")
    t.add_row("escalated", f"{choice.escalated} / {len(d.score)} ({choice.share:.1%})")
    t.add_row("router quality", f"{choice.quality:.4f} ({choice.of_cloud:.1%} of cloud)")
    t.add_row(f"APGR ({bins} bins, RouteLLM)", "n/a" if math.isnan(m.apgr) else f"{m.apgr:.4f}")
    t.add_row("CPT(50%)", _pct(m.cpt50))
    t.add_row("CPT(80%)", _pct(m.cpt80))
    con = Console()
    con.print(t)
    if plot is not None:
        cal.plot(curve, m, choice, plot)
        con.print(f"risk-coverage plot: {plot}")
    con.print(f"policy written: {out}")


def _num(x, fmt: str = "{:.3f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


@route_app.command("eval")
def eval_cmd(
    edge: str = typer.Option(..., "--edge", help="Edge model: packaged alias, GGUF, ONNX or HF folder."),
    cloud: str = typer.Option(..., "--cloud", help="Cloud base URL of an OpenAI-compatible server, e.g. http://host:8080/v1."),
    cloud_model: str = typer.Option(..., "--cloud-model", help="Model name the cloud server expects."),
    task: list[str] = typer.Option(..., "--task", help="KIND:FILE with KIND mmlu, gsm8k, bigbench (task.json) or qa; repeat for more."),
    out: Path = typer.Option(Path("route-eval"), "--out", help="Folder for the report (JSON), the answers (JSONL) and the plot."),
    calibrate_out: Path | None = typer.Option(None, "--calibrate-out", help="Write the best policy here (TOML; a learned scorer goes beside it)."),
    limit: int | None = typer.Option(None, "--limit", help="Items per task: a seeded sample, the same on every run."),
    seed: int = typer.Option(0, "--seed", help="Seed of the --limit sample."),
    target: float = typer.Option(0.95, "--target", help="Share of cloud-only quality the policy must keep."),
    embed: str = typer.Option("minilm", "--embed", help="Prompt embedding for the learned signals: minilm, hash or none."),
    backend: str = typer.Option("ort", "--backend", help="Edge backend."),
    precision: str = typer.Option("auto", "--precision", help="Edge precision."),
    threads: int | None = typer.Option(None, "--threads", help="Edge threads."),
    cache: Path | None = typer.Option(None, "--cache", help="Answer cache (SQLite); default $EDGEWISE_HOME/route-answers.sqlite."),
    cloud_key_env: str | None = typer.Option(None, "--cloud-key-env", help="Env var holding the cloud's bearer key."),
    cloud_model_hash: str | None = typer.Option(None, "--cloud-model-hash", help="Hash of the cloud's weights, part of the cache key when known."),
    force: bool = typer.Option(False, "--force", help="Overwrite --calibrate-out if it exists."),
    samples: int = typer.Option(4, "--samples", help="Answer consistency: extra sampled edge answers per item (0: off)."),
    sample_temperature: float = typer.Option(0.7, "--sample-temperature", help="Temperature of those samples."),
    overlap: bool = typer.Option(False, "--overlap", help="The cloud answers while the edge does (a cloud in another "
                                 "process uses the cores the edge leaves idle; the edge's seconds then include that load)."),
):
    """Run an edge and a cloud model on tasks with references, fit routers on one half, report the other."""
    from edgewise.cli.progress_view import RichProgress
    from edgewise.route.eval.command import RouteEvalConfig, run_route_eval
    from edgewise.route.eval.table import markdown_table

    if calibrate_out is not None and calibrate_out.exists() and not force:
        raise EdgewiseError(f"{calibrate_out} exists: pass --force to overwrite it")
    cfg = RouteEvalConfig(edge=edge, cloud_url=cloud, cloud_model=cloud_model, tasks=tuple(task), out=out,
                          backend=backend, precision=precision, threads=threads, limit=limit, seed=seed,
                          target=target, embed=embed, cache=cache, cloud_model_hash=cloud_model_hash,
                          cloud_key_env=cloud_key_env, calibrate_out=calibrate_out, samples=samples,
                          sample_temperature=sample_temperature, overlap=overlap)
    err = Console(stderr=True)
    progress = RichProgress(err)
    try:
        report, files = run_route_eval(cfg, progress)
    finally:
        progress.done()
    con = Console()
    fams = ", ".join(f"{f} {v['edge_quality']:.2f}/{v['cloud_quality']:.2f}" for f, v in report["families"].items())
    con.print(f"{report['answered']} items answered by both ({report['failed']} failed); edge/cloud accuracy: {fams}")
    t = Table(title=f"Held-out routing ({report['held_out_rows']} items; fitted on {report['calibration_rows']})")
    for c in ("family", "signal", "n", "edge", "cloud", "APGR", "CPT(50%)", "CPT(80%)", f"cloud calls at {target:g}",
              "AUROC"):
        t.add_column(c, justify="left" if c in ("family", "signal") else "right")
    for r in report["held_out"]:
        t.add_row(r["family"], r["signal"], str(r["n"]), _num(r["edge_quality"]), _num(r["cloud_quality"]),
                  _num(r["apgr"]), _num(r["cpt50"], "{:.1f}%"), _num(r["cpt80"], "{:.1f}%"),
                  _num(r["escalated_at_95"], "{:.1%}"), _num(r["auroc_edge_right"]))
    con.print(t)
    d = Table(title="Pooled policy: threshold from the calibration half, applied to the held-out half")
    for c in ("signal", "threshold", "APGR (calibration)", "escalated", "quality", "of cloud"):
        d.add_column(c, justify="left" if c == "signal" else "right")
    for r in report["deployed"]:
        d.add_row(r["signal"] + (" (best)" if r["signal"] == report["best_signal"] else ""), _num(r["threshold"], "{:.4g}"),
                  _num(r["calib_apgr"]), _num(r["held_escalated"], "{:.1%}"), _num(r["held_quality"]),
                  _num(r["held_of_cloud"], "{:.1%}"))
    con.print(d)
    typer.echo(markdown_table(report))  # the per-family table with intervals, random and oracle (also route-eval.md)
    for k, p in files.items():
        con.print(f"{k}: {p}")


@route_app.command("train-scorer")
def train_scorer(
    data: Path = typer.Option(..., "--data", help="JSONL rows with prompt, edge and cloud quality."),
    out: Path = typer.Option(..., "--out", help="Scorer file to write (.npz)."),
    embed: str = typer.Option("minilm", "--embed", help="minilm (packaged all-MiniLM-L6-v2) or hash (no model)."),
    l2: float = typer.Option(1.0, "--l2", help="L2 regularisation strength."),
    match: str = typer.Option("contains", "--match", help="Quality for rows with a reference: exact or contains."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
):
    """Learn P(edge answer is not worse than the cloud's | prompt) for `source = "prompt"` routing."""
    import numpy as np

    from edgewise.route.eval import calibrate as cal
    from edgewise.route.confidence import EMBEDDERS, LogisticScorer

    if embed not in EMBEDDERS:
        raise EdgewiseError(f"--embed must be one of {', '.join(EMBEDDERS)}, got {embed!r}")
    if out.exists() and not force:
        raise EdgewiseError(f"{out} exists: pass --force to overwrite it")
    d = cal.load_data(data, match=match, score_fn=lambda p: np.zeros(len(p)))
    y = (d.edge_q >= d.cloud_q).astype(float)
    X = EMBEDDERS[embed]()(d.prompts)
    model = LogisticScorer.fit(X, y, l2=l2, meta={"embed": embed, "label": "edge_quality >= cloud_quality",
                                                   "rows": len(y)})
    p = model.predict(X)
    acc = float(((p >= 0.5) == (y == 1)).mean())
    path = model.save(out)
    typer.echo(f"scorer written: {path} ({len(y)} rows, {int(y.sum())} edge-ok; training accuracy {acc:.3f}, "
               "calibrate on held-out rows)")
