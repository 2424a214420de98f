"""Issue 11's subword-vs-word comparison: a word-level LSTM (Gboard's design, ~10k words) against the subword
student, on the same keystrokes.

    .venv/bin/python benchmarks/keyboard_word_lm.py --train /tmp/word-lm --steps 3000
    .venv/bin/python benchmarks/keyboard_word_lm.py --eval /tmp/word-lm --json /tmp/word-lm.json

--train fits edgewise.apps.keyboard.word_lm on the corpora the student and the n-gram read (one thread).
--eval types every evaluation text through the keyboard three ways, case-sensitive, 3 suggestions, 1 thread:
the subword student alone (--no-student-row skips it), the word LM alone (in the count model's slot with
weight 1: the student's passes still run but carry no weight), and the two mixed half and half; plus the word
LM's own query latency. --eval --three-way tries student + n-gram + word LM on the mixture's dev slices instead.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgewise.apps.keyboard.evaluate import bench_row, dev_texts, eval_paths


def train(args) -> int:
    from edgewise.apps.keyboard.word_lm import WordLMConfig, train_word_lm
    from edgewise.data.corpora import training_texts

    cfg = WordLMConfig(vocab=args.vocab, embed=args.embed, hidden=args.hidden, steps=args.steps, threads=1)
    t0 = time.perf_counter()
    model = train_word_lm(training_texts(), cfg, progress=lambda s, n, loss: print(
        f"step {s}/{n} loss {loss:.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True))
    model.save(args.train)
    print(f"wrote {args.train}: {model.meta['params']:,} parameters, {len(model.words):,} words, "
          f"{model.meta['train_words']:,} training words, {model.meta['train_seconds']:.0f} s", file=sys.stderr)
    return 0


def query_latency(model, texts: list[Path]) -> dict:
    """The word LM's own cost per keystroke: history state (one LSTM step per new word) plus the prefix query."""
    from edgewise.apps.keyboard.ngram_build import sentence_words

    times = []
    for path in texts:
        for words in list(sentence_words(path.read_text(encoding="utf-8")))[:200]:
            for i, w in enumerate(words):
                hist = tuple(x.lower() for x in words[max(0, i - model.order + 1):i])  # what the engine passes
                for j in range(len(w)):
                    t = time.perf_counter()
                    model.probabilities(hist, w[:j].lower(), limit=8)
                    times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"queries": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def evaluate_all(args) -> int:
    from edgewise.apps.keyboard import KeyboardConfig
    from edgewise.apps.keyboard.engine import load_count_model, load_keyboard
    from edgewise.data.eval_texts import EVAL_TEXTS

    paths = eval_paths(args.text or list(EVAL_TEXTS))
    word_lm = load_count_model(args.eval)
    out = {"word_lm": str(args.eval), "params": word_lm.meta.get("params"), "bytes": word_lm.size_bytes(),
           "query": query_latency(word_lm, list(paths.values())), "rows": []}
    print(f"word LM query per keystroke: {out['query']}", file=sys.stderr)
    setups = [("word LM alone", str(args.eval), (1.0, 1.0, 1.0)),
              ("student + word LM, half and half", str(args.eval), (0.5, 0.5, 0.5))]
    if args.student_row:
        setups.insert(0, ("subword student alone", "none", None))
    for label, slot, weights in setups:
        config = KeyboardConfig() if weights is None else replace(KeyboardConfig(), ngram_weights=weights)
        engine = load_keyboard(args.model, precision="int4", config=config, ngram=slot)
        for name, path in paths.items():
            r = {"text": name, "setup": label, **bench_row(engine, path, learn=False)}
            out["rows"].append(r)
            print(f"[{name}] {label:34s} KSR {r['ksr']:6.2f}  p95 {r['p95_ms']} ms", file=sys.stderr, flush=True)
            args.json.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


class NgramAndWordLM:
    """The count slot holding both: (1 - v) P_ngram + v P_word, with the n-gram's known history order."""

    def __init__(self, ngram, word_lm, v: float):
        self.ngram, self.word_lm, self.v = ngram, word_lm, v
        self.order = word_lm.order
        self.display = {**word_lm.display, **ngram.display}

    def known_order(self, hist):
        return self.ngram.known_order(hist[-(self.ngram.order - 1):])

    def probabilities(self, hist, prefix="", limit=16):
        out = {w: (1 - self.v) * p for w, p in
               self.ngram.probabilities(hist[-(self.ngram.order - 1):], prefix, limit).items()}
        for w, p in self.word_lm.probabilities(hist, prefix, limit).items():
            out[w] = out.get(w, 0.0) + self.v * p
        return dict(sorted(out.items(), key=lambda x: -x[1])[:limit])

    def size_bytes(self):
        return self.ngram.size_bytes() + self.word_lm.size_bytes()


def three_way_dev(args) -> int:
    """Student + n-gram + word LM on the mixture's dev slices (never the eval texts): does the third part pay?"""
    from edgewise.apps.keyboard.engine import load_count_model, load_keyboard
    from edgewise.apps.keyboard.evaluate import evaluate

    both = (load_count_model("models/keyboard-ngram"), load_count_model(args.eval))
    engine = load_keyboard(args.model, precision="int4", ngram="none")
    texts, rows = dev_texts(), []
    for v, w in [(0.0, (0.1, 0.3, 0.3)), (0.3, (0.1, 0.3, 0.3)), (0.5, (0.1, 0.3, 0.3)), (0.5, (0.3, 0.5, 0.5)),
                 (0.3, (0.2, 0.4, 0.4))]:
        engine.ngram = NgramAndWordLM(*both, v)
        engine.config = replace(engine.config, ngram_weights=w)
        ksr = [evaluate(engine, t).ksr for t in texts]
        rows.append({"word_lm_share": v, "count_weights": list(w), "dev_ksr": [round(k, 3) for k in ksr]})
        print(f"word LM share {v} of the count slot, slot weights {w}: dev KSR "
              f"{', '.join(f'{k:.2f}' for k in ksr)}", file=sys.stderr, flush=True)
        args.json.write_text(json.dumps({"three_way_dev": rows}, indent=1))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=Path, help="train a word LM into this folder")
    ap.add_argument("--eval", type=Path, help="compare the word LM in this folder with the subword student")
    ap.add_argument("--model", default=None, help="the subword student (default: the committed one)")
    ap.add_argument("--text", action="append", help="eval text name (repeatable; default: all)")
    ap.add_argument("--vocab", type=int, default=10_000)
    ap.add_argument("--embed", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--three-way", action="store_true", help="with --eval: try student + n-gram + word LM on the "
                    "dev slices instead of the eval texts")
    ap.add_argument("--student-row", action=argparse.BooleanOptionalAction, default=True,
                    help="also type the texts with the student alone (keyboard_mixture.py's `lm` row is the same)")
    ap.add_argument("--json", type=Path, default=Path("keyboard_word_lm.json"))
    args = ap.parse_args(argv)
    if not args.train and not args.eval:
        ap.error("give --train DIR, --eval DIR, or both")
    if args.train:
        train(args)
    if args.eval:
        return three_way_dev(args) if args.three_way else evaluate_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
