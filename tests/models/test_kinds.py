"""SourceFormat / ModelTask / ModelRole: resolvers store enum members, and every consumer still reads plain strings."""

import json

import pytest

from edgewise import models
from edgewise.errors import EdgewiseError
from edgewise.models import ModelRole, ModelSource, ModelTask, SourceFormat
from edgewise.models.bundle import write_bundle


def test_resolvers_return_enum_members(tiny_llama_dir, tiny_bert_dir):
    for ref, fmt, task in (("smollm2-135m", SourceFormat.GGUF, ModelTask.CAUSAL_LM),
                           (str(tiny_llama_dir), SourceFormat.HF, ModelTask.CAUSAL_LM),
                           (str(tiny_bert_dir), SourceFormat.HF, ModelTask.ENCODER)):
        s = models.load(ref)
        assert s.kind is fmt and s.task is task


def test_a_bundle_reports_its_inner_files_format(tiny_llama_dir, tmp_path):
    out = write_bundle(tiny_llama_dir, tmp_path / "b", name="tiny", provenance={}, options={}, metrics={})
    b = models.load(str(out))
    assert b.kind is SourceFormat.HF and b.task is ModelTask.CAUSAL_LM
    # The manifest holds the same strings as before the enums.
    assert json.loads((out / "manifest.json").read_text())["model"] == {"kind": "hf", "task": "causal-lm",
                                                                         "arch": "llama", "path": "model"}


def test_members_read_as_the_old_strings(tmp_path):
    # A plugin resolver may still pass bare strings: they become members, and JSON, f-strings and == are unchanged.
    s = ModelSource(ref="x", kind="gguf", path=tmp_path, task="causal-lm", name="x")
    assert s.kind is SourceFormat.GGUF and s.task is ModelTask.CAUSAL_LM
    assert s.kind == "gguf" and f"a {s.kind} {s.task}" == "a gguf causal-lm"
    assert json.dumps({"kind": s.kind, ModelRole.DECODER: 1}) == '{"kind": "gguf", "decoder": 1}'
    assert ModelRole.of(s.task) is ModelRole.DECODER and ModelRole.of(ModelTask.ENCODER) is ModelRole.ENCODER


def test_an_unknown_format_is_one_actionable_line(tmp_path):
    with pytest.raises(EdgewiseError, match=r"unknown model format 'safetensors': use one of hf, gguf, onnx, genai, tflite"):
        ModelSource(ref="x", kind="safetensors", path=tmp_path, task="causal-lm", name="x")
    with pytest.raises(EdgewiseError, match="unknown model task 'decoder'"):
        ModelSource(ref="x", kind="hf", path=tmp_path, task="decoder", name="x")
