"""Accuracy on the user's own task, for language models: `choice:FILE` (multiple choice by log-likelihood) and
`generate:FILE` (greedy answers scored by a rule). File formats: edgewise.evaluate.task_files; schema: docs/tasks.md.

Both keep one outcome per item, in item order (`outcomes`), so a variant can be compared with the full model item by
item (edgewise.evaluate.stats).

`choice` scores the way lm-eval-harness scores a `multiple_choice` task:
- each option continues the context after one space; context + " " + option is encoded as a whole and split at the
  context's own length (lm-eval's `_encode_pair`, trailing whitespace of the context moving into the continuation);
  no chat template, no BOS;
- `accuracy`: the option with the highest summed log-prob; `accuracy_norm`: the highest summed log-prob divided by
  the option's length in UTF-8 bytes (lm-eval's acc_norm divides by len() of the text: the same on ASCII);
- the context runs once per item and its KV cache serves every option: append the option's tokens but its last
  in one pass (`append_all` returns the logits of every appended position), read their log-probs, rewind. The
  part of the context the previous item shared (a common header, few-shot examples) stays in the cache.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import ChoiceItem, TaskItem, score
from edgewise.evaluate.base import TASKS
from edgewise.evaluate.defaults import DEMO_CHOICE_TASK, packaged_task
from edgewise.evaluate.task_files import choice_items, detect, generation_items
from edgewise.models.source import CAUSAL_LM
from edgewise.numerics import log_softmax
from edgewise.progress import Progress
from edgewise.runtime.api import generate, text_model
from edgewise.runtime.backend import LoadedModel
from edgewise.runtime.types import GenerationConfig

NOTE_EVERY_S = 10.0  # a progress note at most this often
CACHE_ROOM = 256  # KV room is rounded up to this, so that the next item's context usually fits the same cache
# The demo's quiz: 250 easy general-knowledge questions written for Edgewise, 4 options each, enough for the default
# 5-point gate to show a close variant safe (docs/tasks.md has SmolLM2's score on it). Its name lives in defaults.
DEMO_TASK = packaged_task(DEMO_CHOICE_TASK)


@dataclass
class AccuracyRef:
    """The full model's results on the task: its per-item outcomes (the contract optimize and the report read) and
    what a variant is compared with."""

    item_ids: list[str]
    outcomes: np.ndarray  # (n_items,) float, one score in [0, 1] per item
    metrics: dict[str, Any]  # the full model's own evaluate() result
    picks: list  # choice: the option each item's argmax picked; generate: each answer's text
    model: Any = field(default=None, repr=False)  # a weak reference to the model that made it


def unique_ids(ids: list[str]) -> list[str]:
    """Item ids with repeats made distinct ("x", "x#2", ...): a benchmark file may hold the same item twice."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out


class _Rate:
    """Progress notes with items/s, at most one per NOTE_EVERY_S and one at the end."""

    def __init__(self, progress: Progress, what: str, total: int):
        self.progress, self.what, self.total = progress, what, total
        self.t0 = self.last = time.perf_counter()

    def tick(self, done: int) -> None:
        now = time.perf_counter()
        if done == self.total or now - self.last >= NOTE_EVERY_S:
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            self.progress.info(f"{self.what}: {done}/{self.total} items, {rate:.2f} items/s")


class _AccuracyTask:
    needs = CAUSAL_LM
    higher_is_better = True
    primary = "accuracy"
    per_item = True  # evaluate() returns "outcomes": one score per item, comparable item by item

    def __init__(self, path: Path):
        self.path = Path(path)
        self.format = detect(self.path)
        self.progress = Progress()  # the caller may set its own; notes say items done and items/s

    def _results(self, model: LoadedModel) -> tuple[dict[str, Any], list]:
        """(metrics with "outcomes", the pick per item) of one model."""
        raise NotImplementedError

    def reference(self, model: LoadedModel) -> AccuracyRef:
        metrics, picks = self._results(model)
        return AccuracyRef(list(self.item_ids), np.asarray(metrics["outcomes"], dtype=np.float64), metrics, picks,
                           weakref.ref(model))

    def evaluate(self, model: LoadedModel, ref: AccuracyRef) -> dict[str, Any]:
        if ref.model is not None and ref.model() is model:
            # The full model again (optimize evaluates it as the variant "fp32"): scoring is deterministic, so its
            # reference results are its results.
            metrics = {k: list(v) if isinstance(v, list) else v for k, v in ref.metrics.items()}
            picks = ref.picks
        else:
            metrics, picks = self._results(model)
        metrics[self.agreement] = float(np.mean([a == b for a, b in zip(picks, ref.picks)]))
        return metrics


