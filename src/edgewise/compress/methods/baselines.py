"""The references: the full model as exported (fp32 on onnxruntime) and on PyTorch (speed reference)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from edgewise.compress.context import DECODER, CompressContext, QuantResult
from edgewise.compress.handler import finish, skip_files
from edgewise.compress.onnx_graph import copy_side_files
from edgewise.compress.registry import register_handler
from edgewise.errors import EdgewiseError
from edgewise.export.cache import cached_build
from edgewise.export.hf_folder import hf_folder_for
from edgewise.formats import folder_bytes


@dataclass(frozen=True)
class Fp32:
    """The full model, exported as is: the reference every variant is measured against."""

    label = "fp32"
    names = {"fp32": {}}
    nominal_bits = 32.0
    weight_only = False

    def describe(self) -> str:
        return "full precision (fp32), the reference"


@dataclass(frozen=True)
class TorchFp32:
    """The full model on PyTorch eager: a speed reference (same weights as Fp32)."""

    label = "torch"
    names = {"torch": {}}
    nominal_bits = None  # the search ranks quantized ONNX and GGUF recipes, not the eager speed reference
    weight_only = False

    def describe(self) -> str:
        return "full precision on PyTorch (speed reference)"


@register_handler(Fp32)
def fp32(cfg: Fp32, ctx: CompressContext, name: str) -> QuantResult:
    t0 = time.perf_counter()
    if ctx.kind == DECODER:
        path = ctx.base_folder()
    else:
        # A copy without config.json, so the folder resolves (and bundles) as an ONNX encoder.
        def build(out: Path) -> None:
            base = ctx.base_model()
            shutil.copy(base, out / base.name)
            for f in base.parent.glob(base.name + ".data"):
                shutil.copy(f, out / f.name)
            copy_side_files(base.parent, out, skip_files(ctx))

        path = cached_build(f"q-{name}", ctx.base_folder(), {"v": 1}, build)
    return finish(ctx, name, cfg, path, t0)


@register_handler(TorchFp32)
def torch_fp32(cfg: TorchFp32, ctx: CompressContext, name: str) -> QuantResult:
    if not ctx.has_hf_weights:
        raise EdgewiseError(f"{ctx.source.ref}: the torch reference needs Hugging Face weights (an HF folder or GGUF)")
    t0 = time.perf_counter()
    folder = hf_folder_for(ctx.source)
    files = sorted(folder.glob("*.safetensors"))
    res = QuantResult(name=name, config=cfg, path=folder, backend="torch", bits_per_weight=32.0,
                      size_bytes=sum(f.stat().st_size for f in files) or folder_bytes(folder), params=ctx.params(),
                      seconds=time.perf_counter() - t0)
    ctx.say(f"{name}: 32.00 bits per weight, {res.size_mb:.1f} MB (PyTorch eager)")
    return res
