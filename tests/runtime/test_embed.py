import numpy as np
import pytest

from edgewise.errors import EdgewiseError
from edgewise.runtime import embed, load_model


def test_ort_encoder_matches_torch_and_is_normalised(tiny_bert_dir):
    texts = ["the cat sat on the mat", "edge inference runs offline", "a"]
    a = embed(load_model(str(tiny_bert_dir), backend="torch"), texts)
    b = embed(load_model(str(tiny_bert_dir), backend="ort"), texts)
    assert a.shape == b.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(1).min() > 0.9999


def test_int8_encoder_stays_close(tiny_bert_dir):
    texts = ["the cat sat on the mat", "edge inference runs offline"]
    ref = embed(load_model(str(tiny_bert_dir), backend="ort"), texts)
    q = embed(load_model(str(tiny_bert_dir), backend="ort", precision="int8"), texts)
    assert (ref * q).sum(1).min() > 0.95


def test_decoder_cannot_embed_and_encoder_cannot_generate(tiny_llama_dir, tiny_bert_dir):
    from edgewise.runtime import GenerationConfig, generate

    with pytest.raises(EdgewiseError, match="embedding head"):
        embed(load_model(str(tiny_llama_dir), backend="torch"), ["x"])
    with pytest.raises(EdgewiseError, match="encoder"):
        generate(load_model(str(tiny_bert_dir), backend="torch"), "x", GenerationConfig(max_tokens=2))
