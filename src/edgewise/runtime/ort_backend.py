"""`ort` (default): onnxruntime-genai for decoders, onnxruntime for encoders."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.export.encoder import export_encoder
from edgewise.export.genai import build_genai
from edgewise.export.quantize_encoder import quantized_encoder
from edgewise.formats import decode_weight_bytes, onnx_bits_per_weight
from edgewise.models.kinds import SourceFormat
from edgewise.models.source import CAUSAL_LM, ENCODER, ModelSource
from edgewise.runtime.backend import BACKENDS, LoadedModel
from edgewise.runtime.tokenizer import Tokenizer

# onnxruntime, onnxruntime_genai and edgewise.export.gguf_transcode (gguf-py) are imported inside the functions
# that load or build a model: they cost from a fifth of a second to seconds, and edgewise.compress imports the
# runtime to parse options, before any model is loaded.

class GenaiDecoder:
    """A KV-cached decoder over onnxruntime-genai. We feed our own chosen tokens back with append_tokens,
    so sampling stays in one place (api.py) for every backend."""

    # Each session is its own og.Generator over the one og.Model: onnxruntime runs them from several threads at once.
    parallel = True

    def __init__(self, model, context_length: int):
        self.model = model
        self.context_length = context_length
        self.gen = None

    def fork(self) -> "GenaiDecoder":
        twin = copy.copy(self)  # the same og.Model (weights), no generator yet
        twin.gen = None
        return twin

    def start(self, max_length: int) -> None:
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        # The KV buffer is sized by max_length (past_present_share_buffer): ask only for what we need.
        params.set_search_options(max_length=min(max_length, self.context_length), do_sample=False)
        self.gen = og.Generator(self.model, params)

    def append(self, ids: list[int]) -> np.ndarray:
        self.gen.append_tokens(np.asarray([ids], dtype=np.int32))
        return np.asarray(self.gen.get_logits())[0, -1].astype(np.float32)

    def append_all(self, ids: list[int]) -> np.ndarray:
        """append, returning every appended position's logits (k, V): the generator's logits output holds them
        all after append_tokens, as score() reads them."""
        self.gen.append_tokens(np.asarray([ids], dtype=np.int32))
        logits = np.asarray(self.gen.get_output("logits"))[0]
        if logits.shape[0] != len(ids):
            raise RuntimeError(f"the graph returned logits for {logits.shape[0]} of {len(ids)} appended positions")
        return logits.astype(np.float32, copy=False)

    def score(self, ids: list[int]) -> np.ndarray:
        """Logits at every position (T, V) in one pass from an empty cache: for perplexity-style evaluation.
        The generator keeps the whole prompt's logits output, so this is the same graph generation runs."""
        self.start(len(ids) + 1)
        self.gen.append_tokens(np.asarray([ids], dtype=np.int32))
        return np.asarray(self.gen.get_output("logits"))[0].astype(np.float32, copy=False)

    def rewind(self, n_tokens: int) -> None:
        self.gen.rewind_to(n_tokens)

    def n_tokens(self) -> int:
        return int(self.gen.token_count()) if self.gen is not None else 0

    def batch(self, n: int, max_length: int) -> "GenaiBatch":
        """n rows of one prompt on a generator of their own (runtime.batch): the same weights, a batched cache."""
        return GenaiBatch(self.model, n, min(max_length, self.context_length))


class GenaiBatch:
    """n rows decoded together on one og.Generator, each row's next token chosen by the caller.

    onnxruntime-genai takes append_tokens only once for a batch, then picks tokens with its own search. So each step
    hands it logits in which only the caller's token per row is finite, and its greedy search picks exactly those:
    sampling stays in one place (runtime.sampling), as for a single row."""

    def __init__(self, model, n: int, max_length: int):
        import onnxruntime_genai as og

        self.n = n
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=max_length, do_sample=False, batch_size=n)
        self.gen = og.Generator(model, params)

    def start(self, ids: list[int]) -> np.ndarray:
        """Prefill every row with the prompt; the next-token logits (n, V)."""
        self.gen.append_tokens(np.asarray([ids] * self.n, dtype=np.int32))
        return self._logits()

    def step(self, tokens: list[int], live: list[bool]) -> np.ndarray:
        """Append one token per row; the next logits (n, V). A row that is not `live` has finished: its token is
        filler, and the engine may pad it instead."""
        forced = np.full((self.n, self._vocab), np.finfo(np.float32).min, dtype=np.float32)
        forced[np.arange(self.n), tokens] = 0.0
        self.gen.set_logits(forced)
        self.gen.generate_next_token()
        got = np.asarray(self.gen.get_next_tokens()).reshape(-1)
        if any(ok and int(g) != t for ok, g, t in zip(live, got, tokens)):
            raise EdgewiseError(f"onnxruntime-genai appended {got.tolist()} where the samplers chose {tokens}: "
                                "the batch no longer follows its samplers")
        return self._logits()

    def _logits(self) -> np.ndarray:
        logits = np.asarray(self.gen.get_logits())[:, -1].astype(np.float32)
        self._vocab = logits.shape[-1]
        return logits


