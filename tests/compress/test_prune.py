"""Pruning on a tiny random-init 4-layer Llama: shapes, importance ranking, exactness of the surgery, both runtimes,
unstructured masks, recovery and the cache."""

from __future__ import annotations

import json
import math

import pytest
import torch

from edgewise.compress import Calibration
from edgewise.compress.prune import (Magnitude, Recovery, Structured, Wanda, compressed_weights_bytes,
                                     parse_prune, prune)
from edgewise.compress.prune.llama import LINEARS
from edgewise.errors import EdgewiseError
from tests.conftest import CORPUS, build_tiny_tokenizer

CALIB = Calibration((" ".join(CORPUS),), "test-corpus")
PROBE = "The quick brown fox jumps over the lazy dog. To be, or not to be, that is the question."
SHAPES = Structured(mlp=0.3, heads=0.5, blocks=0.25, recovery=None)
# Planted: an identity block and two dead MLP neurons in block 0. Unplanted, these are the 2nd most influential
# block and the two most important neurons of block 0 under both importances, so removing them is no accident.
ID_BLOCK, DOWN_ZERO, ALL_ZERO = 1, 25, 120


def build_llama(out, planted: bool = False):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tiny_tokenizer(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)  # as tests/conftest.py: varied outputs, not one collapsed token
        if planted:
            blk = model.model.layers[ID_BLOCK]
            blk.self_attn.o_proj.weight.zero_()  # both residual branches add zero: the block is the identity
            blk.mlp.down_proj.weight.zero_()
            mlp = model.model.layers[0].mlp
            mlp.down_proj.weight[:, DOWN_ZERO] = 0  # the neuron fires but writes nothing
            mlp.gate_proj.weight[ALL_ZERO] = 0
            mlp.up_proj.weight[ALL_ZERO] = 0
            mlp.down_proj.weight[:, ALL_ZERO] = 0
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def llama4_dir(tmp_path_factory):
    return build_llama(tmp_path_factory.mktemp("llama4"))


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory):
    return build_llama(tmp_path_factory.mktemp("llama4-planted"), planted=True)


def run(folder, config):
    return prune(str(folder), config, calibration=CALIB, say=lambda m: None, threads=1)


def hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def kept_rows(orig: torch.Tensor, pruned: torch.Tensor) -> list[int]:
    """Which original row each pruned row is an unchanged copy of (exactly one each)."""
    match = (pruned[:, None, :] == orig[None, :, :]).all(-1)
    assert (match.sum(1) == 1).all(), "a pruned row is not an exact copy of one original row"
    return match.float().argmax(1).tolist()


def logits(model, folder):
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(folder).encode(PROBE, add_special_tokens=False)
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0]


# --- configs -----------------------------------------------------------------------------------------------------

def test_parse_prune_builds_the_configs():
    assert parse_prune("structured:mlp=0.25,blocks=0.1,recover_steps=50") == \
        Structured(mlp=0.25, blocks=0.1, recovery=Recovery(steps=50))
    assert parse_prune("wanda:sparsity=0.5") == Wanda(sparsity=0.5)
    assert parse_prune(" Magnitude ") == Magnitude()
    assert parse_prune("structured:heads=0.5,recover_steps=0").recovery is None
    assert parse_prune("structured:mlp=0.2,recover_lr=1e-3,recover_batch=4").recovery == Recovery(lr=1e-3, batch=4)


@pytest.mark.parametrize("spec,match", [
    ("prunezilla:mlp=0.5", "unknown pruning method"),
    ("structured:mlp=1.5", r"mlp must be a fraction in \[0, 0.9\]"),
    ("structured:blocks=0.8", "blocks must be a fraction"),
    ("wanda:sparsity=-0.1", "sparsity must be a fraction"),
    ("structured", "needs a fraction to remove"),
    ("structured:recover_steps=10", "needs a fraction to remove"),
    ("structured:mlp", "write key=value"),
    ("structured:mlp=0.2,colour=red", "bad options"),
    ("structured:mlp=0.2,importance=random", "importance must be activation or gradient"),
    ("structured:mlp=0.2,recover_lr=5", "recovery lr"),
    ("structured:mlp=0.2,recover_steps=-1", "recovery steps"),
    ("wanda:calib_tokens=10", "calib_tokens"),
])
def test_bad_specs_raise_edgewise_errors(spec, match):
    with pytest.raises(EdgewiseError, match=match):
        parse_prune(spec)


def test_an_mlp_fraction_the_rounding_would_swallow_is_refused_with_the_smallest_step():
    from edgewise.compress.prune.llama import mlp_keep_width

    assert mlp_keep_width(1536, 0.25) == 1152 and mlp_keep_width(576, 0.25) == 448
    with pytest.raises(EdgewiseError, match=r"smallest step is mlp=0.25"):
        mlp_keep_width(128, 0.1)
    assert mlp_keep_width(100, 0.1) == 90  # a width that is no multiple of 32 is cut exactly


