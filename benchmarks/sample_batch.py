"""k sampled answers to one prompt: decoded as one batch (runtime.generate_many) against in turn from one cached
prompt (what route eval did before), in the same process, rounds interleaved, as a ratio.

The prompts are GSM8K questions posed as route eval poses them (its task file), the settings route eval's answer
consistency uses (T=0.7, the GSM8K answer cap of 320 tokens). Besides the time, each way's final-answer agreement
with its own greedy answer is reported: batched rows are draws from the same distribution, so the two should agree
about as often.

    make bench-setup route-data
    .venv/bin/python benchmarks/sample_batch.py --model qwen2.5-coder-0.5b --prompts 4 --k 4 --rounds 2 --threads 2 \\
        --json bench-out/sample-batch.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--data", type=Path, default=ROOT / ".bench" / "datasets")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from edgewise.bench.route_families import task_files
    from edgewise.evaluate.answers import final_answer
    from edgewise.evaluate.task_files import generation_items
    from edgewise.route.eval.answers import item_seed
    from edgewise.runtime import GenerationConfig, generate, generate_many, load_model

    path = task_files(args.data)["gsm8k"]
    if not path.is_file():
        sys.exit(f"GSM8K data missing ({path}): run `make route-data`")
    items = generation_items("gsm8k", path)[:args.prompts]
    lm = load_model(args.model, threads=args.threads)
    rows = []
    for rnd in range(args.rounds):
        for n, it in enumerate(items):
            cfg = GenerationConfig(max_tokens=it.max_tokens, temperature=args.temperature)
            seeds = [item_seed(it.prompt) + 1000 * rnd + j for j in range(args.k)]
            greedy = final_answer(it, generate(lm, it.prompt, replace(cfg, temperature=0.0)).text)
            ways = (("batch", lambda: generate_many(lm, it.prompt, cfg, seeds, batch=True)),
                    ("in turn", lambda: generate_many(lm, it.prompt, cfg, seeds, batch=False)))
            for way, run in (ways if (rnd + n) % 2 == 0 else ways[::-1]):  # alternate which goes first
                t0 = time.perf_counter()
                got = run()
                secs = time.perf_counter() - t0
                toks = sum(r.generation_tokens for r in got)
                rows.append({"round": rnd, "prompt": n, "way": way, "seconds": secs, "tokens": toks,
                             "longest": max(r.generation_tokens for r in got),
                             "agree": sum(final_answer(it, r.text) == greedy for r in got) / len(got)})
                print(f"round {rnd} prompt {n} {way:8s} {secs:6.1f} s  {toks} tokens  {toks / secs:5.1f} tok/s",
                      flush=True)
    summary = {}
    for way in ("batch", "in turn"):
        mine = [r for r in rows if r["way"] == way]
        summary[way] = {"seconds": sum(r["seconds"] for r in mine), "tokens": sum(r["tokens"] for r in mine),
                        "agree": statistics.mean(r["agree"] for r in mine)}
        summary[way]["tok_s"] = summary[way]["tokens"] / summary[way]["seconds"]
    summary["speedup"] = summary["batch"]["tok_s"] / summary["in turn"]["tok_s"]
    print(f"batch {summary['batch']['tok_s']:.1f} tok/s, in turn {summary['in turn']['tok_s']:.1f} tok/s: "
          f"{summary['speedup']:.2f}x; agreement with greedy {summary['batch']['agree']:.2f} vs "
          f"{summary['in turn']['agree']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "model": lm.name,
                                         "rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
