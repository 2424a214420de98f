"""The router's own overhead per request: policy chain, PII scan and redaction, restore, breaker,
budget, the cloud-call thread and the decision log. The model calls themselves are excluded
(edge_fn and cloud_fn return at once; their measured time is subtracted).

Every request is new to the PII tagger (its per-text cache is cleared first), as on a server where each prompt
arrives once; --cached measures the repeat-prompt path instead (the tagger answers from its cache). The tagger's
word table (each ASCII word's pieces, privacy.tagger.WordTable) stays warm, as the words of a new prompt are mostly
words seen before; --new-words empties it before every request too: every word new, the worst case.
--no-word-table (the tokenizer reads every prompt) and --ort-skipln (onnxruntime's own SkipLayerNormalization
fusion, which the tagger turns off) undo one of issue 23's item-5 changes each, to measure it alone.
--stages splits the CPU time of a request: tokenizer, onnxruntime, the rest of the tagger, the patterns and the
merging of detections (pii.detect less the tagger), and the rest of the router.

    .venv/bin/python benchmarks/router_overhead.py [--n 5000] [--json] [--watchdog] [--cached]
        [--source logprobs|prompt|combined --scorer FILE.npz] [--prompt chat_1k_pii ...] [--unfused] [--new-words]
        [--no-word-table] [--ort-skipln] [--stages]

--unfused runs the tagger's exported graph as it is, without fusing each layer's attention into one kernel
(privacy.tagger.fuse_attention): the cost of that step alone.

--source prompt/combined puts a learned scorer (from `edgewise route eval` or `route train-scorer`) in the
confidence policy: its MiniLM forward pass then counts as router overhead, as it does in a server.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from edgewise.privacy import pii
from edgewise.privacy import tagger as pii_tagger
from edgewise.privacy.tagger import PiiTagger, _tag_cached
from edgewise.route import Router
from edgewise.route.decision_log import DecisionLog
from edgewise.runtime.types import GenerationResult

rng = np.random.default_rng(0)


def gen(mean_lp: float, n_tokens: int = 64) -> GenerationResult:
    lp = list(np.minimum(0.0, rng.normal(mean_lp, 0.5, n_tokens)))
    return GenerationResult(text="edge answer " * 8, token_ids=list(range(n_tokens)), logprobs=lp, prompt_tokens=50,
                            generation_tokens=n_tokens, prompt_tps=0.0, generation_tps=0.0, ttft_ms=0.0,
                            peak_rss_mb=0.0, finish_reason="stop")


FILLER = ("The quarterly report covers revenue, costs and the outlook for the next two quarters, with notes on "
          "supply, hiring and the product roadmap. ")
PROMPTS = {
    # ~60 chars, no PII
    "short": [{"role": "user", "content": "What is the capital of Australia, and why not Sydney?"}],
    # ~1 KB chat with a system prompt and four PII values
    "chat_1k_pii": [
        {"role": "system", "content": "You are a helpful assistant for the finance team. " + FILLER},
        {"role": "user", "content": FILLER * 4 + "Send it to jane.doe@corp.example or call +44 20 7946 0958; "
                                                 "refund card 4111 1111 1111 1111 to DE89 3704 0044 0532 0130 00."},
    ],
    # ~4 KB prompt, no PII
    "doc_4k": [{"role": "user", "content": FILLER * 30 + "Summarise the above in three bullet points."}],
}


def timed(acc: dict[str, float], name: str, owner, attr: str) -> None:
    """Replace owner.attr by a wrapper that adds the routing thread's CPU seconds in it to acc[name]."""
    fn = getattr(owner, attr)

    def wrapper(*a, **k):
        c0 = time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            acc[name] = acc.get(name, 0.0) + time.thread_time() - c0

    setattr(owner, attr, wrapper)


