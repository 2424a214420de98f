"""Where a decode step's time goes in ONNX Runtime, per op type, with ORT's own profiler.

Runs the genai folder's model.onnx directly (one token, a KV cache of --past tokens, batch 1, as a decode step)
under ORT's profiler, for each folder given, and prints the time per op type per step, so two builds of the same
model (e.g. the GGUF transcode and the builder's int4) can be compared op by op.

    .venv/bin/python benchmarks/ort_profile.py --model smollm2-135m --precisions gguf,int4 --threads 2
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--precisions", default="gguf,int4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--past", type=int, default=128, help="tokens already in the KV cache")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edgewise.models import load
    from edgewise.runtime.ort_backend import genai_folder

    src = load(a.model)
    results = {}
    for p in a.precisions.split(","):
        results[p] = profile(genai_folder(src, p) / "model.onnx", a.threads, a.steps, a.past)
    ops = sorted({op for r, _ in results.values() for op in r},
                 key=lambda op: -max(r.get(op, (0, 0))[0] for r, _ in results.values()))
    print(f"\n{a.model}, {a.threads} threads, decode step with {a.past} cached tokens, mean of {a.steps} runs "
          "(ms per step in kernels, nodes per step)\n")
    print("| op | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for op in ops:
        cells = [f"{r[op][0]:.2f} ({r[op][1]})" if op in r else "-" for r, _ in results.values()]
        print(f"| {op} | " + " | ".join(cells) + " |")
    print("| **kernels total** | " + " | ".join(f"{sum(v[0] for v in r.values()):.2f}" for r, _ in results.values())
          + " |")
    print("| **wall per step** | " + " | ".join(f"{ms:.2f}" for _, ms in results.values()) + " |")


if __name__ == "__main__":
    main()
