"""Structured pruning: measured speed-up and quality of pruned models against their unpruned base, in one run.

Speed: every model in its own child process (edgewise.bench), rounds interleaved (each model once per round) so
machine noise hits all alike; the figure is the median of the per-round ratios to the base. Quality: perplexity,
KL divergence and same-top-token against the base on a text task, computed in this process.

    .venv/bin/python benchmarks/prune_speedup.py --base models/keyboard-student \\
        --pruned /tmp/kb/mlp50-heads50 --precision fp32 --task perplexity:FILE --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys


def quality(base: str, others: list[str], backend: str, precision: str, task_spec: str) -> dict[str, dict]:
    from edgewise.evaluate import parse_task
    from edgewise.evaluate.base import relative_drop
    from edgewise.runtime import load_model

    task = parse_task(task_spec)
    ref_model = load_model(base, backend=backend, precision=precision)
    ref = task.reference(ref_model)
    out = {base: task.evaluate(ref_model, ref)}
    del ref_model
    for path in others:
        lm = load_model(path, backend=backend, precision=precision)
        out[path] = task.evaluate(lm, ref)
        del lm
        gc.collect()
    for path, m in out.items():
        m["relative_drop"] = relative_drop(task, m[task.primary], out[base][task.primary])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the unpruned model (HF folder or alias)")
    ap.add_argument("--pruned", action="append", required=True, help="a pruned HF folder (repeatable)")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--precision", default="fp32", help="fp32 | int8 | int4: every model built at this precision")
    ap.add_argument("--task", help="KIND:FILE for quality (perplexity: or nextword:)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edgewise.bench import BenchSpec, run_child

    models = [a.base] + a.pruned
    runs: dict[str, list[dict]] = {m: [] for m in models}
    for r in range(a.rounds):
        for m in models:
            res = run_child(BenchSpec(m, a.backend, a.precision, threads=a.threads, max_tokens=a.tokens,
                                      passes=a.passes))
            if "error" in res:
                sys.exit(f"{m}: {res['error']}")
            runs[m].append(res)
            print(f"round {r + 1}: {m}: {res['generation_tps']:.1f} tok/s", file=sys.stderr)
    q = quality(a.base, a.pruned, a.backend, a.precision, a.task) if a.task else {}
    rows = []
    for m in models:
        if not runs[m]:  # --rounds 0: quality only
            rows.append({"model": m, "generation_tps": 0.0, "speedup": 0.0, "prompt_speedup": None,
                         **({"quality": q[m]} if m in q else {})})
            continue
        ratios = [x["generation_tps"] / b["generation_tps"] for x, b in zip(runs[m], runs[a.base])]
        p_ratios = [x["prompt_tps"] / b["prompt_tps"] for x, b in zip(runs[m], runs[a.base])
                    if x.get("prompt_tps") and b.get("prompt_tps")]
        last = runs[m][-1]
        rows.append({"model": m, "generation_tps": statistics.median(x["generation_tps"] for x in runs[m]),
                     "speedup": statistics.median(ratios), "speedup_rounds": [round(x, 3) for x in ratios],
                     "prompt_speedup": statistics.median(p_ratios) if p_ratios else None,
                     "weights_mb_per_token": (last.get("weight_bytes_per_token") or 0) / 1e6,
                     "peak_rss_mb": last.get("peak_rss_mb"), "decode_p50_ms": last.get("decode_p50_ms"),
                     **({"quality": q[m]} if m in q else {})})
    print(f"{'model':<48} {'tok/s':>7} {'speed-up':>9} {'prompt':>7} {'MB/tok':>7} {'ppl':>8} {'drop':>7} {'KLD':>6}")
    for r in rows:
        qq = r.get("quality", {})
        print(f"{r['model'][-48:]:<48} {r['generation_tps']:7.1f} {r['speedup']:8.2f}x "
              f"{(r['prompt_speedup'] or 0):6.2f}x {(r.get('weights_mb_per_token') or 0):7.1f} {qq.get('perplexity', 0):8.2f} "
              f"{qq.get('relative_drop', 0):7.1%} {qq.get('kld', 0):6.3f}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"args": vars(a), "rows": rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
