"""A small memory-bandwidth probe: how fast this machine can stream bytes from RAM.

Decoding reads every weight once per token, so read bandwidth is the physical ceiling on tokens/s. The probe reads a
buffer several times larger than the last-level cache with one thread per core (a decode runtime uses all cores) and
keeps the best pass, which is the figure least disturbed by other processes.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from edgewise.errors import EdgewiseError

MiB = 1 << 20


@dataclass(frozen=True)
class BandwidthResult:
    gbs: float  # best read bandwidth seen, in GB/s (1e9 bytes/s)
    buffer_mb: int
    passes: int
    threads: int
    seconds: float  # wall time of the whole probe, allocation included


def usable_cpus() -> int:
    # In a container or under taskset, os.cpu_count() reports the host's CPUs, not ours.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def last_level_cache_bytes() -> int | None:
    """Size of the largest CPU cache Linux reports, or None where it says nothing."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = f.read_text().strip().upper()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes) if sizes else None


def default_buffer_mb() -> int:
    # 4x the last-level cache so cached bytes are a small share of each pass; at least 256 MiB, at most 1 GiB,
    # and never more than an eighth of the free memory.
    llc = last_level_cache_bytes() or 64 * MiB
    mb = min(max(4 * llc // MiB, 256), 1024)
    mb = min(mb, psutil.virtual_memory().available // MiB // 8)
    return max(int(mb), 16)


def probe_bandwidth(buffer_mb: int | None = None, budget_s: float = 1.0, min_passes: int = 3,
                    threads: int | None = None) -> BandwidthResult:
    """Measure read bandwidth: timed passes over a large buffer until `budget_s` is spent (at least `min_passes`)."""
    buffer_mb = default_buffer_mb() if buffer_mb is None else buffer_mb
    threads = usable_cpus() if threads is None else threads
    if buffer_mb < 1 or threads < 1 or min_passes < 1 or budget_s <= 0:
        raise EdgewiseError("probe_bandwidth needs buffer_mb >= 1, threads >= 1, min_passes >= 1 and budget_s > 0")
    t_start = time.perf_counter()
    buf = np.ones(buffer_mb * MiB, dtype=np.uint8)  # ones, not empty: every page must be really backed by RAM
    chunks = np.array_split(buf, threads)
    best = float("inf")
    passes = 0
    with ThreadPoolExecutor(threads) as pool:
        # uint8 max does almost no arithmetic per byte, so the pass is limited by loads alone; numpy releases the
        # GIL inside reductions, so the threads really run in parallel.
        list(pool.map(np.max, chunks))  # warm-up: thread start-up and first touch stay out of the timing
        while passes < min_passes or time.perf_counter() - t_start < budget_s:
            t = time.perf_counter()
            list(pool.map(np.max, chunks))
            best = min(best, time.perf_counter() - t)
            passes += 1
    del chunks, buf
    return BandwidthResult(gbs=buffer_mb * MiB / best / 1e9, buffer_mb=buffer_mb, passes=passes, threads=threads,
                           seconds=time.perf_counter() - t_start)


@functools.lru_cache(maxsize=1)
def host_bandwidth() -> BandwidthResult:
    """This machine's read bandwidth, probed once per process (about a second)."""
    return probe_bandwidth()


def host_bandwidth_gbs() -> float:
    return host_bandwidth().gbs


def achieved_bandwidth_ratio(weight_bytes_per_token: float, tokens_per_s: float, bandwidth_gbs: float) -> float:
    """Share of the memory bandwidth a decode run used: weight bytes read per token x tokens/s / bandwidth."""
    if weight_bytes_per_token <= 0 or tokens_per_s < 0 or bandwidth_gbs <= 0:
        raise EdgewiseError("achieved_bandwidth_ratio needs positive bytes per token and bandwidth, tokens/s >= 0")
    return weight_bytes_per_token * tokens_per_s / (bandwidth_gbs * 1e9)
