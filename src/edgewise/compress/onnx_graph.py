"""ONNX surgery for weight-only quantization: find MatMul weights, gather calibration statistics, write MatMulNBits.

Working on the exported fp32 graph (not on the torch model) keeps one pipeline for decoders (onnxruntime-genai
folders) and encoders (plain ONNX files), and quantizes exactly the weights that ship.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from edgewise.compress.grid import QTensor
from edgewise.compress.gptq import matmul
from edgewise.errors import EdgewiseError

log = logging.getLogger(__name__)
# onnx (about 2 s) and onnxruntime are imported inside the functions that use them: every module of this package is
# imported whenever edgewise.compress is (method discovery).

MS_DOMAIN = "com.microsoft"


@dataclass(frozen=True)
class MatMulWeight:
    node: str  # MatMul node name (unique in the graph)
    weight: str  # initializer name of B, shape (K, N)
    input: str  # activation tensor A feeding it; MatMuls sharing A share calibration statistics
    K: int
    N: int

    @property
    def params(self) -> int:
        return self.K * self.N


def model_file(folder_or_file: Path) -> Path:
    p = Path(folder_or_file)
    if p.is_file():
        return p
    for name in ("model.onnx",):
        if (p / name).is_file():
            return p / name
    found = sorted(p.glob("*.onnx"))
    if len(found) != 1:
        raise EdgewiseError(f"{p}: expected one .onnx model file, found {len(found)}")
    return found[0]


def load(path: Path, with_data: bool = True):
    import onnx

    return onnx.load(str(path), load_external_data=with_data)


def matmul_weights(model) -> list[MatMulWeight]:
    """MatMul nodes whose B is a constant 2-D float initializer: the weights a weight-only method can quantize."""
    from onnx import TensorProto

    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for i, n in enumerate(model.graph.node):
        if n.op_type != "MatMul" or len(n.input) != 2 or n.input[1] not in inits:
            continue
        t = inits[n.input[1]]
        if t.data_type != TensorProto.FLOAT or len(t.dims) != 2:
            continue
        out.append(MatMulWeight(n.name or f"MatMul_{i}", t.name, n.input[0], int(t.dims[0]), int(t.dims[1])))
    return out


def weight_array(model, name: str, base_dir: Path | None = None) -> np.ndarray:
    from onnx import numpy_helper

    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t, base_dir=str(base_dir) if base_dir else "")
    raise KeyError(name)


# --- running the graph ------------------------------------------------------------------------------------------

def session(model_path: Path, threads: int | None = None, extra_outputs: Iterable[str] = (), overridable: Iterable[str] = ()):
    """A plain onnxruntime session; extra_outputs exposes intermediate tensors, overridable turns initializers into
    inputs that default to their stored value (so probes can swap weights without rebuilding the session)."""
    import onnx
    import onnxruntime as ort

    extra_outputs, overridable = list(extra_outputs), list(overridable)
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if not extra_outputs and not overridable:
        return ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    m = load(model_path, with_data=False)
    have = {o.name for o in m.graph.output}
    for name in extra_outputs:
        if name not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    if overridable:
        inits = {t.name: t for t in m.graph.initializer}
        for name in overridable:
            t = inits[name]
            m.graph.input.append(onnx.helper.make_tensor_value_info(name, t.data_type, list(t.dims)))
        if m.ir_version < 4:
            m.ir_version = 4
    # The edited graph still points at the original external data file: save it beside a hard link to that file
    # (onnxruntime refuses symlinks that leave the model's folder); across filesystems, inline the weights instead.
    tmp = Path(tempfile.mkdtemp(prefix="edgewise-probe-", dir=Path(model_path).parent.parent))
    try:
        locations = {e.value for t in m.graph.initializer for e in t.external_data if e.key == "location"}
        try:
            for loc in locations:
                os.link(Path(model_path).parent / loc, tmp / loc)
        except OSError:
            onnx.load_external_data_for_model(m, str(Path(model_path).parent))
            return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        onnx.save(m, str(tmp / Path(model_path).name))
        return ort.InferenceSession(str(tmp / Path(model_path).name), so, providers=["CPUExecutionProvider"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def kv_head_size(model_path: Path) -> int | None:
    """A genai decoder's KV head size (its KV inputs leave it symbolic), from genai_config.json."""
    cfg = Path(model_path).parent / "genai_config.json"
    if not cfg.is_file():
        return None
    return int(json.loads(cfg.read_text())["model"]["decoder"]["head_size"])


