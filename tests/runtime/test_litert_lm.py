"""The LiteRT causal-LM loader without the converter: its one-line errors, and the decoder's chunking, padding and
rewinding against a fake graph (the real conversion is tested in tests/export/test_litert_lm.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter", reason="needs the litert extra: pip install -e '.[litert]'")

from edgewise.errors import (CorruptModelError, EdgewiseError, ModelNotFoundError, PromptTooLongError,  # noqa: E402
                             UnsupportedModelError)
from edgewise.runtime import load_model  # noqa: E402
from edgewise.runtime.litert_lm import META, LiteRTDecoder, LMMeta  # noqa: E402
from edgewise.runtime.session import TrackedSession  # noqa: E402
from tests.runtime.test_litert_backend import FACE, _mediapipe_model  # noqa: E402

META_DICT = {"format": "edgewise-litert-lm", "version": 1, "task": "causal-lm", "model_file": "model.tflite",
             "weights": "fp32", "max_len": 32, "vocab_size": 320, "n_layers": 1, "n_kv_heads": 1, "head_dim": 2,
             "signatures": {"decode_1": 1, "decode_4": 4}}


def lm_folder(tmp_path, tiny_llama_dir, tflite: bytes, meta: dict | None = None, tokenizer: bool = True):
    folder = tmp_path / "lm"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(tflite)
    (folder / META).write_text(json.dumps(meta or META_DICT))
    if tokenizer:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tiny_llama_dir / f, folder / f)
    return folder


# A flatbuffer header ("TFL3" at bytes 4-8) over junk: past the cheap check, refused by LiteRT's verifier.
JUNK_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4


def test_corrupt_tflite_is_a_clean_error(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, JUNK_TFLITE)
    with pytest.raises(CorruptModelError, match="corrupt or truncated"):
        load_model(folder, backend="litert")


def test_missing_tokenizer_says_what_to_copy(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, JUNK_TFLITE, tokenizer=False)
    with pytest.raises(ModelNotFoundError, match="no tokenizer.json"):
        load_model(folder / "model.tflite", backend="litert")


def test_bad_json_and_newer_format(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, JUNK_TFLITE)
    (folder / META).write_text("{not json")
    with pytest.raises(CorruptModelError, match="not valid JSON"):
        load_model(folder, backend="litert")
    (folder / META).write_text(json.dumps({k: v for k, v in META_DICT.items() if k != "max_len"}))
    with pytest.raises(CorruptModelError, match="max_len"):
        load_model(folder, backend="litert")
    (folder / META).write_text(json.dumps({**META_DICT, "version": 99}))
    with pytest.raises(UnsupportedModelError, match="newer"):
        load_model(folder, backend="litert")


def test_precision_other_than_the_weights_is_refused(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, JUNK_TFLITE)
    with pytest.raises(EdgewiseError, match="fp32 weights and runs as shipped"):
        load_model(folder, backend="litert", precision="int4")


def test_a_graph_that_does_not_match_its_json(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, _mediapipe_model(FACE).read_bytes())
    with pytest.raises(UnsupportedModelError, match="does not match"):
        load_model(folder, backend="litert")


def test_a_json_for_another_file_leaves_a_plain_graph(tmp_path, tiny_llama_dir):
    folder = lm_folder(tmp_path, tiny_llama_dir, b"", meta={**META_DICT, "model_file": "other.tflite"})
    (folder / "model.tflite").unlink()
    shutil.copy(_mediapipe_model(FACE), folder / "face.tflite")
    m = load_model(folder, backend="litert")
    assert type(m).__name__ == "LiteRTModel"


class FakeGraph:
    """decode_T as a sum: the logit at id 0 for each new token is the sum of every token it may see (cache slots
    j < input_pos[0], then the new ones causally); k_new carries the token ids. Padding or a stale slot that leaks
    changes the sum."""

    def __init__(self):
        self.calls = []

    def get_signature_runner(self, name):
        T = int(name.split("_")[1])

        def run(tokens, input_pos, k_cache, v_cache):
            assert tokens.shape == (1, T) and input_pos.shape == (T,) and tokens.dtype == np.int32
            self.calls.append(T)
            start = int(input_pos[0])
            seen = k_cache[0, :start, 0, 0].sum() + np.cumsum(tokens[0].astype(np.float32))
            logits = np.zeros((1, T, 320), np.float32)
            logits[0, :, 0] = seen
            new = np.broadcast_to(tokens[0].astype(np.float32)[None, :, None, None], (1, T, 1, 2)).copy()
            return {"logits": logits, "k_new": new, "v_new": new}
        return run


def test_decoder_chunks_pads_and_rewinds():
    graph = FakeGraph()
    dec = TrackedSession(LiteRTDecoder(graph, LMMeta(**{k: META_DICT[k] for k in (
        "model_file", "weights", "max_len", "vocab_size", "n_layers", "n_kv_heads", "head_dim", "signatures")})))
    dec.start(32)
    ids = list(range(1, 11))
    assert dec.append(ids)[0] == sum(ids)
    assert graph.calls == [4, 4, 4]  # 4 + 4 + 2 padded to 4
    assert dec.append([100])[0] == sum(ids) + 100 and graph.calls[-1] == 1
    dec.rewind(3)
    assert dec.append([7, 8])[0] == 1 + 2 + 3 + 7 + 8
    assert dec.sync([1, 2, 3, 7, 9], 32)[0] == 1 + 2 + 3 + 7 + 9 and dec.reused == 4
    np.testing.assert_array_equal(dec.score([5, 6, 7])[:, 0], [5, 11, 18])
    # Near the end of the cache a padded chunk would not fit: ones instead.
    dec.start(32)
    dec.append(list(range(30)))
    graph.calls.clear()
    assert dec.append([1, 1])[0] == sum(range(30)) + 2 and graph.calls == [1, 1]
    with pytest.raises(PromptTooLongError):
        dec.append([1])
    dec.rewind(0)
    with pytest.raises(EdgewiseError, match="outside this model's vocabulary"):
        dec.append([320])
    with pytest.raises(EdgewiseError, match="cannot rewind"):
        dec.rewind(5)
