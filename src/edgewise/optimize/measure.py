"""Steps 2-4 of `edgewise optimize`: compress with each method, evaluate every variant against the full model on
every task, and bench each in its own process (optimize/quality.py gates the rows). The search
(optimize/search.py) measures through the same functions, one recipe at a time."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

from edgewise.bench import BenchSpec, bench_variant
from edgewise.compress import config_dict, quantize
from edgewise.devices import host_bandwidth_gbs
from edgewise.errors import BackendUnavailableError, EdgewiseError
from edgewise.models import load
from edgewise.models.kinds import ModelRole
from edgewise.optimize.quality import TaskRef, evaluate_tasks, gate_row, references
from edgewise.progress import Progress
from edgewise.report.row import VariantRow
from edgewise.runtime import load_model
from edgewise.runtime.drafts import DRAFTS


def _free() -> None:
    gc.collect()


@dataclass
class Measured:
    """Steps 2-4 of a run: the built variants, their report rows, what was skipped, and how long each stage took."""

    results: list
    rows: list[VariantRow]
    skipped: list[dict]
    timings: dict[str, float]
    host_bw: float | None = None
    search: dict | None = None
    item_ids: list[list[str] | None] = None  # per task: the reference's item ids (per-item tasks), else None


def probe_bandwidth(progress: Progress) -> float:
    progress.step("memory bandwidth probe")
    return host_bandwidth_gbs()


def measure_methods(opts, ctx, methods, tasks: list, device, progress: Progress) -> Measured:
    """Compress with every listed method, evaluate each against fp32 on every task, then bench each in its own
    process."""
    decoder = ctx.kind == ModelRole.DECODER
    # --- 2. compress --------------------------------------------------------------------------------------------
    results, skipped = [], []
    progress.stage("compress", len(methods))
    t0 = time.perf_counter()
    for name, cfg in methods:
        progress.step(f"{name}: {cfg.describe() if hasattr(cfg, 'describe') else type(cfg).__name__}")
        try:
            results.append(quantize(None, cfg, name=name, ctx=ctx))
        except BackendUnavailableError as e:
            skipped.append({"name": name, "reason": str(e).splitlines()[0]})
            progress.info(f"skipped {name}: {skipped[-1]['reason']}")
        except EdgewiseError as e:
            if name == "fp32":
                raise
            skipped.append({"name": name, "reason": str(e).splitlines()[0]})
            progress.info(f"skipped {name}: {skipped[-1]['reason']}")
    compress_s = time.perf_counter() - t0

    # --- 3. evaluate against the full model ---------------------------------------------------------------------
    progress.stage("evaluate", len(results))
    t0 = time.perf_counter()
    rows: list[VariantRow] = []
    ref_result = next(r for r in results if r.name == "fp32")
    ref_model = load_model(str(ref_result.path), backend=ref_result.backend)
    refs = references(tasks, ref_model)
    item_ids = [r.item_ids for r in refs]
    on = ", ".join(r.label for r in refs)
    for r in results:
        progress.step(f"{r.name} on {on}")
        rows.append(evaluate_variant(r, refs, ref_model, is_reference=r is ref_result))
        _free()
    del ref_model, refs
    _free()
    evaluate_s = time.perf_counter() - t0

    # --- 4. bench, each variant in its own process --------------------------------------------------------------
    bench_s = 0.0
    host_bw = None
    if opts.bench:
        progress.stage("bench", len(rows) + (1 if decoder else 0))
        t0 = time.perf_counter()
        if decoder:
            host_bw = probe_bandwidth(progress)
        for row in rows:
            progress.step(f"{row.name} ({row.backend}, {device.threads} threads)")
            bench_row(row, device, host_bw, opts)
        bench_s = time.perf_counter() - t0

    return Measured(results, rows, skipped, {"compress": compress_s, "evaluate": evaluate_s, "bench": bench_s},
                    host_bw, item_ids=item_ids)


def variant_precision(cfg) -> str:
    """What a variant's weights are, in a word: `int4`, `int4+int8` (mixed), `Q4_K_M` (llama.cpp), `gguf` (the
    GGUF's own blocks; `gguf+int4` with rows requantized for a bits budget), `fp32`. The benchmark loads every
    folder 'as built', so its own precision says nothing."""
    if getattr(cfg, "qtype", None):
        return str(cfg.qtype)
    base, high = getattr(cfg, "base", None), getattr(cfg, "high", None)
    if base is not None and high is not None:
        return f"int{base.grid.bits}+int{high.grid.bits}"
    if getattr(type(cfg), "weight_only", False):
        return f"int{cfg.grid.bits}" + ("" if cfg.grid.symmetric else "-asym")
    label = str(getattr(cfg, "label", "fp32"))
    if label == "gguf" and getattr(cfg, "max_bpw", None) is not None:
        return "gguf+int4"  # the GGUF's blocks, with some token-table rows requantized to 4 bits
    if label.startswith("int8"):
        return "int8"
    return "fp32" if label in ("fp32", "torch") else label


def evaluate_variant(r, refs: list[TaskRef], ref_model, is_reference: bool = False) -> VariantRow:
    """One variant's report row: what it is, and its quality on every task against the reference's state."""
    row = VariantRow(name=r.name, method=r.method, backend=r.backend, path=str(r.path), config=config_dict(r.config),
                     precision=variant_precision(r.config), bits_per_weight=round(r.bits_per_weight, 3), size_mb=round(r.size_mb, 2), params=r.params,
                     quantize_s=round(r.seconds, 1), notes=list(r.notes))
    try:
        # llama.cpp runs its GGUF's own type; "fp32" is what the runtime accepts for "as shipped" there.
        lm = ref_model if is_reference else load_model(str(r.path), backend=r.backend)
        row.tasks = evaluate_tasks(lm, refs)
        row.metrics = dict(row.tasks[0]["metrics"])
        del lm
    except EdgewiseError as e:
        row.metrics, row.tasks, row.error = {}, [], str(e).splitlines()[0]
    return row


def check_draft(spec: str | None) -> str | None:
    """A --draft spec checked before any model work (None or "none": off). The source must be registered; lookup
    is built (it needs no model), so its options are checked too; a model draft's ref must resolve. Its options
    and tokenizer are checked where it loads, once per benched variant, and a failure there stays on the row."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    name, _, text = (s.strip() for s in spec.strip().partition(":"))
    factory = DRAFTS.get(name)  # an unknown source: one line naming the known ones
    ref = text.partition(",")[0].strip()
    if name == "lookup" or (name == "model" and not ref):
        factory(text, None, None)  # lookup needs no model; `model:` without a ref fails before loading one
    elif name == "model":
        load(ref)
    return spec.strip()


