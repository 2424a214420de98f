"""Recommended sampling: read from the bundle manifest, generation_config.json, GGUF metadata or the model card."""

import json

import pytest

from edgewise.models.source import CAUSAL_LM, ModelSource
from edgewise.runtime.recommended import SamplingDefaults, recommended_sampling


def source(path, ref="x", **extra):
    return ModelSource(ref=ref, kind="hf", path=path, task=CAUSAL_LM, name=ref, extra=extra)


def test_generation_config(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "eos_token_id": 2}))
    d = recommended_sampling(source(tmp_path))
    assert (d.temperature, d.top_p, d.top_k) == (0.6, 0.95, 20) and "generation_config.json" in d.source
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": False, "temperature": 0.6}))
    assert recommended_sampling(source(tmp_path)).temperature == 0.0  # transformers would decode greedily


def test_no_sampling_keys_give_openai_defaults(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "temperature": "hot"}))
    assert recommended_sampling(source(tmp_path)) == SamplingDefaults()


def test_gguf_metadata(tmp_path):
    import gguf

    path = tmp_path / "m.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_float32("general.sampling.temp", 0.7)
    w.add_float32("general.sampling.top_p", 0.8)
    w.add_int32("general.sampling.top_k", 40)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    d = recommended_sampling(ModelSource(ref=str(path), kind="gguf", path=path, task=CAUSAL_LM, name="m"))
    assert d.temperature == pytest.approx(0.7) and d.top_p == pytest.approx(0.8) and d.top_k == 40
    assert d.source.startswith("GGUF metadata")


def test_manifest_wins_and_card_is_the_last_resort(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.6}))
    d = recommended_sampling(source(tmp_path, manifest={"sampling": {"temperature": 0.3}}))
    assert d.temperature == 0.3 and d.top_p == 1.0 and d.source == "bundle manifest"
    empty = tmp_path / "empty"
    empty.mkdir()
    card = recommended_sampling(source(empty, ref="smollm2-135m"))
    assert (card.temperature, card.top_p) == (0.2, 0.9) and "model card" in card.source


def test_the_packaged_smollm2_gets_its_cards_settings():
    from edgewise.models import load

    try:
        src = load("smollm2-135m")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"packaged SmolLM2 not installed: {e}")
    d = recommended_sampling(src)
    assert (d.temperature, d.top_p) == (0.2, 0.9) and d.source == "model card of smollm2-135m"
