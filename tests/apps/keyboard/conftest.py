"""A tiny Llama trained here for a few seconds until it knows a handful of sentences by heart, so the keyboard's
behaviour (whole words, completions, apostrophes, learning) can be asserted on real model outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "I don't know what you're talking about, but it's fine.",
    "See you on Saturday at the station.",
    "Edge devices run small language models locally, offline and privately.",
    "To be, or not to be, that is the question.",
]


@pytest.fixture(scope="session")
def keyboard_lm_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """tiny_llama_dir's tokenizer (a 320-token BPE that spells most words in several pieces) with weights
    trained on SENTENCES (about 2 s on one thread)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("keyboard-lm")
    for f in tiny_llama_dir.iterdir():
        if f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json", "chat_template.jinja"):
            shutil.copy(f, out / f.name)
    tok = AutoTokenizer.from_pretrained(out)
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    start = tok.encode("\n")  # the keyboard starts every context with a newline, as a paragraph starts
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two cores shared by other work: one thread trains faster than two fighting
    try:
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          bos_token_id=bos, eos_token_id=bos, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg)
        seqs = [start + tok.encode(s) for s in SENTENCES]
        n = max(map(len, seqs))
        x = torch.full((len(seqs), n), bos)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            x[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        labels = x.masked_fill(mask == 0, -100)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(80):
            loss = model(input_ids=x, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.2, f"the test LM did not learn its sentences (loss {loss.item():.3f})"
        model.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def keyboard_lm(keyboard_lm_dir):
    from edgewise.runtime import load_model

    return load_model(str(keyboard_lm_dir), backend="torch", threads=1)


@pytest.fixture
def engine(keyboard_lm):
    """A fresh engine over the shared model. The test vocabulary splits words into up to ~8 pieces, so the
    search budget is larger than the product default."""
    from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine

    return KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10))
