"""lm-eval-harness interop, both ways (the optional extra `edgewise[lmeval]`).

Edgewise inside lm-eval: `EdgewiseLM`, registered with lm-eval as model `edgewise`, runs any lm-eval task on any
Edgewise model reference (alias, folder, GGUF, bundle) on any backend and precision:

    python -m edgewise.evaluate.lmeval --model edgewise \
        --model_args model=smollm2-135m,precision=int4,backend=ort,threads=2 --tasks quiz.yaml
    lm_eval.simple_evaluate(model=EdgewiseLM(model="smollm2-135m", precision="int4"), tasks=[...])

lm-eval 0.4.13 finds models only in its own table (lm_eval/models/__init__.py) or through `register_model` in code
that has already run; it scans no entry-point group, and `--include_path` adds tasks, not models. So the plain
`lm_eval --model edgewise` cannot see this class: `python -m edgewise.evaluate.lmeval` registers it, then hands the
same arguments to lm-eval's own CLI.

lm-eval inside Edgewise, `edgewise optimize --task lmeval:TASK.yaml`, is the task kind in
`edgewise.evaluate.lmeval_task`, which drives lm-eval through this same class.

lm-eval is imported only when one of these is used: `import edgewise.evaluate` stays as fast as before.
"""

from __future__ import annotations

if __name__ == "__main__":
    # `python -m edgewise.evaluate.lmeval`: run the package's copy of this module, which registers the lm-eval model
    # once; this file run as __main__ would define and register a second class.
    from edgewise.evaluate.lmeval import main

    raise SystemExit(main())

import functools
import logging
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.models.packaged import DEFAULT_MODEL
from edgewise.numerics import log_softmax
from edgewise.runtime.api import forward_logits, generate, text_model
from edgewise.runtime.backend import PRECISIONS, LoadedModel
from edgewise.runtime.types import GenerationConfig

EXTRA_HINT = "pip install -e '.[lmeval]'"
# Per-item metrics, in the order we look for them: multiple choice reports acc, generation tasks exact_match.
ITEM_METRICS = ("acc", "exact_match")
# A rolling (perplexity) window is scored in one pass whose logits are (window, vocabulary) floats: 2048 positions of
# SmolLM2's 49,152-token vocabulary are 400 MB, so the default window stops there (lm-eval's HFLM default too).
DEFAULT_MAX_LENGTH = 2048
log = logging.getLogger(__name__)


def require_lm_eval() -> None:
    """A one-line error naming the extra when lm-eval-harness is not installed."""
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise EdgewiseError(f"lm-eval-harness is not installed: install the lmeval extra ({EXTRA_HINT})") from None


