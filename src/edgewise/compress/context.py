"""What every handler works from: the fp32 base graph, the tokenizer, calibration text, and what a handler returns."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.compress.configs import config_dict
from edgewise.compress.onnx_graph import collect_hessians, load, matmul_weights, model_file, sequences
from edgewise.data import CALIBRATION_TEXT, packaged_text
from edgewise.data.readers import read_text
from edgewise.errors import EdgewiseError, UnsupportedModelError
from edgewise.export.encoder import export_encoder
from edgewise.export.genai import build_genai
from edgewise.formats import param_count
from edgewise.models.kinds import ModelRole, SourceFormat
from edgewise.models.source import CAUSAL_LM, ENCODER, ModelSource

log = logging.getLogger("edgewise.compress")
# transformers is imported inside tokenizer(), where it is first needed: it costs seconds, and every module of this
# package is imported whenever edgewise.compress is (method discovery), e.g. only to parse a method name.

DECODER, ENCODER_KIND = ModelRole.DECODER, ModelRole.ENCODER


@dataclass(frozen=True)
class Calibration:
    """Text the calibration-aware methods learn from. Keep it apart from the evaluation text."""

    texts: tuple[str, ...]
    source: str

    def __post_init__(self):
        if not any(t.strip() for t in self.texts):
            raise EdgewiseError(f"calibration text {self.source} is empty: pass a file with some text (--calib)")

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for t in self.texts:
            h.update(t.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    @classmethod
    def default(cls) -> "Calibration":
        return cls.from_file(packaged_text(CALIBRATION_TEXT), source=f"packaged:{CALIBRATION_TEXT}")

    @classmethod
    def from_file(cls, path: Path, source: str | None = None) -> "Calibration":
        return cls((read_text(Path(path), what="calibration file"),), source or str(path))

    def sentences(self, max_chars: int = 400) -> list[str]:
        """Short pieces (blank-line paragraphs, split at max_chars) for encoders, which read one text at a time."""
        out = []
        for t in self.texts:
            for para in t.split("\n\n"):
                para = " ".join(para.split())
                while para:
                    out.append(para[:max_chars])
                    para = para[max_chars:]
        return [p for p in out if len(p) > 20]


@dataclass
class QuantResult:
    """One compressed variant: a folder (or file) `load_model` opens on `backend`, and what it cost."""

    name: str
    config: object
    path: Path
    backend: str = "ort"
    bits_per_weight: float = 32.0
    size_bytes: int = 0
    params: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.config.describe() if hasattr(self.config, "describe") else type(self.config).__name__

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6

    @property
    def bundle_dir(self) -> Path:
        """The folder a bundle copies: the variant's own folder (a GGUF's parent holds only that file)."""
        return self.path if self.path.is_dir() else self.path.parent


class CompressContext:
    """Lazily exports the fp32 base once and shares it (and the calibration statistics) across methods."""

    def __init__(self, source: ModelSource, calibration: Calibration | None = None, threads: int | None = None,
                 say: Callable[[str], None] | None = None):
        if source.task not in (CAUSAL_LM, ENCODER):
            raise UnsupportedModelError(f"{source.ref}: cannot compress a {source.task} model; Edgewise compresses "
                                        "causal LMs and text encoders")
        self.source = source
        self.kind = ModelRole.of(source.task)
        self.calibration = calibration or Calibration.default()
        self.threads = threads
        self.say = say or (lambda msg: log.info(msg))
        self._base: Path | None = None
        self._tokenizer = None
        self._hessians: dict[int, dict] = {}
        self._params: int | None = None
        # Quantized weights by (weight name, config repr), shared across methods within one run.
        self.qtensors: dict[tuple[str, str], object] = {}

    # --- the fp32 base ------------------------------------------------------------------------------------------

    @property
    def has_hf_weights(self) -> bool:
        return self.source.kind in (SourceFormat.HF, SourceFormat.GGUF)

    def base_folder(self) -> Path:
        """The fp32 ONNX folder: an onnxruntime-genai export for decoders, model.onnx + tokenizer for encoders."""
        if self._base is None:
            if self.kind == DECODER:
                if self.source.kind == SourceFormat.GENAI:
                    self._base = Path(self.source.path)
                else:
                    self._base = build_genai(self.source, "fp32")
            else:
                if self.source.kind == SourceFormat.ONNX:
                    self._base = Path(self.source.path).parent
                else:
                    self._base = export_encoder(self.source)
            self._check_float(self.base_model())
        return self._base

    def base_model(self) -> Path:
        base = self._base if self._base is not None else self.base_folder()
        if self.kind == ENCODER_KIND and self.source.kind == SourceFormat.ONNX:
            return Path(self.source.path)
        return model_file(base)

    @staticmethod
    def _check_float(model_path: Path) -> None:
        m = load(model_path, with_data=False)
        if any(n.op_type in ("MatMulNBits", "DynamicQuantizeLinear", "QuantizeLinear", "MatMulInteger")
               for n in m.graph.node):
            raise EdgewiseError(f"{model_path}: this model is already quantized; compress the full-precision model")

    def context_length(self) -> int:
        """Longest sequence the base graph takes (a genai decoder's rotary cache is sized to it)."""
        cfg = self.base_folder() / "genai_config.json"
        if cfg.is_file():
            return int(json.loads(cfg.read_text())["model"].get("context_length", 2048))
        return 512

    def params(self) -> int:
        if self._params is None:
            self._params = param_count(load(self.base_model(), with_data=False))
        return self._params

    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.base_folder())
        return self._tokenizer

    # --- calibration --------------------------------------------------------------------------------------------

    def calibration_sequences(self, max_tokens: int, length: int = 512) -> list[np.ndarray]:
        """Token sequences of at most max_tokens in all: windows of one long text (decoders), sentences (encoders)."""
        tok = self.tokenizer()
        seqs: list[np.ndarray] = []
        total = 0
        if self.kind == DECODER:
            ids = [i for t in self.calibration.texts for i in tok.encode(t, add_special_tokens=False)]
            for s in sequences(ids, min(length, max_tokens, self.context_length())):
                if total >= max_tokens:
                    break
                seqs.append(s)
                total += len(s)
        else:
            for text in self.calibration.sentences():
                ids = tok(text, truncation=True, max_length=128)["input_ids"]
                seqs.append(np.asarray(ids, np.int64))
                total += len(ids)
                if total >= max_tokens:
                    break
        if not seqs:
            raise EdgewiseError(f"calibration text {self.calibration.source} gave no tokens: pass a longer text")
        return seqs

    def hessians(self, max_tokens: int) -> dict[str, np.ndarray]:
        """H = X^T X / n of every MatMul input on calibration text (float32, shared by GPTQ and mixed precision)."""
        if max_tokens not in self._hessians:
            t0 = time.perf_counter()
            mw = matmul_weights(load(self.base_model(), with_data=False))
            hs, n = collect_hessians(self.base_model(), self.calibration_sequences(max_tokens), [w.input for w in mw],
                                     threads=self.threads)
            self._hessians[max_tokens] = {k: v.astype(np.float32) for k, v in hs.items()}
            self.say(f"calibration statistics from {n} tokens of {self.calibration.source} "
                     f"({time.perf_counter() - t0:.0f} s)")
        return self._hessians[max_tokens]

    def cache_options(self, cfg, calibrated: bool) -> dict:
        opts = {"config": config_dict(cfg), "v": 1}
        if calibrated:
            opts["calibration"] = self.calibration.digest
        return opts