def feeds_for(sess, ids: np.ndarray, head_size: int | None = None) -> dict:
    """Inputs for one unpadded sequence (1, T): token ids, an all-ones mask, empty KV caches for genai decoders."""
    ids = np.asarray(ids, np.int64).reshape(1, -1)
    feed = {}
    for i in sess.get_inputs():
        if i.name == "input_ids":
            feed[i.name] = ids
        elif i.name == "attention_mask":
            feed[i.name] = np.ones_like(ids)
        elif i.name == "token_type_ids":
            feed[i.name] = np.zeros_like(ids)
        elif i.name == "position_ids":
            feed[i.name] = np.arange(ids.shape[1], dtype=np.int64)[None]
        elif i.name.startswith("past_key_values"):
            if head_size is None:
                raise EdgewiseError("a genai decoder needs its KV head size to be run directly (genai_config.json)")
            dims = [d if isinstance(d, int) else 1 if "batch" in d else 0 if "sequence" in d else head_size
                    for d in i.shape]
            feed[i.name] = np.zeros(dims, np.float32)
        elif "float" in i.type:
            continue  # an overridable weight: its stored value is the default
        else:
            raise EdgewiseError(f"cannot feed model input {i.name!r} ({i.type}) for calibration")
    return feed


def collect_hessians(model_path: Path, sequences: Iterable[np.ndarray], inputs: Iterable[str],
                     threads: int | None = None) -> tuple[dict[str, np.ndarray], int]:
    """H = X^T X / n for every named MatMul input over the calibration sequences (n tokens in all)."""
    inputs = sorted(set(inputs))
    sess = session(model_path, threads, extra_outputs=inputs)
    head = kv_head_size(model_path)
    hs: dict[str, np.ndarray] = {}
    n = 0
    for ids in sequences:
        outs = sess.run(inputs, feeds_for(sess, ids, head))
        for name, x in zip(inputs, outs):
            x = np.asarray(x, np.float32).reshape(-1, x.shape[-1])
            h = matmul(x.T, x)
            hs[name] = hs[name] + h if name in hs else h
        n += int(np.asarray(ids).size)
    if n == 0:
        raise EdgewiseError("no calibration tokens: pass a non-empty calibration text")
    return {k: (v / n).astype(np.float64) for k, v in hs.items()}, n


# --- writing the quantized graph --------------------------------------------------------------------------------

def apply(model, quantized: dict[str, QTensor], accuracy_level: int | dict[str, int] = 4) -> None:
    """Replace MatMuls whose weight is in `quantized` (by initializer name) with MatMulNBits, in place.

    A tied embedding (Gather over Transpose(lm_head weight)) then reads the same packed table through
    GatherBlockQuantized, as the genai builder does for 4 bits; where that op cannot (asymmetric grids, partial
    blocks) the fp32 table stays for the lookup.
    """
    from onnx import helper, numpy_helper

    g = model.graph
    consumers = _consumers(g)
    keep_float: set[str] = set()
    new_nodes = []
    for n in g.node:
        if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in quantized:
            q = quantized[n.input[1]]
            w = n.input[1]
            inputs = [n.input[0], w + f"_Q{q.grid.bits}", w + "_scales"]
            g.initializer.extend([numpy_helper.from_array(q.packed(), inputs[1]),
                                  numpy_helper.from_array(q.scales.astype(np.float32), inputs[2])])
            zp = q.packed_zero_points()
            if zp is not None:
                inputs.append(w + "_zero_points")
                g.initializer.append(numpy_helper.from_array(zp, inputs[3]))
            new_nodes.append(helper.make_node(
                "MatMulNBits", inputs, list(n.output), name=(n.name or w) + f"_Q{q.grid.bits}", domain=MS_DOMAIN,
                K=q.K, N=q.N, bits=q.grid.bits, block_size=q.grid.block_size,
                accuracy_level=accuracy_level.get(w, 4) if isinstance(accuracy_level, dict) else accuracy_level))
            if any(c is not n for c in consumers.get(w, [])):
                keep_float.add(w)
            continue
        new_nodes.append(n)
    # Tied embeddings: Transpose(W) -> Gather. The quantized head serves the lookup where it can.
    final = []
    for n in new_nodes:
        if n.op_type == "Transpose" and n.input[0] in keep_float and _packed_lookup_ok(quantized[n.input[0]]) \
                and all(c.op_type == "Gather" for c in consumers.get(n.output[0], [])):
            q = quantized[n.input[0]]
            w = n.input[0]
            shape_name = w + "_gbq_shape"
            row_bytes = q.k_blocks * q.grid.block_size * q.grid.bits // 8
            g.initializer.append(numpy_helper.from_array(np.array([q.N, row_bytes], np.int64), shape_name))
            final.append(helper.make_node("Reshape", [w + f"_Q{q.grid.bits}", shape_name], [w + "_gbq_data"],
                                          name=w + "/gbq_reshape"))
            for c in consumers[n.output[0]]:
                _as_gather_block_quantized(c, w + "_gbq_data", w + "_scales", q)
            keep_float.discard(w)
            continue
        final.append(n)
    del g.node[:]
    g.node.extend(final)
    kept = [t for t in g.initializer if t.name not in quantized or t.name in keep_float]
    del g.initializer[:]
    g.initializer.extend(kept)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))


