"""llama.cpp's own tools (llama-bench, llama-perplexity, llama-quantize, llama-imatrix) as a fair comparator.

`make bench-setup` builds them from the vendored llama.cpp inside the same llama-cpp-python sdist the
`llamacpp` backend runs, with this CPU's SIMD (never AMX), under `.bench/llama.cpp/build/bin`.
EDGEWISE_LLAMACPP_BIN names another folder holding them.

    llama_tool("llama-bench")                         # Path, or None when not built
    llama_bench("model.gguf", threads=2)              # {"pp512": tok/s, "tg128": tok/s, ...}
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from edgewise.errors import BackendUnavailableError, EdgewiseError

TOOLS = ("llama-bench", "llama-perplexity", "llama-quantize", "llama-imatrix")
BUILD_HINT = "run `make bench-setup` (builds llama.cpp's tools in ~5 min), or set EDGEWISE_LLAMACPP_BIN to their folder"
# src/edgewise/bench/llamacpp_tools.py -> the checkout root (an editable install, as `make setup` makes).
_REPO = Path(__file__).resolve().parents[3]


def tool_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("EDGEWISE_LLAMACPP_BIN"):
        dirs.append(Path(env).expanduser())
    dirs += [_REPO / ".bench" / "llama.cpp" / "build" / "bin", Path.cwd() / ".bench" / "llama.cpp" / "build" / "bin"]
    return dirs


def llama_tool(name: str) -> Path | None:
    """The executable `name` (one of TOOLS) from the bench build, or None when it is not built."""
    if name not in TOOLS:
        raise EdgewiseError(f"unknown llama.cpp tool {name!r}: use one of {', '.join(TOOLS)}")
    for d in tool_dirs():
        p = d / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def require_tool(name: str) -> Path:
    p = llama_tool(name)
    if p is None:
        raise BackendUnavailableError(f"llama.cpp's {name} is not built: {BUILD_HINT}")
    return p


def tool_env() -> dict[str, str]:
    """The environment the tools run in. OpenMP's wait policy is left to libgomp's default (spin, then sleep):
    that is how a user runs llama.cpp, and the policy decides the 2-thread speed (see llamacpp_backend)."""
    return dict(os.environ)


def llama_bench(model: str | Path, threads: int, n_prompt: int = 512, n_gen: int = 128, reps: int = 3,
                env: dict[str, str] | None = None, timeout_s: int = 900) -> dict:
    """Run llama-bench once (pp<n_prompt> and tg<n_gen> tests, `reps` repetitions each, its own mean) and return
    {"pp512": tok/s, "tg128": tok/s, "pp512_std": ..., "tg128_std": ..., "build": commit, "cpu": ...}."""
    if threads < 1 or reps < 1 or n_prompt < 0 or n_gen < 0 or n_prompt + n_gen == 0:
        raise EdgewiseError("llama_bench needs threads >= 1, reps >= 1 and a prompt or generation length")
    exe = require_tool("llama-bench")
    cmd = [str(exe), "-m", str(model), "-t", str(threads), "-p", str(n_prompt), "-n", str(n_gen),
           "-r", str(reps), "-o", "json"]
    rc, stdout, stderr, peak = _run_watching_rss(cmd, env or tool_env(), timeout_s)
    if rc != 0:
        raise _failed("llama-bench", model, rc, stderr)
    out: dict = {"command": " ".join(cmd), "peak_rss_mb": peak}
    for row in json.loads(stdout):
        key = f"pp{row['n_prompt']}" if row["n_gen"] == 0 else f"tg{row['n_gen']}"
        out[key], out[f"{key}_std"] = float(row["avg_ts"]), float(row["stddev_ts"])
        out["build"], out["cpu"] = row.get("build_commit"), row.get("cpu_info")
    return out


def llama_perplexity(model: str | Path, text_file: str | Path, threads: int, n_ctx: int = 512,
                     env: dict[str, str] | None = None, timeout_s: int = 1800) -> dict:
    """Run llama-perplexity on a text file (chunks of n_ctx, the second half of each scored) and return
    {"ppl": final estimate, "ppl_err": its +/-, "chunks": n, "command": ...}."""
    if threads < 1 or n_ctx < 8:
        raise EdgewiseError("llama_perplexity needs threads >= 1 and n_ctx >= 8")
    exe = require_tool("llama-perplexity")
    cmd = [str(exe), "-m", str(model), "-f", str(text_file), "-c", str(n_ctx), "-b", str(n_ctx), "-t", str(threads)]
    rc, stdout, stderr, peak = _run_watching_rss(cmd, env or tool_env(), timeout_s)
    log = stdout + "\n" + stderr
    final = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if rc != 0 or not final:
        raise _failed("llama-perplexity", model, rc, stderr)
    chunks = re.search(r"calculating perplexity over (\d+) chunks", log)
    return {"ppl": float(final.group(1)), "ppl_err": float(final.group(2)),
            "chunks": int(chunks.group(1)) if chunks else None, "command": " ".join(cmd), "peak_rss_mb": peak}


def _failed(tool: str, model: str | Path, rc: int, stderr: str) -> EdgewiseError:
    """One line: the tool's last stderr line (or its exit code)."""
    tail = (stderr.strip().splitlines() or [f"exit {rc}"])[-1][:200]
    return EdgewiseError(f"{tool} failed on {model}: {tail}")


def _vm_hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _run_watching_rss(cmd: list[str], env: dict, timeout_s: int) -> tuple[int, str, str, float | None]:
    """Run cmd; also return its peak RSS in MiB. getrusage(RUSAGE_CHILDREN) would carry the Python parent's
    peak across fork+exec, so poll the tool's own VmHWM (a high-water mark: the last read is the peak, up to
    the final 20 ms)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        peak, t_end = None, time.monotonic() + timeout_s
        while p.poll() is None:
            if time.monotonic() > t_end:
                p.kill()
                p.wait()
                raise EdgewiseError(f"{Path(cmd[0]).name} ran past {timeout_s} s: lower -r or the lengths")
            peak = _vm_hwm_mb(p.pid) or peak
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read(), err.read(), peak
