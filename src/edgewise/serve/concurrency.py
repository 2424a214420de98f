"""Measure what serving two chats at once costs: `python -m edgewise.serve.concurrency MODEL [--backend ort]`.

Starts the real server (uvicorn on loopback, in this process) once per setting, then streams greedy chat requests
with the official request shape and `include_usage`: one request alone, then two at once (parallel=1: the second
waits for the first, as before sessions; parallel=2: each on its own session). Reports, per case, total generated
tokens per second over the batch's wall time and each request's latency and time to first token. Each case runs
--repeats times; the median run is printed (JSON with --json). Numbers are this machine's, under its current load.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import httpx
import uvicorn

from edgewise.serve import ServeConfig, build_state, create_app

PROMPTS = ("Write a long story about a lighthouse keeper and a storm.",
           "Explain, step by step and in detail, how a bicycle works.")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stream(url: str, model: str, prompt: str, max_tokens: int, t0: float) -> dict:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    first, tokens = None, 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and ev["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
    end = time.perf_counter()
    return {"tokens": tokens, "latency_s": end - t0, "ttft_s": (first or end) - t0}


def run_batch(url: str, model: str, prompts: tuple[str, ...], max_tokens: int) -> dict:
    out: list[dict | None] = [None] * len(prompts)
    start = threading.Barrier(len(prompts) + 1)

    def one(i):
        start.wait()
        out[i] = _stream(url, model, prompts[i], max_tokens, t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    total = sum(r["tokens"] for r in out)
    return {"wall_s": round(wall, 3), "tokens": total, "total_tok_s": round(total / wall, 2),
            "requests": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in out]}


def measure(model: str, backend: str, precision: str, threads: int | None, max_tokens: int, repeats: int) -> dict:
    results = {}
    for parallel in (1, 2):
        cfg = ServeConfig(model=model, backend=backend, precision=precision, threads=threads, port=_free_port(),
                          parallel=parallel, sessions=max(parallel, 4), default_max_tokens=max_tokens)
        state = build_state(cfg)
        server = uvicorn.Server(uvicorn.Config(create_app(state), host=cfg.host, port=cfg.port, log_level="warning",
                                               access_log=False))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        url = f"http://{cfg.host}:{cfg.port}"
        while not server.started:
            time.sleep(0.05)
        name = state.generator.name
        try:
            cases = {"1 alone": PROMPTS[:1], "2 at once": PROMPTS} if parallel == 1 else {"2 at once": PROMPTS}
            run_batch(url, name, PROMPTS[:1], 8)  # warm-up: first-call allocations stay out of the figures
            for case, prompts in cases.items():
                runs = [run_batch(url, name, prompts, max_tokens) for _ in range(repeats)]
                runs.sort(key=lambda r: r["total_tok_s"])
                results[f"{case}, parallel={parallel}"] = {**runs[len(runs) // 2],
                                                           "total_tok_s_all_runs": [r["total_tok_s"] for r in runs]}
        finally:
            server.should_exit = True
            th.join(30)
            state.pool.shutdown(wait=True)
    return {"model": model, "backend": backend, "precision": precision, "threads": threads,
            "max_tokens": max_tokens, "repeats": repeats, "results": results}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--backend", default="ort")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = measure(a.model, a.backend, a.precision, a.threads, a.max_tokens, a.repeats)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{a.model} on {a.backend} ({a.precision}, threads={a.threads}), {a.max_tokens} tokens per request, "
          f"median of {a.repeats}:")
    for case, r in res["results"].items():
        lat = ", ".join(f"{q['latency_s']:.2f} s (ttft {q['ttft_s']:.2f} s, {q['tokens']} tok)" for q in r["requests"])
        print(f"  {case:22s} total {r['total_tok_s']:7.2f} tok/s  runs {r['total_tok_s_all_runs']}  per request: {lat}")


if __name__ == "__main__":
    main()
