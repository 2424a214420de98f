"""Dictionaries and lexicons for training: definitions, usage notes and quotations as prose, no headwords.

The dictd databases (`*.dict.dz`, gzip-compatible, with a `*.index` of base-64 offsets) are read entry by entry
through their index, so the database's own licence and info entries (`00-database-*`) are left out. Sources and
licences are in `edgewise.data.corpora`'s table.
"""

from __future__ import annotations

import gzip
import re
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

from edgewise.data.corpus_base import CORPORA, Corpus, write_prose
from edgewise.errors import EdgewiseError

DICTD_DIR = Path("/usr/share/dictd")
JARGON_TEXT = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def _b64(s: str) -> int:
    n = 0
    for c in s:
        n = n * 64 + _B64[c]
    return n


def dictd_entries(folder: Path, db: str) -> Iterator[str]:
    """The text of every entry of dictd database `db`, in file order, each once; the `00-database-*` entries and
    the licence text before the first entry are skipped."""
    index, data = folder / f"{db}.index", folder / f"{db}.dict.dz"
    if not index.is_file() or not data.is_file():
        raise EdgewiseError(f"{data} is missing: apt-get install -y dict-{db}")
    raw = gzip.decompress(data.read_bytes())
    spans = set()
    for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not parts[0].startswith("00"):  # 00-database-info, 00databaseshort, ...
            spans.add((_b64(parts[1]), _b64(parts[2])))
    for off, size in sorted(spans):
        yield raw[off:off + size].decode("utf-8", errors="replace")


# ---- GCIDE (Webster's 1913 with later additions) ----------------------------------------------------------------

_TAG = re.compile(r"\[[^\[\]]*\]")  # [1913 Webster], [Obs.], [R.], etymologies
_ATTRIBUTION = re.compile(r"\s+--(?=[A-Z]).*$")  # "  --Shak." after a quotation; "-- used" (a dash) stays


def _gcide_body(entry: str) -> str:
    """An entry without its headword line and the etymology that may run on from it."""
    lines = entry.split("\n")
    depth, i = 0, 0
    while i < len(lines):
        depth += lines[i].count("[") - lines[i].count("]")
        i += 1
        if depth <= 0:
            break
    return "\n".join(lines[i:])


def gcide_paragraphs(entry: str) -> Iterator[str]:
    """Senses, notes and quotations of one GCIDE entry as plain paragraphs (synonym lists dropped)."""
    for block in re.split(r"\n\s*\n", _gcide_body(entry)):
        kept = []
        for line in block.split("\n"):
            if len(line) - len(line.lstrip(" ")) >= 30:
                continue  # the second line of a long attribution: "Labor's Lost, v. 1."
            kept.append(_ATTRIBUTION.sub("", line))
        text = " ".join(" ".join(kept).split())
        for _ in range(3):
            text = _TAG.sub("", text)  # nested brackets, innermost first
        text = re.sub(r"^(?:\d+\.|\([a-z]\))\s+", "", text.replace("{", "").replace("}", "")).strip()
        text = re.sub(r"^Note:\s*", "", text)
        if text and not text.startswith(("Syn:", "Syn.")):
            yield " ".join(text.split())


def build_gcide(out: Path, src: Path = DICTD_DIR) -> None:
    paras = (p for e in dictd_entries(src, "gcide") for p in gcide_paragraphs(e))
    write_prose(out / "gcide.txt", paras)


# ---- FOLDOC and The Devil's Dictionary ---------------------------------------------------------------------------

def _dictd_plain(entry: str, headword: Callable[[str], str]) -> Iterator[str]:
    body = headword(entry)
    for block in re.split(r"\n\s*\n", body):
        text = re.sub(r"<[a-z][a-z, ]*>\s*", "", block)  # FOLDOC's subject labels: "<programming>"
        text = re.sub(r"^\s*\d+\.\s+", "", text).replace("{", "").replace("}", "")
        text = re.sub(r"\(\d{4}-\d{2}-\d{2}\)", "", text)  # FOLDOC's revision dates
        yield " ".join(text.split())


# Entries that quote the DESCRIPTION of a man page the keyboard's `manpages` eval text reads (ssh(1)), found by the
# 12-word overlap check (python -m edgewise.data.corpus_mix --overlap).
FOLDOC_QUOTES_EVAL = frozenset({"Secure Shell"})


def _foldoc_headword(entry: str) -> str:
    head, _, body = entry.partition("\n")  # the first line is the headword alone
    return "" if head.strip() in FOLDOC_QUOTES_EVAL else body


_DEVIL_HEAD = re.compile(r"^[A-Z][A-Z'\-., ]*?,\s+(?:[a-z]{1,4}\.\s*)+")  # "CERBERUS, n.  "


def _devil_headword(entry: str) -> str:
    return _DEVIL_HEAD.sub("", entry, count=1)


def build_dictd(out: Path, db: str, headword: Callable[[str], str], src: Path = DICTD_DIR) -> None:
    paras = (p for e in dictd_entries(src, db) for p in _dictd_plain(e, headword))
    write_prose(out / f"{db}.txt", paras)


# ---- The Jargon File ------------------------------------------------------------------------------------------

def build_jargon(out: Path, src: Path = JARGON_TEXT) -> None:
    """The lexicon's entries as paragraphs: a headword line (`:cruft: n.`) loses its label; the index and
    cross-reference lists fail the prose test."""
    if not src.is_file():
        raise EdgewiseError(f"{src} is missing: apt-get install -y jargon-text")
    text = gzip.decompress(src.read_bytes()).decode("utf-8", errors="replace")
    paras = (re.sub(r"^:[^:]+:\s*(?:(?:n|v|adj|adv|vt|vi|interj|excl|pron|prep|conj)\.[, ]*)*", "",
                    " ".join(p.split())) for p in re.split(r"\n\s*\n", text))
    write_prose(out / "jargon.txt", paras)


CORPORA.register("gcide")(Corpus("gcide", "apt-get install -y dict-gcide", "GPL-2+ (GCIDE; Webster's 1913 is "
                                 "public domain)", build_gcide, genre="dictionary"))
CORPORA.register("foldoc")(Corpus("foldoc", "apt-get install -y dict-foldoc", "GFDL-1.1+, no invariant sections",
                                  partial(build_dictd, db="foldoc", headword=_foldoc_headword), genre="dictionary"))
CORPORA.register("devil")(Corpus("devil", "apt-get install -y dict-devil", "public domain (Bierce, 1911)",
                                 partial(build_dictd, db="devil", headword=_devil_headword), genre="classics"))
CORPORA.register("jargon")(Corpus("jargon", "apt-get install -y jargon-text", "public domain (Jargon File 4.4.7)",
                                  build_jargon, genre="dictionary"))
