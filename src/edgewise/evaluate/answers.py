"""Items with references, and the rules that score a generated answer against one. `route eval`, the `generate:` task
kind and the routing calibration all score with these (the readers that make items: edgewise.evaluate.task_files).

Rules (`TaskItem.kind`, `score`):
- choice:   the letter the answer commits to ("B", "B.", "(B)", "The answer is B") against the gold letter;
            the option's own text also counts when the model writes it instead of the letter.
- number:   GSM8K's way, the final number of the answer ("Answer: 18", else the last number written).
- contains: a reference appears in the answer as whole words, after SQuAD normalisation.
- exact:    the answer equals a reference, after SQuAD normalisation.
- regex:    a reference, read as a Python regular expression, is found in the raw answer (`re.search`).
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field

LETTERS = "ABCDEFGHIJ"
RULES = ("exact", "contains", "regex", "number", "choice")
# New-token caps per rule when neither the item nor its task sets one. Measured on Qwen2.5-Coder-1.5B (route eval):
# a GSM8K solution with its steps needs about 300 tokens; a letter or a few words fit in 8 and 16.
MAX_TOKENS = {"choice": 8, "number": 320, "contains": 16, "exact": 16, "regex": 32}


@dataclass(frozen=True)
class TaskItem:
    """One item answered by generation (greedy, through the chat template) and scored by `score`."""

    family: str  # "mmlu", "gsm8k", "bigbench/date_understanding", "qa/<file stem>", ...
    id: str  # stable: a hash of the family and the prompt, or the row's own "id"
    prompt: str  # the user message the model answers
    kind: str  # the rule: choice | number | contains | exact | regex
    reference: str | tuple[str, ...]  # gold letter | number as text | accepted answers or patterns
    options: tuple[str, ...] = field(default_factory=tuple)  # choice: the option texts, in letter order
    max_tokens: int = 8


@dataclass(frozen=True)
class ChoiceItem:
    """One multiple-choice item scored by log-likelihood: `context`, then each option as its continuation."""

    family: str
    id: str
    context: str  # the text the options continue (no chat template, as lm-eval-harness scores)
    options: tuple[str, ...]  # the continuations, without the delimiter that joins them to the context
    gold: int  # index of the right option


def item_id(family: str, prompt: str) -> str:
    return hashlib.sha256(f"{family}\n{prompt}".encode()).hexdigest()[:16]


def normalize(s: str) -> str:
    """SQuAD-style answer normalisation: lower case, no punctuation, no articles, single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in string.punctuation)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def match_quality(answer: str, reference: str | list[str], match: str) -> float:
    """1.0 when the answer matches a reference (`exact` or `contains`, both after normalisation), else 0.0."""
    refs = [reference] if isinstance(reference, str) else list(reference)
    a = normalize(answer)
    for r in map(normalize, refs):
        if match == "exact" and a == r:
            return 1.0
        if match == "contains" and r and re.search(rf"(?<!\w){re.escape(r)}(?!\w)", a):
            return 1.0
    return 0.0


def canonical_number(s: str) -> str:
    """'1,300' -> '1300', '3.50' -> '3.5'; text that is not a number comes back stripped."""
    s = s.replace(",", "").strip()
    try:
        v = float(s)
    except ValueError:
        return s
    return str(int(v)) if v == int(v) else repr(v)


_CHOICE_PATTERNS = (
    r"answer(?: is|:)?\s*\(?([A-J])\b",  # "The answer is B", "Answer: (B)"
    r"^\s*\(?([A-J])\)?(?:[.):\s]|$)",  # "B", "B.", "(B)", "B) Mars"
)


def chosen_letter(answer: str, n_options: int, options: tuple[str, ...] = ()) -> str | None:
    """The option the answer commits to, or None."""
    valid = LETTERS[:n_options]
    for pat in _CHOICE_PATTERNS:
        m = re.search(pat, answer, flags=re.IGNORECASE | re.MULTILINE)
        if m and m.group(1).upper() in valid:
            return m.group(1).upper()
    # The option's text instead of its letter ("Mars"): accept only an unambiguous match.
    a = normalize(answer)
    hits = [LETTERS[i] for i, o in enumerate(options) if normalize(o) and normalize(o) == a]
    return hits[0] if len(hits) == 1 else None


def final_number(answer: str) -> str | None:
    m = re.search(r"answer\s*(?:is|:)\s*\$?\s*(-?[\d,]*\.?\d+)", answer, flags=re.IGNORECASE)
    if m is None:
        nums = re.findall(r"-?\d[\d,]*\.?\d*", answer)
        if not nums:
            return None
        return canonical_number(nums[-1].rstrip("."))
    return canonical_number(m.group(1))


def final_answer(item: TaskItem, answer: str) -> str | None:
    """What the answer commits to under the item's rule: the letter (choice), the number (number), else the
    normalised text. None when a choice or number answer commits to nothing. Answer consistency compares these:
    two answers with the same final answer score the same under every rule but `regex`."""
    if item.kind == "choice":
        return chosen_letter(answer, len(item.options), item.options)
    if item.kind == "number":
        return final_number(answer)
    return normalize(answer)


def score(item: TaskItem, answer: str) -> float:
    """1.0 when the answer is right by the item's rule, else 0.0."""
    if item.kind == "choice":
        return float(chosen_letter(answer, len(item.options), item.options) == item.reference)
    if item.kind == "number":
        return float(final_number(answer) == item.reference)
    refs = [item.reference] if isinstance(item.reference, str) else list(item.reference)
    if item.kind == "regex":
        return float(any(re.search(p, answer) for p in refs))
    return match_quality(answer, refs, item.kind)
