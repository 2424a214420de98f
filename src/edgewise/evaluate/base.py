"""The task contract and registry: `perplexity:FILE`, `nextword:FILE`, `retrieval:FILE.jsonl`, `classify:FILE.jsonl`.

A task reads its file once (bad files fail here, before any model work), computes a reference state from the full
model, then scores every variant against it. Metrics are plain floats; `primary` names the one the gate reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from edgewise.errors import EdgewiseError
from edgewise.models.source import CAUSAL_LM, ENCODER
from edgewise.registry import Registry
from edgewise.runtime.backend import LoadedModel


class Task(Protocol):
    kind: str
    path: Path
    primary: str  # the metric the gate reads
    higher_is_better: bool
    needs: str  # CAUSAL_LM | ENCODER

    def reference(self, model: LoadedModel) -> Any:
        """State computed once from the full model (its log-probs, embeddings or fitted head)."""

    def evaluate(self, model: LoadedModel, ref: Any) -> dict[str, float]:
        """Metrics of one variant, measured against the reference."""


TASKS: Registry[type] = Registry("task kind")
NEEDS_HINT = {
    CAUSAL_LM: "it needs a language model (decoder), such as smollm2-135m",
    ENCODER: "it needs an embedding model (encoder), such as minilm-l6",
}


def check_model_fits(task: Task, model_task: str, ref: str) -> None:
    """A one-line error when the task cannot run on this kind of model (e.g. retrieval on a decoder)."""
    if model_task != task.needs:
        what = "a language model (decoder)" if model_task == CAUSAL_LM else f"a {model_task} model"
        raise EdgewiseError(f"task {task.kind} does not fit {ref}, which is {what}: {NEEDS_HINT[task.needs]}")


def parse_task(spec: str) -> Task:
    """`KIND:FILE` -> a loaded task (the file is read and validated now)."""
    kind, sep, path = str(spec).partition(":")
    kind = kind.strip().lower()
    if not sep or not path.strip():
        raise EdgewiseError(f"task {spec!r}: write KIND:FILE, e.g. perplexity:notes.txt "
                            f"(kinds: {', '.join(TASKS.names())})")
    return TASKS.get(kind)(Path(path.strip()).expanduser())


def relative_drop(task: Task, value: float, reference: float) -> float:
    """How much worse than the reference, as a fraction (positive = worse), in the primary metric's direction."""
    if reference == 0:
        return 0.0 if value == reference else float("inf")
    d = (reference - value) / abs(reference) if task.higher_is_better else (value - reference) / abs(reference)
    return float(d)
