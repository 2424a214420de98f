"""formats.LLAMA_FTYPES: our names, gguf's numbers; checked against llama.cpp's own constants."""

import sys

import pytest

from edgewise.formats import LLAMA_FTYPES


def test_llama_ftypes_match_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp")  # the optional [llamacpp] extra
    for name, value in LLAMA_FTYPES.items():
        attr = "LLAMA_FTYPE_ALL_F32" if name == "F32" else f"LLAMA_FTYPE_MOSTLY_{name}"
        assert value == getattr(llama_cpp, attr), name
    with pytest.raises(KeyError):
        LLAMA_FTYPES["Q2_K"]  # a gguf type we do not offer


def test_checking_a_name_needs_no_gguf(monkeypatch):
    monkeypatch.setitem(sys.modules, "gguf", None)  # importing gguf would now fail
    assert "Q4_K_M" in LLAMA_FTYPES and "q4_k_m" not in LLAMA_FTYPES
    assert list(LLAMA_FTYPES)[:2] == ["F32", "F16"] and len(LLAMA_FTYPES) == 13
