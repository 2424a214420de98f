"""The report table's columns, defined once for the terminal (rich) and the HTML page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def _f(v, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _drop(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}%"


@dataclass(frozen=True)
class Column:
    title: str
    cell: Callable[[dict], str]
    hint: str = ""
    terminal: bool = True  # shown in the terminal table too (the HTML shows every column)


def _gate(v: dict) -> str:
    if v.get("error"):
        return "error"
    if v.get("passes_gate") is None:
        return "–"
    return "pass" if v.get("passes_gate") else "fail"


def _fits(v: dict) -> str:
    f = v.get("fits_device")
    return "–" if f is None else ("yes" if f else "does not fit")


def columns(report: dict) -> list[Column]:
    primary = report["task"]["primary"]
    decoder = report["model"]["kind"] == "decoder"
    cols = [
        Column("variant", lambda v: v["name"] + (" ★" if v.get("recommended") else "")),
        Column("bpw", lambda v: _f(v.get("bits_per_weight"), ".2f"), "bits per weight, scales included"),
        Column("size MB", lambda v: _f(v.get("size_mb"), ".1f")),
        Column(primary, lambda v: _f(v.get("primary"), ".4g"), "the task's primary metric"),
        Column("Δ vs fp32", lambda v: _drop(v.get("relative_drop")), "relative drop (positive = worse)"),
    ]
    if report["task"]["kind"] == "perplexity":
        cols += [Column("KLD", lambda v: _f(v.get("kld"), ".4f"), "mean KL divergence from the full model"),
                 Column("same top", lambda v: _pct(v.get("same_top_token")), "same top token as the full model")]
    elif report["task"]["kind"] == "nextword":
        cols += [Column("top3", lambda v: _pct((v.get("metrics") or {}).get("top3")))]
    elif report["task"]["kind"] == "retrieval":
        cols += [Column("recall@5", lambda v: _pct((v.get("metrics") or {}).get("recall@5"))),
                 Column("cos to fp32", lambda v: _f((v.get("metrics") or {}).get("cosine_to_full"), ".4f"))]
    elif report["task"]["kind"] == "classify":
        cols += [Column("macro-F1", lambda v: _f((v.get("metrics") or {}).get("macro_f1"), ".3f"))]
    if decoder:
        cols += [
            Column("gen tok/s", lambda v: _f(v.get("generation_tps"), ".1f")),
            Column("prompt tok/s", lambda v: _f(v.get("prompt_tps"), ".0f"), terminal=False),
            Column("TTFT ms", lambda v: _f(v.get("ttft_ms"), ".0f")),
            Column("p50/p95 ms", lambda v: "–" if v.get("decode_p50_ms") is None else
                   f"{v['decode_p50_ms']:.1f}/{v['decode_p95_ms']:.1f}", "decode latency per token"),
            Column("BW ratio", lambda v: _pct(v.get("achieved_bandwidth_ratio")),
                   "weight bytes per token x tokens/s over the probed host bandwidth"),
        ]
        if report["device"]["name"] != "host":
            cols.append(Column("est. device tok/s", lambda v: _f(v.get("est_device_tps"), ".1f"),
                               "ESTIMATE scaled by bandwidth, not a measurement"))
    else:
        cols += [
            Column("p50/p95 ms", lambda v: "–" if v.get("latency_p50_ms") is None else
                   f"{v['latency_p50_ms']:.1f}/{v['latency_p95_ms']:.1f}", "latency of one request"),
            Column("emb/s", lambda v: _f(v.get("throughput_per_s"), ".0f"), "batched throughput"),
        ]
    cols += [
        Column("load s", lambda v: _f(v.get("load_s"), ".1f"), terminal=False),
        Column("peak RSS MB", lambda v: _f(v.get("peak_rss_mb"), ".0f")),
        Column("gate", _gate),
        Column("fits", _fits),
    ]
    return cols
