"""int8 with quantized activations through onnxruntime's quantizers: dynamic, and static QDQ with calibration.

For encoders only. On a language model, quantizing activations raised SmolLM2's perplexity from 21.0 to 30.5 here
(463 tokens of the GPL-3 preamble; weight-only int8: 20.91), so decoders are pointed at weight-only int8, which was lossless.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.compress.context import ENCODER_KIND, CompressContext, QuantResult
from edgewise.compress.handler import check_kind, finish, quiet_ort_quantizers, skip_files
from edgewise.compress.onnx_graph import copy_side_files
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build

# onnxruntime is imported inside the handlers: a registry lookup imports this module, and a method that does not
# run should not cost its import.
_DECODER_HINT = "quantized activations hurt language models (perplexity 21.0 -> 30.5 on SmolLM2); use int8 (weight-only)"


@dataclass(frozen=True)
class Int8Dynamic:
    """onnxruntime `quantize_dynamic`: int8 weights, activations quantized on the fly. Encoders only: on language
    models it raised SmolLM2's perplexity from 21.0 to 30.5 (463 tokens of the GPL-3 preamble), so decoders get Int8WeightOnly."""

    per_channel: bool = False
    reduce_range: bool = False
    label = "int8-dynamic"
    names = {"int8-dynamic": {}}
    nominal_bits = None  # encoders only; the search explores language models
    weight_only = False

    def describe(self) -> str:
        return f"int8 dynamic (weights + on-the-fly activations){', per-channel' if self.per_channel else ''}"


@dataclass(frozen=True)
class Int8Static:
    """Static QDQ int8 with activation ranges calibrated on text (encoders)."""

    calibration: str = "minmax"  # minmax | percentile | entropy
    per_channel: bool = True
    max_samples: int = 64
    label = "int8-static"
    names = {"int8-static": {}}
    nominal_bits = None  # encoders only; the search explores language models
    weight_only = False

    def __post_init__(self):
        if self.calibration not in ("minmax", "percentile", "entropy"):
            raise EdgewiseError(f"calibration must be minmax, percentile or entropy, got {self.calibration!r}")
        if not isinstance(self.max_samples, int) or self.max_samples < 1:
            raise EdgewiseError(f"max_samples must be a positive integer, got {self.max_samples!r}")

    def describe(self) -> str:
        return f"int8 static QDQ, {self.calibration} calibration{', per-channel weights' if self.per_channel else ''}"


def _quantized_copy(cfg, ctx: CompressContext, name: str, calibrated: bool,
                    write: Callable[[Path, Path], None]) -> QuantResult:
    """The steps both share: refuse decoders, `write(fp32 model, quantized model)` once (cached), measure it."""
    check_kind(ctx, ENCODER_KIND, cfg.label, _DECODER_HINT)
    t0 = time.perf_counter()

    def build(out: Path) -> None:
        quiet_ort_quantizers()
        base = ctx.base_model()
        write(base, out / base.name)
        copy_side_files(base.parent, out, skip_files(ctx))
        for leftover in out.glob("*augmented*"):  # quantize_static's calibration copy of the graph
            leftover.unlink()

    path = cached_build(f"q-{name}", ctx.base_folder(), ctx.cache_options(cfg, calibrated=calibrated), build)
    return finish(ctx, name, cfg, path, t0)


@register_handler(Int8Dynamic)
def int8_dynamic(cfg: Int8Dynamic, ctx: CompressContext, name: str) -> QuantResult:
    def write(src: Path, dst: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=cfg.per_channel,
                         reduce_range=cfg.reduce_range)

    return _quantized_copy(cfg, ctx, name, False, write)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over our calibration sequences (one unpadded text per batch)."""

    def __init__(self, feeds: list[dict]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


@register_handler(Int8Static)
def int8_static(cfg: Int8Static, ctx: CompressContext, name: str) -> QuantResult:
    def write(src: Path, dst: Path) -> None:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        names = {i.name for i in ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()}
        feeds = []
        for ids in ctx.calibration_sequences(10**9)[: cfg.max_samples]:
            ids = ids.reshape(1, -1)
            f = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            feeds.append({k: v for k, v in f.items() if k in names})
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[cfg.calibration]
        quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        per_channel=cfg.per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=method)

    return _quantized_copy(cfg, ctx, name, True, write)
