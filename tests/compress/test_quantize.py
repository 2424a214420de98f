"""Every compression method on the tiny random-init models: it loads, runs, and stores what it claims."""

import json

import numpy as np
import onnx
import pytest

from edgewise.compress import (Gptq, Int4WeightOnly, Int8Dynamic, Int8WeightOnly, MixedPrecision, parse_method,
                               quantize)
from edgewise.compress import onnx_graph as og
from edgewise.compress.handler import rewrite, uniform_plan
from edgewise.compress.methods.mixed import choose, group_units
from edgewise.errors import BackendUnavailableError, EdgewiseError
from edgewise.runtime import GenerationConfig, embed, generate, load_model

IDS = [5, 17, 42, 99, 7, 23, 64, 128, 200, 11, 3, 77]


def logits(path):
    lm = load_model(str(path))
    return lm.decoder.score(IDS)


def ops(path):
    m = og.load(og.model_file(path), with_data=False)
    return m, [n.op_type for n in m.graph.node]


@pytest.fixture(scope="module")
def variants(llm_ctx):
    return {name: quantize(None, cfg, name=name, ctx=llm_ctx)
            for name, cfg in map(parse_method, ["fp32", "int8", "int4", "int4-gptq"])}


def test_parse_method_names_and_options():
    assert parse_method("int4")[1] == Int4WeightOnly()
    name, cfg = parse_method("int4:block_size=64,symmetric=false")
    assert cfg == Int4WeightOnly(block_size=64, symmetric=False) and name == "int4-asym-block_size64"
    assert parse_method("int4-gptq")[1].label == "int4-gptq"
    assert parse_method("int4-gptq:bits=8")[1].label == "int8-gptq"
    for bad in ("int3", "int4:block_size=48", "int4:algo=magic", "int4:nonsense=1", "int4:block_size"):
        with pytest.raises(EdgewiseError):
            parse_method(bad)
    with pytest.raises(EdgewiseError):
        MixedPrecision(layers=(("layers.(", None),))


def test_decoder_variants_load_generate_and_report_bits(variants):
    bpw = {n: r.bits_per_weight for n, r in variants.items()}
    assert bpw["fp32"] == pytest.approx(32.0)
    assert bpw["fp32"] > bpw["int8"] > bpw["int4"]
    assert bpw["int4-gptq"] == pytest.approx(bpw["int4"], rel=1e-3)  # same grid: only the codes differ
    for r in variants.values():
        out = generate(load_model(str(r.path)), "To be", GenerationConfig(max_tokens=4))
        assert out.generation_tokens >= 1


def test_quantized_logits_stay_close_to_full_model(variants):
    ref = logits(variants["fp32"].path)
    err = {n: np.abs(logits(r.path) - ref).mean() for n, r in variants.items() if n != "fp32"}
    assert err["int8"] < err["int4"]
    assert err["int8"] < 0.05 * np.abs(ref).mean()


def test_own_rtn_rewrite_matches_the_genai_builder(llm_ctx, variants):
    # Our MatMulNBits writer with RTN codes must compute what the builder's own int4 model computes.
    cfg = Int4WeightOnly()
    path = rewrite(llm_ctx, "q-test-rtn", uniform_plan(llm_ctx, cfg), llm_ctx.cache_options(cfg, calibrated=False))
    np.testing.assert_allclose(logits(path), logits(variants["int4"].path), atol=2e-3)


def test_gptq_writes_matmulnbits_on_the_same_grid(variants):
    m, kinds = ops(variants["int4-gptq"].path)
    assert "MatMul" not in kinds and kinds.count("MatMulNBits") >= 5
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in m.graph.node
             if n.op_type == "MatMulNBits"]
    assert {(a["bits"], a["block_size"], a["accuracy_level"]) for a in attrs} == {(4, 32, 4)}