def bench_once(row: VariantRow, device, host_bw: float | None, opts, draft: bool = True) -> dict:
    """Speed, memory and fit of one variant, measured in its own process (an error comes back as {"error": ...}).
    A decoder is also timed with opts.draft unless draft=False (a re-bench that wants plain speed only)."""
    spec = BenchSpec(row.path, row.backend, "fp32", threads=device.threads, max_tokens=opts.max_tokens,
                     passes=opts.passes, draft=getattr(opts, "draft", None) if draft else None)
    return bench_variant(spec, device, host_bw)


# Below this share of llama.cpp's own decode speed, a llamacpp row says so beside its figure (issue 24: a report
# must not show llama.cpp slower than its own tools measure it without saying why).
PEER_SHARE = 0.9


def bench_row(row: VariantRow, device, host_bw: float | None, opts) -> None:
    """bench_once, merged into the row; a llamacpp row is also set beside llama-bench's own figure when built."""
    row.add_bench(bench_once(row, device, host_bw, opts))
    if row.backend == "llamacpp" and row.generation_tps:
        note_llama_bench(row, device.threads, opts.max_tokens)


def note_llama_bench(row: VariantRow, threads: int, n_gen: int) -> None:
    """llama-bench on the same GGUF and thread count (when `make bench-setup` built it): its decode speed goes into
    the row, and a note when ours through llama-cpp-python falls below PEER_SHARE of it."""
    from edgewise.bench.llamacpp_tools import llama_bench, llama_tool

    if llama_tool("llama-bench") is None:
        return
    try:
        peer = llama_bench(row.path, threads=threads, n_prompt=16, n_gen=n_gen, reps=2)[f"tg{n_gen}"]
    except (EdgewiseError, KeyError, OSError) as e:
        row.notes.append(f"llama-bench could not run beside this row: {str(e).splitlines()[0]}")
        return
    row.bench["llama_bench_tps"] = round(peer, 2)
    share = row.generation_tps / peer
    if share < PEER_SHARE:
        row.notes.append(f"llama.cpp's own llama-bench decodes this GGUF at {peer:.1f} tokens/s on {threads} "
                         f"thread(s) here; this row ({row.generation_tps:.1f}, {share:.2f}x) runs it through "
                         "llama-cpp-python, whose per-token Python calls and larger context cost the difference")


__all__ = ["Measured", "measure_methods", "evaluate_variant", "bench_once", "bench_row", "check_draft", "gate_row",
           "probe_bandwidth", "variant_precision"]
