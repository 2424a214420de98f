"""What model files hold, counted without running them: bytes of weights, parameters, bits per weight.

One place for the arithmetic the compressors (bits per weight after quantizing), the benchmark (bytes read per
token) and the comparison table all need, low enough in the layers that any of them, and the runtime backends, can
import it. Reads headers only: external ONNX data and GGUF tensors stay on disk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

# onnx and gguf are imported inside the functions below: importing them costs start-up time that `edgewise --help`
# and the server should not pay for a module they import only to name these functions.

# Tensors that are lookup tables, not weights (rotary caches): never counted as parameters.
NOT_WEIGHTS = ("cos_cache", "sin_cache")


def folder_bytes(path: Path) -> int:
    """Bytes on disk of a file, or of every file in a folder except hidden ones (cache markers)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))


# --- ONNX ---------------------------------------------------------------------------------------------------------

def _onnx_header(model_path: Path):
    import onnx

    return onnx.load(str(model_path), load_external_data=False)


def _tensor_bytes(t) -> int:
    from onnx import TensorProto, helper

    n = int(np.prod(t.dims)) if len(t.dims) else 1
    if t.data_type in (TensorProto.INT4, TensorProto.UINT4):
        return (n + 1) // 2
    return n * helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def param_count(model) -> int:
    """Parameters of a float model (a loaded ModelProto): elements of every float initializer except lookup caches."""
    from onnx import TensorProto

    n = 0
    for t in model.graph.initializer:
        if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16) and not t.name.endswith(NOT_WEIGHTS):
            n += int(np.prod(t.dims)) if len(t.dims) else 1
    return n


def weight_bytes(model_path: Path) -> int:
    """Bytes of every initializer except lookup caches: what the model stores as weights (read without loading)."""
    m = _onnx_header(model_path)
    return sum(_tensor_bytes(t) for t in m.graph.initializer if not t.name.endswith(NOT_WEIGHTS))


def _constant_sources(m) -> dict[str, str]:
    """Outputs of Cast / Reshape nodes over an initializer -> that initializer. A transcoded GGUF stores its fp16
    scales as fp16 initializers behind a Cast that ORT folds at load: they are the MatMulNBits scales all the same."""
    inits = {t.name for t in m.graph.initializer}
    src: dict[str, str] = {}
    for node in m.graph.node:
        if node.op_type in ("Cast", "Reshape") and node.input and node.output:
            x = src.get(node.input[0], node.input[0])
            if x in inits:
                src[node.output[0]] = x
    return src


def decode_weight_bytes(model_path: Path) -> int:
    """Weight bytes a decoder streams per generated token: every MatMul weight (plain or MatMulNBits), not the
    embedding table, of which one row is read per token."""
    m = _onnx_header(model_path)
    sizes = {t.name: _tensor_bytes(t) for t in m.graph.initializer}
    src = _constant_sources(m)
    total = 0
    for n in m.graph.node:
        if n.op_type == "MatMul" and len(n.input) == 2:
            total += sizes.get(src.get(n.input[1], n.input[1]), 0)
        elif n.op_type == "MatMulNBits":
            total += sum(sizes.get(src.get(x, x), 0) for x in n.input[1:4] if x)
    return total