# --- structured ----------------------------------------------------------------------------------------------------

def test_structured_config_shapes_and_parameter_count(llama4_dir):
    r = run(llama4_dir, SHAPES)
    cfg = json.loads((r.path / "config.json").read_text())
    # 128 * 0.7 = 89.6 neurons kept, rounded to a multiple of 32 because 128 is one.
    assert cfg["intermediate_size"] == 96
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]) == (2, 2, 16)
    assert cfg["num_hidden_layers"] == 3
    assert r.removed["mlp_width"] == [128, 96] and r.removed["query_heads"] == [4, 2]
    assert len(r.removed["blocks"]) == 1 and r.sparsity == 0.0 and r.compressed_bytes is None

    orig, pruned = hf(llama4_dir), hf(r.path)
    assert r.params_before == sum(p.numel() for p in orig.parameters())
    assert r.params_after == sum(p.numel() for p in pruned.parameters()) < r.params_before
    # One query head removed from each key/value group; k/v untouched, o_proj keeps the same heads' columns.
    kept_layers = [i for i in range(4) if i not in r.removed["blocks"]]
    for new_i, old_i in enumerate(kept_layers):
        o, p = orig.model.layers[old_i].self_attn, pruned.model.layers[new_i].self_attn
        heads = kept_rows(o.q_proj.weight.reshape(4, -1), p.q_proj.weight.reshape(2, -1))
        assert [h // 2 for h in heads] == [0, 1]
        o_cols = o.o_proj.weight.reshape(64, 4, 16)[:, heads].reshape(64, 32)
        assert torch.equal(p.o_proj.weight, o_cols)
        assert torch.equal(p.k_proj.weight, o.k_proj.weight) and torch.equal(p.v_proj.weight, o.v_proj.weight)


def pruned_units(folder, importance: str) -> tuple[list[int], set[int]]:
    """(removed blocks, MLP neurons of block 0 kept) for mlp=0.25, blocks=0.25."""
    r = run(folder, Structured(mlp=0.25, blocks=0.25, importance=importance, recovery=None))
    orig, pruned = hf(folder), hf(r.path)
    keep = kept_rows(orig.model.layers[0].mlp.up_proj.weight, pruned.model.layers[0].mlp.up_proj.weight)
    assert len(keep) == 96
    return r.removed["blocks"], set(keep)


@pytest.mark.parametrize("importance", ["activation", "gradient"])
def test_importance_removes_the_identity_block_and_dead_neurons(llama4_dir, planted_dir, importance):
    blocks, keep = pruned_units(llama4_dir, importance)
    assert blocks != [ID_BLOCK] and {DOWN_ZERO, ALL_ZERO} <= keep  # unplanted, they are kept
    blocks, keep = pruned_units(planted_dir, importance)
    assert blocks == [ID_BLOCK] and not {DOWN_ZERO, ALL_ZERO} & keep


def test_mlp_pruning_removes_exactly_the_pruned_neurons_contributions(llama4_dir):
    r = run(llama4_dir, Structured(mlp=0.25, recovery=None))
    orig, pruned = hf(llama4_dir), hf(r.path)
    before = logits(orig, llama4_dir)
    with torch.no_grad():
        for lo, lp in zip(orig.model.layers, pruned.model.layers):
            keep = kept_rows(lo.mlp.gate_proj.weight, lp.mlp.gate_proj.weight)
            assert keep == sorted(keep)  # kept neurons stay in place
            assert torch.equal(lp.mlp.up_proj.weight, lo.mlp.up_proj.weight[keep])
            assert torch.equal(lp.mlp.down_proj.weight, lo.mlp.down_proj.weight[:, keep])
            lo.mlp.down_proj.weight[:, sorted(set(range(128)) - set(keep))] = 0
    want, got = logits(orig, llama4_dir), logits(pruned, r.path)
    assert (want - before).abs().max() > 1e-2  # the pruning did change the model
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pruned_folder_runs_on_torch_and_ort_alike(llama4_dir):
    from edgewise.runtime import load_model
    from edgewise.runtime.api import token_logprobs

    r = run(llama4_dir, SHAPES)
    lt = load_model(str(r.path), backend="torch", threads=1)
    lo = load_model(str(r.path), backend="ort", threads=1)
    ids = lt.tokenizer.encode(PROBE)
    a, _ = token_logprobs(lt, ids)
    b, _ = token_logprobs(lo, ids)
    assert len(a) == len(ids) > 10 and all(math.isfinite(x) for x in a[1:])
    assert max(abs(x - y) for x, y in zip(a[1:], b[1:])) < 1e-4


def test_too_small_head_fraction_names_the_smallest_step(llama4_dir):
    with pytest.raises(EdgewiseError, match=r"smallest step is heads=0\.5"):
        run(llama4_dir, Structured(heads=0.2, recovery=None))


def test_non_llama_models_are_refused(tiny_bert_dir, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(EdgewiseError, match="causal language models"):
        run(tiny_bert_dir, Structured(mlp=0.25, recovery=None))
    tok = build_tiny_tokenizer(tmp_path)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=1, n_head=2)) \
        .save_pretrained(tmp_path)
    with pytest.raises(EdgewiseError, match="Llama-architecture.*'gpt2'"):
        run(tmp_path, Wanda(0.5))


