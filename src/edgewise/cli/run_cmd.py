"""`edgewise run`, `edgewise embed`, `edgewise models`: the local runtime from the terminal."""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from edgewise.cli.app import app
from edgewise.home import edgewise_home

err = Console(stderr=True)
# transformers, edgewise.runtime and edgewise.models are imported inside the functions that use them: every command
# module loads when `edgewise` starts, and they would add numpy (the runtime), the model resolvers and seconds of
# torch (transformers) to it.

PRECISION_HELP = ("auto | fp32 | int8 | int4 | gguf | gguf-exact (auto: a GGUF runs on its own weights, others fp32; "
                  "gguf-exact: those weights in fp32 compute: exact logits, kept by --draft, ~12x slower per step)")


def _quiet_libraries() -> None:
    import logging  # here, not at the top: nothing else loads it when `edgewise` starts

    # Library progress bars and warnings would interleave with streamed tokens and JSON output.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetics only
        pass


@app.command()
def run(
    model: str = typer.Argument(..., help="Alias, path (HF folder, .gguf, .onnx, .tflite, bundle) or hub id."),
    prompt: str = typer.Argument(..., help="The prompt; wrapped in the model's chat template unless --raw."),
    backend: Optional[str] = typer.Option(None, help="ort | torch | llamacpp | litert (default: litert for a "
                                                      ".tflite, else ort)"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    threads: Optional[int] = typer.Option(None, help="CPU threads (default: the engine's choice)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Maximum new tokens."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_k: int = typer.Option(0, "--top-k"),
    top_p: float = typer.Option(1.0, "--top-p"),
    seed: Optional[int] = typer.Option(None),
    stop: list[str] = typer.Option([], "--stop", help="Stop string (repeatable)."),
    raw: bool = typer.Option(False, "--raw", help="Do not apply the chat template."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming."),
    draft: Optional[str] = typer.Option(None, "--draft", help="Speculative decoding: lookup[:ngram=3,k=8] or "
                                                              "model:REF[,k=4,precision=...] (docs/speculative.md)."),
) -> None:
    """Stream a generation from a local model, fully offline."""
    _quiet_libraries()
    from edgewise.models import TFLITE
    from edgewise.models import load as load_source
    from edgewise.runtime import GenerationConfig, generate, load_model
    from edgewise.runtime.drafts import load_draft

    cfg = GenerationConfig(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                           seed=seed, stop=tuple(stop))
    source = load_source(model)
    backend = backend or ("litert" if source.task == TFLITE else "ort")
    if not as_json:
        err.print(f"[dim]loading {model} on {backend} ({precision})…[/dim]")
    lm = load_model(source, backend=backend, precision=precision, threads=threads)
    drafter = load_draft(draft, lm, threads=threads)  # built once, before the clock starts

    def show(r) -> None:
        sys.stdout.write(r.text)
        sys.stdout.flush()

    last = generate(lm, prompt, cfg, chat=not raw, on_step=None if as_json else show, draft=drafter)
    if as_json:
        print(json.dumps({
            "text": last.text, "tokens": last.generation_tokens, "token_ids": last.token_ids,
            "prompt_tokens": last.prompt_tokens, "prompt_tps": round(last.prompt_tps, 2),
            "generation_tps": round(last.generation_tps, 2), "ttft_ms": round(last.ttft_ms, 2),
            "peak_rss_mb": round(last.peak_rss_mb, 1), "finish_reason": last.finish_reason,
            "backend": lm.backend, "precision": lm.precision, "model": lm.name,
            "load_seconds": round(lm.load_seconds, 2),
            **({"draft": {"spec": draft, **last.draft.as_dict()}} if last.draft is not None else {}),
        }))
    else:
        sys.stdout.write("\n")
        err.print(f"[dim]{last.prompt_tokens} prompt tokens at {last.prompt_tps:.1f} tok/s · "
                  f"{last.generation_tokens} generated at {last.generation_tps:.1f} tok/s · "
                  f"ttft {last.ttft_ms:.0f} ms · peak RSS {last.peak_rss_mb:.0f} MB · {last.finish_reason}[/dim]")
        if last.draft is not None:
            d = last.draft
            err.print(f"[dim]draft {draft}: {d.accepted}/{d.proposed} proposed tokens accepted "
                      f"({100 * d.acceptance:.0f}%) · {last.generation_tokens / max(d.steps + 1, 1):.2f} tokens per "
                      f"forward pass · {last.generation_tps:.1f} tok/s[/dim]")


@app.command()
def embed(
    model: str = typer.Argument(..., help="An encoder: alias (minilm-l6), HF folder or ONNX file."),
    texts: list[str] = typer.Argument(..., help="One or more texts."),
    backend: str = typer.Option("ort", help="ort | torch"),
    precision: str = typer.Option("auto", help=PRECISION_HELP),
    threads: Optional[int] = typer.Option(None),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Mean-pooled, normalised sentence embeddings."""
    _quiet_libraries()
    from edgewise.runtime import embed as embed_texts
    from edgewise.runtime import load_model

    lm = load_model(model, backend=backend, precision=precision, threads=threads)
    vecs = embed_texts(lm, texts)
    if as_json:
        print(json.dumps({"model": lm.name, "backend": lm.backend, "precision": lm.precision,
                          "dim": int(vecs.shape[1]), "embeddings": [[round(float(x), 6) for x in v] for v in vecs]}))
        return
    table = Table("text", "dim", "first values", title=f"{lm.name} on {lm.backend} ({lm.precision})")
    for t, v in zip(texts, vecs):
        table.add_row(t[:50], str(v.shape[0]), " ".join(f"{x:+.3f}" for x in v[:6]) + " …")
    Console().print(table)
    if len(texts) > 1:
        sims = vecs @ vecs.T
        Console().print("cosine similarity to the first text: " + ", ".join(f"{s:.3f}" for s in sims[0]))


@app.command("models")
def list_models(as_json: bool = typer.Option(False, "--json")) -> None:
    """List packaged models and built artifacts in the cache."""
    from edgewise.models.packaged import PACKAGED, is_installed

    rows = [{"name": m.alias, "kind": "packaged", "task": m.task, "installed": is_installed(m.alias),
             "license": m.license, "detail": m.description} for m in PACKAGED.values()]
    art = edgewise_home() / "artifacts"
    for d in sorted(art.glob("*")) if art.exists() else []:
        meta_f = d / ".complete"
        if not meta_f.is_file():
            continue
        meta = json.loads(meta_f.read_text())
        size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
        rows.append({"name": d.name, "kind": "cached", "task": meta.get("kind"), "installed": True,
                     "license": "", "detail": f"{size / 1e6:.1f} MB from {meta.get('source')} {meta.get('options')}"})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "task", "installed", "licence", "detail")
    for r in rows:
        table.add_row(r["name"], r["kind"], str(r["task"]), "yes" if r["installed"] else "no", r["license"], r["detail"])
    Console().print(table)
