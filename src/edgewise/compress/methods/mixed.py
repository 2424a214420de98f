"""Mixed precision: measure how much each layer hurts when it alone is quantized, keep the worst at higher precision.

Sensitivity of a unit (a transformer block, or the output head) = divergence of the model's output from the full
model's on calibration text when only that unit's weights are rounded to the base grid: KL divergence of the next-token
distributions for decoders, 1 - cosine of the pooled embeddings for encoders. One onnxruntime session serves every
probe: the weights become overridable inputs, so a probe feeds new values instead of rebuilding the graph.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from edgewise.compress import onnx_graph as og
from edgewise.compress.configs import WeightConfig, config_dict
from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.grid import Grid, rtn
from edgewise.compress.handler import finish, match_plan, rewrite
from edgewise.compress.methods.weight_only import Gptq, Int4WeightOnly
from edgewise.compress.registry import is_weight_only, names_where, register_handler
from edgewise.errors import EdgewiseError
from edgewise.numerics import log_softmax, mean_kl

_LAYER = re.compile(r"layers?[._/](\d+)[./]")


def _weight_only_names() -> str:
    return ", ".join(names_where(lambda t: getattr(t, "weight_only", False) is True))


@dataclass(frozen=True)
class MixedPrecision:
    """Per-layer precision. `layers` is the one per-layer mechanism: (regex, config) pairs matched against weight
    names in order, where config None keeps that weight in full precision. Weights no pattern matches get `base`,
    then, with a `budget_bpw`, the layers that hurt most when quantized alone (measured: KL divergence of the
    output with only that unit at `base`) move to `high` while the whole model stays within the budget."""

    base: WeightConfig = field(default_factory=Gptq)
    high: WeightConfig = field(default_factory=lambda: Gptq(bits=8))
    layers: tuple[tuple[str, WeightConfig | None], ...] = ()
    budget_bpw: float | None = 5.5
    unit: str = "block"  # sensitivity granularity: block (one per transformer layer, plus the head) | matmul
    probe_tokens: int = 128
    label = "mixed"
    names = {"mixed": {}}
    weight_only = False  # it chooses among weight-only configs; it is not one a layer can be given

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple((p, c) for p, c in self.layers))
        for pattern, cfg in self.layers:
            try:
                re.compile(pattern)
            except re.error as e:
                raise EdgewiseError(f"bad layer pattern {pattern!r}: {e}") from None
            if cfg is not None and not is_weight_only(cfg):
                raise EdgewiseError(f"layer {pattern!r}: use a weight-only config or None (keep full precision)")
        for cfg in (self.base, self.high):
            if not is_weight_only(cfg):
                raise EdgewiseError(f"mixed precision base/high must be weight-only configs ({_weight_only_names()})")
            if isinstance(cfg, Int4WeightOnly) and cfg.algo != "rtn":
                raise EdgewiseError("mixed precision supports RTN or GPTQ weights; use algo='rtn'")
        if self.budget_bpw is not None and not 1.0 < float(self.budget_bpw) <= 32:
            raise EdgewiseError(f"budget_bpw must be in (1, 32], got {self.budget_bpw!r}")
        if self.unit not in ("block", "matmul"):
            raise EdgewiseError(f"unit must be block or matmul, got {self.unit!r}")

    @property
    def nominal_bits(self) -> float:
        return float(self.budget_bpw) if self.budget_bpw else float(self.high.nominal_bits)

    def describe(self) -> str:
        budget = f", most sensitive layers at {self.high.label} within {self.budget_bpw} bpw" if self.budget_bpw else ""
        return f"mixed: {self.base.describe()}{budget}"


def unit_of(w: og.MatMulWeight, unit: str) -> str:
    if unit == "matmul":
        return w.node
    m = _LAYER.search(w.node) or _LAYER.search(w.weight)
    return f"layer {int(m.group(1))}" if m else w.node.strip("/").split("/")[0] or w.weight


def group_units(weights: list[og.MatMulWeight], unit: str) -> "OrderedDict[str, list[og.MatMulWeight]]":
    groups: OrderedDict[str, list[og.MatMulWeight]] = OrderedDict()
    for w in weights:
        groups.setdefault(unit_of(w, unit), []).append(w)
    return groups


def _divergence(kind: str, ref: np.ndarray, out: np.ndarray) -> float:
    if kind == DECODER:
        return mean_kl(log_softmax(ref[0]), log_softmax(out[0]))
    a, b = ref.mean(1), out.mean(1)  # mean-pooled embeddings of the one probe sequence
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
    return float(1.0 - cos.mean())


def sensitivity(ctx: CompressContext, groups: "OrderedDict[str, list[og.MatMulWeight]]", grid: Grid,
                probe_tokens: int) -> dict[str, float]:
    """Output divergence per unit when only that unit is rounded to `grid` (RTN), on calibration text."""
    base = ctx.base_model()
    names = [w.weight for ws in groups.values() for w in ws]
    sess = og.session(base, ctx.threads, overridable=names)
    model = og.load(base)
    head = og.kv_head_size(base)
    seqs = ctx.calibration_sequences(probe_tokens, length=probe_tokens)
    feeds = [og.feeds_for(sess, s, head) for s in seqs[:4]]
    out_name = sess.get_outputs()[0].name
    refs = [sess.run([out_name], f)[0] for f in feeds]
    scores = {}
    for unit, ws in groups.items():
        override = {w.weight: rtn(og.weight_array(model, w.weight), grid).dequantize() for w in ws}
        scores[unit] = float(np.mean([_divergence(ctx.kind, r, sess.run([out_name], {**f, **override})[0])
                                      for r, f in zip(refs, feeds)]))
    return scores


def _bpw(cfg: WeightConfig | None) -> float:
    return 32.0 if cfg is None else cfg.grid.bits_per_weight()


def choose(groups, scores: dict[str, float], plan: dict, fixed: set, high: WeightConfig,
           budget_bpw: float | None) -> tuple[dict, list[str], float]:
    """Promote units to `high`, best divergence saved per extra bit first, while the estimated bpw (over MatMul
    weights) stays within the budget. Returns (plan, promoted units, estimated bpw)."""
    params = {w.weight: w.params for ws in groups.values() for w in ws}
    total = sum(params.values())

    def est(p: dict) -> float:
        return sum(params[n] * _bpw(p[n]) for n in params) / total

    promoted = []
    if budget_bpw is None:
        return plan, promoted, est(plan)
    cand = []
    for unit, ws in groups.items():
        free = [w for w in ws if w.weight not in fixed]
        extra = sum(w.params * (_bpw(high) - _bpw(plan[w.weight])) for w in free)
        if free and extra > 0:
            cand.append((scores.get(unit, 0.0) / extra, unit, free))
    for _, unit, free in sorted(cand, key=lambda c: -c[0]):
        trial = {**plan, **{w.weight: high for w in free}}
        if est(trial) <= budget_bpw + 1e-9:
            plan = trial
            promoted.append(unit)
    return plan, promoted, est(plan)


@register_handler(MixedPrecision)
def mixed_handler(cfg: MixedPrecision, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    notes: list[str] = []

    def plan_fn():
        weights = og.matmul_weights(og.load(ctx.base_model(), with_data=False))
        plan, fixed = match_plan(weights, cfg.layers, cfg.base)
        groups = group_units(weights, cfg.unit)
        scores = {}
        if cfg.budget_bpw is not None:
            t1 = time.perf_counter()
            scores = sensitivity(ctx, groups, cfg.base.grid, cfg.probe_tokens)
            ctx.say(f"{name}: sensitivity of {len(scores)} units measured ({time.perf_counter() - t1:.0f} s)")
        plan, promoted, est = choose(groups, scores, plan, fixed, cfg.high, cfg.budget_bpw)
        record = {
            "config": config_dict(cfg),
            "sensitivity_probe": f"RTN on the base grid, {cfg.probe_tokens} tokens of calibration text",
            "sensitivity": dict(sorted(scores.items(), key=lambda kv: -kv[1])),
            "promoted_to_high": promoted,
            "estimated_matmul_bpw": round(est, 3),
            "weights": {n: (None if c is None else c.label + f"/{c.grid.bits}bit") for n, c in plan.items()},
        }
        return plan, {"mixed_plan.json": json.dumps(record, indent=2)}

    path = rewrite(ctx, f"q-{name}", plan_fn, ctx.cache_options(cfg, calibrated=True))
    plan_file = path / "mixed_plan.json"
    if plan_file.is_file():
        rec = json.loads(plan_file.read_text())
        promoted = rec.get("promoted_to_high", [])
        notes.append(f"at {cfg.high.label} ({cfg.high.grid.bits}-bit): {', '.join(promoted) or 'none'}")
        top = list(rec.get("sensitivity", {}).items())[:3]
        if top:
            notes.append("most sensitive: " + ", ".join(f"{u} ({s:.3g})" for u, s in top))
    return finish(ctx, name, cfg, path, t0, notes=notes)