@dataclass
class EdgewiseLMArgs:
    """What `--model_args` may say to the `edgewise` model: the model reference and how to load it."""

    model: str = DEFAULT_MODEL  # alias, HF folder, .gguf, genai folder or Edgewise bundle
    precision: str = "auto"
    backend: str = "ort"
    threads: int | None = None
    max_length: int | None = None  # tokens per scored window (loglikelihood and rolling); default: the context
    max_gen_toks: int = 256  # new tokens per generate_until request when the task does not say

    def __post_init__(self):
        self.model = str(self.model)
        if self.precision not in PRECISIONS:
            raise EdgewiseError(f"precision={self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        for name in ("threads", "max_length"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise EdgewiseError(f"{name}={v!r}: give a positive integer, e.g. {name}=2")
        if not isinstance(self.max_gen_toks, int) or self.max_gen_toks < 1:
            raise EdgewiseError(f"max_gen_toks={self.max_gen_toks!r}: give a positive integer, e.g. max_gen_toks=64")


# lm-eval passes these to every model it builds from a name; an Edgewise model runs requests one at a time on the CPU
# backend it was loaded on (it reuses KV caches instead of batching), so they are accepted and ignored.
IGNORED_ARGS = ("batch_size", "max_batch_size", "device")


def _define_class() -> type:
    import lm_eval.models  # noqa: F401 - fills lm-eval's own table first: it imports it only while the table is empty
    from lm_eval.api.model import TemplateLM
    from lm_eval.api.registry import register_model
    from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
    from tqdm import tqdm

    @register_model("edgewise")
    class EdgewiseLM(TemplateLM):
        """An Edgewise model as an lm-eval `LM`.

        `model` is a reference with its load options (`model=..., precision=..., backend=..., threads=...`, the
        fields of EdgewiseLMArgs) or an already loaded LoadedModel. Requests run one at a time through the model's
        KV-cached decoder session: requests are sorted by their tokens, so those that share a context (the options of
        one question, a few-shot prefix) keep it in the cache and run only what differs.
        """

        def __init__(self, model: str | LoadedModel = DEFAULT_MODEL, quiet: bool = False, **kwargs):
            super().__init__()
            for k in IGNORED_ARGS:
                kwargs.pop(k, None)
            if "pretrained" in kwargs:  # lm-eval's usual name for the model (HFLM's `pretrained=`)
                model = kwargs.pop("pretrained")
            if isinstance(model, LoadedModel):
                if kwargs.keys() - {"max_length", "max_gen_toks"}:
                    raise EdgewiseError(f"model args {sorted(kwargs)} do not apply to a model already loaded: "
                                        "pass only max_length or max_gen_toks")
                self.args = EdgewiseLMArgs(model=model.name, **kwargs)
                self.lm = text_model(model, "decoder")
            else:
                unknown = sorted(kwargs.keys() - EdgewiseLMArgs.__dataclass_fields__.keys())
                if unknown:
                    known = ", ".join(EdgewiseLMArgs.__dataclass_fields__)
                    raise EdgewiseError(f"unknown model args {unknown}: the edgewise model takes {known}")
                self.args = EdgewiseLMArgs(model=model, **kwargs)
                from edgewise.runtime import load_model

                a = self.args
                self.lm = text_model(load_model(a.model, a.backend, a.precision, a.threads), "decoder")
            self.tokenizer = self.lm.tokenizer  # TemplateLM.chat_template reads its chat_template
            self.quiet = quiet

        # --- tokens -------------------------------------------------------------------------------------------
        @property
        def eot_token_id(self) -> int:
            if not self.tokenizer.eos_ids:
                raise EdgewiseError(f"{self.lm.name}'s tokenizer names no end-of-sequence token: lm-eval needs one to "
                                    "condition an empty context")
            return min(self.tokenizer.eos_ids)

        @functools.cached_property
        def prefix_token_id(self) -> int:
            # As lm-eval's HFLM: the BOS token conditions an empty context, the EOS token when there is no BOS.
            # (.hf loads the transformers tokenizer: only a task with an empty context or a rolling one gets here.)
            bos = getattr(self.tokenizer.hf, "bos_token_id", None)
            return bos if isinstance(bos, int) else self.eot_token_id

        @property
        def max_length(self) -> int:
            return min(self.args.max_length or DEFAULT_MAX_LENGTH, self.lm.context_length)

        def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
            # No BOS by default, as HFLM does for causal models; a chat-templated prompt carries its own specials.
            return self.tokenizer.encode(string, add_special_tokens=bool(add_special_tokens))

        def tok_decode(self, ids: list[int]) -> str:
            return self.tokenizer.decode(ids)

        @property
        def tokenizer_name(self) -> str:
            return self.lm.name.replace("/", "__")

        def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
            return self.tokenizer.hf.apply_chat_template(chat_history, tokenize=False,
                                                         add_generation_prompt=add_generation_prompt)

        def get_model_info(self) -> dict:
            return {"model": self.lm.name, "backend": self.lm.backend, "precision": self.lm.precision}

        # --- scoring ------------------------------------------------------------------------------------------
        def _fit(self, ctx: list[int], cont: list[int]) -> list[int]:
            """The context cut from the left so that context + continuation fit one window (as HFLM cuts)."""
            if not cont:
                raise EdgewiseError("lm-eval asked for the log-likelihood of an empty continuation: check the "
                                    "task's doc_to_choice / doc_to_target")
            room = self.max_length - len(cont) + 1  # the last continuation token is predicted, never fed
            if room < 1:
                raise EdgewiseError(f"a continuation of {len(cont)} tokens does not fit {self.lm.name}'s window of "
                                    f"{self.max_length}: raise max_length= or shorten the task's answers")
            return ctx[-room:] if len(ctx) > room else ctx

        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
            """(sum of the continuation's log-probs, whether greedy decoding yields it) per (key, ctx, cont)."""
            reqs = [(key, self._fit(ctx, cont), cont) for key, ctx, cont in requests]
            # Sorted by tokens, neighbours share their longest prefixes: TrackedSession.sync keeps that much cache.
            order = sorted(range(len(reqs)), key=lambda i: reqs[i][1] + reqs[i][2])
            room = max((len(c) + len(t) for _, c, t in reqs), default=1)  # one KV buffer for the whole batch
            dec, out = self.lm.decoder, [None] * len(reqs)
            with self.lm.lock:
                for i in tqdm(order, desc="edgewise loglikelihood", disable=disable_tqdm or self.quiet):
                    key, ctx, cont = reqs[i]
                    logits = dec.sync(ctx, room)  # the last context position predicts the first continuation token
                    total, greedy = 0.0, True
                    for j, tok in enumerate(cont):
                        if j:
                            logits = dec.append([cont[j - 1]])
                        total += float(log_softmax(logits)[tok])
                        greedy = greedy and int(np.argmax(logits)) == tok
                    out[i] = (total, greedy)
                    if key is not None:
                        self.cache_hook.add_partial("loglikelihood", key, out[i])
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
            """Each string's total log-prob in disjoint windows of max_length (lm-eval's rolling windows), each
            window scored in one pass."""
            out = []
            for req in tqdm(requests, desc="edgewise loglikelihood_rolling", disable=disable_tqdm or self.quiet):
                (string,) = req.args
                total = 0.0
                wins = get_rolling_token_windows(token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                                                 max_seq_len=self.max_length, context_len=1)
                for ctx, pred in map(make_disjoint_window, wins):
                    lp = log_softmax(forward_logits(self.lm, ctx + pred[:-1])[len(ctx) - 1:])  # (len(pred), V)
                    total += float(lp[np.arange(len(pred)), pred].sum())
                out.append(total)
                self.cache_hook.add_partial("loglikelihood_rolling", (string,), total)
            return out

        def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
            """Greedy text after each context, cut at the first `until` string, at most `max_gen_toks` tokens."""
            out = []
            for req in tqdm(requests, desc="edgewise generate_until", disable=disable_tqdm or self.quiet):
                context, gen_kwargs = req.args
                kw = dict(gen_kwargs or {})
                until = kw.pop("until", None) or []
                until = [until] if isinstance(until, str) else list(until)
                max_new = int(kw.pop("max_gen_toks", self.args.max_gen_toks))
                if kw.get("do_sample") or float(kw.get("temperature") or 0) > 0:
                    log.warning("edgewise: generate_until decodes greedily; ignoring %s", kw)
                if max_new >= self.lm.context_length:
                    raise EdgewiseError(f"max_gen_toks={max_new} leaves no room for a prompt in {self.lm.name}'s "
                                        f"context of {self.lm.context_length}: lower it")
                ids = self.tok_encode(context) or [self.prefix_token_id]
                ids = ids[-(self.lm.context_length - max_new):]  # keep the end of a long prompt, as HFLM does
                cfg = GenerationConfig(max_tokens=max_new, stop=tuple(s for s in until if s))
                text = generate(self.lm, ids, cfg, chat=False, reuse_cache=True).text
                out.append(text)
                self.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            return out

    return EdgewiseLM


_CLASS: type | None = None


def edgewise_lm_class() -> type:
    """The `EdgewiseLM` class, defined and registered with lm-eval as `edgewise` on first use."""
    global _CLASS
    if _CLASS is None:
        require_lm_eval()
        _CLASS = _define_class()
    return _CLASS


def __getattr__(name: str):
    # `from edgewise.evaluate.lmeval import EdgewiseLM` imports lm-eval only then.
    if name == "EdgewiseLM":
        return edgewise_lm_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """`python -m edgewise.evaluate.lmeval ARGS`: lm-eval's own CLI (`lm_eval ARGS`) with model `edgewise`
    registered. Edgewise's own errors print as one line and exit 2 (EDGEWISE_DEBUG=1 shows the traceback)."""
    try:
        edgewise_lm_class()
        from lm_eval.__main__ import cli_evaluate

        sys.argv = [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]
        cli_evaluate()
    except EdgewiseError as e:
        if os.environ.get("EDGEWISE_DEBUG") == "1":
            raise
        print(f"error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
