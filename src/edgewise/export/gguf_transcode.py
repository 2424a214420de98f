"""A quantized GGUF -> an onnxruntime-genai folder that computes with the GGUF's own blocks (no requantization).

The graph comes from the genai builder's fp32 export of the same weights (attention, rotary, KV cache and the
genai config are the builder's); every MatMul whose weight the GGUF stores quantized is then replaced by
MatMulNBits over the GGUF's codes and scales (see gguf_blocks for the per-type containers). A per-block min
(Q4_1, Q4_K, Q5_1, Q5_K) is added as `blocksum(x) @ M`, one small fp32 MatMul over K/32 inputs, because float zero
points leave the fast kernel. A tied embedding reads the same packed table through GatherBlockQuantized.
The nodes themselves are written by gguf_graph.GraphWriter.

A decode step is node-bound, not FLOP-bound (SmolLM2: 542 small min-term nodes cost more than its 151
MatMulNBits), so projections that read the same activation in the same container are fused into one MatMulNBits
and split after it (gate/up; q/k/v where the builder leaves them apart), and the block sums come out of that
MatMulNBits as extra output rows (gguf_graph.indicator_codes) instead of a Reshape + ReduceSum.

Each transcoded tensor is checked against the fp32 export (which transformers dequantized through gguf-py): the
dequantized blocks must equal it to fp32 rounding, so a wrong layout or row order can never ship silently. The
check also finds the row order (llama.cpp stores Llama's q/k rows permuted for its rotary layout).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGUFReader

from edgewise.errors import EdgewiseError, UnsupportedModelError
from edgewise.export.cache import cached_build
from edgewise.export.genai import build_genai
from edgewise.export.gguf_blocks import FLOAT_TYPES, Blocks, requantize_4bit, supported, unpack
from edgewise.export.gguf_graph import MS_DOMAIN, GraphWriter, group_containers
from edgewise.models.kinds import SourceFormat
from edgewise.models.source import ModelSource

# onnx (about 2 s) is imported inside the functions that build a graph: a cached transcode, the runtime's usual
# case, needs none of it.

# Bump when the written graph changes, so cached folders are rebuilt.
FORMAT_VERSION = 4  # 4: projections sharing an input fused, block sums from the MatMulNBits (fuse=False: format 3)
# 3: scales and mins stored as fp16 where exact; the lookup reshapes the head's scales
# The genai builder's weight names -> GGUF tensor names (several, in output-row order, for packed projections).
_PROJ = {
    "q_proj": ("attn_q",), "k_proj": ("attn_k",), "v_proj": ("attn_v",), "qkv_proj": ("attn_q", "attn_k", "attn_v"),
    "o_proj": ("attn_output",), "gate_proj": ("ffn_gate",), "up_proj": ("ffn_up",), "down_proj": ("ffn_down",),
    "gate_up_proj": ("ffn_gate", "ffn_up"),
}
_LAYER_WEIGHT = re.compile(r"model\.layers\.(\d+)\.(?:attn|mlp)\.(\w+)\.MatMul\.weight$")


@dataclass
class _Tensor:
    name: str
    qtype: object
    rows: int
    K: int
    raw: np.ndarray


def _gguf_tensors(path: Path) -> tuple[dict[str, _Tensor], dict]:
    try:
        reader = GGUFReader(str(path))
    except (ValueError, OSError) as e:
        raise UnsupportedModelError(f"{path}: cannot read this GGUF ({str(e)[:120]})") from None
    tensors = {}
    for t in reader.tensors:
        shape = [int(x) for x in t.shape]  # ggml order: the fastest dimension first
        K, rows = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else 1
        tensors[t.name] = _Tensor(t.name, t.tensor_type, rows, K, t.data)
    meta = {}
    for key, field in reader.fields.items():
        if field.types and len(field.data) == 1 and key.endswith((".head_count", ".head_count_kv", "architecture")):
            v = field.parts[field.data[0]]
            meta[key.rsplit(".", 1)[-1]] = bytes(v).decode() if key.endswith("architecture") else int(v[0])
    return tensors, meta


def _gguf_names(weight: str, tensors: dict) -> tuple[str, ...] | None:
    if weight == "lm_head.MatMul.weight":
        return ("output.weight",) if "output.weight" in tensors else ("token_embd.weight",)
    m = _LAYER_WEIGHT.match(weight)
    if not m or m.group(2) not in _PROJ:
        return None
    return tuple(f"blk.{m.group(1)}.{p}.weight" for p in _PROJ[m.group(2)])


def _rope_unpermute(rows: int, heads: int) -> np.ndarray:
    """The row order that undoes llama.cpp's q/k permutation for `heads` heads (transformers' reverse_permute)."""
    idx = np.arange(rows)
    return idx.reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(rows)


def _row_orders(t: _Tensor, meta: dict) -> list[np.ndarray | None]:
    orders: list[np.ndarray | None] = [None]
    for key in ("head_count", "head_count_kv"):
        h = meta.get(key)
        if h and t.rows % (2 * h) == 0:
            orders.append(_rope_unpermute(t.rows, h))
    return orders


def _matching_blocks(t: _Tensor, ref: np.ndarray, meta: dict) -> tuple[Blocks, float]:
    """The tensor's blocks in the row order whose dequantization equals `ref` (rows, K) of the fp32 export."""
    b = unpack(t.raw, t.qtype, t.rows, t.K)
    w = b.dequantize()
    tol = 1e-5 * float(np.abs(ref).max()) + 1e-7
    best = None
    for order in _row_orders(t, meta):
        err = float(np.abs((w if order is None else w[order]) - ref).max())
        if err <= tol:
            return (b if order is None else b.take_rows(order)), err
        best = err if best is None else min(best, err)
    raise EdgewiseError(f"{t.name}: the transcoded blocks do not reproduce the dequantized weight (max error "
                        f"{best:.3g}); this GGUF layout is not supported for transcoding: use int8 or int4")


