"""Weight quantization of an exported ONNX encoder (int8 dynamic, int4 block-wise MatMulNBits), cached."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build

# onnx and onnxruntime.quantization are imported inside the builds: they cost seconds, and a cached encoder needs
# neither.

def quantized_encoder(onnx_path: Path, precision: str) -> Path:
    if precision == "int8":
        def build(out: Path) -> None:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(onnx_path), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    elif precision == "int4":
        def build(out: Path) -> None:
            import onnx
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            q = MatMulNBitsQuantizer(onnx.load(str(onnx_path)), block_size=32, is_symmetric=True, accuracy_level=4)
            q.process()
            onnx.save(q.model.model, str(out / "model.onnx"))
    else:
        raise EdgewiseError(f"unknown precision {precision!r} for an encoder: choose fp32, int8 or int4")

    def build_with_tokenizer(out: Path) -> None:
        build(out)
        for f in onnx_path.parent.iterdir():
            if f.is_file() and f.suffix in (".json", ".txt", ".model"):
                shutil.copy(f, out / f.name)

    return cached_build(f"encoder-{precision}", onnx_path, {"precision": precision}, build_with_tokenizer) / "model.onnx"
