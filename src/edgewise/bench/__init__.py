"""Cost metrics, each variant measured in its own child process: size, bits per weight, load time, peak RSS, time to
first token, decode latency, tokens/s, encoder latency/throughput, and achieved memory bandwidth.

    r = bench_variant(BenchSpec(path="...", backend="ort"), device="raspberry-pi-5")
    r["generation_tps"], r["achieved_bandwidth_ratio"], r["est_device_tps"]   # the last one is an ESTIMATE
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from edgewise.devices import estimate_device_tps, fits_device, get_device
from edgewise.errors import EdgewiseError

DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class BenchSpec:
    path: str  # what load_model opens: a folder, file, bundle or alias
    backend: str = "ort"
    precision: str = "fp32"
    threads: int | None = None
    max_tokens: int = 64
    passes: int = 2
    repeats: int = 30
    # A draft spec (edgewise.runtime.drafts) the child also times beside plain decode, in the same rounds
    # (bench/measure.py's DraftRounds); None: plain decode only.
    draft: str | None = None

    def __post_init__(self):
        if self.max_tokens < 2 or self.passes < 1 or self.repeats < 1:
            raise EdgewiseError("bench needs max_tokens >= 2, passes >= 1 and repeats >= 1")


def run_child(spec: BenchSpec, timeout_s: int = DEFAULT_TIMEOUT_S) -> dict:
    """Measure in a fresh interpreter; an error there comes back as {"error": ...}, never as an exception here."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "edgewise.bench.child", json.dumps(asdict(spec))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit code {proc.returncode}"]
    return {"error": f"benchmark process failed: {tail[0][:300]}"}


def with_device(result: dict, device, host_bandwidth_gbs: float | None) -> dict:
    """Add bandwidth ratio, fit and the device estimate (labelled as such) to a child's measurements."""
    out = dict(result)
    if "error" in out:
        return out
    if host_bandwidth_gbs and out.get("achieved_bandwidth_gbs") is not None:
        out["host_bandwidth_gbs"] = host_bandwidth_gbs
        out["achieved_bandwidth_ratio"] = out["achieved_bandwidth_gbs"] / host_bandwidth_gbs
    out["fits_device"] = bool(fits_device(out["peak_rss_mb"], device))
    if host_bandwidth_gbs and out.get("generation_tps") and getattr(device, "name", device) != "host":
        out["est_device_tps"] = estimate_device_tps(out["generation_tps"], host_bandwidth_gbs, device)
        out["est_device_tps_note"] = "ESTIMATE: measured tokens/s x device bandwidth / this machine's probed bandwidth"
    return out


def bench_variant(spec: BenchSpec, device="host", host_bandwidth_gbs: float | None = None,
                  timeout_s: int = DEFAULT_TIMEOUT_S) -> dict:
    dev = get_device(device)
    if spec.threads is None:
        spec = BenchSpec(**{**asdict(spec), "threads": dev.threads})
    return with_device(run_child(spec, timeout_s), dev, host_bandwidth_gbs)


__all__ = ["BenchSpec", "bench_variant", "run_child", "with_device"]
