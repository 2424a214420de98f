"""GGUF -> ONNX transcoding on a small hand-built graph: every block type, packed projections whose parts differ,
Llama's permuted q/k rows, and a tied embedding read through GatherBlockQuantized (with and without mins)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize
from onnx import TensorProto, helper, numpy_helper

from edgewise.errors import EdgewiseError
from edgewise.export.gguf_blocks import requantize_4bit, unpack
from edgewise.export.gguf_transcode import _rope_unpermute, budget_rows, transcode_graph
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


def test_scales_are_stored_in_16_bits_when_exact(tmp_path):
    """GGUF scales are fp16 numbers: the file keeps them in 16 bits behind a Cast that ORT folds at load."""
    model, gguf_path = build(tmp_path, T.Q8_0)
    transcode_graph(model, gguf_path, accuracy_level=1)
    by_name = {t.name: t for t in model.graph.initializer}
    casts = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}
    for n in model.graph.node:
        if n.op_type == "MatMulNBits":
            # Q4_0, Q5_0, Q8_0 and Q6_K carry fp16 scales (Q6_K's are fp16 x int8, which fits fp16's 11 bits here
            # only sometimes); whichever way each went, the stored tensor is the one the Cast reads.
            s = n.input[2]
            assert (s in casts and by_name[casts[s]].data_type == TensorProto.FLOAT16) or \
                by_name[s].data_type == TensorProto.FLOAT
    q8 = next(n for n in model.graph.node if n.op_type == "MatMulNBits" and "layers.1.attn" in n.name)
    assert by_name[casts[q8.input[2]]].data_type == TensorProto.FLOAT16


@pytest.mark.parametrize("own_table", [False, True], ids=["tied", "own-table"])
def test_a_bits_budget_requantizes_the_heads_last_rows(tmp_path, own_table):
    model, gguf_path = build(tmp_path, T.Q8_0, own_table=own_table)
    head = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "lm_head.MatMul.weight")).T
    ids = np.array([[0, 5, 47, 48, 63, 5]], np.int64)
    want = run(model, ids)
    rows4 = 16  # of 64: rows 48-63 go to 4 bits
    report = transcode_graph(model, gguf_path, accuracy_level=1, head_rows4=rows4)
    got = run(model, ids)
    t = next(t for t in GGUFReader(str(gguf_path)).tensors if t.name == "token_embd.weight")
    table = unpack(t.data, T.Q8_0, VOCAB, K)
    assert np.array_equal(table.dequantize(), head)
    low = requantize_4bit(table.take_rows(np.arange(VOCAB - rows4, VOCAB))).dequantize()
    # The token lookup: exact rows below the split, the requantized ones above it.
    h_want, h_got = want[0][0], got[0][0]
    np.testing.assert_allclose(h_got[:3], h_want[:3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h_got[3], low[0], rtol=1e-5, atol=1e-6)   # id 48, the first 4-bit row
    np.testing.assert_allclose(h_got[4], low[15], rtol=1e-5, atol=1e-6)  # id 63, the last
    # The head, over the h it was given: the first 48 logits from the exact rows, the last 16 from the 4-bit ones.
    y = got[-1][0]
    tol = 1e-4 * float(np.abs(y).max())
    np.testing.assert_allclose(y[:, :48], h_got @ head[:48].T, rtol=1e-4, atol=tol)
    np.testing.assert_allclose(y[:, 48:], h_got @ low.T, rtol=1e-4, atol=tol)
    assert [r for r in report["tensors"] if r["type"] == "requantized"][0]["gguf"] == "rows 48-63"
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("GatherBlockQuantized") == 2 and "Where" in ops


def _blocks_of(w):
    """Q8_0-like blocks of a float (rows, K) table, exact when w came from Q8_0 (scale = max |w| / 127)."""
    from edgewise.export.gguf_blocks import Blocks

    x = w.reshape(w.shape[0], -1, 32)
    d = (np.abs(x).max(-1) / 127).astype(np.float16).astype(np.float32)
    codes = np.clip(np.rint(x / np.where(d > 0, d, 1)[..., None]) + 128, 0, 255).astype(np.uint8)
    return Blocks(codes.reshape(w.shape), d, None, 8, 32)


def test_requantized_rows_use_fp16_scales_and_mins():
    rng = np.random.default_rng(1)
    b = _blocks_of(rng.normal(0, 0.05, (8, 64)).astype(np.float32))
    q = requantize_4bit(b)
    assert q.bits == 4 and q.block == 32 and q.codes.max() <= 15
    for a in (q.scales, q.mins):
        assert np.array_equal(a.astype(np.float16).astype(np.float32), a)
    # Per block, no worse than plain min-max rounding (one of the candidates the search compares).
    x = b.dequantize().reshape(8, 2, 32)
    lo, d = x.min(-1, keepdims=True), (x.max(-1, keepdims=True) - x.min(-1, keepdims=True)) / 15
    plain = np.square(np.clip(np.rint((x - lo) / d), 0, 15) * d + lo - x).sum(-1)
    ours = np.square(q.dequantize().reshape(8, 2, 32) - x).sum(-1)
    assert np.all(ours <= plain * 1.05 + 1e-9) and ours.sum() < plain.sum()


def test_budget_rows():
    # 1,000 params, 800 bytes = 6.4 bits per weight; K = 64 saves 32 - 4 = 28 bytes a row.
    assert budget_rows(800, 1000, 6.4, rows=100, K=64) == 0
    assert budget_rows(800, 1000, 6.0, rows=100, K=64) == 64  # 50 bytes over: 2 rows, rounded up to 64
    assert budget_rows(800, 1000, 6.0, rows=50, K=64) == 49  # rounding never takes the whole table
    with pytest.raises(EdgewiseError, match="out of reach by requantizing the token table alone"):
        budget_rows(800, 1000, 3.0, rows=10, K=64)  # 425 bytes over needs 16 rows


# One Llama-like layer whose projections read separate activations, as the genai builder writes a model that
# does not pack q/k/v: q, k, v read h; o reads tanh(h); gate and up read sigmoid(h); down reads gate * up.
LAYER = [("attn.q_proj", "attn_q", 64, "h"), ("attn.k_proj", "attn_k", 32, "h"), ("attn.v_proj", "attn_v", 32, "h"),
         ("attn.o_proj", "attn_output", 48, "a"), ("mlp.gate_proj", "ffn_gate", K, "m"),
         ("mlp.up_proj", "ffn_up", K, "m"), ("mlp.down_proj", "ffn_down", 32, "d")]


def build_layer(tmp_path, types: dict):
    """A one-layer graph and its GGUF; types maps a GGUF tensor name to its GGML type (default: Q4_1 projections,
    a Q8_0 token table tied with the head)."""
    rng = np.random.default_rng(1)
    writer = GGUFWriter(str(tmp_path / "layer.gguf"), "llama")
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    weights = {}
    for proj, gname, rows, _ in LAYER + [("lm_head", "token_embd", VOCAB, "h")]:
        qtype = types.get(gname, T.Q8_0 if gname == "token_embd" else T.Q4_1)  # SmolLM2's: a Q8_0 table
        raw = random_blocks(qtype, rows, K, rng)
        name = "token_embd.weight" if gname == "token_embd" else f"blk.0.{gname}.weight"
        writer.add_tensor(name, raw, raw_dtype=qtype)
        w = dequantize(raw, qtype).reshape(rows, K)
        if gname in ("attn_q", "attn_k"):
            w = w[_rope_unpermute(rows, HEADS if gname == "attn_q" else KV_HEADS)]
        weights["lm_head.MatMul.weight" if proj == "lm_head" else f"model.layers.0.{proj}.MatMul.weight"] = w.T.copy()
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    nodes = [helper.make_node("Transpose", ["lm_head.MatMul.weight"], ["emb_t"], name="/model/embed_tokens/Transpose"),
             helper.make_node("Gather", ["emb_t", "input_ids"], ["h"], name="/model/embed_tokens/Gather"),
             helper.make_node("Tanh", ["h"], ["a"], name="/act_a"),
             helper.make_node("Sigmoid", ["h"], ["m"], name="/act_m")]
    outs = []
    for proj, _, _, x in LAYER:
        y = f"/model/layers.0/{proj}/MatMul/output_0"
        w = f"model.layers.0.{proj}.MatMul.weight"
        nodes.append(helper.make_node("MatMul", [x, w], [y], name=f"/{proj}/MatMul"))
        outs.append(y)
        if proj == "mlp.up_proj":
            nodes.append(helper.make_node("Mul", [outs[-2], y], ["d"], name="/mlp/Mul"))
    nodes.append(helper.make_node("MatMul", ["h", "lm_head.MatMul.weight"], ["logits"], name="/lm_head/MatMul"))
    inits = [numpy_helper.from_array(w.astype(np.float32), n) for n, w in weights.items()]
    graph = helper.make_graph(
        nodes, "layer", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "s"])],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, None) for y in outs + ["logits"]], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "layer.gguf"


def _transcoded(model, gguf_path, **kw):
    tx = onnx.ModelProto()
    tx.CopyFrom(model)
    transcode_graph(tx, gguf_path, accuracy_level=1, **kw)
    return tx


@pytest.mark.parametrize("qtype", [T.Q4_1, T.Q8_0, T.Q4_K], ids=lambda t: t.name)
def test_fused_projections_equal_the_unfused_graph_with_fewer_nodes(tmp_path, qtype):
    model, gguf_path = build_layer(tmp_path, {g: qtype for _, g, _, _ in LAYER})  # the head: Q8_0
    ids = np.array([[0, 5, 17, 63, 5]], np.int64)
    want = run(model, ids)
    fused, unfused = _transcoded(model, gguf_path), _transcoded(model, gguf_path, fuse=False)
    got, before = run(fused, ids), run(unfused, ids)
    for w, g, b in zip(want, got, before):
        tol = 1e-5 * float(np.abs(w).max())
        np.testing.assert_allclose(g, b, rtol=1e-5, atol=tol)  # the same weights: fp32 rounding only
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=10 * tol)
    ops = [n.op_type for n in fused.graph.node if n.op_type != "Cast"]  # Casts of fp16 constants fold at load
    ops0 = [n.op_type for n in unfused.graph.node if n.op_type != "Cast"]
    # q/k/v -> one MatMulNBits, gate/up -> one, o and down alone; the head (tied with the lookup) stays its own.
    assert ops.count("MatMulNBits") == 5 and ops0.count("MatMulNBits") == 8
    if qtype == T.Q8_0:  # no mins: one Split per fused group is all that is added
        assert ops.count("Split") == 2 and len(ops) == len(ops0) - 1
    else:  # the min term: one MatMul + Add per MatMulNBits; block sums come out of it (a Split, no ReduceSum)
        assert ops.count("MatMul") == ops.count("Add") == 4 and "ReduceSum" not in ops
        assert ops0.count("MatMul") == ops0.count("Add") == 7 and ops0.count("ReduceSum") == 4
        assert len(ops) == len(ops0) - 11  # 29 -> 18 nodes for the layer's 7 projections


def test_projections_in_different_containers_stay_unfused(tmp_path):
    """Qwen's Q4_K_M mixes Q4_K and Q6_K (4-bit/32 and 8-bit/16 containers) in one layer: those stay apart."""
    types = {"attn_q": T.Q4_K, "attn_k": T.Q4_K, "attn_v": T.Q6_K, "ffn_gate": T.Q4_0, "ffn_up": T.Q4_1}
    model, gguf_path = build_layer(tmp_path, types)
    ids = np.array([[0, 5, 17, 63, 5]], np.int64)
    want = run(model, ids)
    fused = _transcoded(model, gguf_path)
    for w, g in zip(want, run(fused, ids)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * float(np.abs(w).max()))
    mnb = [n.name for n in fused.graph.node if n.op_type == "MatMulNBits"]
    assert sum("_proj/" in n and "attn" in n and "o_proj" not in n for n in mnb) == 3  # q, k, v apart
    assert "model.layers.0.mlp.gate_proj+up_proj/MatMulNBits" in mnb  # Q4_0 and Q4_1: one 4-bit container