def _split_head(parts: list[Blocks], rows4: int, report: list) -> list[Blocks]:
    """The head's last `rows4` rows (the highest token ids: a BPE vocabulary's latest, rarest merges) requantized
    from their 8-bit container to 4 bits; the rest stay exact."""
    if len(parts) != 1 or parts[0].bits != 8:
        raise EdgewiseError("a bits budget requantizes rows of an 8-bit token table, and this model's head is "
                            f"{'/'.join(f'{p.bits}-bit' for p in parts)}: use the exact `gguf` variant or int4-gptq")
    b = parts[0]
    if not 0 < rows4 < b.rows:
        raise EdgewiseError(f"rows to requantize must be in (0, {b.rows}), got {rows4}")
    keep = b.take_rows(np.arange(b.rows - rows4))
    tail = b.take_rows(np.arange(b.rows - rows4, b.rows))
    low = requantize_4bit(tail)
    err = float(np.abs(low.dequantize() - tail.dequantize()).max())
    report.append({"weight": "lm_head.MatMul.weight", "gguf": "rows %d-%d" % (b.rows - rows4, b.rows - 1),
                   "type": "requantized", "container": "4-bit/32", "mins": True, "max_error": err})
    return [keep, low]


def transcode_graph(model, gguf_path: Path, accuracy_level: int = 4, head_rows4: int = 0, fuse: bool = True) -> dict:
    """Rewrite the fp32 genai graph `model` (weights loaded) in place; returns the per-tensor report.

    head_rows4 > 0 requantizes that many of the head's highest-id rows to 4 bits (what a bits budget asks for);
    everything else keeps the GGUF's own blocks. fuse=False writes the graph of format 3 (one MatMulNBits per
    projection, block sums as Reshape + ReduceSum), kept to measure what fusion gains."""
    from onnx import helper, numpy_helper

    tensors, meta = _gguf_tensors(gguf_path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    out = GraphWriter(model, accuracy_level)
    report, replaced, removed_nodes, heads, plans = [], set(), set(), {}, []
    for n in list(g.node):
        if n.op_type != "MatMul" or len(n.input) != 2 or n.input[1] not in inits:
            continue
        wname = n.input[1]
        names = _gguf_names(wname, tensors)
        if names is None or any(x not in tensors for x in names):
            continue
        if any(tensors[x].qtype in FLOAT_TYPES for x in names):
            report.append({"weight": wname, "gguf": list(names), "type": "float", "container": "fp32", "max_error": 0.0})
            continue  # float tensors stay as the fp32 export has them (exact)
        for x in names:
            if not supported(tensors[x].qtype):
                raise UnsupportedModelError(f"{x}: GGML type {tensors[x].qtype.name} cannot be transcoded exactly "
                                            "yet: use a requantizing method (int8, int4)")
        W = numpy_helper.to_array(inits[wname])  # (K, N)
        parts, row0 = [], 0
        for x in names:
            t = tensors[x]
            if t.K != W.shape[0]:
                raise EdgewiseError(f"{x}: {t.K} inputs in the GGUF but {W.shape[0]} in the export")
            b, err = _matching_blocks(t, W[:, row0:row0 + t.rows].T, meta)
            parts.append(b)
            report.append({"weight": wname, "gguf": x, "type": t.qtype.name, "container": f"{b.bits}-bit/{b.block}",
                           "mins": b.mins is not None, "max_error": err})
            row0 += t.rows
        if row0 != W.shape[1]:
            raise EdgewiseError(f"{wname}: the GGUF tensors {names} cover {row0} of {W.shape[1]} outputs")
        prefix = wname.removesuffix(".MatMul.weight")
        if head_rows4 and wname == "lm_head.MatMul.weight":
            parts = _split_head(parts, head_rows4, report)
        plans.append(_Plan(n, wname, prefix, parts))
        removed_nodes.add(id(n))
        replaced.add(wname)
    for group in _fusions(plans, fuse):
        if len(group) > 1:  # projections that share an input and a container: one MatMulNBits, then a Split
            fused = Blocks.concat_rows([b for p in group for b in p.parts])
            prefix = _fused_prefix([p.prefix for p in group])
            out.matmul_nbits(group[0].node.input[0], fused, prefix, prefix + "/fused", sums_in_kernel=fuse)
            out.split(prefix + "/fused", [sum(b.rows for b in p.parts) for p in group],
                      [p.node.output[0] for p in group], prefix + "/Split")
            continue
        p = group[0]
        n, groups = p.node, group_containers(p.parts)
        # A head's table may be shared with the token lookup, which must not see extra rows.
        in_kernel = fuse and p.wname != "lm_head.MatMul.weight"
        if len(groups) == 1:
            out.matmul_nbits(n.input[0], groups[0], p.prefix, n.output[0], sums_in_kernel=in_kernel)
        else:
            outs = [f"{n.output[0]}/part{i}" for i in range(len(groups))]
            for i, gb in enumerate(groups):
                out.matmul_nbits(n.input[0], gb, f"{p.prefix}.part{i}", outs[i], sums_in_kernel=in_kernel)
            out.node("Concat", outs, [n.output[0]], p.prefix + "/Concat", axis=-1)
        heads[p.wname] = (groups, p.prefix)
    # A tied embedding reads the head's table: Transpose(lm_head) -> Gather becomes GatherBlockQuantized.
    head = "lm_head.MatMul.weight"
    if head in heads and len(heads[head][0]) <= 2:
        groups, prefix = heads[head]
        for tr in consumers.get(head, []):
            if tr.op_type != "Transpose" or not all(c.op_type == "Gather" for c in consumers.get(tr.output[0], [])):
                continue
            for c in consumers[tr.output[0]]:
                axis = int(next((helper.get_attribute_value(a) for a in c.attribute if a.name == "axis"), 0))
                if len(groups) == 1:
                    out.lookup(c.input[1], groups[0], prefix, c.output[0], axis)
                else:
                    out.lookup_split(c.input[1], groups, [f"{prefix}.part{i}" for i in range(2)], c.output[0], axis)
                removed_nodes.add(id(c))
            removed_nodes.add(id(tr))
    # An embedding the export keeps as its own (V, K) table (Qwen2's builder does, even when the GGUF ties it):
    # Gather(table) becomes GatherBlockQuantized over token_embd's blocks, shared with the head when they are one.
    embd = tensors.get("token_embd.weight")
    for n in list(g.node):
        if (embd is None or n.op_type != "Gather" or n.input[0] not in inits or id(n) in removed_nodes
                or not n.input[0].endswith("embed_tokens.weight") or embd.qtype in FLOAT_TYPES
                or not supported(embd.qtype)):
            continue
        E = numpy_helper.to_array(inits[n.input[0]])
        if E.shape != (embd.rows, embd.K):
            raise EdgewiseError(f"token_embd.weight: {embd.rows}x{embd.K} in the GGUF but {E.shape} in the export")
        groups = heads[head][0] if head in heads else []
        tied = len(groups) in (1, 2) and _gguf_names(head, tensors) == ("token_embd.weight",)
        b, err = _matching_blocks(embd, E, meta)
        if tied and not np.array_equal(b.codes[:groups[0].rows], groups[0].codes):
            tied = False  # the same GGUF tensor in another row order: give the lookup its own table
        axis = int(next((helper.get_attribute_value(a) for a in n.attribute if a.name == "axis"), 0))
        if tied and len(groups) == 2:  # the head's rows split by a bits budget: the lookup reads both halves
            out.lookup_split(n.input[1], groups, [f"{heads[head][1]}.part{i}" for i in range(2)], n.output[0], axis)
        else:
            out.lookup(n.input[1], groups[0] if tied else b, heads[head][1] if tied else
                       n.input[0].removesuffix(".weight"), n.output[0], axis)
        report.append({"weight": n.input[0], "gguf": embd.name, "type": embd.qtype.name,
                       "container": f"{b.bits}-bit/{b.block}", "mins": b.mins is not None, "max_error": err,
                       "shared_with_head": tied})
        removed_nodes.add(id(n))
        replaced.add(n.input[0])
        del E
    still_used = {x for n in g.node if id(n) not in removed_nodes for x in n.input}
    # New nodes go right after the last producer of their inputs: for a MatMul's replacement that is the node making
    # its activation, so every consumer of the old output still comes later (the graph stays topologically sorted).
    kept = [n for n in g.node if id(n) not in removed_nodes]
    producers = {o: i for i, n in enumerate(kept) for o in n.output}
    placed: dict[int, list] = {}
    for nn in out.extra_nodes:
        pos = max((producers.get(x, -1) for x in nn.input), default=-1)
        placed.setdefault(pos, []).append(nn)
        for o in nn.output:
            producers.setdefault(o, pos)
    new_nodes = list(placed.get(-1, []))
    for i, n in enumerate(kept):
        new_nodes.append(n)
        new_nodes.extend(placed.get(i, []))
    del g.node[:]
    g.node.extend(new_nodes)
    keep = [t for t in g.initializer if t.name not in replaced or t.name in still_used]
    del g.initializer[:]
    g.initializer.extend(keep + out.new_inits)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return {"tensors": report, "architecture": meta.get("architecture"), "accuracy_level": accuracy_level}


@dataclass
class _Plan:
    node: object  # the fp32 MatMul it replaces
    wname: str
    prefix: str
    parts: list[Blocks]


def _fusions(plans: list[_Plan], fuse: bool) -> list[list[_Plan]]:
    """The replacements in graph order, those that can share one MatMulNBits grouped: the same input, not the
    head (its table may be shared with the lookup), and one container for all their parts (e.g. gate and up both
    Q4_1). Mixed containers (Qwen's Q4_K/Q6_K layers) stay one MatMulNBits per projection and container."""
    if not fuse:
        return [[p] for p in plans]
    by_input: dict[str, list[_Plan]] = {}
    for p in plans:
        if p.wname != "lm_head.MatMul.weight":
            by_input.setdefault(p.node.input[0], []).append(p)
    groups, seen = [], set()
    for p in plans:
        if id(p) in seen:
            continue
        same = by_input.get(p.node.input[0], [p]) if p.wname != "lm_head.MatMul.weight" else [p]
        if len(same) > 1 and len(group_containers([b for q in same for b in q.parts])) == 1:
            groups.append(same)
            seen.update(id(q) for q in same)
        else:
            groups.append([p])
            seen.add(id(p))
    return groups


def _fused_prefix(prefixes: list[str]) -> str:
    """model.layers.0.mlp.gate_proj + model.layers.0.mlp.up_proj -> model.layers.0.mlp.gate_proj+up_proj"""
    stem = prefixes[0].rsplit(".", 1)[0]
    return stem + "." + "+".join(p.rsplit(".", 1)[-1] for p in prefixes)


def _summary(report: dict) -> dict:
    by_type: dict[str, dict] = {}
    for r in report["tensors"]:
        s = by_type.setdefault(r["type"], {"tensors": 0, "container": r["container"], "max_error": 0.0})
        s["tensors"] += 1
        s["max_error"] = max(s["max_error"], r["max_error"])
    return by_type


def _writer(source: ModelSource, accuracy_level: int, head_rows4: int = 0, fuse: bool = True, **record):
    """The cached_build callback that writes one transcoded folder (graph, genai files, transcode.json)."""

    def build(dst: Path) -> None:
        import onnx

        t0 = time.perf_counter()
        base = build_genai(source, "fp32")
        model = onnx.load(str(base / "model.onnx"), load_external_data=True)
        report = transcode_graph(model, Path(source.path), accuracy_level, head_rows4=head_rows4, fuse=fuse)
        report["by_type"] = _summary(report)
        for f in base.iterdir():
            if f.is_file() and f.suffix != ".onnx" and not f.name.endswith(".data") and not f.name.startswith(".") \
                    and f.name != "builder.log":
                (dst / f.name).write_bytes(f.read_bytes())
        onnx.save_model(model, str(dst / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=1024)
        report["seconds"] = round(time.perf_counter() - t0, 1)
        report.update(head_rows4=head_rows4, fuse=fuse, **record)
        (dst / "transcode.json").write_text(json.dumps(report, indent=1))

    return build


def transcode_gguf(source: ModelSource, accuracy_level: int = 4, max_bpw: float | None = None,
                   fuse: bool = True) -> Path:
    """The cached genai folder for a GGUF source, computing with its own quantized blocks.

    max_bpw: a bits-per-weight budget. When the exact transcode is over it, the head's highest-id rows are
    requantized from 8 to 4 bits until it fits (budget_rows); every other tensor stays the GGUF's own.
    fuse=False: the unfused graph of format 3 (same weights and logits, more nodes), to measure fusion against."""
    if source.kind != SourceFormat.GGUF:
        raise EdgewiseError(f"{source.ref} is a {source.kind} model, not a quantized .gguf file: use int4 or int8 to "
                            "quantize it, or point --model at a GGUF")
    if max_bpw is not None and not 2 <= max_bpw <= 32:
        raise EdgewiseError(f"max_bpw must be between 2 and 32 bits per weight, got {max_bpw!r}")
    gguf_path = Path(source.path)
    # The default keeps the key it had (no "fuse" entry); only the unfused graph, a measuring aid, adds one.
    opts = {"accuracy_level": accuracy_level, "v": FORMAT_VERSION, **({} if fuse else {"fuse": False})}
    exact = cached_build("gguf-onnx", gguf_path, opts, _writer(source, accuracy_level, fuse=fuse))
    if max_bpw is None:
        return exact
    from edgewise.formats import logical_params, weight_bytes

    onnx_path = exact / "model.onnx"
    tensors, _ = _gguf_tensors(gguf_path)
    head = tensors.get("output.weight") or tensors.get("token_embd.weight")
    if head is None:
        raise UnsupportedModelError(f"{source.ref}: no output.weight or token_embd.weight tensor to requantize")
    # The block-sum rows are stored bytes but not parameters: counted as overhead, as the GGUF's scales are.
    params = logical_params(onnx_path)  # leaves out the block-sum rows
    rows4 = budget_rows(weight_bytes(onnx_path), params, max_bpw, head.rows, head.K)
    if rows4 == 0:
        return exact
    return cached_build("gguf-onnx", gguf_path, {**opts, "head_rows4": rows4},
                        _writer(source, accuracy_level, rows4, fuse=fuse, max_bpw=max_bpw))


def budget_rows(weight_bytes: int, params: int, max_bpw: float, rows: int, K: int, block: int = 32) -> int:
    """How many 8-bit head rows must become 4-bit for weight_bytes to fit max_bpw over params; 0 when it fits.

    A row saves K/2 bytes of codes and gains K/block fp16 mins (its fp16 scales stay), so K/2 - 2K/block bytes.
    Rounded up to a multiple of 64 rows (all but one at most). Raises when even the whole table at 4 bits would
    not fit."""
    excess = weight_bytes - max_bpw * params / 8
    if excess <= 0:
        return 0
    saving = K / 2 - 2 * K / block
    need = int(np.ceil(excess / saving))
    if need >= rows:
        floor = 8 * (weight_bytes - rows * saving) / params
        raise EdgewiseError(f"a {max_bpw:g} bits-per-weight budget is out of reach by requantizing the token table "
                            f"alone (the exact transcode is {8 * weight_bytes / params:.2f}, the whole table at 4 bits "
                            f"would give {floor:.2f}): raise the budget, or use int4-gptq or mixed")
    return min(-(-need // 64) * 64, rows - 1)
