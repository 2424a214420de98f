"""`edgewise route ...`: calibrate a routing policy, train a prompt scorer, check PII detection."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edgewise.cli.app import app
from edgewise.errors import EdgewiseError

# numpy and edgewise.route are imported inside the commands: every command module loads when `edgewise` starts.

route_app = typer.Typer(help="Hybrid edge-cloud routing: calibrate policies, train scorers, check PII.",
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
    from edgewise.route import calibrate as cal

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

    from edgewise.route import calibrate as cal
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


@route_app.command("pii")
def pii_cmd(text: str = typer.Argument(..., help="Text to scan."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")):
    """Show what the privacy policy would redact in TEXT: validated patterns (e-mail, phone, card, IBAN, IP, SSN,
    NINO) and the on-device tagger's person names and street addresses (EDGEWISE_PII_MODEL=off: patterns only)."""
    from edgewise.route.pii import available_kinds, detect, redact

    red, mapping = redact(text)
    kinds = [e.kind for e in detect(text)]
    if as_json:
        typer.echo(json.dumps({"redacted": red, "kinds": kinds, "detectors": available_kinds()}))
    else:
        typer.echo(red)
        typer.echo(f"found: {', '.join(kinds) or 'nothing'} (detectors: {', '.join(available_kinds())})")