class OrtEncoder:
    def __init__(self, session):
        self.session = session
        self.inputs = {i.name for i in session.get_inputs()}

    def hidden_states(self, input_ids, attention_mask, token_type_ids) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]


class OrtModel(LoadedModel):
    """An ONNX graph (genai decoder or plain encoder): its capabilities are read from the graph's initializers."""

    def _onnx(self) -> Path | None:
        return next((Path(f) for f in self.files if f.endswith(".onnx")), None)

    def bits_per_weight(self) -> float | None:
        onnx = self._onnx()
        return onnx_bits_per_weight(onnx) if onnx is not None else None

    def weight_bytes_per_token(self) -> int | None:
        onnx = self._onnx()
        return decode_weight_bytes(onnx) if onnx is not None and self.decoder is not None else None


def genai_folder(source: ModelSource, precision: str) -> Path:
    if source.kind == SourceFormat.GENAI:
        return source.path
    if precision in ("gguf", "gguf-exact"):
        from edgewise.export.gguf_transcode import transcode_gguf

        return transcode_gguf(source, accuracy_level=1 if precision == "gguf-exact" else 4)
    if source.kind in (SourceFormat.HF, SourceFormat.GGUF):
        return build_genai(source, precision)
    raise EdgewiseError(f"{source.ref}: cannot run a {source.kind} decoder on ort: pass an HF folder, GGUF or genai folder")


def load_genai(folder: Path, source: ModelSource, precision: str, threads: int | None) -> LoadedModel:
    import onnxruntime_genai as og

    cfg = og.Config(str(folder))
    if threads:
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
    model = og.Model(cfg)
    gcfg = json.loads((folder / "genai_config.json").read_text())
    ctx = int(gcfg["model"].get("context_length", 2048))
    tok = Tokenizer.from_folder(folder)
    files = [str(p) for p in folder.iterdir() if p.suffix in (".onnx", ".data") or p.name.endswith(".onnx.data")]
    return OrtModel(source, "ort", precision, tok, ctx, decoder=GenaiDecoder(model, ctx), files=files)


def _session_options(threads: int | None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return so


def load_encoder(source: ModelSource, precision: str, threads: int | None) -> LoadedModel:
    import onnxruntime as ort

    folder = export_encoder(source)
    onnx_path = source.path if source.kind == SourceFormat.ONNX else folder / "model.onnx"
    if precision != "fp32":
        onnx_path = quantized_encoder(onnx_path, precision)
    session = ort.InferenceSession(str(onnx_path), _session_options(threads), providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_folder(folder)
    ctx = tok.model_max_length or 512
    ctx = ctx if ctx < 100_000 else 512  # some tokenizers report a huge sentinel
    return OrtModel(source, "ort", precision, tok, ctx, encoder=OrtEncoder(session), files=[str(onnx_path)])


@BACKENDS.register("ort")
def load_ort(source: ModelSource, precision: str, threads: int | None) -> LoadedModel:
    t0 = time.perf_counter()
    if source.task == CAUSAL_LM:
        lm = load_genai(genai_folder(source, precision), source, precision, threads)
    elif source.task == ENCODER:
        lm = load_encoder(source, precision, threads)
    else:
        raise EdgewiseError(f"{source.ref}: ort cannot run a {source.task} model: use --backend litert")
    lm.load_seconds = time.perf_counter() - t0
    return lm
