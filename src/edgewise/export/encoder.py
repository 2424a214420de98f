"""Sentence encoders (BERT-style) to ONNX through torch.onnx.export, cached by content hash."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgewise.export.cache import cached_build
from edgewise.models.kinds import SourceFormat
from edgewise.models.source import ModelSource

# torch and transformers are imported inside _export: they cost seconds, and this module is imported with
# edgewise.compress and the runtime, mostly without exporting anything.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                    "config.json", "sentencepiece.bpe.model")


def _export(hf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(hf, dtype=torch.float32).eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    mask = torch.ones(2, 8, dtype=torch.long)
    types = torch.zeros(2, 8, dtype=torch.long)

    class Wrapper(torch.nn.Module):
        # Return only the last hidden state: pooling happens outside so every backend pools the same way.
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
            "token_type_ids": {0: "batch", 1: "seq"}, "last_hidden_state": {0: "batch", 1: "seq"}}
    # The legacy exporter: about 5x faster than dynamo here and exact for BERT-style graphs.
    torch.onnx.export(Wrapper(model), (ids, mask, types), str(out / "model.onnx"),
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
    for name in _TOKENIZER_FILES:
        if (hf / name).is_file():
            shutil.copy(hf / name, out / name)


def export_encoder(source: ModelSource) -> Path:
    """An ONNX folder (model.onnx + tokenizer files) for an HF encoder source."""
    if source.kind == SourceFormat.ONNX:
        return source.path.parent
    return cached_build("encoder-onnx", source.path, {"opset": 17}, lambda out: _export(source.path, out))
