"""Decode and prefill speed of the runtime backends, and of llama.cpp's own llama-bench, all in one run, as ratios
to torch fp32.

Each variant runs in its own child process (so load and memory are its own); rounds are interleaved
(every variant once per round) so machine noise hits all of them alike. Greedy, batch 1, a chat prompt,
up to --tokens new tokens (a story prompt, so generation runs to the limit; the table shows the count).
Prefill is a separate timing of --prefill tokens of the packaged demo text from an empty cache, so it
matches llama-bench's pp test in length.

The `llama-bench` variant is llama.cpp's own tool (`make bench-setup` builds it from the vendored source of
the same llama-cpp-python sdist, with this CPU's SIMD): its generation figure is tg<--tokens>, its prefill
figure pp<--prefill>, both its own mean over --passes repetitions, at the same --threads.

    .venv/bin/python benchmarks/runtime_speed.py --rounds 3 --tokens 128 --threads 2
    .venv/bin/python benchmarks/runtime_speed.py --model qwen2.5-coder-0.5b --variants ort-int4,llamacpp-q4_1,llama-bench
    .venv/bin/python benchmarks/runtime_speed.py --variants llama-bench,ort-gguf,llamacpp-q4_1 --baseline llama-bench

A child that fails is a failed run (in the JSON's `failed`); the others still run, and the exit status is 1 with one
line naming the failed runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
# name -> (backend, precision). "llama-bench" is not an Edgewise backend: the child runs llama.cpp's tool.
VARIANTS = {
    "torch-fp32": ("torch", "fp32"),
    "ort-fp32": ("ort", "fp32"),
    "ort-int8": ("ort", "int8"),
    "ort-int4": ("ort", "int4"),
    "ort-gguf": ("ort", "gguf"),  # the GGUF's own blocks transcoded to MatMulNBits (the default for a GGUF)
    "llamacpp-q4_1": ("llamacpp", "fp32"),  # the GGUF as shipped (Q4_1 for SmolLM2, Q4_K_M for Qwen 0.5B)
    "llama-bench": ("llama-bench", "native"),  # llama.cpp's own tool on the same GGUF, as shipped
}
BASELINE = "torch-fp32"
METRICS = ("generation_tps", "prefill_tps", "prompt_tps", "ttft_ms", "peak_rss_mb", "size_mb", "load_s")


def _gguf(model: str):
    from edgewise import models
    from edgewise.runtime.llamacpp_backend import gguf_path

    return gguf_path(models.load(model))


def _prefill_ids(tokenizer, n: int) -> list[int]:
    from edgewise.data import DEMO_TEXT, packaged_text

    ids = tokenizer.encode(packaged_text(DEMO_TEXT).read_text())
    while len(ids) < n:  # the demo text is ~2,000 tokens; repeat it for longer runs
        ids = ids + ids
    return ids[:n]


def child_llama_bench(model: str, tokens: int, threads: int, passes: int, prefill: int) -> dict:
    from edgewise.bench.llamacpp_tools import llama_bench

    path = _gguf(model)
    r = llama_bench(path, threads=threads, n_prompt=prefill, n_gen=tokens, reps=passes)
    return {"generation_tps": r[f"tg{tokens}"], "prefill_tps": r[f"pp{prefill}"] if prefill else None,
            "prompt_tps": None, "ttft_ms": None, "tokens": tokens, "peak_rss_mb": r["peak_rss_mb"],
            "size_mb": path.stat().st_size / 1e6, "load_s": None, "command": r["command"]}


def child(variant: str, model: str, tokens: int, threads: int, passes: int, prefill: int) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    backend, precision = VARIANTS[variant]
    if backend == "llama-bench":
        return {"variant": variant, **child_llama_bench(model, tokens, threads, passes, prefill)}
    from edgewise.runtime import GenerationConfig, generate, load_model

    t0 = time.perf_counter()
    lm = load_model(model, backend=backend, precision=precision, threads=threads)
    load_s = time.perf_counter() - t0
    cfg = GenerationConfig(max_tokens=tokens)
    generate(lm, PROMPT, GenerationConfig(max_tokens=8))  # warm-up: first-run allocations
    runs = [generate(lm, PROMPT, cfg) for _ in range(passes)]
    prefill_tps = None
    if prefill:
        ids, dec, times = _prefill_ids(lm.tokenizer, prefill), lm.decoder, []
        for _ in range(passes):
            dec.start(len(ids) + 1)
            t = time.perf_counter()
            dec.append(ids)
            times.append(time.perf_counter() - t)
        prefill_tps = len(ids) / statistics.median(times)
    return {"variant": variant, "load_s": load_s, "size_mb": lm.size_bytes() / 1e6,
            "generation_tps": statistics.median(r.generation_tps for r in runs),
            "prefill_tps": prefill_tps,
            "prompt_tps": statistics.median(r.prompt_tps for r in runs),
            "ttft_ms": statistics.median(r.ttft_ms for r in runs),
            "tokens": runs[0].generation_tokens, "peak_rss_mb": runs[-1].peak_rss_mb}


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--model", default="smollm2-135m", help="a packaged alias or a path (a GGUF for llamacpp/llama-bench)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prefill", type=int, default=512, help="prompt tokens for the prefill timing (0: skip)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--baseline", default=BASELINE, help="the variant every ratio is against (one of --variants)")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.model, a.tokens, a.threads, a.passes, a.prefill)))
        return
    variants = a.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {', '.join(unknown)}: use {', '.join(VARIANTS)}")
    if a.baseline not in variants:
        ap.error(f"--baseline {a.baseline} is not among --variants")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    failed: list[dict] = []

    def save() -> None:
        # Written after every child, so a crash or a failed peer never loses what was already measured.
        if a.json_out:
            with open(a.json_out, "w") as f:
                json.dump({"args": vars(a), "runs": results, "failed": failed}, f, indent=2)

    for r in range(a.rounds):
        for v in variants:
            p = subprocess.run([sys.executable, __file__, "--child", v, "--model", a.model, "--tokens", str(a.tokens),
                                "--threads", str(a.threads), "--passes", str(a.passes), "--prefill", str(a.prefill)],
                               capture_output=True, text=True)
            if p.returncode != 0:
                why = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:160]
                failed.append({"variant": v, "round": r, "error": why})
                save()
                print(f"{v}: failed ({why})", file=sys.stderr)
                continue
            results[v].append({**json.loads(p.stdout.strip().splitlines()[-1]), "round": r})
            save()
            x = results[v][-1]
            print(f"round {r + 1} {v}: {x['generation_tps']:.1f} tok/s decode, "
                  f"{_fmt(x['prefill_tps'], '.0f')} tok/s prefill", file=sys.stderr)
    summary = {v: {k: _median([x.get(k) for x in rs]) for k in METRICS} for v, rs in results.items() if rs}
    base = summary.get(a.baseline, {})
    print(f"\n{a.model}, {a.threads} threads, medians of {a.rounds} rounds (ratios: of the medians, and the "
          f"lowest–highest same-round ratio); prefill = {a.prefill} tokens from an empty "
          f"cache (llama-bench: pp{a.prefill}), decode = up to {a.tokens} new tokens (llama-bench: tg{a.tokens})")
    print(f"\n| variant | decode tok/s | × {a.baseline} | prefill tok/s | × {a.baseline} | chat prompt tok/s | TTFT ms | "
          "peak RSS MB | size MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    by_round = {x["round"]: x for x in results.get(a.baseline, [])}

    def round_range(v: str, k: str) -> str:
        # The same-round ratios, lowest to highest: how much of the median ratio is noise.
        rs = [x[k] / by_round[x["round"]][k] for x in results[v]
              if x.get(k) and x["round"] in by_round and by_round[x["round"]].get(k)]
        return f" ({min(rs):.2f}–{max(rs):.2f})" if len(rs) > 1 else ""

    for v, s in summary.items():
        ratios = [_fmt(s[k] / base[k], ".2f") + round_range(v, k) if s[k] and base.get(k) else "n/a"
                  for k in ("generation_tps", "prefill_tps")]
        print(f"| {v} | {s['generation_tps']:.1f} | {ratios[0]} | {_fmt(s['prefill_tps'], '.0f')} | {ratios[1]} | "
              f"{_fmt(s['prompt_tps'], '.0f')} | {_fmt(s['ttft_ms'], '.0f')} | {_fmt(s['peak_rss_mb'], '.0f')} | "
              f"{_fmt(s['size_mb'], '.1f')} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"args": vars(a), "summary": summary, "runs": results, "failed": failed}, f, indent=2)
    from edgewise.bench.rows import exit_status

    sys.exit(exit_status({f"{x['variant']} round {x['round'] + 1}": x["error"] for x in failed}))


if __name__ == "__main__":
    main()