# --- unstructured ----------------------------------------------------------------------------------------------

def _assert_outside_blocks_untouched(orig, pruned):
    o, p = orig.state_dict(), pruned.state_dict()
    assert o.keys() == p.keys()
    for k in o:
        if ".layers." not in k or "norm" in k:  # embeddings, lm_head, norms
            assert torch.equal(o[k], p[k]), k


def test_wanda_zeroes_the_fraction_of_every_output_row(llama4_dir):
    r = run(llama4_dir, Wanda(0.5))
    orig, pruned = hf(llama4_dir), hf(r.path)
    differs_from_magnitude = False
    for lo, lp in zip(orig.model.layers, pruned.model.layers):
        for name in LINEARS:
            wo, wp = lo.get_submodule(name).weight, lp.get_submodule(name).weight
            zero = wp == 0
            assert (zero.sum(1) == wo.shape[1] // 2).all(), name
            assert torch.equal(wp[~zero], wo[~zero])
            by_magnitude = torch.zeros_like(zero).scatter_(1, wo.abs().topk(wo.shape[1] // 2, 1, largest=False)
                                                           .indices, True)
            differs_from_magnitude |= not torch.equal(zero, by_magnitude)
    assert differs_from_magnitude  # the activation norms change the choice
    _assert_outside_blocks_untouched(orig, pruned)
    assert r.sparsity == pytest.approx(0.5) and r.params_after == r.params_before and not r.removed
    assert r.compressed_bytes == compressed_weights_bytes(r.path) < r.dense_compressed_bytes


def test_magnitude_zeroes_the_smallest_weights(llama4_dir):
    r = run(llama4_dir, Magnitude(0.5))
    orig, pruned = hf(llama4_dir), hf(r.path)
    for lo, lp in zip(orig.model.layers, pruned.model.layers):
        for name in LINEARS:
            wo, wp = lo.get_submodule(name).weight, lp.get_submodule(name).weight
            zero = wp == 0
            assert int(zero.sum()) == wo.numel() // 2, name
            assert wo.abs()[zero].max() <= wo.abs()[~zero].min()
            assert torch.equal(wp[~zero], wo[~zero])
    _assert_outside_blocks_untouched(orig, pruned)
    assert r.sparsity == pytest.approx(0.5)
    assert r.compressed_bytes < r.dense_compressed_bytes


# --- recovery and cache ----------------------------------------------------------------------------------------

def test_recovery_trains_the_pruned_model(llama4_dir):
    rec = Recovery(steps=3, data=None, batch=2, seq_len=32, teacher_windows=4, lr=1e-3, autocast_bf16=False)
    r = run(llama4_dir, Structured(mlp=0.25, recovery=rec))
    raw = run(llama4_dir, Structured(mlp=0.25, recovery=None))
    info = r.recovery
    assert info["steps"] == 3 and info["tokens"] == 3 * 2 * 32 and info["data"] == ["test-corpus"]
    assert math.isfinite(info["first_loss"]) and math.isfinite(info["final_loss"])
    assert json.loads((r.path / "distill.json").read_text())["steps"] == 3
    assert r.params_after == raw.params_after
    a, b = hf(r.path).state_dict(), hf(raw.path).state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    moved = [k for k in a if ".layers." in k and not torch.equal(a[k], b[k])]
    assert moved and any("mlp.down_proj" in k for k in moved)


def test_second_call_is_cached(llama4_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEWISE_HOME", str(tmp_path / "home"))  # a fresh cache: the first call must build
    first = run(llama4_dir, Magnitude(0.3))
    again = run(llama4_dir, Magnitude(0.3))
    other = run(llama4_dir, Magnitude(0.4))
    assert (first.cached, again.cached) == (False, True)
    assert again.path == first.path and other.path != first.path
    assert str(first.path).startswith(str(tmp_path / "home" / "artifacts"))
    assert again.as_dict() == first.as_dict()


def test_recovery_data_in_a_spec_string():
    r = parse_prune("structured:mlp=0.5,recover_data=corpus:austen+notes.txt,recover_steps=3").recovery
    assert r.data == ("corpus:austen", "notes.txt") and r.steps == 3
    assert parse_prune("structured:mlp=0.5,recover_data=calib").recovery.data is None  # the calibration text
