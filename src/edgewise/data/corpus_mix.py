"""The training mix by genre, and the check that no evaluation text quotes the training text.

    python -m edgewise.data.corpus_mix                    # words per corpus and per genre (builds what is missing)
    python -m edgewise.data.corpus_mix --overlap          # + shared 12-word runs between each eval text and training
    python -m edgewise.data.corpus_mix --corpus gcide ... # only these corpora

Words are whitespace-separated tokens of the built training files (held-out files excluded), the way `wc -w`
counts them. A shared run is `OVERLAP_WORDS` consecutive words (lower case, letters, digits and apostrophes) found
in both an eval text and a training file: at that length a match is a quotation, not a coincidence.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from edgewise.data.corpora import CORPORA, CORPUS_MIXES, KEYBOARD_MIX_CORPORA, training_texts
from edgewise.data.corpus_base import GENRES
from edgewise.errors import EdgewiseError

OVERLAP_WORDS = 12


@dataclass(frozen=True)
class MixRow:
    corpus: str
    genre: str
    files: int
    words: int


def count_words(paths: Iterable[Path]) -> int:
    n = 0
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            n += sum(len(line.split()) for line in f)
    return n


def mix_rows(names: Iterable[str] = KEYBOARD_MIX_CORPORA) -> list[MixRow]:
    """Words per corpus, building each corpus first if it is not built yet."""
    rows = []
    for name in names:
        files = training_texts((name,))
        rows.append(MixRow(name, CORPORA.get(name).genre, len(files), count_words(files)))
    return rows


def genre_totals(rows: Iterable[MixRow]) -> dict[str, int]:
    """Words per genre, every genre of `GENRES` listed (0 where no corpus has it), in that order."""
    totals = dict.fromkeys(GENRES, 0)
    for r in rows:
        if r.genre not in totals:
            raise EdgewiseError(f"corpus {r.corpus!r} has genre {r.genre!r}, not one of {', '.join(GENRES)}")
        totals[r.genre] += r.words
    return totals


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def mix_table(rows: list[MixRow]) -> str:
    """Two Markdown tables: words per corpus, then per genre, each with its share of the total."""
    total = sum(r.words for r in rows)
    out = ["| corpus | genre | files | words | share |", "|---|---|---:|---:|---:|"]
    out += [f"| {r.corpus} | {r.genre} | {r.files} | {r.words:,} | {_pct(r.words, total)} |" for r in rows]
    out += [f"| **total** | | {sum(r.files for r in rows)} | **{total:,}** | 100% |", "",
            "| genre | words | share |", "|---|---:|---:|"]
    out += [f"| {g} | {w:,} | {_pct(w, total)} |" for g, w in genre_totals(rows).items()]
    return "\n".join(out)


# ---- overlap ------------------------------------------------------------------------------------------------

def overlap_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.lower().replace("\u2019", "'"))


def shared_runs(evals: dict[str, str], training: Iterable[Path], n: int = OVERLAP_WORDS) -> dict[str, list[str]]:
    """{eval name: ["FILE: the shared run", ...]} for every n-word run an eval text shares with a training file.

    Only the eval side is indexed (a few hundred thousand runs); the training files are streamed one at a time."""
    index: dict[tuple[str, ...], set[str]] = {}
    for name, text in evals.items():
        w = overlap_words(text)
        for i in range(len(w) - n + 1):
            index.setdefault(tuple(w[i:i + n]), set()).add(name)
    hits: dict[str, list[str]] = {name: [] for name in evals}
    for path in training:
        w = overlap_words(Path(path).read_text(encoding="utf-8", errors="replace"))
        for i in range(len(w) - n + 1):
            for name in index.get(tuple(w[i:i + n]), ()):
                hits[name].append(f"{Path(path).name}: {' '.join(w[i:i + n])}")
    return hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgewise.data.corpus_mix", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", action="append", help="corpus name (repeatable; default: the larger keyboard mix)")
    ap.add_argument("--mix", choices=sorted(CORPUS_MIXES), help="a named mix instead of --corpus (keyboard-v4: the "
                    "v4 student's 15 corpora)")
    ap.add_argument("--overlap", action="store_true", help="also count 12-word runs shared with the eval texts")
    args = ap.parse_args(argv)
    if args.mix and args.corpus:
        ap.error("give --mix or --corpus, not both")
    names = CORPUS_MIXES[args.mix] if args.mix else tuple(args.corpus or KEYBOARD_MIX_CORPORA)
    rows = mix_rows(names)
    print(mix_table(rows))
    if args.overlap:
        from edgewise.data.eval_texts import EVAL_TEXTS, keyboard_eval_text

        evals = {e: keyboard_eval_text(e).read_text(encoding="utf-8") for e in EVAL_TEXTS}
        hits = shared_runs(evals, training_texts(names))
        print(f"\nshared {OVERLAP_WORDS}-word runs between eval texts and {len(names)} corpora:")
        for e, h in hits.items():
            print(f"  {e}: {len(h)}" + "".join(f"\n    {x}" for x in h[:5]))
        return 1 if any(hits.values()) else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