class InstantCloud:
    """Stands in for CloudClient, which the router calls inline (it honours its deadline itself)."""

    honours_deadline = True

    def __call__(self, request, deadline_s):
        return "cloud answer about [EMAIL_1]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000, help="requests per prompt kind")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--watchdog", action="store_true",
                    help="use a plain function as cloud_fn, which the router runs in a watchdog thread")
    ap.add_argument("--cached", action="store_true", help="let the PII tagger answer repeated prompts from its cache")
    ap.add_argument("--source", default="logprobs", choices=("logprobs", "prompt", "combined"),
                    help="the confidence policy's source")
    ap.add_argument("--scorer", type=Path, help="the learned scorer for --source prompt/combined")
    ap.add_argument("--prompt", action="append", choices=list(PROMPTS),
                    help="measure only this prompt kind (repeatable; default: all)")
    ap.add_argument("--unfused", action="store_true", help="the tagger's exported graph, attention not fused")
    ap.add_argument("--new-words", action="store_true", help="empty the tagger's word table before every request")
    ap.add_argument("--no-word-table", action="store_true", help="the tokenizer reads every prompt")
    ap.add_argument("--ort-skipln", action="store_true", help="let onnxruntime fuse SkipLayerNormalization")
    ap.add_argument("--stages", action="store_true", help="split each request's CPU time into stages")
    args = ap.parse_args()
    if args.source != "logprobs" and args.scorer is None:
        ap.error(f"--source {args.source} needs --scorer FILE.npz")
    if args.unfused or args.ort_skipln:  # the router's detectors ask shared_tagger, which returns what this table holds
        folder = pii_tagger.default_model_dir()
        pii_tagger._shared[str(folder)] = PiiTagger(folder, threads=1, fuse=not args.unfused,
                                                    skip_layernorm_fusion=args.ort_skipln)
    tagger = pii_tagger.shared_tagger()
    if tagger is None and (args.no_word_table or args.ort_skipln or args.new_words):
        ap.error(f"--no-word-table, --ort-skipln and --new-words need the tagger: unset {pii_tagger.ENV}")
    if args.no_word_table:
        tagger.words = None
    forget = (lambda: None) if args.cached else _tag_cached.cache_clear
    words = getattr(tagger, "words", None)  # None: a tagger without a word table
    stages: dict[str, float] = {}
    if args.stages:
        timed(stages, "tokenizer", pii_tagger, "encode")
        timed(stages, "onnxruntime", tagger.session, "run")
        timed(stages, "tagger", pii_tagger, "_tag_cached")
        timed(stages, "detect", pii, "detect")
    if args.new_words and words is not None:
        forget = lambda f=forget: (f(), words.known.clear())  # noqa: E731
    conf = {"threshold": -1.0, "method": "p10"} if args.source == "logprobs" else \
        {"threshold": 0.5, "source": args.source, "scorer": str(args.scorer.resolve())}
    doc = {"policies": {"privacy": {"mode": "redact"}, "connectivity": {},
                        "confidence": conf, "budget": {"max_share": 0.5}}}
    edges = [gen(-0.2), gen(-1.5)]  # confident and unsure answers: half the requests try to escalate
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = DecisionLog(Path(tmp) / "decisions.jsonl")
        router = Router.from_policy(doc, log=log)
        cloud = InstantCloud() if not args.watchdog else (lambda req, deadline_s: "cloud answer about [EMAIL_1]")
        for name in args.prompt or list(PROMPTS):
            msgs = PROMPTS[name]
            for i in range(200):  # warm-up
                router.route(msgs, lambda q, e=edges[i % 2]: e, cloud)
            ov = {"edge": [], "cloud": []}
            cpu = []
            stages.clear()
            for i in range(args.n):
                forget()
                c0 = time.thread_time()
                res = router.route(msgs, lambda q, e=edges[i % 2]: e, cloud)
                cpu.append((time.thread_time() - c0) * 1e3)
                ov["cloud" if res.answered_by == "cloud" else "edge"].append(res.latency_ms["overhead"])
            all_ = np.array(ov["edge"] + ov["cloud"])
            out[name] = {"chars": sum(len(m["content"]) for m in msgs), "n": len(all_),
                         "p50_ms": float(np.percentile(all_, 50)), "p95_ms": float(np.percentile(all_, 95)),
                         "p99_ms": float(np.percentile(all_, 99)),
                         "p95_ms_answered_on_edge": float(np.percentile(ov["edge"], 95)),
                         "p95_ms_escalated": float(np.percentile(ov["cloud"], 95)) if ov["cloud"] else None,
                         # CPU time of the routing thread: what the router costs without the
                         # scheduler's preemptions on a busy machine (clock granularity ~1 us)
                         "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p95_ms": float(np.percentile(cpu, 95)),
                         "escalated_share": len(ov["cloud"]) / len(all_)}
            if args.stages:  # mean CPU ms per request; each stage less the stages inside it
                per = {k: v * 1e3 / args.n for k, v in stages.items()}
                out[name]["stages_cpu_ms"] = {
                    "tokenizer": per.get("tokenizer", 0.0), "onnxruntime": per.get("onnxruntime", 0.0),
                    "tagger_other": per.get("tagger", 0.0) - per.get("tokenizer", 0.0) - per.get("onnxruntime", 0.0),
                    "patterns_and_merging": per.get("detect", 0.0) - per.get("tagger", 0.0),
                    "router_other": float(np.mean(cpu)) - per.get("detect", 0.0)}
        log.close()
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; wall = router overhead per request, "
          f"cpu = routing thread's CPU time; PII tagger {'cached' if args.cached else 'cold (every prompt new)'}; "
          f"confidence source {args.source}{'; attention not fused' if args.unfused else ''}"
          f"{'; word table emptied before every request' if args.new_words else ''}"
          f"{'; no word table' if args.no_word_table else ''}"
          f"{'; SkipLayerNormalization fused' if args.ort_skipln else ''}")
    print(f"{'prompt':<14}{'chars':>7}{'n':>7}{'wall p50':>10}{'wall p95':>10}{'wall p99':>10}{'p95 edge':>10}"
          f"{'p95 cloud':>11}{'cpu p50':>9}{'cpu p95':>9}")
    for name, r in out.items():
        print(f"{name:<14}{r['chars']:>7}{r['n']:>7}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['p99_ms']:>10.3f}"
              f"{r['p95_ms_answered_on_edge']:>10.3f}{(r['p95_ms_escalated'] or 0):>11.3f}"
              f"{r['cpu_p50_ms']:>9.3f}{r['cpu_p95_ms']:>9.3f}")
    print("(milliseconds)")
    for name, r in out.items():
        if "stages_cpu_ms" in r:
            parts = ", ".join(f"{k} {v:.3f}" for k, v in r["stages_cpu_ms"].items())
            print(f"{name} CPU ms per request (mean): {parts}")


if __name__ == "__main__":
    main()
