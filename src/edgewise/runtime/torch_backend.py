"""`torch`: transformers eager on CPU, the reference every other backend is checked against."""

from __future__ import annotations

import copy
import threading
import time

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.export.hf_folder import hf_folder_for
from edgewise.models.source import CAUSAL_LM, ENCODER, ModelSource
from edgewise.runtime.backend import BACKENDS, LoadedModel
from edgewise.runtime.tokenizer import Tokenizer

# torch and transformers are imported inside the functions that use them: they cost seconds, and the runtime
# registers this backend whenever it is imported, mostly to run another one.


class TorchDecoder:
    # A session is a DynamicCache of its own over the one module. Their forward passes take turns: eager decoding of
    # a small model is Python-bound, and two at once on two threads were slower than one after the other
    # (docs/serving.md, "Sessions and concurrency").
    parallel = False

    def __init__(self, model, context_length: int):
        self.model = model
        self.context_length = context_length
        self.cache = None
        self._n = 0
        self._turn = threading.Lock()  # shared by every fork

    def fork(self) -> "TorchDecoder":
        twin = copy.copy(self)  # the same module (weights), no cache yet
        twin.cache, twin._n = None, 0
        return twin

    def start(self, max_length: int) -> None:
        from transformers import DynamicCache

        self.cache = DynamicCache(config=self.model.config)
        self._n = 0

    def _forward(self, ids: list[int], keep: int):
        import torch

        x = torch.tensor([ids], dtype=torch.long)
        with self._turn, torch.inference_mode():
            out = self.model(input_ids=x, cache=self.cache, use_cache=True, logits_to_keep=keep)
        self._n += len(ids)
        return out.logits[0].float().numpy()  # (keep, V)

    def append(self, ids: list[int]) -> np.ndarray:
        return self._forward(ids, 1)[-1]

    def append_all(self, ids: list[int]) -> np.ndarray:
        return self._forward(ids, len(ids))

    def score(self, ids: list[int]) -> np.ndarray:
        """Logits at every position (T, V) in one pass, no cache: for perplexity-style evaluation."""
        import torch

        with self._turn, torch.inference_mode():
            return self.model(input_ids=torch.tensor([ids])).logits[0].float().numpy()

    def rewind(self, n_tokens: int) -> None:
        # transformers 5 crops by a negative count of tokens to drop.
        if n_tokens < self._n:
            self.cache.crop(n_tokens - self._n)
        self._n = n_tokens

    def n_tokens(self) -> int:
        return self._n


class TorchEncoder:
    def __init__(self, model):
        self.model = model

    def hidden_states(self, input_ids, attention_mask, token_type_ids) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask),
                             token_type_ids=torch.from_numpy(token_type_ids))
        return out.last_hidden_state.float().numpy()


class TorchModel(LoadedModel):
    """A transformers model held in fp32: its capabilities come from the live module, not from the files."""

    def bits_per_weight(self) -> float:
        return 32.0

    def weight_bytes_per_token(self) -> int | None:
        """Bytes of weights one decode step reads: every matrix it multiplies by, not the embedding lookup."""
        if self.decoder is None:
            return None
        model = self.decoder.model
        emb = model.get_input_embeddings().weight
        out = model.get_output_embeddings().weight if model.get_output_embeddings() is not None else None
        total = sum(p.numel() * p.element_size() for p in model.parameters() if p.dim() == 2)
        if out is None or out.data_ptr() != emb.data_ptr():
            total -= emb.numel() * emb.element_size()  # an untied lookup table: one row per token
        return int(total)


@BACKENDS.register("torch")
def load_torch(source: ModelSource, precision: str, threads: int | None) -> LoadedModel:
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    if precision != "fp32":
        raise EdgewiseError(f"the torch backend is the fp32 reference; for {precision} use --backend ort")
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    folder = hf_folder_for(source)
    tok = Tokenizer(AutoTokenizer.from_pretrained(folder))
    files = [str(p) for p in folder.glob("*.safetensors")]
    if source.task == CAUSAL_LM:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        ctx = int(getattr(model.config, "max_position_embeddings", 2048))
        return TorchModel(source, "torch", precision, tok, ctx, decoder=TorchDecoder(model, ctx), files=files,
                           load_seconds=time.perf_counter() - t0)
    if source.task == ENCODER:
        model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
        ctx = int(getattr(model.config, "max_position_embeddings", 512))
        return TorchModel(source, "torch", precision, tok, ctx, encoder=TorchEncoder(model), files=files,
                           load_seconds=time.perf_counter() - t0)
    raise EdgewiseError(f"{source.ref}: the torch backend cannot run a {source.task} model: use --backend litert")
