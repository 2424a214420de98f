"""Quantization quality and cost, measured against the full model in one run (figures for BENCHMARKS.md).

    python benchmarks/quant_quality.py smollm2      # fp32, int8, int4 RTN, int4 GPTQ, mixed (+ llama.cpp types)
    python benchmarks/quant_quality.py minilm       # fp32, int8 dynamic, int8 static, int8, int4, int4 GPTQ
    python benchmarks/quant_quality.py all --out /tmp/qq

Each run is an `edgewise optimize` (the report lands in --out/<model>); this script prints the figures as a markdown
table and checks the targets: int8 within 1% of fp32, and GPTQ's perplexity increase at most half of RTN's at the
same bits per weight. MiniLM is a genuinely fp32 model; SmolLM2 as shipped sits on a Q4_1 grid already.

A variant that failed (evaluation, benchmark) or was skipped, or a model whose run failed, is named on stderr at the
end and makes the exit status 1; the tables and reports of the rest are still written. A missed target is a
finding, not a failure: it is printed, and the status stays 0.

    python benchmarks/quant_quality.py minilm --methods fp32,int8 --no-bench    # a subset of the run's methods
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from edgewise.bench.rows import exit_status, one_line
from edgewise.errors import EdgewiseError
from edgewise.optimize import OptimizeOptions, optimize

RUNS = {
    "smollm2": dict(model="smollm2-135m", task=None,
                    methods=["fp32", "torch", "int8", "int4", "int4-gptq", "mixed"]
                    + (["q8_0", "q4_k_m"] if importlib.util.find_spec("llama_cpp") else [])),
    "minilm": dict(model="minilm-l6", task=None,  # default: retrieval over stdlib docstrings (real text)
                   methods=["fp32", "int8-dynamic", "int8-static", "int8", "int4", "int4-gptq"]),
}


def table(report: dict) -> str:
    p = report["task"]["primary"]
    dec = report["model"]["kind"] == "decoder"
    head = ["variant", "bits/weight", "size MB", p, "Δ vs fp32"] + (
        ["KLD", "same top", "gen tok/s", "TTFT ms", "BW ratio", "peak RSS MB"] if dec else
        ["recall@5", "cos to fp32", "p50 ms", "emb/s", "peak RSS MB"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in report["variants"]:
        m = v.get("metrics") or {}

        def f(x, fmt):
            return "–" if x is None else format(x, fmt)
        row = [v["name"], f(v["bits_per_weight"], ".2f"), f(v["size_mb"], ".1f"), f(v.get("primary"), ".4g"),
               f(None if v.get("relative_drop") is None else 100 * v["relative_drop"], "+.2f") + "%"]
        if dec:
            row += [f(v.get("kld"), ".4f"), f(None if v.get("same_top_token") is None else 100 * v["same_top_token"], ".1f") + "%",
                    f(v.get("generation_tps"), ".1f"), f(v.get("ttft_ms"), ".0f"),
                    f(None if v.get("achieved_bandwidth_ratio") is None else 100 * v["achieved_bandwidth_ratio"], ".0f") + "%",
                    f(v.get("peak_rss_mb"), ".0f")]
        else:
            row += [f(m.get("recall@5"), ".3f"), f(m.get("cosine_to_full"), ".5f"), f(v.get("latency_p50_ms"), ".1f"),
                    f(v.get("throughput_per_s"), ".0f"), f(v.get("peak_rss_mb"), ".0f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(report: dict) -> list[str]:
    rows = {v["name"]: v for v in report["variants"]}
    out = []
    for name in ("int8", "int8-dynamic", "int8-static"):
        if name in rows and rows[name].get("relative_drop") is not None:
            d = rows[name]["relative_drop"]
            out.append(f"{name} within 1% of fp32: {'yes' if d <= 0.01 else 'NO'} ({100 * d:+.2f}%)")
    if report["task"]["kind"] == "perplexity" and {"int4", "int4-gptq", "fp32"} <= set(rows):
        base = rows["fp32"]["primary"]
        rtn, gptq = rows["int4"]["primary"] - base, rows["int4-gptq"]["primary"] - base
        out.append(f"GPTQ perplexity increase {gptq:+.3f} vs RTN {rtn:+.3f} at {rows['int4-gptq']['bits_per_weight']:.2f} "
                   f"vs {rows['int4']['bits_per_weight']:.2f} bpw: ratio {gptq / rtn:.2f} "
                   f"({'meets' if gptq <= rtn / 2 else 'MISSES'} the at-most-half target)")
    if "torch" in rows and "int4" in rows and rows["torch"].get("generation_tps"):
        out.append(f"ORT int4 vs PyTorch fp32 generation: {rows['int4']['generation_tps']:.1f} vs "
                   f"{rows['torch']['generation_tps']:.1f} tokens/s")
    if "q4_k_m" in rows and "int4" in rows and rows["q4_k_m"].get("generation_tps"):
        out.append(f"ORT int4 vs llama.cpp Q4_K_M generation: {rows['int4']['generation_tps']:.1f} vs "
                   f"{rows['q4_k_m']['generation_tps']:.1f} tokens/s")
    return out


def failures(report: dict, model: str) -> dict[str, str]:
    """{model/variant: why} for every variant that did not measure: evaluation or benchmark errors, and skips."""
    out = {}
    for v in report["variants"]:
        if v.get("error") or v.get("bench_error"):
            out[f"{model}/{v['name']}"] = v.get("error") or f"benchmark: {v['bench_error']}"
    for s in report.get("skipped") or []:
        out[f"{model}/{s['name']}"] = f"skipped: {s['reason']}"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=[*RUNS, "all"])
    ap.add_argument("--out", type=Path, default=Path("benchmark-out"))
    ap.add_argument("--max-drop", default="5%")
    ap.add_argument("--no-bench", action="store_true", help="quality only")
    ap.add_argument("--methods", help="comma-separated methods instead of the run's own list (fp32 is always added)")
    args = ap.parse_args(argv)
    failed: dict[str, str] = {}
    for name in (list(RUNS) if args.which == "all" else [args.which]):
        cfg = RUNS[name]
        methods = args.methods.split(",") if args.methods else cfg["methods"]
        try:
            res = optimize(OptimizeOptions(model=cfg["model"], task=cfg["task"], methods=methods,
                                           out=args.out / name, force=True, max_drop=args.max_drop,
                                           bench=not args.no_bench))
        except EdgewiseError as e:  # one model's run failing must not lose the other's
            failed[cfg["model"]] = one_line(e)
            print(f"\n## {cfg['model']}: FAILED {one_line(e)}", flush=True)
            continue
        failed.update(failures(res.report, cfg["model"]))
        print(f"\n## {cfg['model']} · {res.report['task']['kind']} ({Path(res.report['task']['file']).name})\n")
        print(table(res.report))
        for line in targets(res.report):
            print(f"- {line}")
        print(f"- report: {res.out / 'report.html'}; timings {res.report['timings_s']}")
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
