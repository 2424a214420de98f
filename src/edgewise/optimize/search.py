"""`edgewise optimize --search`: an accuracy-aware, device-aware search over compression recipes.

A recipe is (structured pruning or none) x (a quantization method, where `mixed` is the per-layer precision
choice). Like Intel Neural Compressor's accuracy-aware tuning, quality is a constraint (the gate, e.g. a 5% drop)
and the search looks for the cheapest recipe that meets it; unlike it, cost has two axes (tokens/s and size,
measured on the target device's thread count and checked against its memory) and the whole Pareto frontier of
quality x tokens/s x size is kept and reported.

Order and early stop. Recipes are tried most compressed first (fewest estimated bytes of weights). Two recipes
are ordered by compression when one prunes at least as much of every unit kind and stores weights in no more bits:
such a recipe is no larger and, as decode reads every weight once per token, no slower. So once a recipe passes
the gate and fits the device, every recipe it is at least as compressed as is dominated: it cannot be faster or
smaller, and it can only buy quality the gate already accepts. The search skips those without building them, so
it ends as soon as nothing undominated is left, and it also stops at the time budget.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from dataclasses import dataclass, field

from edgewise.compress import CompressContext, parse_method, quantize
from edgewise.compress.configs import config_dict
from edgewise.compress.methods.baselines import Fp32
from edgewise.compress.prune import Structured, parse_prune, prune
from edgewise.compress.prune.llama import pruned_param_count
from edgewise.compress.registry import names_where
from edgewise.errors import EdgewiseError
from edgewise.export.hf_folder import hf_folder_for
from edgewise.models import load
from edgewise.optimize.measure import Measured, bench_once, bench_row, evaluate_variant, probe_bandwidth
from edgewise.optimize.gate import NOT_SHOWN_SAFE
from edgewise.optimize.quality import gate_row, references
from edgewise.report.plots import undominated
from edgewise.report.row import VariantRow
from edgewise.runtime import load_model

DEFAULT_PRUNE = ("none", "structured:mlp=0.25", "structured:mlp=0.25,blocks=0.1")
DEFAULT_QUANT = ("int8", "int4-gptq", "mixed", "int4")  # equal-cost ties go to the first listed (GPTQ before RTN)
UNITS = ("mlp", "heads", "blocks")


def nominal_bits(cfg) -> float:
    """Bits per stored weight a quantization config aims at (its cost rank; measured bpw goes in the report)."""
    bits = getattr(cfg, "nominal_bits", None)
    if bits is None:
        rankable = names_where(lambda t: getattr(t, "nominal_bits", None) is not None and t is not Fp32)
        raise EdgewiseError(f"the search cannot rank {type(cfg).__name__}: use one of {', '.join(rankable)}")
    return float(bits)


@dataclass
class Candidate:
    prune_spec: str | None
    quant_spec: str
    prune_cfg: object | None
    quant_name: str
    quant_cfg: object
    params: int  # parameters after pruning, from the config arithmetic (exact for Llama)
    status: str = "pending"  # measured | dominated | budget | error
    reason: str = ""
    seconds: dict = field(default_factory=dict)
    row: VariantRow | None = None

    @property
    def name(self) -> str:
        return self.quant_name if self.prune_cfg is None else f"{self.prune_cfg.label}+{self.quant_name}"

    @property
    def prune_vec(self) -> tuple[float, ...]:
        return tuple(float(getattr(self.prune_cfg, u, 0.0)) if self.prune_cfg else 0.0 for u in UNITS)

    @property
    def bits(self) -> float:
        return nominal_bits(self.quant_cfg)

    @property
    def est_mb(self) -> float:
        return self.params * self.bits / 8 / 1e6

    def at_least_as_compressed_as(self, other: "Candidate") -> bool:
        return all(a >= b for a, b in zip(self.prune_vec, other.prune_vec)) and self.bits <= other.bits

    def as_dict(self) -> dict:
        r = self.row.as_dict() if self.row else {}
        return {"name": self.name, "prune": self.prune_spec, "quant": self.quant_spec,
                "prune_config": config_dict(self.prune_cfg) if self.prune_cfg else None,
                "params": self.params, "nominal_bits": self.bits, "est_weights_mb": round(self.est_mb, 2),
                "status": self.status, "reason": self.reason,
                "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
                "relative_drop": r.get("relative_drop"), "primary": r.get("primary"),
                "generation_tps": r.get("generation_tps"), "throughput_per_s": r.get("throughput_per_s"),
                "size_mb": r.get("size_mb"), "peak_rss_mb": r.get("peak_rss_mb"),
                "passes_gate": r.get("passes_gate"), "gate_status": r.get("gate_status"),
                "fits_device": r.get("fits_device")}


@dataclass
class SearchSpace:
    prune: list[tuple[str | None, object | None]]
    quant: list[tuple[str, str, object]]  # (spec, variant name, config)
    budget_minutes: float | None

    @classmethod
    def from_options(cls, opts, decoder: bool) -> "SearchSpace":
        if opts.methods:
            raise EdgewiseError("--search picks the methods itself: drop --methods, or use --search-quant to set "
                                "the quantization methods it tries")
        if not decoder:
            raise EdgewiseError("--search explores pruning of language models: for an encoder, list --methods")
        if opts.budget_minutes is not None and not opts.budget_minutes > 0:
            raise EdgewiseError(f"--budget-minutes must be > 0, got {opts.budget_minutes!r}")
        prune = []
        for spec in (opts.search_prune or DEFAULT_PRUNE):
            spec = spec.strip()
            if spec.lower() in ("none", "", "0"):
                prune.append((None, None))
                continue
            cfg = parse_prune(spec)
            if not isinstance(cfg, Structured):
                raise EdgewiseError(f"--search-prune {spec!r}: the search tries structured pruning only; unstructured "
                                    "zeros give no speed on dense CPU runtimes (use `edgewise prune` for them)")
            prune.append((spec, cfg))
        quant = []
        for spec in (opts.search_quant or DEFAULT_QUANT):
            name, cfg = parse_method(spec)
            if name == "fp32":
                continue  # the reference is always measured
            nominal_bits(cfg)  # rejects what the search cannot rank
            quant.append((spec, name, cfg))
        if not quant:
            raise EdgewiseError("--search-quant lists no quantization method: add int8, int4-gptq, mixed or int4")
        for kind, items in (("--search-prune", [p for p, _ in prune]), ("--search-quant", [q for _, q, _ in quant])):
            dup = {x for x in items if items.count(x) > 1}
            if dup:
                raise EdgewiseError(f"{kind} lists {sorted(map(str, dup))[0]!r} twice: list each once")
        return cls(prune, quant, opts.budget_minutes)

    def candidates(self, base_config: dict) -> list[Candidate]:
        out = []
        for p_spec, p_cfg in self.prune:
            params = pruned_param_count(base_config, p_cfg)
            for i, (q_spec, q_name, q_cfg) in enumerate(self.quant):
                out.append(Candidate(p_spec, q_spec, p_cfg, q_name, q_cfg, params))
        order = {q_spec: i for i, (q_spec, _, _) in enumerate(self.quant)}
        # Most compressed first; among equal estimated bytes, the order the user listed the methods in.
        out.sort(key=lambda c: (c.est_mb, order[c.quant_spec], c.prune_vec))
        return out


def pareto(rows: list[VariantRow], higher_is_better: bool, speed_key: str) -> list[VariantRow]:
    """Rows no other row beats on all of quality, speed and size (and strictly on one)."""
    def vec(r):
        q = r.primary if higher_is_better else -r.primary
        return (q, r.bench[speed_key], -r.size_mb)

    pts = [r for r in rows if r.primary is not None and r.bench.get(speed_key) and r.size_mb is not None
           and not r.error]
    return [pts[i] for i in undominated([vec(r) for r in pts])]


def run_search(opts, ctx, tasks: list, gate, device, progress, space: SearchSpace | None = None):
    """Measure the fp32 reference, then recipes in order until one dominates what is left or time runs out."""
    space = space or SearchSpace.from_options(opts, decoder=True)
    t_start = time.perf_counter()
    budget_s = space.budget_minutes * 60 if space.budget_minutes else None
    base_cfg = json.loads((hf_folder_for(ctx.source) / "config.json").read_text())
    cands = space.candidates(base_cfg)
    timings = {"prune": 0.0, "compress": 0.0, "evaluate": 0.0, "bench": 0.0}
    progress.stage("search", len(cands) + 1 + (1 if opts.bench else 0))  # + the reference and the bandwidth probe

    # The reference: fp32, unpruned. Its state is what every candidate's quality is measured against.
    progress.step("fp32 reference")
    t0 = time.perf_counter()
    ref = quantize(None, Fp32(), name="fp32", ctx=ctx)
    timings["compress"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    ref_model = load_model(str(ref.path), backend=ref.backend)
    refs = references(tasks, ref_model)
    item_ids = [r.item_ids for r in refs]
    ref_row = evaluate_variant(ref, refs, ref_model, is_reference=True)
    timings["evaluate"] += time.perf_counter() - t0
    host_bw = None
    if opts.bench:
        t0 = time.perf_counter()
        host_bw = probe_bandwidth(progress)
        bench_row(ref_row, device, host_bw, opts)
        timings["bench"] += time.perf_counter() - t0
    gate_row(ref_row, tasks, ref_row, gate)
    ref_row.search["search_status"] = "reference"
    results, rows, skipped = [ref], [ref_row], []
    contexts = {None: ctx}  # one compression context per pruning level, built when first needed
    prune_errors: dict[str, str] = {}
    winners: list[Candidate] = []
    stopped = "exhausted"

    for cand in cands:
        if cand.status != "pending":
            continue
        elapsed = time.perf_counter() - t_start
        if budget_s is not None and elapsed >= budget_s:
            stopped = "budget"
            for c in cands:
                if c.status == "pending":
                    c.status, c.reason = "budget", f"time budget of {space.budget_minutes:g} min used up"
            break
        dom = next((w for w in winners if w.at_least_as_compressed_as(cand)), None)
        if dom is not None:
            cand.status, cand.reason = "dominated", f"{dom.name} passes, fits, and is at least as compressed"
            continue
        progress.step(f"{cand.name} (~{cand.est_mb:.0f} MB of weights)")
        t_c = time.perf_counter()
        try:
            if cand.prune_spec in prune_errors:  # one failed pruning level is not retried for every quantization
                raise EdgewiseError(prune_errors[cand.prune_spec])
            if cand.prune_spec not in contexts:
                t0 = time.perf_counter()
                pr = prune(ctx.source, cand.prune_cfg, calibration=ctx.calibration, say=progress.info,
                           threads=ctx.threads)
                contexts[cand.prune_spec] = CompressContext(load(str(pr.path)), ctx.calibration, ctx.threads,
                                                            say=progress.info)
                cand.seconds["prune"] = time.perf_counter() - t0
                timings["prune"] += cand.seconds["prune"]
            t0 = time.perf_counter()
            qr = quantize(None, cand.quant_cfg, name=cand.name, ctx=contexts[cand.prune_spec])
            cand.seconds["compress"] = time.perf_counter() - t0
            timings["compress"] += cand.seconds["compress"]
            t0 = time.perf_counter()
            row = evaluate_variant(qr, refs, ref_model)
            gc.collect()
            cand.seconds["evaluate"] = time.perf_counter() - t0
            timings["evaluate"] += cand.seconds["evaluate"]
            if opts.bench and not row.error:
                t0 = time.perf_counter()
                bench_row(row, device, host_bw, opts)
                cand.seconds["bench"] = time.perf_counter() - t0
                timings["bench"] += cand.seconds["bench"]
        except EdgewiseError as e:
            if cand.prune_spec not in contexts:
                prune_errors[cand.prune_spec] = str(e).splitlines()[0]
            cand.status, cand.reason = "error", str(e).splitlines()[0]
            cand.seconds["total"] = time.perf_counter() - t_c
            skipped.append({"name": cand.name, "reason": cand.reason})
            progress.info(f"{cand.name}: {cand.reason}")
            continue
        gate_row(row, tasks, ref_row, gate)
        row.search.update(search_status="measured", prune=cand.prune_spec)
        if cand.prune_cfg is not None:
            row.method = f"{cand.prune_cfg.describe()}, then {row.method}"
            row.params = cand.params
        cand.row, cand.status = row, "measured"
        cand.seconds["total"] = time.perf_counter() - t_c
        row.search["search_seconds"] = round(cand.seconds["total"], 1)
        results.append(qr)
        rows.append(row)
        ok = row.passes_gate and row.fits_device is not False
        cand.reason = "passes the gate" + (" and fits" if row.fits_device else "") if ok else row.gate_reason
        if ok:
            winners.append(cand)
        verdict = "passes" if ok else ("is not shown safe" if row.gate_status == NOT_SHOWN_SAFE else "fails")
        progress.info(f"{cand.name}: {verdict} ({cand.reason}), "
                      f"{cand.seconds['total']:.0f} s")
    del ref_model, refs
    gc.collect()
    confirm = _confirm_speeds(rows, device, host_bw, opts, progress) if opts.bench else None
    violations = _check_cost_assumption(cands, ref, ref_row, base_cfg) if opts.bench else []
    for v in violations:
        progress.info(f"note: {v}")
    if stopped != "budget" and any(c.status == "dominated" for c in cands):
        stopped = "dominated"  # what was left could not beat a passing recipe, so it was never built

    speed_key = "generation_tps" if opts.bench else None
    front = pareto(rows, tasks[0].higher_is_better, speed_key) if speed_key else []
    front_names = {r.name for r in front}
    for r in rows:
        r.search["on_frontier"] = r.name in front_names
    info = {
        "space": {"prune": [p or "none" for p, _ in space.prune], "quant": [q for q, _, _ in space.quant]},
        "order": "most compressed first (estimated weight bytes), equal cost in the listed method order",
        "budget_minutes": space.budget_minutes,
        "stopped": stopped,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
        "candidates": [c.as_dict() for c in cands],
        "frontier": [r.name for r in front],
        "measured": sum(c.status == "measured" for c in cands),
        "assumptions": ["cost is monotone in compression: pruning more units or storing fewer bits never makes "
                        "a model larger or slower"],
        # Where measurement contradicts that assumption (a small model, a noisy machine), say so.
        "assumption_violations": violations,
        "confirm": confirm,
    }
    progress.info(f"search: {info['measured']} of {len(cands)} recipes measured, stopped: {stopped}, "
                  f"frontier: {', '.join(info['frontier']) or '-'}")
    return Measured(results, rows, skipped, timings, host_bw, info, item_ids=item_ids)


def _check_cost_assumption(cands: list[Candidate], ref, ref_row: VariantRow, base_cfg: dict) -> list[str]:
    """Measured pairs where the more compressed recipe ran >10% slower or was larger than the less compressed one."""
    ref_c = Candidate(None, "fp32", None, "fp32", Fp32(), pruned_param_count(base_cfg), "measured", row=ref_row)
    done = [ref_c] + [c for c in cands if c.status == "measured"]
    out = []
    for a in done:
        for b in done:
            if a is b or not a.at_least_as_compressed_as(b) or b.at_least_as_compressed_as(a):
                continue
            ta, tb = a.row.generation_tps, b.row.generation_tps
            if ta and tb and ta < 0.9 * tb:
                out.append(f"{a.name} is more compressed than {b.name} but ran slower ({ta:.1f} vs {tb:.1f} tokens/s)")
            if a.row.size_mb > b.row.size_mb:
                out.append(f"{a.name} is more compressed than {b.name} but larger ({a.row.size_mb:.1f} vs "
                           f"{b.row.size_mb:.1f} MB)")
    return out


CONFIRM_ROUNDS = 2


def _confirm_speeds(rows: list[VariantRow], device, host_bw, opts, progress,
                    rounds: int = CONFIRM_ROUNDS) -> dict | None:
    """Re-bench the rows that could be chosen (pass the gate and fit), interleaved, and keep the median.

    Candidates were each timed once, minutes apart, on a machine whose speed drifts; the choice between two close
    contenders should rest on rounds that alternate between them, as every other speed figure here does."""
    contenders = [r for r in rows if r.passes_gate and r.fits_device is not False and r.generation_tps
                  and not r.error]
    if len(contenders) < 2:
        return None
    for r in contenders:
        r.search["generation_tps_rounds"] = [round(r.generation_tps, 2)]
    for i in range(rounds):
        for r in contenders:
            progress.info(f"confirm round {i + 1}/{rounds}: {r.name}")
            again = bench_once(r, device, host_bw, opts, draft=False)
            if again.get("generation_tps") and "error" not in again:
                r.search["generation_tps_rounds"].append(round(again["generation_tps"], 2))
    for r in contenders:
        r.search["generation_tps_single"] = r.generation_tps
        r.bench["generation_tps"] = statistics.median(r.search["generation_tps_rounds"])
    return {"rounds": rounds + 1, "rows": [r.name for r in contenders],
            "note": "generation_tps of these rows is the median of interleaved rounds (generation_tps_rounds)"}