@TASKS.register("choice")
class ChoiceTask(_AccuracyTask):
    """Multiple choice by log-likelihood: MMLU JSONL, BIG-bench task.json (its target_scores examples) or the user's
    choice rows (prompt, options, answer)."""

    kind = "choice"
    agreement = "same_choice"  # items where the variant picks what the full model picks

    def __init__(self, path: Path):
        super().__init__(path)
        self.items: list[ChoiceItem] = choice_items(self.format, self.path)
        if not self.items:
            raise EdgewiseError(f"task file {self.path} has no multiple-choice items (a BIG-bench task needs examples "
                                "with target_scores)")
        self.item_ids = unique_ids([it.id for it in self.items])
        self.n_bytes = [np.array([max(len(o.encode()), 1) for o in it.options], float) for it in self.items]

    def _results(self, model: LoadedModel) -> tuple[dict[str, Any], list]:
        rate = _Rate(self.progress, f"choice {model.name}", len(self.items))
        out, out_norm, picks = [], [], []
        for k, it in enumerate(self.items):
            where = f"{self.path} item {self.item_ids[k]}"
            ctx, conts = encode_options(model, it.context, it.options, where)
            lls = option_logprobs(model, ctx, conts, where)
            pick, pick_norm = int(np.argmax(lls)), int(np.argmax(lls / self.n_bytes[k]))
            out.append(float(pick == it.gold))
            out_norm.append(float(pick_norm == it.gold))
            picks.append(pick)
            rate.tick(k + 1)
        return {"accuracy": float(np.mean(out)), "accuracy_norm": float(np.mean(out_norm)), "n_items": len(out),
                "outcomes": out, "outcomes_norm": out_norm}, picks


def encode_options(model: LoadedModel, context: str, options: tuple[str, ...],
                   where: str = "item") -> tuple[list[int], list[list[int]]]:
    """(context ids, each option's continuation ids), split as lm-eval-harness splits them."""
    n_spaces = len(context) - len(context.rstrip())
    head, tail = (context[:-n_spaces], context[-n_spaces:]) if n_spaces else (context, "")
    enc = model.tokenizer.encode
    ctx = enc(head, add_special_tokens=False)
    if not ctx:
        raise EdgewiseError(f"{where}: the prompt is empty once tokenized: give the options a prompt to continue")
    conts = [enc(head + tail + " " + o, add_special_tokens=False)[len(ctx):] for o in options]
    for o, c in zip(options, conts):
        if not c:
            raise EdgewiseError(f"{where}: option {o!r} adds no token after its prompt once tokenized: end the "
                                "prompt on a word boundary")
    return ctx, conts


def option_logprobs(model: LoadedModel, ctx: list[int], conts: list[list[int]], where: str = "item") -> np.ndarray:
    """Summed log-prob of each continuation after `ctx`, with `ctx` run once and its KV cache reused."""
    dec = text_model(model, "decoder").decoder
    need = len(ctx) + max(map(len, conts))
    if need > model.context_length:
        raise EdgewiseError(f"{where}: the prompt and its longest option take {need} tokens, more than "
                            f"{model.name}'s context of {model.context_length}: shorten the prompt")
    out = np.zeros(len(conts))
    with model.lock:
        # sync keeps what the cache shares with the last item's context (a task's common header), runs the rest.
        first = log_softmax(dec.sync(ctx, min(model.context_length, -(-need // CACHE_ROOM) * CACHE_ROOM)))
        for i, cont in enumerate(conts):
            total = float(first[cont[0]])
            if len(cont) > 1:
                # One pass over the option's tokens but its last: row j holds the logits that predict cont[j + 1].
                rows = log_softmax(dec.append_all(cont[:-1]))
                total += float(rows[np.arange(len(cont) - 1), cont[1:]].sum())
                dec.rewind(len(ctx))
            out[i] = total
    return out


@TASKS.register("generate")
class GenerateTask(_AccuracyTask):
    """Greedy generation through the chat template, each answer scored by its item's rule (exact, contains, regex,
    number; choice for lettered multiple choice): the user's qa rows, GSM8K, MMLU or BIG-bench."""

    kind = "generate"
    agreement = "same_answer"  # items where the variant's answer text equals the full model's

    def __init__(self, path: Path, max_tokens: int | None = None):
        super().__init__(path)
        self.items: list[TaskItem] = generation_items(self.format, self.path, max_tokens)
        if not self.items:
            raise EdgewiseError(f"task file {self.path} has no items to answer")
        self.item_ids = unique_ids([it.id for it in self.items])

    def _results(self, model: LoadedModel) -> tuple[dict[str, Any], list]:
        rate = _Rate(self.progress, f"generate {model.name}", len(self.items))
        out, answers = [], []
        for k, it in enumerate(self.items):
            text = generate(model, it.prompt, GenerationConfig(max_tokens=it.max_tokens)).text  # temperature 0: greedy
            answers.append(text)
            out.append(score(it, text))
            rate.tick(k + 1)
        return {"accuracy": float(np.mean(out)), "n_items": len(out), "outcomes": out}, answers
