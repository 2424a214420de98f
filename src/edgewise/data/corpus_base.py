"""What every corpus shares: the Corpus record, the registry, and the prose filter, below both the corpus builders
(corpora, corpora_docs, corpora_dicts) and the evaluation texts, so that none of them imports another in a cycle."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from edgewise.errors import EdgewiseError
from edgewise.registry import Registry

_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "--",
                        "\u2013": "-", "\u2026": "...", "\u00a0": " "})


def _plain_punct(text: str) -> str:
    # What a phone keyboard types: straight quotes and ASCII dashes (Presage also counts keys in bytes).
    return text.translate(_PLAIN)


def _is_prose(p: str, min_words: int = 4) -> bool:
    """A paragraph of words, not code, a config file, a table, a headline, a signature or mojibake."""
    words = p.split()
    if len(words) < min_words or "\ufffd" in p:
        return False
    wordy = sum(c.isalpha() or c in " ,.;:'\"()?!-" for c in p)
    # Running text is mostly lower-case words; titles, names and `Key "value"` lines are not.
    plain = sum(w.strip(",.;:!?\"'()").isalpha() and w.strip(",.;:!?\"'()").islower() for w in words)
    return wordy >= 0.9 * len(p) and plain >= 0.5 * len(words)


GENRES = ("classics", "modern prose", "technical", "dictionary", "other")


@dataclass(frozen=True)
class Corpus:
    name: str
    install: str  # how to get the package that ships it
    licence: str
    build: Callable[[Path], None]  # writes the normalised text files into the given folder
    genre: str = "other"  # one of GENRES, for the mix report

    def __post_init__(self) -> None:
        if self.genre not in GENRES:
            raise EdgewiseError(f"corpus {self.name!r}: genre {self.genre!r} is not one of {', '.join(GENRES)}")


CORPORA: Registry[Corpus] = Registry("corpus")


def _unwrap(text: str) -> str:
    """Hard-wrapped lines -> one paragraph per line, whitespace collapsed (a keyboard never sees line breaks)."""
    paras = re.split(r"\n\s*\n", text.replace("\r", ""))
    out = [" ".join(p.split()) for p in paras]
    return "\n".join(p for p in out if p) + "\n"


def prose_paragraphs(paras: Iterable[str], min_words: int = 6) -> Iterable[str]:
    """The paragraphs that read as running text (the eval texts' own test), punctuation typed as ASCII, each once:
    a line repeated on every page of a manual (a licence notice, "See also") is boilerplate, not language."""
    seen: set[str] = set()
    for p in paras:
        p = _plain_punct(" ".join(p.split()))
        if p not in seen and _is_prose(p, min_words=min_words):
            seen.add(p)
            yield p


def write_prose(path: Path, paras: Iterable[str]) -> None:
    """`prose_paragraphs(paras)` into `path`, one a line; a source that yields none is an error, not an empty
    corpus."""
    text = "".join(p + "\n" for p in prose_paragraphs(paras))
    if not text:
        raise EdgewiseError(f"no prose came out for {path.name}: the package's files are not what this reader "
                            "expects; reinstall it")
    path.write_text(text, encoding="utf-8")
