"""Incremental detokenisation: deltas join to the full decode, split UTF-8 characters are held, never garbled,
and each step decodes a few tokens, not the whole output."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewise.runtime import GenerationConfig, load_model, stream_generate
from edgewise.runtime.backend import Tokenizer
from edgewise.runtime.detokenize import StreamingDetokenizer


@pytest.fixture(scope="module")
def tok(tiny_llama_dir):
    return Tokenizer.from_folder(tiny_llama_dir)


def stream(tok, ids):
    d = StreamingDetokenizer(tok)
    deltas = [d.add(t) for t in ids]
    return deltas, d.flush()


def test_multibyte_characters_split_across_byte_tokens(tok):
    text = "café € 😀 naïve"
    ids = tok.encode(text)
    # The 320-token byte-level vocabulary has no merges for these: each non-ASCII char is 2-4 byte tokens.
    assert len(ids) > len(text.encode("ascii", "ignore").split())
    deltas, tail = stream(tok, ids)
    assert "".join(deltas) + tail == text == tok.decode(ids)
    assert all("\ufffd" not in d for d in deltas)  # a half character is held, never sent as U+FFFD
    # The emoji is 4 byte tokens: the first three give nothing, the fourth gives the whole character.
    emoji = tok.encode("😀")
    assert len(emoji) == 4 and stream(tok, emoji)[0] == ["", "", "", "😀"]


def test_an_incomplete_character_at_the_end_flushes_as_the_full_decode_does(tok):
    ids = tok.encode("ok €")[:-1]  # drop the last byte of the euro sign
    deltas, tail = stream(tok, ids)
    assert "".join(deltas) == "ok " and "".join(deltas) + tail == tok.decode(ids)


TEXT = st.text(alphabet=st.sampled_from(list("abc XYZ.,'\n") + ["é", "ß", "€", "中", "😀", "\u0301"]), max_size=40)


@settings(max_examples=150, deadline=None)
@given(TEXT)
def test_deltas_join_to_the_text_for_any_valid_utf8(tok, text):
    ids = tok.encode(text)
    deltas, tail = stream(tok, ids)
    assert "".join(deltas) + tail == tok.decode(ids) == text
    assert all("\ufffd" not in d for d in deltas)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 319), max_size=30))
def test_deltas_join_to_the_full_decode_for_any_ids(tok, ids):
    # Arbitrary ids are arbitrary bytes, invalid UTF-8 included: the join still equals one full decode.
    deltas, tail = stream(tok, ids)
    assert "".join(deltas) + tail == tok.decode(ids)


class CountingTokenizer:
    def __init__(self, tok):
        self.tok, self.decoded = tok, []
        self.eos_ids = tok.eos_ids

    def decode(self, ids, skip_special_tokens=True):
        self.decoded.append(len(ids))
        return self.tok.decode(ids, skip_special_tokens=skip_special_tokens)


def test_each_step_decodes_a_window_not_the_whole_output(tok):
    counting = CountingTokenizer(tok)
    ids = tok.encode("The quick brown fox jumps over the lazy dog. " * 8)
    stream(counting, ids)
    assert max(counting.decoded) <= 4 and sum(counting.decoded) <= 4 * len(ids)


def test_stream_generate_decodes_incrementally(tiny_llama_dir, monkeypatch):
    m = load_model(str(tiny_llama_dir), backend="torch", threads=1)
    cfg = GenerationConfig(max_tokens=60, ignore_eos=True, temperature=1.0, seed=3)
    before = "".join(r.text for r in stream_generate(m, "The quick", cfg))
    calls = []
    real = m.tokenizer.decode
    monkeypatch.setattr(m.tokenizer, "decode", lambda ids, **kw: calls.append(len(ids)) or real(ids, **kw))
    steps = list(stream_generate(m, "The quick", cfg))
    assert "".join(r.text for r in steps) == before == real([t for r in steps for t in r.token_ids])
    assert len(steps) == 60 and max(calls) < 20  # the old loop decoded all 60 ids on the last step
