"""The `gguf` method: a GGUF's own blocks as a registered method, the default for a GGUF input and refused for
anything else (the transcoding itself is tested in tests/export/test_gguf_transcode.py and, on the real models,
tests/integration/test_gguf_transcode.py)."""

import pytest

from edgewise.compress import parse_method, quantize
from edgewise.compress.methods.transcode import GgufTranscode
from edgewise.errors import EdgewiseError
from edgewise.optimize import OptimizeOptions, _method_list
from edgewise.optimize.search import nominal_bits


def test_names_and_options():
    assert parse_method("gguf") == ("gguf", GgufTranscode())
    assert parse_method("gguf-exact")[1] == GgufTranscode(accuracy_level=1)
    assert parse_method("gguf-5.5bpw")[1] == GgufTranscode(max_bpw=5.5)
    assert "5.5 bits per weight" in GgufTranscode(max_bpw=5.5).describe()
    with pytest.raises(EdgewiseError, match="max_bpw must be a number of bits per weight"):
        GgufTranscode(max_bpw=1)
    assert nominal_bits(GgufTranscode()) == 4.5
    with pytest.raises(EdgewiseError, match="accuracy_level must be 0-4"):
        GgufTranscode(accuracy_level=7)


def test_a_float_model_is_refused_with_a_hint(llm_ctx):
    with pytest.raises(EdgewiseError, match="not a quantized .gguf file: use int4 or int8"):
        quantize(None, GgufTranscode(), name="gguf", ctx=llm_ctx)


def test_gguf_is_a_default_only_for_gguf_inputs():
    for_gguf = [n for n, _ in _method_list(OptimizeOptions(), decoder=True, gguf=True)]
    for_hf = [n for n, _ in _method_list(OptimizeOptions(), decoder=True, gguf=False)]
    assert for_gguf[:3] == ["fp32", "gguf", "gguf-5.5bpw"] and "gguf" not in for_hf
    assert set(for_gguf) - {"gguf", "gguf-5.5bpw"} == set(for_hf)
