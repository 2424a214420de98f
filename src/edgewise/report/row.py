"""One row of a report's `variants`: what a variant is, how good it is against the full model, and what it costs.

`edgewise optimize` (optimize/measure.py) and `edgewise bench` (bench/compare.py) both write rows of this type;
`as_dict()` is the JSON form docs/report-schema.md describes ("A variant"), which the HTML page, the terminal table
and the plots read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Always in the JSON, null when not measured: the schema gives their type as "x | null".
ALWAYS = ("name", "method", "backend", "path", "notes", "metrics", "primary", "relative_drop", "kld",
          "same_top_token", "passes_gate", "gate_reason", "fits_device")


@dataclass
class VariantRow:
    name: str  # the method as given (`int4-block_size64`), or MODEL@BACKEND in `edgewise bench`
    method: str  # in words
    backend: str  # ort | torch | llamacpp | litert
    path: str  # what load_model opens
    config: dict | None = None  # config_dict of the typed config (optimize)
    precision: str | None = None  # as asked for (bench)
    bits_per_weight: float | None = None
    size_mb: float | None = None
    params: int | None = None  # of the full model: the denominator of bits_per_weight
    quantize_s: float | None = None
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # the task's metrics; {} when evaluation failed
    primary: float | None = None
    relative_drop: float | None = None  # positive = worse than the reference
    kld: float | None = None
    same_top_token: float | None = None
    passes_gate: bool | None = None
    gate_reason: str | None = None
    gate_status: str | None = None  # pass | not shown safe | fail | error (optimize/gate.py)
    fits_device: bool | None = None  # peak RSS within the device's usable RAM; None when not benchmarked
    recommended: bool | None = None  # optimize only
    error: str | None = None  # evaluation failed
    bench_error: str | None = None  # the benchmark failed
    bench: dict[str, Any] = field(default_factory=dict)  # the child process's measurements (schema: benchmark fields)
    search: dict[str, Any] = field(default_factory=dict)  # search_status, prune, search_seconds, on_frontier, ...
    # One entry per task of the run (optimize): metrics, gate verdict and, on per-item tasks, outcomes and paired stats.
    tasks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def generation_tps(self) -> float | None:
        return self.bench.get("generation_tps")

    @property
    def throughput_per_s(self) -> float | None:
        return self.bench.get("throughput_per_s")

    @property
    def speed(self) -> float | None:
        """The figure 'fastest' compares: generation tokens/s for decoders, embeddings/s for encoders."""
        return self.generation_tps or self.throughput_per_s

    def add_bench(self, measured: dict) -> None:
        """Merge one benchmark result (`bench.bench_variant`): its error, its fit, and its measurements."""
        b = dict(measured)
        if "error" in b:
            self.bench_error = b.pop("error")
        if "fits_device" in b:
            self.fits_device = b.pop("fits_device")
        if self.precision is not None:
            b.pop("precision", None)  # the variant knows what it is; the benchmark loaded its folder "as built"
        self.bench.update(b)

    def as_dict(self) -> dict:
        """The row as report.json holds it: every schema field that was measured, the ALWAYS ones even when null."""
        out: dict[str, Any] = {}
        for key in ("name", "method", "config", "backend", "precision", "bits_per_weight", "size_mb", "params",
                    "quantize_s", "path", "notes", "metrics", "primary", "relative_drop", "kld", "same_top_token",
                    "passes_gate", "gate_reason", "gate_status", "fits_device", "recommended", "error", "bench_error"):
            value = getattr(self, key)
            if value is not None or key in ALWAYS:
                out[key] = list(value) if key == "notes" else value
        out.update(self.bench)
        out.update(self.search)
        if self.tasks:
            out["tasks"] = [dict(t) for t in self.tasks]
        return out


__all__ = ["VariantRow", "ALWAYS"]
