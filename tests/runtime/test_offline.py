"""The edge runtime never opens a non-loopback socket: load -> generate -> embed with the network blocked."""

import socket

import pytest

from edgewise.runtime import GenerationConfig, embed, generate, load_model


def test_guard_really_blocks(block_network):
    with pytest.raises(OSError, match="blocked"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    assert block_network


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_load_generate_embed_offline(block_network, tiny_llama_dir, tiny_bert_dir, backend):
    lm = load_model(str(tiny_llama_dir), backend=backend)
    assert generate(lm, "hello", GenerationConfig(max_tokens=4)).generation_tokens >= 1
    enc = load_model(str(tiny_bert_dir), backend=backend)
    assert embed(enc, ["a", "b"]).shape == (2, 32)
    assert block_network == [], f"runtime tried to reach {block_network}"