def logical_params(model_path: Path) -> int:
    """Parameters a (possibly quantized) graph represents: float tensors by element, MatMulNBits weights as K x N,
    8-bit QDQ / dynamic weights by element; scales, zero points and a lookup sharing a packed head not counted."""
    from onnx import TensorProto, helper

    m = _onnx_header(model_path)
    dims = {t.name: (int(np.prod(t.dims)) if len(t.dims) else 1, t.data_type) for t in m.graph.initializer}
    src = _constant_sources(m)
    skip, n = set(), 0
    for node in m.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "MatMulNBits":
            n += int(attrs["K"]) * int(attrs["N"])
            skip.update(x for x in node.input[1:] if x)
        elif node.op_type == "GatherBlockQuantized":
            skip.update(x for x in node.input[2:] if x)
            skip.add(node.input[0])  # packed data (usually a head shared with MatMulNBits, counted there)
        elif node.op_type in ("DequantizeLinear", "QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"):
            skip.update(x for x in node.input[1:] if x and node.op_type != "MatMulInteger")
        elif node.op_type in ("MatMul", "Gather") and any(x.endswith(".mins") for x in node.input[:2]):
            skip.update(node.input[:2])  # a transcoded GGUF's per-block mins: part of its quantized weights
    skip |= {src[x] for x in skip if x in src}
    n -= _block_sum_rows(m)
    for name, (count, dtype) in dims.items():
        if name in skip or name.endswith(NOT_WEIGHTS) or count < 2:
            continue
        if dtype in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.INT8,
                     TensorProto.UINT8, TensorProto.INT4, TensorProto.UINT4):
            n += count
    return n


def _block_sum_rows(m) -> int:
    """K x rows of the block-sum outputs a transcoded GGUF's MatMulNBits computes beside its projections (split off
    by a `.../SplitSums` node): stored bytes, not parameters of the model."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in m.graph.initializer}
    K = {n.output[0]: int(next(helper.get_attribute_value(a) for a in n.attribute if a.name == "K"))
         for n in m.graph.node if n.op_type == "MatMulNBits"}
    rows = 0
    for n in m.graph.node:
        if n.op_type == "Split" and n.name.endswith("/SplitSums") and n.input[0] in K and n.input[1] in inits:
            rows += K[n.input[0]] * int(numpy_helper.to_array(inits[n.input[1]])[-1])
    return rows


def onnx_bits_per_weight(model_path: Path) -> float:
    """Stored weight bits over the parameters the graph represents (quantized or not)."""
    return 8.0 * weight_bytes(model_path) / max(logical_params(model_path), 1)


# --- GGUF ---------------------------------------------------------------------------------------------------------

def gguf_scan(path: Path) -> tuple[int, int, dict[str, int]]:
    """(elements, bytes, ggml type -> tensor count) over every tensor of a GGUF; the counts show K-quant fallbacks."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    types = Counter(t.tensor_type.name for t in r.tensors)
    return sum(int(t.n_elements) for t in r.tensors), sum(int(t.n_bytes) for t in r.tensors), dict(types)


def gguf_stats(path: Path) -> tuple[int, int]:
    """(weight elements, weight bytes) over every tensor of a GGUF."""
    n, nbytes, _ = gguf_scan(path)
    return n, nbytes


def gguf_bits_per_weight(path: Path) -> float:
    """Stored bits per weight over every tensor of a GGUF, norms included."""
    n, nbytes = gguf_stats(path)
    return 8.0 * nbytes / n


def gguf_decode_weight_bytes(path: Path) -> int:
    """Weight bytes a llama.cpp decode step reads: every tensor, except a lookup table (token_embd) when the model
    has a separate output head (a tied table is also the head, read whole)."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    names = {t.name for t in r.tensors}
    return int(sum(int(t.n_bytes) for t in r.tensors if t.name != "token_embd.weight" or "output.weight" not in names))


class LlamaFileTypes(Mapping[str, int]):
    """llama.cpp file type name (as `llama-quantize` spells it) -> llama_ftype, read from gguf's LlamaFileType.

    Only the names are ours (the types the llamacpp method offers); the numbers are gguf's, looked up on access so
    that listing or checking a name does not import gguf."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def __getitem__(self, name: str) -> int:
        if name not in self.names:
            raise KeyError(name)
        from gguf import LlamaFileType

        return int(LlamaFileType["ALL_F32" if name == "F32" else f"MOSTLY_{name}"])

    def __contains__(self, name) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


LLAMA_FTYPES = LlamaFileTypes(("F32", "F16", "Q4_0", "Q4_1", "Q8_0", "Q5_0", "Q5_1", "Q3_K_M", "Q4_K_S", "Q4_K_M",
                               "Q5_K_S", "Q5_K_M", "Q6_K"))
