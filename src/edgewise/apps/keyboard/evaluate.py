"""Keystroke savings as presage_simulator measures them, plus accuracy and per-keystroke latency.

presage_simulator (presage 0.9.1, src/tools/simulator/simulator.cpp) walks the words of a file. For each word it
asks for predictions before any letter, then after each typed letter:
- hit before any letter: ks += 1 (selecting costs one key; the space is automatic);
- hit after i letters: ki += i + 1 (the letters, then the selection);
- no hit: ki += len + 1 (every letter, then the space).
kn += len + 1 for every word, and ks starts at 1. KSR = (1 - (ki + ks) / kn) * 100. Words are Presage's
(text.presage_units), lengths in bytes, and a file that ends in punctuation or a newline adds one last empty word.
Our context is the text as typed, punctuation included (a real keyboard sees it); Presage's context sees only
the words. A hit is an exact, case-sensitive match unless insensitive=True (presage_simulator -i).
Like Presage's default selector (REPEAT_SUGGESTIONS=no), a suggestion already offered for the current word is
not offered again (the simulated user passed it over); repeat=True turns that off.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgewise.apps.keyboard.engine import KeyboardEngine
from edgewise.apps.keyboard.personal import PersonalStore
from edgewise.apps.keyboard.text import presage_units, trailing_word

# Dev text for tuning the mixture (benchmarks/keyboard_mixture.py, keyboard_word_lm.py): the part of the held-out
# *Persuasion* after the evaluation slice (characters 60k-90k from Chapter 1) and of the held-out fortune file
# `wisdom` after its first 40k characters. Neither is in training or in any evaluation slice.
DEV_SLICES = (("austen", "heldout-persuasion.txt", 60_000, 90_000), ("fortunes", "heldout-wisdom.txt", 40_000, None))


@dataclass
class EvalReport:
    ksr: float
    ki: int
    ks: int
    kn: int
    words: int
    keystrokes: int  # suggestion requests the simulation made (one per simulated key press)
    top1: float  # next-word accuracy before any letter: the first suggestion is the word
    top3: float | None  # ... the word is among the first three suggestions
    completion_1: float  # the word is among the suggestions after its first letter (words of 2+ letters)
    completion_2: float  # ... after two letters (words of 3+ letters)
    latency_ms: dict  # wall clock per keystroke: p50, p95, p99, mean, max
    cpu_ms: dict  # this thread's CPU time per keystroke (what the model costs, whatever else runs)
    forwards_per_key: float
    suggestions: int
    learn: bool
    insensitive: bool
    repeat: bool
    model: str
    backend: str
    precision: str
    model_bytes: int
    personal_words: int = 0
    elapsed_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _pcts(xs: list[float]) -> dict:
    if not xs:
        return {"p50": None, "p95": None, "p99": None, "mean": None, "max": None}
    a = np.asarray(xs)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "mean": round(float(a.mean()), 3),
            "max": round(float(a.max()), 3)}


def evaluate(engine: KeyboardEngine, text: str, suggestions: int = 3, learn: bool = False,
             insensitive: bool = False, repeat: bool = False, max_words: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Type `text` through the engine the way presage_simulator types it through Presage."""
    units, trailing_empty = presage_units(text)
    if max_words is not None:
        units = units[:max_words]
        trailing_empty = False
    t_start = time.perf_counter()
    ki, ks, kn = 0, 1, 0
    walls, cpus, forwards = [], [], []
    top1 = top3 = 0
    comp = {1: [0, 0], 2: [0, 0]}  # n letters -> [hits, words]
    # A typographic apostrophe is the same key to a keyboard user.
    norm = (lambda s: s.replace("\u2019", "'").lower()) if insensitive else (lambda s: s.replace("\u2019", "'"))

    offered: set[str] = set()  # suggestions already shown for the current word

    def ask(context: str, partial: str, timed: bool) -> list[str]:
        # Off-the-clock probes (accuracy only) see the plain suggestions.
        skip = frozenset() if repeat or not timed else frozenset(offered)
        r = engine.suggest_detailed(context, partial, suggestions, exclude=skip)
        if timed:
            walls.append(r.latency_ms)
            cpus.append(r.cpu_ms)
            forwards.append(r.forwards)
            offered.update(w.lower() for w in r.words)
        return [norm(w) for w in r.words]

    for n, u in enumerate(units):
        offered.clear()  # a new word: presage's context change
        context = text[:u.start]
        # A word split by an apostrophe ("don" ' "t") continues the engine's current word.
        head = trailing_word(context)
        target = norm(head + u.word)
        kn += u.n_bytes + 1
        seen: dict[int, list[str]] = {0: ask(context, "", True)}
        hit = target in seen[0]
        top1 += bool(seen[0]) and seen[0][0] == target
        top3 += target in seen[0][:3]
        if hit:
            ks += 1
        else:
            for i in range(1, len(u.word) + 1):
                ki += len(u.word[i - 1].encode("utf-8"))
                seen[i] = ask(context, u.word[:i], True)
                if target in seen[i]:
                    hit = True
                    break
            ki += 1  # the selection, or the space after a word typed in full
        for letters in (1, 2):
            if len(u.word) > letters:
                if letters not in seen:  # found earlier: ask anyway, off the clock, for the accuracy figure
                    seen[letters] = ask(context, u.word[:letters], False)
                comp[letters][0] += target in seen[letters]
                comp[letters][1] += 1
        if learn:
            end = u.start + len(u.word)
            continues = text[end:end + 1] in ("'", "\u2019") and text[end + 1:end + 2].isalnum()
            if not continues:
                word_start = u.start - len(head)
                engine.learn(text[:word_start], head + u.word)
        if progress:
            progress(n + 1, len(units))
    if trailing_empty:
        ki += 1
        kn += 1
    n_words = len(units)
    ksr = (1.0 - (ki + ks) / kn) * 100.0 if kn else 0.0
    lm = engine.model
    return EvalReport(
        ksr=round(ksr, 3), ki=ki, ks=ks, kn=kn, words=n_words, keystrokes=len(walls),
        top1=round(top1 / max(n_words, 1), 4),
        top3=round(top3 / max(n_words, 1), 4) if suggestions >= 3 else None,
        completion_1=round(comp[1][0] / max(comp[1][1], 1), 4),
        completion_2=round(comp[2][0] / max(comp[2][1], 1), 4),
        latency_ms=_pcts(walls), cpu_ms=_pcts(cpus),
        forwards_per_key=round(float(np.mean(forwards)) if forwards else 0.0, 3),
        suggestions=suggestions, learn=learn, insensitive=insensitive, repeat=repeat,
        model=lm.name, backend=lm.backend, precision=lm.precision, model_bytes=engine.size_bytes(),
        personal_words=engine.personal.total_words if engine.personal is not None else 0,
        elapsed_s=round(time.perf_counter() - t_start, 2),
    )