def test_mixed_precision_layer_map_and_none_keeps_full_precision(llm_ctx):
    cfg = MixedPrecision(base=Int4WeightOnly(), high=Int8WeightOnly(), budget_bpw=None,
                         layers=(("lm_head", None), (r"layers\.0[./]", Int8WeightOnly())))
    r = quantize(None, cfg, name="mixed-map", ctx=llm_ctx)
    m, _ = ops(r.path)
    bits = {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}.get("bits")
            for n in m.graph.node if n.op_type in ("MatMul", "MatMulNBits")}
    assert any("lm_head" in k for k, v in bits.items() if v is None)  # still a plain fp32 MatMul
    assert all(v == 8 for k, v in bits.items() if "layers.0/" in k)
    assert all(v == 4 for k, v in bits.items() if "layers.1/" in k)
    plan = json.loads((r.path / "mixed_plan.json").read_text())
    assert plan["weights"]["lm_head.MatMul.weight"] is None


def test_mixed_precision_measures_sensitivity_and_keeps_the_budget(llm_ctx):
    cfg = MixedPrecision(base=Int4WeightOnly(), high=Int8WeightOnly(), budget_bpw=6.5)
    r = quantize(None, cfg, name="mixed-auto", ctx=llm_ctx)
    plan = json.loads((r.path / "mixed_plan.json").read_text())
    assert set(plan["sensitivity"]) >= {"layer 0", "layer 1"} and all(v >= 0 for v in plan["sensitivity"].values())
    assert plan["estimated_matmul_bpw"] <= 6.5 and plan["promoted_to_high"]


def test_choose_promotes_best_kl_saved_per_extra_bit():
    w = [og.MatMulWeight(f"/model/layers.{i}/mlp/MatMul", f"w{i}", "x", 64, 64) for i in range(3)]
    w.append(og.MatMulWeight("/lm_head/MatMul", "head", "h", 64, 512))
    groups = group_units(w, "block")
    base, high = Int4WeightOnly(), Int8WeightOnly()
    plan = {x.weight: base for x in w}
    scores = {"layer 0": 0.5, "layer 1": 0.01, "layer 2": 0.02, "lm_head": 0.6}
    # The head is 8x larger than a layer: its score per extra bit is lower than layer 0's.
    new, promoted, est = choose(groups, scores, plan, set(), high, budget_bpw=5.7)
    assert promoted[0] == "layer 0" and "lm_head" not in promoted and est <= 5.7
    _, promoted_all, _ = choose(groups, scores, plan, set(), high, budget_bpw=9.0)
    assert set(promoted_all) == set(groups)


def test_encoder_methods_embed_close_to_full_model(enc_ctx):
    texts = ["the quick brown fox", "edge devices run models offline", "to be or not to be"]
    ref = None
    for spec in ["fp32", "int8-dynamic", "int8-static", "int8", "int4", "int4-gptq"]:
        name, cfg = parse_method(spec)
        r = quantize(None, cfg, name=name, ctx=enc_ctx)
        assert not (r.path / "config.json").exists()  # so the folder resolves as an ONNX encoder (and bundles)
        e = embed(load_model(str(r.path)), texts)
        if ref is None:
            ref = e
        cos = (e * ref).sum(1).min()
        assert cos > (0.99 if "int8" in spec else 0.9), spec


def test_methods_that_do_not_fit_the_model_say_so(llm_ctx):
    with pytest.raises(EdgewiseError, match="weight-only"):
        quantize(None, Int8Dynamic(), ctx=llm_ctx)


def test_llamacpp_types_need_the_optional_extra(llm_ctx):
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("llama-cpp-python is installed here")
    with pytest.raises(BackendUnavailableError, match="llama-cpp-python"):
        quantize(None, parse_method("q4_k_m")[1], ctx=llm_ctx)


def test_already_quantized_models_are_refused(variants):
    from edgewise.models import load

    with pytest.raises(EdgewiseError, match="already quantized"):
        quantize(load(str(variants["int4"].path)), Gptq())
