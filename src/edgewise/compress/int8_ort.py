"""int8 with quantized activations through onnxruntime's quantizers: dynamic, and static QDQ with calibration.

For encoders only. On a language model, quantizing activations raised SmolLM2's perplexity from 21.0 to 30.5 here
(463 tokens of the GPL-3 preamble; weight-only int8: 20.91), so decoders are pointed at weight-only int8, which was lossless.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgewise.compress.configs import Int8Dynamic, Int8Static
from edgewise.compress.context import ENCODER_KIND, CompressContext, QuantResult
from edgewise.compress.onnx_graph import copy_side_files
from edgewise.compress.registry import register_handler
from edgewise.compress.weight_only import _skip_files, check_kind, finish, quiet_ort_quantizers
from edgewise.export.cache import cached_build

# onnxruntime is imported inside the handlers: discovery imports this module with the package, and a method
# that does not run should not cost its import.
_DECODER_HINT = "quantized activations hurt language models (perplexity 21.0 -> 30.5 on SmolLM2); use int8 (weight-only)"


@register_handler(Int8Dynamic)
def int8_dynamic(cfg: Int8Dynamic, ctx: CompressContext, name: str) -> QuantResult:
    check_kind(ctx, ENCODER_KIND, "int8-dynamic", _DECODER_HINT)
    t0 = time.perf_counter()

    def build(out: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quiet_ort_quantizers()

        base = ctx.base_model()
        quantize_dynamic(str(base), str(out / base.name), weight_type=QuantType.QInt8, per_channel=cfg.per_channel,
                         reduce_range=cfg.reduce_range)
        copy_side_files(base.parent, out, _skip_files(ctx))

    path = cached_build(f"q-{name}", ctx.base_folder(), ctx.cache_options(cfg, calibrated=False), build)
    return finish(ctx, name, cfg, path, t0)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over our calibration sequences (one unpadded text per batch)."""

    def __init__(self, feeds: list[dict]):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)


@register_handler(Int8Static)
def int8_static(cfg: Int8Static, ctx: CompressContext, name: str) -> QuantResult:
    check_kind(ctx, ENCODER_KIND, "int8-static", _DECODER_HINT)
    t0 = time.perf_counter()

    def build(out: Path) -> None:
        import onnxruntime as ort
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        quiet_ort_quantizers()

        base = ctx.base_model()
        names = {i.name for i in ort.InferenceSession(str(base), providers=["CPUExecutionProvider"]).get_inputs()}
        feeds = []
        for ids in ctx.calibration_sequences(10**9)[: cfg.max_samples]:
            ids = ids.reshape(1, -1)
            f = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            feeds.append({k: v for k, v in f.items() if k in names})
        reader = _Reader(feeds)
        method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                  "entropy": CalibrationMethod.Entropy}[cfg.calibration]
        quantize_static(str(base), str(out / base.name), reader, quant_format=QuantFormat.QDQ,
                        per_channel=cfg.per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=method)
        copy_side_files(base.parent, out, _skip_files(ctx))
        for leftover in out.glob("*augmented*"):
            leftover.unlink()

    path = cached_build(f"q-{name}", ctx.base_folder(), ctx.cache_options(cfg, calibrated=True), build)
    return finish(ctx, name, cfg, path, t0)
