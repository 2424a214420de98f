"""The one tokenizer interface every backend shares: encode, decode, chat templates, encoder batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer as FastTokenizer

from edgewise.errors import EdgewiseError

# transformers (seconds) and jinja2 (a twentieth of a second) are imported inside the methods that need them: a
# folder with tokenizer.json needs no transformers, a model without a chat template no jinja2, and edgewise.compress
# imports the runtime to parse options before any model is loaded.


class Tokenizer:
    """The one tokenizer interface every backend shares.

    Built either around a transformers tokenizer (`Tokenizer(hf)`), or straight from a folder's
    tokenizer.json with the `tokenizers` library and jinja2 (`Tokenizer.from_folder`). The second path
    never imports transformers, and so never torch: an ORT-only edge process stays ~250 MB smaller.
    `.hf` stays available on both (loaded lazily) for callers that need the full transformers API.
    """

    def __init__(self, hf_tokenizer=None, *, folder: Path | None = None, fast=None, config: dict | None = None,
                 chat_template: str | None = None):
        self._hf = hf_tokenizer
        self._folder = folder
        self._fast = fast  # tokenizers.Tokenizer
        self._config = config or {}
        if hf_tokenizer is not None:
            self.chat_template = getattr(hf_tokenizer, "chat_template", None)
            eos = getattr(hf_tokenizer, "eos_token_id", None)
            self.model_max_length = int(getattr(hf_tokenizer, "model_max_length", 0) or 0)
        else:
            self.chat_template = chat_template
            eos = self._special_id(self._config.get("eos_token"))
            self.model_max_length = int(self._config.get("model_max_length", 0) or 0)
        self.eos_ids: set[int] = {eos} if isinstance(eos, int) else set()

    @classmethod
    def from_folder(cls, folder: Path) -> "Tokenizer":
        folder = Path(folder)
        if not (folder / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            return cls(AutoTokenizer.from_pretrained(folder))
        cfg_path = folder / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
        template = cfg.get("chat_template")
        if (folder / "chat_template.jinja").is_file():
            template = (folder / "chat_template.jinja").read_text()
        return cls(folder=folder, fast=FastTokenizer.from_file(str(folder / "tokenizer.json")), config=cfg,
                   chat_template=template)

    @property
    def hf(self):
        if self._hf is None:
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(self._folder)
        return self._hf

    def _special_id(self, token) -> int | None:
        if isinstance(token, dict):
            token = token.get("content")
        return self._fast.token_to_id(token) if isinstance(token, str) else None

    def _special_str(self, name: str) -> str:
        tok = self._config.get(name)
        return (tok.get("content") if isinstance(tok, dict) else tok) or ""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if self._fast is not None:
            return self._fast.encode(text, add_special_tokens=add_special_tokens).ids
        return list(self.hf.encode(text, add_special_tokens=add_special_tokens))

    @property
    def vocab_size(self) -> int:
        """Token ids this tokenizer knows, added tokens included: a prompt id at or past it is not a token."""
        if self._fast is not None:
            return int(self._fast.get_vocab_size(with_added_tokens=True))
        return len(self.hf)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        if self._fast is not None:
            return self._fast.decode(list(ids), skip_special_tokens=skip_special_tokens)
        return self.hf.decode(ids, skip_special_tokens=skip_special_tokens)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    def chat_ids(self, messages: list[dict]) -> list[int]:
        from jinja2 import TemplateError

        try:
            return self.encode(self._render_chat(messages))
        except (TemplateError, ValueError) as e:  # the template's raise_exception, or a render failure
            raise EdgewiseError(f"the chat template refused these messages: {e}") from None

    def _render_chat(self, messages: list[dict]) -> str:
        if self._fast is None:
            return self.hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # Render as transformers does: a sandboxed jinja2 environment with trim_blocks/lstrip_blocks.
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        if not hasattr(self, "_template"):
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

            def raise_exception(message):
                raise ValueError(message)

            env.globals["raise_exception"] = raise_exception
            self._template = env.from_string(self.chat_template)
        return self._template.render(messages=messages, add_generation_prompt=True,
                                     bos_token=self._special_str("bos_token"),
                                     eos_token=self._special_str("eos_token"))

    def token_str(self, tid: int) -> str:
        return self.decode([tid], skip_special_tokens=False)

    def batch(self, texts: list[str], max_length: int) -> dict:
        """Padded, truncated numpy batch for an encoder: input_ids, attention_mask, token_type_ids."""
        if self._fast is None:
            enc = self.hf(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
            return {k: np.asarray(v) for k, v in enc.items()}
        fast = self._fast
        fast.enable_truncation(max_length)
        pad_id = self._special_id(self._config.get("pad_token")) or 0
        fast.enable_padding(pad_id=pad_id, pad_token=self._special_str("pad_token") or "[PAD]")
        encs = fast.encode_batch(list(texts), add_special_tokens=True)
        return {"input_ids": np.array([e.ids for e in encs]), "attention_mask": np.array([e.attention_mask for e in encs]),
                "token_type_ids": np.array([e.type_ids for e in encs])}