def quantize_embeddings(model, quantize: Callable[[np.ndarray], QTensor]) -> list[str]:
    """Untied token embeddings (Gather over a 2-D float table [V, H]) read through GatherBlockQuantized, so the
    table is stored like the weights around it instead of in fp32: llama.cpp quantizes token_embd the same way, and
    for a model with a large vocabulary and an untied head (Qwen2.5 0.5B: 136M of 630M weights) the fp32 table is
    most of the file. `quantize` gets the table as a MatMul weight (H, V) and must return a symmetric grid whose
    block divides H; anything else keeps the fp32 table. Returns the tables replaced."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    users = _consumers(g)
    done = []
    for name, t in list(inits.items()):
        if len(t.dims) != 2 or not users.get(name) or not all(
                u.op_type == "Gather" and u.input[0] == name for u in users[name]):
            continue
        table = numpy_helper.to_array(t)
        if table.dtype != np.float32:
            continue
        q = quantize(np.ascontiguousarray(table.T))
        if not _packed_lookup_ok(q):
            continue
        row_bytes = q.k_blocks * q.grid.block_size * q.grid.bits // 8
        data, scales = name + f"_gbq_Q{q.grid.bits}", name + "_gbq_scales"
        g.initializer.extend([numpy_helper.from_array(q.packed().reshape(q.N, row_bytes), data),
                              numpy_helper.from_array(q.scales.astype(np.float32), scales)])
        for u in users[name]:
            _as_gather_block_quantized(u, data, scales, q)
        g.initializer.remove(t)
        done.append(name)
    if done and not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return done


def _consumers(g) -> dict[str, list]:
    """Tensor name -> the nodes that read it."""
    out: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            out.setdefault(x, []).append(n)
    return out


def _as_gather_block_quantized(node, data: str, scales: str, q: QTensor) -> None:
    """Turn a Gather over a float table into GatherBlockQuantized over `data` (rows of packed blocks) and `scales`,
    in place; the indices and the gather axis stay."""
    from onnx import helper

    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    ids = node.input[1]
    node.op_type, node.domain = "GatherBlockQuantized", MS_DOMAIN
    del node.input[:]
    node.input.extend([data, ids, scales])
    del node.attribute[:]
    node.attribute.extend([helper.make_attribute("bits", q.grid.bits), helper.make_attribute("block_size", q.grid.block_size),
                           helper.make_attribute("gather_axis", int(axis)), helper.make_attribute("quantize_axis", 1)])


def _packed_lookup_ok(q: QTensor) -> bool:
    # GatherBlockQuantized reads a symmetric 4- or 8-bit table of whole blocks; anything else keeps an fp32 copy.
    return q.zero_points is None and q.K % q.grid.block_size == 0


def copy_side_files(src_folder: Path, out_folder: Path, skip: tuple[str, ...] = ()) -> None:
    """Configs and tokenizer files beside a model (not the model, its weights, logs or cache markers)."""
    out_folder.mkdir(parents=True, exist_ok=True)
    for f in Path(src_folder).iterdir():
        if f.is_file() and f.suffix != ".onnx" and not f.name.endswith(".data") and not f.name.startswith(".") \
                and f.name != "builder.log" and f.name not in skip:
            shutil.copy(f, out_folder / f.name)


def save(model, src_folder: Path, out_folder: Path, model_name: str = "model.onnx", skip: tuple[str, ...] = ()) -> Path:
    """Write the model (weights in one external file) plus the side files of the source folder (configs, tokenizer)."""
    import onnx

    copy_side_files(src_folder, out_folder, skip)
    path = out_folder / model_name
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=model_name + ".data", size_threshold=1024)
    return path


def sequences(ids: list[int], length: int, max_sequences: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive non-overlapping windows of `length` tokens (the last partial one if it is at least half full)."""
    k = 0
    for i in range(0, len(ids), length):
        w = ids[i:i + length]
        if len(w) < max(2, length // 2) and k:
            break
        yield np.asarray(w, np.int64)
        k += 1
        if max_sequences and k >= max_sequences:
            break
