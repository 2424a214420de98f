"""Where a decode step's time goes in ONNX Runtime, per op type, with ORT's own profiler.

Runs the genai folder's model.onnx directly (one token, a KV cache of --past tokens, batch 1, as a decode step)
under ORT's profiler, for each folder given, and prints the time per op type per step, so two builds of the same
model (e.g. the GGUF transcode and the builder's int4) can be compared op by op. Besides the runtime's precisions,
`gguf-unfused` is the transcode before projection fusion (format 3: one MatMulNBits per projection, block sums as
Reshape + ReduceSum), `gguf-exact` the transcode at accuracy_level 1, and a path names a genai folder.

    .venv/bin/python benchmarks/ort_profile.py --model smollm2-135m --precisions gguf,int4 --threads 2
    .venv/bin/python benchmarks/ort_profile.py --model smollm2-135m --precisions gguf-unfused,gguf --threads 1
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def decode_inputs(session, past: int, head_size: int) -> dict:
    feeds = {}
    for i in session.get_inputs():
        if i.name == "input_ids":
            feeds[i.name] = np.array([[42]], np.int64)
        elif i.name == "attention_mask":
            feeds[i.name] = np.ones((1, past + 1), np.int64)
        elif i.name == "position_ids":
            feeds[i.name] = np.array([[past]], np.int64)
        elif i.name.startswith("past_key_values"):
            named = {"batch_size": 1, "past_sequence_length": past, "kv_cache_dim": head_size}
            shape = [named.get(d, d) for d in i.shape]
            if any(isinstance(d, str) for d in shape):
                raise SystemExit(f"{i.name}: unexpected dimension in {i.shape}")
            feeds[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32) * 0.1
        else:
            raise SystemExit(f"unexpected input {i.name}")
    return feeds


def profile(model_onnx: Path, threads: int, steps: int, past: int) -> tuple[dict, float]:
    cfg = json.loads((model_onnx.parent / "genai_config.json").read_text())["model"]["decoder"]
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "p")
        s = ort.InferenceSession(str(model_onnx), so, providers=["CPUExecutionProvider"])
        feeds = decode_inputs(s, past, cfg["head_size"])
        for _ in range(5):
            s.run(None, feeds)
        t0 = time.perf_counter()
        for _ in range(steps):
            s.run(None, feeds)
        per_step_ms = (time.perf_counter() - t0) / steps * 1e3
        events = json.loads(Path(s.end_profiling()).read_text())
    by_op: dict[str, float] = collections.defaultdict(float)
    count: dict[str, int] = collections.defaultdict(int)
    runs = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs += 1
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name", "?")
            by_op[op] += e["dur"]
            count[op] += 1
    runs = max(runs, 1)
    return {op: (us / runs / 1e3, count[op] // runs) for op, us in by_op.items()}, per_step_ms


def interleaved(onnx_paths: dict[str, Path], threads: int, rounds: int, steps: int, past: int) -> dict[str, list]:
    """Median wall ms of a decode step per round, the builds taking turns within each round (no profiler), so a
    loaded machine's noise falls on all of them alike."""
    import statistics

    import onnxruntime as ort

    runs = {}
    for name, path in onnx_paths.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        cfg = json.loads((path.parent / "genai_config.json").read_text())["model"]["decoder"]
        runs[name] = (s, decode_inputs(s, past, cfg["head_size"]))
        for _ in range(5):
            s.run(None, runs[name][1])
    out: dict[str, list] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (s, feeds) in runs.items():
            t = []
            for _ in range(steps):
                t0 = time.perf_counter()
                s.run(None, feeds)
                t.append(time.perf_counter() - t0)
            out[name].append(statistics.median(t) * 1e3)
    return out


def folder(src, precision: str, genai_folder) -> Path:
    if Path(precision).is_dir():
        return Path(precision)
    if precision in ("gguf-unfused", "gguf-exact"):
        from edgewise.export.gguf_transcode import transcode_gguf

        level = 1 if precision == "gguf-exact" else 4
        return transcode_gguf(src, accuracy_level=level, fuse=precision != "gguf-unfused")
    return genai_folder(src, precision)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precisions", default="gguf,int4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--past", type=int, default=128, help="tokens already in the KV cache")
    ap.add_argument("--rounds", type=int, default=0, help="then time the builds' decode steps in this many "
                    "interleaved rounds of --steps steps, without the profiler")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edgewise.models import load
    from edgewise.runtime.ort_backend import genai_folder

    src = load(a.model)
    paths = {Path(p).name if "/" in p else p: folder(src, p, genai_folder) / "model.onnx"
             for p in a.precisions.split(",")}
    results = {name: profile(path, a.threads, a.steps, a.past) for name, path in paths.items()}
    ops = sorted({op for r, _ in results.values() for op in r},
                 key=lambda op: -max(r.get(op, (0, 0))[0] for r, _ in results.values()))
    print(f"\n{a.model}, {a.threads} threads, decode step with {a.past} cached tokens, mean of {a.steps} runs "
          "(ms per step in kernels, nodes per step)\n")
    print("| op | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for op in ops:
        cells = [f"{r[op][0]:.2f} ({r[op][1]})" if op in r else "-" for r, _ in results.values()]
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| **nodes per step** | " + " | ".join(str(sum(v[1] for v in r.values())) for r, _ in results.values())
          + " |")
    print("| **kernels total** | " + " | ".join(f"{sum(v[0] for v in r.values()):.2f}" for r, _ in results.values())
          + " |")
    print("| **wall per step** | " + " | ".join(f"{ms:.2f}" for _, ms in results.values()) + " |")
    if a.rounds:
        import statistics

        per_round = interleaved(paths, a.threads, a.rounds, a.steps, a.past)
        print(f"\ninterleaved: median ms per decode step over {a.rounds} rounds of {a.steps} steps (per-round medians)")
        for name, ms in per_round.items():
            print(f"{name}: {statistics.median(ms):.2f} ms  ({', '.join(f'{x:.2f}' for x in ms)})")


if __name__ == "__main__":
    main()
