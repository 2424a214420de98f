"""A plain Hugging Face folder for any causal-LM source: the common input of torch loading and ONNX export.

GGUF files are dequantized through transformers (`gguf_file=`) once and saved as fp32 safetensors in the
cache, so later loads take a second instead of ~20 s.
"""

from __future__ import annotations

from pathlib import Path

from edgewise.errors import EdgewiseError, UnsupportedModelError
from edgewise.export.cache import cached_build
from edgewise.models.kinds import SourceFormat
from edgewise.models.source import ModelSource

# torch and transformers are imported inside _dequantize_gguf: they cost seconds, and most callers only want the
# folder of an HF source.

def _dequantize_gguf(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    except (ValueError, KeyError, RuntimeError) as e:
        raise UnsupportedModelError(f"{gguf_path}: transformers cannot dequantize this GGUF "
                                    f"({str(e).splitlines()[0][:120]}): use the llamacpp backend") from None
    # The weights are plain fp32 after dequantization, but transformers refuses to save a model it
    # believes is "gguf-quantized"; drop that marker so save_pretrained writes ordinary safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)


def hf_folder_for(source: ModelSource) -> Path:
    """A local HF folder (config + safetensors + tokenizer) for a causal-LM or encoder source."""
    if source.kind == SourceFormat.HF:
        return source.path
    if source.kind == SourceFormat.GGUF:
        return cached_build("hf-from-gguf", source.path, {"dtype": "float32"},
                            lambda out: _dequantize_gguf(source.path, out))
    raise EdgewiseError(f"{source.ref}: a {source.kind} model has no Hugging Face weights to load: "
                        "use --backend ort for ONNX models")
