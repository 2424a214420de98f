"""`edgewise optimize`: compress a model several ways, measure each variant against the full model on the user's task
and on cost, gate on quality, recommend the fastest variant that passes and fits, and write report + bundle.

    result = optimize(OptimizeOptions())          # SmolLM2-135M, the packaged demo text, device host
    result.out / "report.json", result.out / "bundle"

Every input is checked before any model work; the output folder appears whole or not at all.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from edgewise.errors import BackendUnavailableError, EdgewiseError
from edgewise.outdir import check_out_dir, replace_dir
from edgewise.optimize.gate import DEFAULT_MAX_DROP, Gate, parse_gate, recommend, speed_of
from edgewise.optimize.progress import Progress

REPORT_SCHEMA = "edgewise-report"
REPORT_VERSION = 1
# PyTorch ("torch") is left out of the default run to keep the demo short; benchmarks/backends_speed.py compares it.
DECODER_METHODS = ("fp32", "int8", "int4", "int4-gptq", "mixed", "q8_0", "q4_k_m")
ENCODER_METHODS = ("fp32", "int8-dynamic", "int8-static", "int8", "int4", "int4-gptq")
OPTIONAL = ("q8_0", "q4_k_m")  # llama.cpp comparators: default only when the extra is installed


@dataclass
class OptimizeOptions:
    model: str | None = None  # None: the packaged SmolLM2-135M
    device: str = "host"
    task: str | None = None  # KIND:FILE; None: the packaged demo text (decoders) or a stdlib retrieval set (encoders)
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


@dataclass
class OptimizeResult:
    out: Path
    report: dict
    recommended: dict | None = None
    variants: list[dict] = field(default_factory=list)


def default_out(model_name: str) -> Path:
    return Path.cwd() / "edgewise-out" / model_name.replace("/", "_")


def _llamacpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _method_list(opts: OptimizeOptions, decoder: bool) -> list[tuple[str, object]]:
    from edgewise.compress import parse_method

    names = list(opts.methods) if opts.methods else [
        m for m in (DECODER_METHODS if decoder else ENCODER_METHODS) if m not in OPTIONAL or _llamacpp_available()]
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


def _free() -> None:
    gc.collect()


def optimize(opts: OptimizeOptions, progress: Progress | None = None) -> OptimizeResult:
    """Run the whole job; see the module docstring. Raises EdgewiseError (one line) on bad input."""
    from edgewise.compress import Calibration, CompressContext
    from edgewise.devices import get_device
    from edgewise.evaluate import check_model_fits, parse_task
    from edgewise.evaluate.defaults import default_task_spec
    from edgewise.home import edgewise_home
    from edgewise.models import load
    from edgewise.models.packaged import DEFAULT_MODEL
    from edgewise.models.source import CAUSAL_LM

    progress = progress or Progress()
    t_start = time.perf_counter()
    # --- 1. every input, before any model work ------------------------------------------------------------------
    model_ref = opts.model or DEFAULT_MODEL
    source = load(model_ref)
    device = get_device(opts.device)
    decoder = source.task == CAUSAL_LM
    task = parse_task(opts.task or default_task_spec(source.task, edgewise_home() / "tasks"))
    check_model_fits(task, source.task, model_ref)
    gate: Gate = parse_gate(opts.max_drop)
    if opts.search:
        from edgewise.optimize.search import SearchSpace

        space, methods = SearchSpace.from_options(opts, decoder), []
    else:
        space, methods = None, _method_list(opts, decoder)
    out = Path(opts.out) if opts.out else default_out(source.name)
    out = out.expanduser().absolute()
    check_out_dir(out, opts.force)
    calibration = Calibration.from_file(opts.calib) if opts.calib else Calibration.default()
    progress.info(f"{model_ref} · task {task.kind}:{task.path.name} · device {device.name} · gate: "
                  f"{gate.describe(task.primary)}")

    # --- 2-4. compress, evaluate against the full model, bench: a fixed method list, or a search ----------------
    ctx = CompressContext(source, calibration, say=progress.info)
    if opts.search:
        from edgewise.optimize.search import run_search

        m = run_search(opts, ctx, task, gate, device, progress, space)
    else:
        m = _measure_methods(opts, ctx, methods, task, device, progress)
    results, rows, skipped, host_bw = m.results, m.rows, m.skipped, m.host_bw
    ref_metrics = next(r["metrics"] for r in rows if r["name"] == "fp32")

    # --- 5. gate and recommendation -----------------------------------------------------------------------------
    for row in rows:
        gate_row(row, task, ref_metrics, gate)
    best, why = recommend(rows)
    for row in rows:
        row["recommended"] = row is best

    report = {
        "schema": REPORT_SCHEMA, "version": REPORT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "edgewise_version": _version(),
        "model": {"ref": model_ref, "name": source.name, "kind": "decoder" if decoder else "encoder",
                  "arch": source.arch, "params": ctx.params(), "source_kind": source.kind},
        "task": {"kind": task.kind, "file": str(task.path), "primary": task.primary,
                 "higher_is_better": task.higher_is_better},
        "calibration": {"source": calibration.source, "digest": calibration.digest},
        "device": device.as_dict(),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "bandwidth_gbs": host_bw,
                 "python": platform.python_version()},
        "gate": {"max_drop": gate.max_drop, "kld_max": gate.kld_max, "metric": task.primary,
                 "description": gate.describe(task.primary)},
        "reference": "fp32",
        "variants": rows,
        "skipped": skipped,
        "recommendation": ({"name": best["name"], "reason": why, "bundle": "bundle"} if best else
                           {"name": None, "reason": why, "bundle": None}),
        "timings_s": {k: round(v, 1) for k, v in m.timings.items()},
    }
    if m.search is not None:
        report["search"] = m.search

    # --- 6. write everything into a temp folder, then rename it into place --------------------------------------
    progress.stage("write", 3 if best else 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp.", dir=out.parent))
    try:
        from edgewise.report import write_report

        if best:
            progress.step("bundle")
            from edgewise.models.bundle import write_bundle

            chosen = next(r for r in results if r.name == best["name"])
            write_bundle(chosen.bundle_dir, tmp / "bundle", name=f"{source.name}-{best['name']}",
                         provenance={"model": model_ref, "method": best["method"], "config": best["config"],
                                     "calibration": calibration.source, "created_by": f"edgewise {_version()}"},
                         options={"backend": best["backend"], "threads": device.threads, "device": device.name},
                         metrics={"task": f"{task.kind}:{task.path.name}", **(best.get("metrics") or {}),
                                  "generation_tps": best.get("generation_tps"),
                                  "bits_per_weight": best["bits_per_weight"]})
        report["timings_s"]["total"] = round(time.perf_counter() - t_start, 1)
        progress.step("report.json, plots, report.html")
        write_report(report, tmp)
        progress.step("done")
        replace_dir(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EdgewiseError(f"could not write {out} ({e.strerror or e}): free some disk space or choose another "
                            "--out") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return OptimizeResult(out=out, report=report, recommended=best, variants=rows)


@dataclass
class Measured:
    """Steps 2-4 of a run: the built variants, their report rows, what was skipped, and how long each stage took."""

    results: list
    rows: list[dict]
    skipped: list[dict]
    timings: dict[str, float]
    host_bw: float | None = None
    search: dict | None = None


def probe_bandwidth(progress: Progress) -> float:
    from edgewise.devices import host_bandwidth_gbs

    progress.step("memory bandwidth probe")
    return host_bandwidth_gbs()


def _measure_methods(opts: OptimizeOptions, ctx, methods, task, device, progress: Progress) -> Measured:
    """Compress with every listed method, evaluate each against fp32, then bench each in its own process."""
    from edgewise.compress import quantize
    from edgewise.compress.context import DECODER

    decoder = ctx.kind == DECODER
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
    from edgewise.runtime import load_model

    progress.stage("evaluate", len(results))
    t0 = time.perf_counter()
    rows: list[dict] = []
    ref_result = next(r for r in results if r.name == "fp32")
    ref_model = load_model(str(ref_result.path), backend=ref_result.backend)
    ref_state = task.reference(ref_model)
    for r in results:
        progress.step(f"{r.name} on {task.kind}")
        rows.append(evaluate_variant(r, task, ref_model, ref_state, is_reference=r is ref_result))
        _free()
    del ref_model, ref_state
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
            progress.step(f"{row['name']} ({row['backend']}, {device.threads} threads)")
            bench_row(row, device, host_bw, opts)
        bench_s = time.perf_counter() - t0

    return Measured(results, rows, skipped, {"compress": compress_s, "evaluate": evaluate_s, "bench": bench_s},
                    host_bw)


def evaluate_variant(r, task, ref_model, ref_state, is_reference: bool = False) -> dict:
    """One variant's report row: what it is, and its quality on the task against the reference's state."""
    from edgewise.compress import config_dict
    from edgewise.runtime import load_model

    row = {"name": r.name, "method": r.method, "config": config_dict(r.config), "backend": r.backend,
           "bits_per_weight": round(r.bits_per_weight, 3), "size_mb": round(r.size_mb, 2), "params": r.params,
           "quantize_s": round(r.seconds, 1), "path": str(r.path), "notes": list(r.notes)}
    try:
        # llama.cpp runs its GGUF's own type; "fp32" is what the runtime accepts for "as shipped" there.
        lm = ref_model if is_reference else load_model(str(r.path), backend=r.backend)
        row["metrics"] = task.evaluate(lm, ref_state)
        del lm
    except EdgewiseError as e:
        row["metrics"], row["error"] = {}, str(e).splitlines()[0]
    return row


def bench_row(row: dict, device, host_bw: float | None, opts: "OptimizeOptions") -> None:
    """Speed, memory and fit of one variant, measured in its own process; merged into the row."""
    from edgewise.bench import BenchSpec, bench_variant

    spec = BenchSpec(row["path"], row["backend"], "fp32", threads=device.threads, max_tokens=opts.max_tokens,
                     passes=opts.passes)
    b = bench_variant(spec, device, host_bw)
    if "error" in b:
        row["bench_error"] = b.pop("error")
    row.update(b)


def gate_row(row: dict, task, ref_metrics: dict, gate: Gate) -> None:
    """The row's quality drop against the reference, and whether it passes the gate."""
    from edgewise.evaluate import relative_drop

    m = row.get("metrics") or {}
    row["kld"] = m.get("kld")
    row["same_top_token"] = m.get("same_top_token")
    row["primary"] = m.get(task.primary)
    row["relative_drop"] = (relative_drop(task, m[task.primary], ref_metrics[task.primary])
                            if task.primary in m and task.primary in ref_metrics else None)
    if row.get("error"):
        row["passes_gate"], row["gate_reason"] = False, row["error"]
    else:
        row["passes_gate"], row["gate_reason"] = gate.check(row["relative_drop"], row["kld"])
    row.setdefault("fits_device", None)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("edgewise")
    except Exception:  # noqa: BLE001 - running from a source tree
        return "0+unknown"


__all__ = ["optimize", "OptimizeOptions", "OptimizeResult", "Gate", "parse_gate", "recommend", "speed_of"]
