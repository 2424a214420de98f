"""llama.cpp at 1 and 2 threads under OpenMP wait policies: llama-bench (tg/pp) and the `llamacpp` backend,
in interleaved rounds, each cell in its own process.

ggml's CPU threads meet at an OpenMP barrier after every graph node (hundreds per token). How libgomp waits
there decides the multi-thread speed:
  passive   OMP_WAIT_POLICY=PASSIVE: sleep on a futex at once (a wake-up per barrier)
  default   nothing set: spin GOMP_SPINCOUNT=300000 rounds, then sleep
  spin:N    GOMP_SPINCOUNT=N: spin N rounds, then sleep
  active    OMP_WAIT_POLICY=ACTIVE: spin forever
The backend child imports llama_cpp first, so libgomp starts with exactly the policy given (the backend's own
import only fills in a policy when none is set).

    .venv/bin/python benchmarks/llama_bench.py --model smollm2-135m --threads 1,2 --policies passive,default
    .venv/bin/python benchmarks/llama_bench.py --cells 1/passive,2/passive,2/spin:10000,2/default

A failed cell (a child that crashed, llama-bench missing or failing) is left out of its medians, named in the JSON's
`failed` and on stderr, and makes the exit status 1; the other cells still run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
POLICY_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def policy_env(policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARS}
    if policy == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif policy == "active":
        env["OMP_WAIT_POLICY"] = "ACTIVE"
    elif policy.startswith("spin:"):
        env["GOMP_SPINCOUNT"] = policy.split(":", 1)[1]
    elif policy not in ("default", "backend"):  # "backend": whatever edgewise's backend chooses
        raise SystemExit(f"unknown policy {policy!r}: passive, default, active, spin:N or backend")
    return env


def backend_child(model: str, threads: int, tokens: int, passes: int, policy: str) -> dict:
    if policy != "backend":
        import llama_cpp  # noqa: F401  (loads libgomp now, with this process's policy variables)
    else:
        # As in every edgewise process (the CLI, optimize's bench child): edgewise first, then torch loads libgomp
        # before llama.cpp does, and ggml binds to torch's copy.
        import edgewise  # noqa: F401
        import torch  # noqa: F401
    from edgewise.runtime import GenerationConfig, generate, load_model

    lm = load_model(model, backend="llamacpp", threads=threads)
    generate(lm, PROMPT, GenerationConfig(max_tokens=8))
    runs = [generate(lm, PROMPT, GenerationConfig(max_tokens=tokens)) for _ in range(passes)]
    return {"tg": statistics.median(r.generation_tps for r in runs), "tokens": runs[0].generation_tokens}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--policies", default="passive,default")
    ap.add_argument("--cells", help="threads/policy pairs instead of the cross product, e.g. 1/passive,2/spin:3000")
    ap.add_argument("--engines", default="llama-bench,backend")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    if a.child:
        t, policy = a.child.split("/")
        print(json.dumps(backend_child(a.model, int(t), a.tokens, a.passes, policy)))
        return 0
    from edgewise.bench.llamacpp_tools import llama_bench
    from edgewise.bench.rows import exit_status, one_line
    from edgewise.models import load
    from edgewise.runtime.llamacpp_backend import gguf_path

    gguf = gguf_path(load(a.model))
    pairs = ([c.split("/", 1) for c in a.cells.split(",")] if a.cells else
             [(t, p) for p in a.policies.split(",") for t in a.threads.split(",")])
    cells = [(e, int(t), p) for t, p in pairs for e in a.engines.split(",")]
    res: dict[str, list[dict]] = {f"{e} t{t} {p}": [] for e, t, p in cells}
    failed: dict[str, str] = {}  # "cell round N" -> why
    for r in range(a.rounds):
        for e, t, p in cells:
            key, t0 = f"{e} t{t} {p}", time.time()
            if e == "llama-bench":
                try:
                    x = llama_bench(gguf, threads=t, n_prompt=a.prefill, n_gen=a.tokens, reps=a.passes,
                                    env=policy_env("default" if p == "backend" else p))
                except Exception as err:  # noqa: BLE001 - a failed cell, not a lost run
                    failed[f"{key} round {r + 1}"] = one_line(err)
                    print(f"{key}: failed: {one_line(err)}", file=sys.stderr)
                    continue
                row = {"tg": x[f"tg{a.tokens}"], "pp": x.get(f"pp{a.prefill}"), "rss": x["peak_rss_mb"]}
            else:
                proc = subprocess.run([sys.executable, __file__, "--child", f"{t}/{p}", "--model", a.model,
                                       "--tokens", str(a.tokens), "--passes", str(a.passes)],
                                      capture_output=True, text=True, env=policy_env(p))
                if proc.returncode:
                    why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
                    failed[f"{key} round {r + 1}"] = why
                    print(f"{key}: failed: {why}", file=sys.stderr)
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["load1"] = os.getloadavg()[0]
            res[key].append(row)
            print(f"round {r + 1} {key}: tg {row['tg']:.1f}" + (f", pp {row['pp']:.0f}" if row.get("pp") else "")
                  + f" tok/s (load avg {row['load1']:.1f}, {time.time() - t0:.0f} s)", file=sys.stderr)
    print(f"\n{a.model}: medians of {a.rounds} rounds (tg{a.tokens}; pp{a.prefill} for llama-bench)\n")
    print("| engine | threads | wait policy | decode tok/s (rounds) | prefill tok/s |")
    print("|---|---|---|---|---|")
    for key, rows in res.items():
        if rows:
            e, t, p = key.split(" ")
            pp = [x["pp"] for x in rows if x.get("pp")]
            each = ", ".join(f"{x['tg']:.0f}" for x in rows)
            pp_s = f"{statistics.median(pp):.0f}" if pp else "n/a"
            print(f"| {e} | {t[1:]} | {p} | {statistics.median(x['tg'] for x in rows):.1f} ({each}) | {pp_s} |")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"args": vars(a), "runs": res, "failed": failed}, f, indent=2)
    return exit_status(failed)


if __name__ == "__main__":
    sys.exit(main())
