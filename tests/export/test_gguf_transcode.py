"""GGUF -> ONNX transcoding on a small hand-built graph: every block type, packed projections whose parts differ,
Llama's permuted q/k rows, and a tied embedding read through GatherBlockQuantized (with and without mins)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf.quants import dequantize
from onnx import TensorProto, helper, numpy_helper

from edgewise.errors import EdgewiseError
from edgewise.export.gguf_transcode import _rope_unpermute, transcode_graph
from tests.export.test_gguf_blocks import random_blocks

K, VOCAB, HEADS, KV_HEADS = 256, 64, 2, 1
# (builder weight name, [(gguf name, type, rows)])
LAYOUT = [
    ("model.layers.0.attn.qkv_proj.MatMul.weight", [("blk.0.attn_q.weight", T.Q4_K, 64), ("blk.0.attn_k.weight", T.Q4_0, 32),
                                                     ("blk.0.attn_v.weight", T.Q6_K, 32)]),
    ("model.layers.0.attn.o_proj.MatMul.weight", [("blk.0.attn_output.weight", T.Q4_1, 48)]),
    ("model.layers.0.mlp.gate_proj.MatMul.weight", [("blk.0.ffn_gate.weight", T.Q5_0, 32)]),
    ("model.layers.0.mlp.up_proj.MatMul.weight", [("blk.0.ffn_up.weight", T.Q5_1, 32)]),
    ("model.layers.0.mlp.down_proj.MatMul.weight", [("blk.0.ffn_down.weight", T.Q5_K, 32)]),
    ("model.layers.1.attn.qkv_proj.MatMul.weight", [("blk.1.attn_q.weight", T.Q8_0, 64), ("blk.1.attn_k.weight", T.Q8_0, 32),
                                                     ("blk.1.attn_v.weight", T.Q8_0, 32)]),
    ("model.layers.1.mlp.down_proj.MatMul.weight", [("blk.1.ffn_down.weight", T.F32, 32)]),
]


def build(tmp_path, embd_type, own_table=False):
    rng = np.random.default_rng(0)
    writer = GGUFWriter(str(tmp_path / "m.gguf"), "llama")
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    weights = {}
    for wname, parts in LAYOUT:
        cols = []
        for gname, qtype, rows in parts:
            if qtype == T.F32:
                w = rng.normal(0, 0.02, (rows, K)).astype(np.float32)
                writer.add_tensor(gname, w)
            else:
                raw = random_blocks(qtype, rows, K, rng)
                writer.add_tensor(gname, raw, raw_dtype=qtype)
                w = dequantize(raw, qtype).reshape(rows, K)
            if gname.endswith(("attn_q.weight", "attn_k.weight")):
                # llama.cpp stores q/k rows permuted; the HF/ONNX weight is the un-permuted order.
                w = w[_rope_unpermute(rows, HEADS if "attn_q" in gname else KV_HEADS)]
            cols.append(w.T)
        weights[wname] = np.concatenate(cols, axis=1)
    raw = random_blocks(embd_type, VOCAB, K, rng)
    writer.add_tensor("token_embd.weight", raw, raw_dtype=embd_type)
    weights["lm_head.MatMul.weight"] = dequantize(raw, embd_type).reshape(VOCAB, K).T.copy()
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # Every weight reads the embedded tokens; the tied head is Transpose -> Gather, as the genai builder writes it
    # for Llama, or (own_table, as it writes Qwen2) a Gather over a (V, K) copy of the same table.
    if own_table:
        weights["model.embed_tokens.weight"] = weights["lm_head.MatMul.weight"].T.copy()
        nodes = [helper.make_node("Gather", ["model.embed_tokens.weight", "input_ids"], ["h"],
                                  name="/model/embed_tokens/Gather")]
    else:
        nodes = [helper.make_node("Transpose", ["lm_head.MatMul.weight"], ["emb_t"],
                                  name="/model/embed_tokens/Transpose"),
                 helper.make_node("Gather", ["emb_t", "input_ids"], ["h"], name="/model/embed_tokens/Gather")]
    outputs = [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)]
    for i, wname in enumerate(w for w in weights if w != "model.embed_tokens.weight"):
        nodes.append(helper.make_node("MatMul", ["h", wname], [f"y{i}"], name=f"/MatMul{i}"))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None))
    inits = [numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "s"])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.gguf"


def run(model, ids):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"input_ids": ids})


@pytest.mark.parametrize("embd_type", [T.Q8_0, T.Q4_K], ids=lambda t: t.name)
def test_transcoded_graph_equals_fp32_graph(tmp_path, embd_type):
    model, gguf_path = build(tmp_path, embd_type)
    ids = np.array([[0, 5, 17, 63, 5]], np.int64)
    want = run(model, ids)
    tx = onnx.ModelProto()
    tx.CopyFrom(model)
    report = transcode_graph(tx, gguf_path, accuracy_level=1)
    ops = [n.op_type for n in tx.graph.node]
    assert "MatMul" in ops and ops.count("MatMulNBits") == 8  # layer 0 qkv in two groups (4-bit, 8-bit), 5 single, the head
    assert "GatherBlockQuantized" in ops and "Transpose" not in [n.op_type for n in tx.graph.node if "embed" in n.name]
    got = run(tx, ids)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(np.abs(w).max()))
    types = {r["type"] for r in report["tensors"]}
    assert types == {"Q4_K", "Q4_0", "Q6_K", "Q4_1", "Q5_0", "Q5_1", "Q5_K", "Q8_0", "float", embd_type.name}
    assert max(r["max_error"] for r in report["tensors"]) < 1e-6
    # No fp32 copy of a transcoded weight is left behind (the F32 tensor stays as it was).
    left = {t.name for t in tx.graph.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) == 2}
    assert "model.layers.1.mlp.down_proj.MatMul.weight" in left
    assert not left & {n for n, _ in LAYOUT[:-1]} and "lm_head.MatMul.weight" not in left


def test_a_weight_that_does_not_match_is_refused(tmp_path):
    model, gguf_path = build(tmp_path, T.Q8_0)
    w = next(t for t in model.graph.initializer if t.name == "model.layers.0.mlp.gate_proj.MatMul.weight")
    arr = numpy_helper.to_array(w).copy()
    arr[:, 0] += 1.0  # the export and the GGUF disagree: transcoding must not ship it
    w.CopyFrom(numpy_helper.from_array(arr, w.name))
    with pytest.raises(EdgewiseError, match="do not reproduce"):
        transcode_graph(model, gguf_path)


@pytest.mark.parametrize("embd_type", [T.Q8_0, T.Q4_K], ids=lambda t: t.name)
def test_an_embedding_kept_as_its_own_table_shares_the_head_blocks(tmp_path, embd_type):
    model, gguf_path = build(tmp_path, embd_type, own_table=True)
    ids = np.array([[0, 5, 17, 63, 5]], np.int64)
    want = run(model, ids)
    report = transcode_graph(model, gguf_path, accuracy_level=1)
    assert [n.op_type for n in model.graph.node].count("GatherBlockQuantized") == 1
    got = run(model, ids)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(np.abs(w).max()))
    names = {t.name for t in model.graph.initializer}
    assert "model.embed_tokens.weight" not in names and "lm_head.MatMul.weight" not in names
    assert sum(n.endswith(f".B{8 if embd_type == T.Q8_0 else 4}") and "lm_head" in n for n in names) == 1
    assert [r["shared_with_head"] for r in report["tensors"] if r["weight"] == "model.embed_tokens.weight"] == [True]
