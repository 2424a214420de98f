"""The three things "kind" used to mean, as enums: a file format, what a model does, and its role in a report.

Each is a `StrEnum`: a member is a `str` equal to its value, so `source.format == "gguf"`, f-strings, JSON and
report.json read exactly as the bare strings did (`json.dumps(SourceFormat.GGUF)` is `"gguf"`).
"""

from __future__ import annotations

from enum import StrEnum

from edgewise.errors import EdgewiseError


class SourceFormat(StrEnum):
    """The file format a ModelSource's weights are in: what `ModelSource.kind` holds."""

    HF = "hf"  # a Hugging Face folder: config.json + safetensors
    GGUF = "gguf"  # one llama.cpp .gguf file
    ONNX = "onnx"  # an encoder .onnx with tokenizer.json beside it
    GENAI = "genai"  # an onnxruntime-genai decoder folder (genai_config.json)
    TFLITE = "tflite"  # a LiteRT .tflite file


class ModelTask(StrEnum):
    """What a model does, which decides the runtime path that serves it: what `ModelSource.task` holds."""

    CAUSAL_LM = "causal-lm"
    ENCODER = "encoder"
    TFLITE = "tflite"  # a LiteRT graph: its signature, not its config, says what it does


class ModelRole(StrEnum):
    """Decoder or encoder: the compressors' `ctx.kind` and report.json's `model.kind`."""

    DECODER = "decoder"
    ENCODER = "encoder"

    @classmethod
    def of(cls, task: str) -> ModelRole:
        return cls.DECODER if task == ModelTask.CAUSAL_LM else cls.ENCODER


def parse_enum(enum: type[StrEnum], value: str, what: str) -> StrEnum:
    """`value` as a member of `enum`, or an EdgewiseError listing the members (for plugin resolvers and manifests)."""
    try:
        return enum(value)
    except ValueError:
        raise EdgewiseError(f"unknown {what} {value!r}: use one of {', '.join(m.value for m in enum)}") from None
