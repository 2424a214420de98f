"""`edgewise optimize`: compress a model several ways, measure each variant against the full model on the user's tasks
and on cost, gate on quality (every task), recommend the fastest variant that passes and fits, and write report and
bundle.

    result = optimize(OptimizeOptions())          # SmolLM2-135M, the packaged text and quiz, device host
    result.out / "report.json", result.out / "bundle"

Every input is checked before any model work; the output folder appears whole or not at all.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from edgewise.compress import Calibration, CompressContext, parse_method
from edgewise.devices import get_device
from edgewise.errors import EdgewiseError
from edgewise.evaluate import check_model_fits, parse_task
from edgewise.evaluate.defaults import default_task_specs
from edgewise.home import edgewise_home
from edgewise.models import load
from edgewise.models.bundle import write_bundle
from edgewise.models.packaged import DEFAULT_MODEL
from edgewise.models.kinds import ModelRole, SourceFormat
from edgewise.models.source import CAUSAL_LM
from edgewise.optimize.gate import DEFAULT_MAX_DROP, Gate, parse_gate, recommend, speed_of
from edgewise.optimize.measure import check_draft, measure_methods
from edgewise.optimize.quality import gate_rows, task_label, task_summaries
from edgewise.optimize.search import SearchSpace, run_search
from edgewise.outdir import check_out_dir
from edgewise.progress import Progress
from edgewise.report import items_needed_note, write_report
from edgewise.staging import staged_dir

REPORT_SCHEMA = "edgewise-report"
REPORT_VERSION = 1
TASK_KEYS = ("kind", "file", "primary", "higher_is_better", "label", "per_item")
# PyTorch ("torch") is left out of the default run to keep the demo short; benchmarks/backends_speed.py compares it.
DECODER_METHODS = ("fp32", "gguf", "gguf-5.5bpw", "int8", "int4", "int4-gptq", "mixed", "q8_0", "q4_k_m")
ENCODER_METHODS = ("fp32", "int8-dynamic", "int8-static", "int8", "int4", "int4-gptq")
OPTIONAL = ("q8_0", "q4_k_m")  # llama.cpp comparators: default only when the extra is installed
GGUF_ONLY = ("gguf", "gguf-5.5bpw")  # the shipped GGUF's own blocks: default only when the input is a quantized GGUF


@dataclass
class OptimizeOptions:
    model: str | None = None  # None: the packaged SmolLM2-135M
    device: str = "host"
    # KIND:FILE, or several (every variant is measured on each; the first is the primary one). None: the packaged
    # demo text and multiple-choice task (decoders) or a stdlib retrieval set (encoders).
    task: str | list[str] | None = None
    methods: list[str] | None = None
    max_drop: str | float | None = DEFAULT_MAX_DROP
    out: Path | None = None
    force: bool = False
    calib: Path | None = None
    bench: bool = True
    max_tokens: int = 64
    passes: int = 2
    search: bool = False  # explore pruning x quantization x per-layer precision instead of a fixed list
    search_prune: list[str] | None = None  # structured pruning specs; None: the default ladder
    search_quant: list[str] | None = None  # quantization methods; None: the default set
    budget_minutes: float | None = None  # stop the search when this much time has gone
    # Speculative decoding timed beside plain decode for every benched decoder (runtime/drafts.py spec); None: off.
    draft: str | None = "lookup"


@dataclass
class OptimizeResult:
    out: Path
    report: dict
    recommended: dict | None = None
    variants: list[dict] = field(default_factory=list)


def default_out(model_name: str) -> Path:
    return Path.cwd() / "edgewise-out" / model_name.replace("/", "_")


def _llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def _method_list(opts: OptimizeOptions, decoder: bool, gguf: bool = False) -> list[tuple[str, object]]:
    names = list(opts.methods) if opts.methods else [
        m for m in (DECODER_METHODS if decoder else ENCODER_METHODS)
        if (m not in OPTIONAL or _llamacpp_available()) and (m not in GGUF_ONLY or gguf)]
    parsed = [parse_method(m) for m in names]
    if not any(n == "fp32" for n, _ in parsed):
        parsed.insert(0, parse_method("fp32"))  # the reference every figure is relative to
    seen, out = set(), []
    for n, c in parsed:
        if n in seen:
            raise EdgewiseError(f"method {n!r} is listed twice: list each once")
        seen.add(n)
        out.append((n, c))
    return out


def parse_tasks(spec: str | list[str] | None, model_task: str, model_ref: str) -> list:
    """The run's tasks, each read and checked against the model now: the user's (one or several), or the defaults."""
    specs = [spec] if isinstance(spec, str) else list(spec or [])
    specs = specs or default_task_specs(model_task, edgewise_home() / "tasks")
    tasks = [parse_task(s) for s in specs]
    seen = set()
    for t in tasks:
        check_model_fits(t, model_task, model_ref)
        key = (t.kind, t.path.resolve())
        if key in seen:
            raise EdgewiseError(f"task {t.kind}:{t.path} is listed twice: list each --task once")
        seen.add(key)
    labels = [task_label(t) for t in tasks]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup:
        raise EdgewiseError(f"two tasks are both called {dup}: rename one file so each task has its own name")
    return tasks


def optimize(opts: OptimizeOptions, progress: Progress | None = None) -> OptimizeResult:
    """Run the whole job; see the module docstring. Raises EdgewiseError (one line) on bad input."""
    progress = progress or Progress()
    t_start = time.perf_counter()
    # --- 1. every input, before any model work ------------------------------------------------------------------
    model_ref = opts.model or DEFAULT_MODEL
    source = load(model_ref)
    device = get_device(opts.device)
    decoder = source.task == CAUSAL_LM
    tasks = parse_tasks(opts.task, source.task, model_ref)
    task = tasks[0]  # the primary task: the row's metrics, sorting, plots
    for t in tasks:
        if hasattr(t, "progress"):  # tasks that report items/s as they go (choice, generate) use the run's progress
            t.progress = progress
    gate: Gate = parse_gate(opts.max_drop)
    draft = check_draft(opts.draft)  # checked even where it will not run: only benched decoders time it
    opts = replace(opts, draft=draft if decoder and opts.bench else None)  # a copy: the caller's options stay
    if opts.search:
        space, methods = SearchSpace.from_options(opts, decoder), []
    else:
        space, methods = None, _method_list(opts, decoder, gguf=source.kind == SourceFormat.GGUF)
    out = Path(opts.out) if opts.out else default_out(source.name)
    out = out.expanduser().absolute()
    check_out_dir(out, opts.force)
    calibration = Calibration.from_file(opts.calib) if opts.calib else Calibration.default()
    gate_text = gate.describe_tasks([(task_label(t), t.primary, bool(getattr(t, "per_item", False)))
                                     for t in tasks])
    progress.info(f"{model_ref} · task {', '.join(f'{t.kind}:{t.path.name}' for t in tasks)} · device "
                  f"{device.name} · gate: {gate_text}")

    # --- 2-4. compress, evaluate against the full model, bench: a fixed method list, or a search ----------------
    ctx = CompressContext(source, calibration, say=progress.info)
    if opts.search:
        m = run_search(opts, ctx, tasks, gate, device, progress, space)
    else:
        m = measure_methods(opts, ctx, methods, tasks, device, progress)
    results, rows, skipped, host_bw = m.results, m.rows, m.skipped, m.host_bw

    # --- 5. gate and recommendation -----------------------------------------------------------------------------
    gate_rows(rows, tasks, gate)  # the search gated its rows as it went; gating again gives the same verdicts
    summaries = task_summaries(tasks, m.item_ids or [None] * len(tasks), rows, gate)
    for summary in summaries:
        note = items_needed_note(summary)
        if note:
            progress.info(note)
    best, why = recommend(rows)
    for row in rows:
        row.recommended = row is best

    report = {
        "schema": REPORT_SCHEMA, "version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edgewise_version": _version(),
        "model": {"ref": model_ref, "name": source.name, "kind": ModelRole.of(source.task),
                  "arch": source.arch, "params": ctx.params(), "source_kind": source.kind},
        "task": {k: summaries[0][k] for k in TASK_KEYS},  # the primary task, as before; `tasks` has them all
        "tasks": summaries,
        "calibration": {"source": calibration.source, "digest": calibration.digest},
        "device": device.as_dict(),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "bandwidth_gbs": host_bw,
                 "python": platform.python_version()},
        "gate": {"max_drop": gate.max_drop, "kld_max": gate.kld_max, "metric": task.primary,
                 "max_drop_unit": "accuracy points" if summaries[0]["per_item"] else "relative",
                 "description": gate_text},
        "reference": "fp32",
        "variants": [r.as_dict() for r in rows],
        "skipped": skipped,
        "recommendation": ({"name": best.name, "reason": why, "bundle": "bundle"} if best else
                           {"name": None, "reason": why, "bundle": None}),
        "timings_s": {k: round(v, 1) for k, v in m.timings.items()},
    }
    if m.search is not None:
        report["search"] = m.search

    # --- 6. write everything into a staging folder beside --out, then rename it into place -----------------------
    progress.stage("write", 3 if best else 2)
    try:
        with staged_dir(out) as tmp:
            if best:
                progress.step("bundle")
                chosen = next(r for r in results if r.name == best.name)
                write_bundle(chosen.bundle_dir, tmp / "bundle", name=f"{source.name}-{best.name}",
                             provenance={"model": model_ref, "method": best.method, "config": best.config,
                                         "calibration": calibration.source, "created_by": f"edgewise {_version()}"},
                             options={"backend": best.backend, "threads": device.threads, "device": device.name},
                             metrics={"task": ", ".join(f"{t.kind}:{t.path.name}" for t in tasks),
                                      **(best.metrics or {}), **_other_task_metrics(best),
                                      "generation_tps": best.generation_tps,
                                      "bits_per_weight": best.bits_per_weight})
            report["timings_s"]["total"] = round(time.perf_counter() - t_start, 1)
            progress.step("report.json, plots, report.html")
            write_report(report, tmp)
            progress.step("done")
    except OSError as e:
        raise EdgewiseError(f"could not write {out} ({e.strerror or e}): free some disk space or choose another "
                            "--out") from None
    return OptimizeResult(out=out, report=report, recommended=best.as_dict() if best else None,
                          variants=report["variants"])


def _other_task_metrics(row) -> dict:
    """The bundle's figures on every task after the first, keyed `label:metric` (the first task's are unprefixed)."""
    out = {}
    for e in row.tasks[1:]:
        out.update({f"{e['task']}:{k}": v for k, v in e["metrics"].items()})
        for k in ("accuracy_ci", "diff", "diff_ci", "mcnemar_p", "gate_status"):
            if k in e:
                out[f"{e['task']}:{k}"] = e[k]
    return out


def _version() -> str:
    try:
        return version("edgewise")
    except PackageNotFoundError:  # running from a source tree
        return "0+unknown"


__all__ = ["optimize", "OptimizeOptions", "OptimizeResult", "Gate", "parse_gate", "recommend", "speed_of"]