# --- what the keyboard benchmarks share ---------------------------------------------------------

def dev_texts() -> list[str]:
    """The DEV_SLICES texts, cut at line ends."""
    from edgewise.data.corpora import corpus_dir

    out = []
    for corpus, name, start, end in DEV_SLICES:
        text = (corpus_dir(corpus) / name).read_text()
        if corpus == "austen":
            text = text[text.index("Chapter 1"):]
        a = text.find("\n", start) + 1
        b = text.rfind("\n", 0, end) + 1 if end else len(text)
        out.append(text[a:b])
    return out


def eval_paths(names: list[str]) -> dict[str, Path]:
    """--text values (eval names or files) -> {name: file}, building a named text the first time."""
    from edgewise.data.eval_texts import keyboard_eval_text

    return {n: (Path(n) if Path(n).is_file() else keyboard_eval_text(n)) for n in names}


def bench_row(engine: KeyboardEngine, text_path: Path, learn: bool) -> dict:
    """One benchmark table row: the file typed with 3 suggestions, from an empty personal store when learning."""
    engine.personal = PersonalStore(":memory:") if learn else None
    r = evaluate(engine, text_path.read_text(encoding="utf-8"), suggestions=3, learn=learn)
    return {"ksr": r.ksr, "kn": r.kn, "words": r.words, "top1": r.top1, "top3": r.top3,
            "completion_1": r.completion_1, "p50_ms": r.latency_ms["p50"], "p95_ms": r.latency_ms["p95"],
            "cpu_p95_ms": r.cpu_ms["p95"], "model_bytes": engine.size_bytes()}
