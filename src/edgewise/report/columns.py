"""The report table's columns, defined once for the terminal (rich) and the HTML page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from edgewise.models.kinds import ModelRole


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
    if v.get("gate_status"):
        return v["gate_status"]  # pass | not shown safe | fail
    if v.get("passes_gate") is None:
        return "–"
    return "pass" if v.get("passes_gate") else "fail"


def _entry(v: dict, i: int) -> dict:
    """The row's entry for task i (optimize writes one per task; `edgewise bench` rows have none)."""
    t = v.get("tasks") or []
    return t[i] if i < len(t) else {}


def _acc_ci(e: dict) -> str:
    if e.get("accuracy") is None:
        return "–"
    lo, hi = e["accuracy_ci"]
    return f"{100 * e['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def _diff_ci(e: dict) -> str:
    if e.get("diff") is None:
        return "–"
    lo, hi = e["diff_ci"]
    return f"{100 * e['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _p(e: dict) -> str:
    return "–" if e.get("mcnemar_p") is None else f"{e['mcnemar_p']:.2g}"


def _per_item_columns(i: int, prefix: str, primary: str) -> list[Column]:
    """A task scored item by item: accuracy with its interval, the paired drop with its interval, McNemar's p.
    Titles break over lines (the terminal shows them stacked) so the interval cells set the width."""
    return [
        Column(f"{prefix}{primary} %\n[95% CI]", lambda v: _acc_ci(_entry(v, i)),
               "accuracy in percent with its Wilson 95% interval"),
        Column(f"{prefix}Δ pts\n[95% CI]", lambda v: _diff_ci(_entry(v, i)),
               "variant minus full model, item by item, in accuracy points (negative = worse), with the paired "
               "bootstrap 95% interval; the gate reads its lower end"),
        Column(f"{prefix}McNemar p", lambda v: _p(_entry(v, i)),
               "McNemar's exact test on the items the two models disagree on", terminal=False),
    ]


def short_names(tasks: list[dict]) -> list[str]:
    """What prefixes each task's columns: its kind when no two tasks share one, else its label (kind:file-stem)."""
    kinds = [t["kind"] for t in tasks]
    return [k if kinds.count(k) == 1 else t.get("label", k) for k, t in zip(kinds, tasks)]


def _extra_task_columns(i: int, t: dict, name: str) -> list[Column]:
    """Columns of a task after the first (`--task A --task B`)."""
    prefix = f"{name}\n"
    if t.get("per_item"):
        return _per_item_columns(i, prefix, t["primary"])
    title = t["primary"] if name == t["primary"] else f"{prefix}{t['primary']}"
    cols = [Column(title, lambda v: _f(_entry(v, i).get("primary"), ".4g")),
            Column(f"{prefix}Δ", lambda v: _drop(_entry(v, i).get("relative_drop")),
                   "relative drop (positive = worse)")]
    if t["kind"] == "perplexity":
        cols.append(Column(f"{prefix}KLD", lambda v: _f((_entry(v, i).get("metrics") or {}).get("kld"), ".4f"),
                           "mean KL divergence from the full model", terminal=False))
    return cols


def _fits(v: dict) -> str:
    f = v.get("fits_device")
    return "–" if f is None else ("yes" if f else "does not fit")


def _draft(v: dict, key: str, fmt: str) -> str:
    """A figure of the row's speculative-decoding measurement (bench/measure.py), "–" where none or it failed."""
    return _f((v.get("draft") or {}).get(key), fmt)


def draft_columns(report: dict) -> list[Column]:
    """Speed-up and acceptance of the draft, when any row measured one (`optimize --draft`, on by default)."""
    drafts = [v["draft"] for v in report.get("variants", []) if isinstance(v.get("draft"), dict)]
    if not drafts:
        return []
    source = drafts[0].get("source", "draft")
    return [Column("draft ×", lambda v: _draft(v, "speedup", ".2f"),
                   f"decode tokens/s with the {source} draft over plain decode on a grounded prompt, both timed in "
                   "the same interleaved rounds of one process"),
            Column("acceptance", lambda v: _pct((v.get("draft") or {}).get("acceptance")),
                   "share of the draft's proposed tokens that the model accepted")]


def columns(report: dict) -> list[Column]:
    primary = report["task"]["primary"]
    decoder = report["model"]["kind"] == ModelRole.DECODER
    tasks = report.get("tasks") or [report["task"]]
    names = short_names(tasks)
    prefix = f"{names[0]}\n" if len(tasks) > 1 else ""
    cols = [
        Column("variant", lambda v: v["name"] + (" ★" if v.get("recommended") else "")),
        Column("bpw", lambda v: _f(v.get("bits_per_weight"), ".2f"), "bits per weight, scales included"),
        Column("size MB", lambda v: _f(v.get("size_mb"), ".1f")),
    ]
    if report["task"].get("per_item"):
        cols += _per_item_columns(0, prefix, primary)
    else:
        cols += [Column(primary if names[0] == primary else f"{prefix}{primary}", lambda v: _f(v.get("primary"), ".4g"),
                        "the task's primary metric"),
                 Column(f"{prefix}Δ vs fp32", lambda v: _drop(v.get("relative_drop")),
                        "relative drop (positive = worse)")]
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
    for i, t in enumerate(tasks[1:], 1):
        cols += _extra_task_columns(i, t, names[i])
    if decoder:
        cols += [
            Column("gen tok/s", lambda v: _f(v.get("generation_tps"), ".1f")),
            Column("prompt tok/s", lambda v: _f(v.get("prompt_tps"), ".0f"), terminal=False),
            Column("TTFT ms", lambda v: _f(v.get("ttft_ms"), ".0f")),
            Column("p50/p95 ms", lambda v: "–" if v.get("decode_p50_ms") is None else
                   f"{v['decode_p50_ms']:.1f}/{v['decode_p95_ms']:.1f}", "decode latency per token"),
            Column("BW ratio", lambda v: _pct(v.get("achieved_bandwidth_ratio")),
                   "weight bytes per token x tokens/s over the probed host bandwidth"),
            *draft_columns(report),
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
        Column("gate", _gate, "pass; not shown safe (accuracy tasks: the measured drop is within --max-drop but its "
                              "95% interval reaches past it); fail"),
        Column("fits", _fits),
    ]
    return cols
