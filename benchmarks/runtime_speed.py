"""Decode speed of the runtime backends on the packaged SmolLM2, all in one run, as ratios to torch fp32.

Each variant runs in its own child process (so load and memory are its own); rounds are interleaved
(every variant once per round) so machine noise hits all of them alike. Greedy, batch 1, a chat prompt,
up to --tokens new tokens (a story prompt, so generation runs to the limit; the table shows the count).

    .venv/bin/python benchmarks/runtime_speed.py --rounds 3 --tokens 64 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
VARIANTS = {
    "torch-fp32": ("torch", "fp32"),
    "ort-fp32": ("ort", "fp32"),
    "ort-int8": ("ort", "int8"),
    "ort-int4": ("ort", "int4"),
    "llamacpp-q4_1": ("llamacpp", "fp32"),  # the GGUF as shipped (Q4_1)
}
BASELINE = "torch-fp32"


def child(variant: str, tokens: int, threads: int, passes: int) -> dict:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edgewise.runtime import GenerationConfig, generate, load_model

    backend, precision = VARIANTS[variant]
    t0 = time.perf_counter()
    lm = load_model("smollm2-135m", backend=backend, precision=precision, threads=threads)
    load_s = time.perf_counter() - t0
    cfg = GenerationConfig(max_tokens=tokens)
    generate(lm, PROMPT, GenerationConfig(max_tokens=8))  # warm-up: first-run allocations
    runs = [generate(lm, PROMPT, cfg) for _ in range(passes)]
    return {"variant": variant, "load_s": load_s, "size_mb": lm.size_bytes() / 1e6,
            "generation_tps": statistics.median(r.generation_tps for r in runs),
            "prompt_tps": statistics.median(r.prompt_tps for r in runs),
            "ttft_ms": statistics.median(r.ttft_ms for r in runs),
            "tokens": runs[0].generation_tokens, "peak_rss_mb": runs[-1].peak_rss_mb}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json-out")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.tokens, a.threads, a.passes)))
        return
    variants = a.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(a.rounds):
        for v in variants:
            p = subprocess.run([sys.executable, __file__, "--child", v, "--tokens", str(a.tokens), "--threads",
                                str(a.threads), "--passes", str(a.passes)], capture_output=True, text=True)
            if p.returncode != 0:
                print(f"{v}: skipped ({(p.stderr.strip().splitlines() or ['failed'])[-1][:160]})", file=sys.stderr)
                continue
            results[v].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {v}: {results[v][-1]['generation_tps']:.1f} tok/s", file=sys.stderr)
    summary = {}
    for v, rs in results.items():
        if rs:
            summary[v] = {k: statistics.median(x[k] for x in rs) for k in
                          ("generation_tps", "prompt_tps", "ttft_ms", "peak_rss_mb", "size_mb", "load_s")}
    base = summary.get(BASELINE, {}).get("generation_tps")
    print(f"\n| variant | generation tok/s | × {BASELINE} | prompt tok/s | TTFT ms | peak RSS MB | size MB |")
    print("|---|---|---|---|---|---|---|")
    for v, s in summary.items():
        ratio = f"{s['generation_tps'] / base:.2f}" if base else "n/a"
        print(f"| {v} | {s['generation_tps']:.1f} | {ratio} | {s['prompt_tps']:.0f} | {s['ttft_ms']:.0f} | "
              f"{s['peak_rss_mb']:.0f} | {s['size_mb']:.1f} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"args": vars(a), "summary": summary, "runs": results}, f, indent=2)


if __name__ == "__main__":
    main()
