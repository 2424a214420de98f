"""Long-form prose for training: public-domain books from SWORD modules and the stories games ship as text.

SWORD modules (Debian's `sword-*` packages) store a book verse by verse in zlib-compressed blocks; the text is
OSIS XML. It is read here directly (no SWORD library): every distinct entry in verse order, paragraphs where OSIS
marks them (`<div type="x-p"/>`), notes, titles and cross-references dropped. The games' story text (mission
dialogue, monster lore, nation legends) is read from their plain-text data files. Only running prose is kept
(`write_prose`). Sources and licences are in `edgewise.data.corpora`'s table.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from functools import partial
from pathlib import Path
from typing import Callable, Iterable, Iterator

from edgewise.data.corpus_base import CORPORA, Corpus, write_prose
from edgewise.errors import EdgewiseError

SWORD_DIR = Path("/usr/share/sword/modules")
ENDLESS_SKY_DATA = Path("/usr/share/games/endless-sky/data")
CRAWL_DAT = Path("/usr/share/crawl/dat")
FREECIV_DATA = Path("/usr/share/games/freeciv")
WESNOTH_DATA = Path("/usr/share/games/wesnoth/1.16/data")

# ---- SWORD zText / zCom modules -----------------------------------------------------------------------------

# Extension letters: `b` for book-blocked modules (WEB, MHCC), `c` for chapter-blocked ones (Treasury of David).
# x.?zs: per block (offset, compressed size, size) as 3 x uint32; x.?zz: the zlib blocks; x.?zv: per verse
# (block, offset, size) as uint32, uint32 and a uint16 size, or a uint32 one in the "4" drivers. The module's .conf
# does not reliably say which (Debian's mhcc names zCom4 over 2-byte sizes), so the index itself is checked.
_BLOCK = struct.Struct("<III")
_VERSES = (struct.Struct("<IIH"), struct.Struct("<III"))


def _verse_index(raw: bytes, n_blocks: int) -> list[tuple[int, int, int]]:
    for fmt in _VERSES:
        if len(raw) % fmt.size == 0:
            rows = list(fmt.iter_unpack(raw))
            if all(b < n_blocks or size == 0 for b, _, size in rows):
                return rows
    raise EdgewiseError("a SWORD verse index is neither zText nor zText4: reinstall the module's package")


def sword_entries(folder: Path, install: str) -> Iterator[str]:
    """The OSIS text of every distinct entry of a zText/zCom module, Old Testament first, in verse order (a
    commentary entry that covers a range of verses is stored once and linked from each; it is read once)."""
    found = False
    for testament in ("ot", "nt"):
        for kind in "bc":
            idx, verses, data = (folder / f"{testament}.{kind}z{x}" for x in "svz")
            if not (idx.is_file() and verses.is_file() and data.is_file()) or not data.stat().st_size:
                continue
            found = True
            raw = data.read_bytes()
            blocks = [(off, size) for off, size, _ in _BLOCK.iter_unpack(idx.read_bytes())]
            cache: dict[int, bytes] = {}
            seen: set[tuple[int, int]] = set()
            for b, off, size in _verse_index(verses.read_bytes(), len(blocks)):
                if size == 0 or (b, off) in seen:
                    continue
                seen.add((b, off))
                if b not in cache:
                    start, n = blocks[b]
                    cache = {b: zlib.decompress(raw[start:start + n])}  # verses come in block order: keep one
                yield cache[b][off:off + size].decode("utf-8", errors="replace")
    if not found:
        raise EdgewiseError(f"{folder} holds no SWORD zText/zCom module: {install}")


# Footnotes, headings, cross-references, and MHCC's "Verses 3-12" labels.
_OSIS_DROP = re.compile(r"<(note|title|reference)\b[^>]*?(?<!/)>.*?</\1>|<hi type=\"bold\">Verses?\s[^<]*</hi>", re.S)
_OSIS_BREAK = re.compile(r"<(?:div\b[^>]*\btype=\"(?:x-p|paragraph|book|chapter|section|introduction)\"|"
                         r"p\b|/p\b|lb\b|lg\b|/lg\b|chapter\b)[^>]*>")
_TAG = re.compile(r"<[^>]*>")


def _osis_text(parts: list[str]) -> str:
    # Tags go without a space: OSIS puts its own spaces between words, and none before punctuation.
    return " ".join(html.unescape(_TAG.sub("", " ".join(parts))).split())


def osis_paragraphs(entries: Iterator[str]) -> Iterator[str]:
    """Running text of OSIS entries: an entry continues the paragraph the one before it left open, and a paragraph
    ends where OSIS marks one (`<div type="x-p"/>`, `<p>`, `<lb/>`, line groups, chapters)."""
    buf: list[str] = []
    for entry in entries:
        text = _OSIS_BREAK.sub("\n\n", _OSIS_DROP.sub(" ", entry))
        parts = text.split("\n\n")
        for i, part in enumerate(parts):
            if i:  # a break: what came before is a paragraph
                yield _osis_text(buf)
                buf = []
            buf.append(part)
    if buf:
        yield _osis_text(buf)


def build_sword(out: Path, module: str, install: str, src: Path = SWORD_DIR) -> None:
    """One SWORD module (`texts/ztext/NAME` or `comments/zcom/NAME` under `src`) -> `out/NAME.txt` of prose."""
    folders = [p for p in (src / "texts" / "ztext" / module, src / "comments" / "zcom" / module) if p.is_dir()]
    if not folders:
        raise EdgewiseError(f"the SWORD module {module} is missing under {src}: {install}")
    write_prose(out / f"{module.lower()}.txt", osis_paragraphs(sword_entries(folders[0], install)))


# ---- games' story text ----------------------------------------------------------------------------------------

# Endless Sky writes every line the player reads between backticks: conversations, mission offers, planet and
# ship descriptions. A leading tab inside the backticks starts a new paragraph of the same scene.
_ES_LINE = re.compile(r"^\s*`([^`]*)`\s*$", re.M)
_ANGLE = re.compile(r"<[a-z ]+>")  # "<payment>", "<origin>": filled in by the game


def endless_sky_paragraphs(text: str) -> Iterator[str]:
    for m in _ES_LINE.finditer(text):
        line = m.group(1).strip()
        if line and not _ANGLE.search(line):  # a sentence with a hole in it teaches the hole
            yield line


def build_story_text(out: Path, name: str, package: str, src: Path, globs: tuple[str, ...],
                     paragraphs: Callable[[str], Iterable[str]]) -> None:
    """A game's text files (`globs` under `src`) -> `out/NAME.txt`, each file cut into paragraphs by its reader."""
    files = sorted(f for g in globs for f in src.glob(g)) if src.is_dir() else []
    if not files:
        raise EdgewiseError(f"{name}'s text files are missing ({src}/{globs[0]}): apt-get install -y {package}")
    write_prose(out / f"{name}.txt",
                (p for f in files for p in paragraphs(f.read_text(encoding="utf-8", errors="replace"))))


def crawl_paragraphs(text: str) -> Iterator[str]:
    """Dungeon Crawl's description databases: `%%%%`-separated entries, a key line, then text paragraphs;
    `#` lines are comments."""
    for entry in text.split("%%%%"):
        lines = [ln for ln in entry.strip("\n").split("\n") if not ln.startswith("#")]
        for para in re.split(r"\n\s*\n", "\n".join(lines[1:])):  # lines[0] is the key ("Agnes")
            yield " ".join(para.split())


# Freeciv: `legend=_("...")` in each nation's ruleset and `text = _("...")` help entries; a backslash ends each
# wrapped line, "\n" inside the string is a paragraph break.
_FREECIV_STRING = re.compile(r'^\s*(?:legend|text)\s*=\s*_\("((?:[^"\\]|\\.)*)"\)', re.M | re.S)


def freeciv_paragraphs(text: str) -> Iterator[str]:
    for m in _FREECIV_STRING.finditer(text):
        body = m.group(1).replace("\\\n", "\n").replace('\\"', '"')
        for para in re.split(r"\\n|\n\s*\n", body):
            yield " ".join(para.split())


# Wesnoth's WML: dialogue (`message= _ "..."`), story screens and unit lore; a doubled quote is a quote. A line
# naming a unit by variable ("$second_unit.name") has a hole in it; markup (<i>, <span>) is only dropped.
_WML_STRING = re.compile(r'\b(?:message|story|description)\s*=\s*_\s*"((?:[^"]|"")*)"')
_PANGO = re.compile(r"</?(?:i|b|u|big|small|span)\b[^>]*>")


def wesnoth_paragraphs(text: str) -> Iterator[str]:
    for m in _WML_STRING.finditer(text):
        body = m.group(1).replace('""', '"')
        if "$" not in body:
            yield from (" ".join(p.split()) for p in re.split(r"\n\s*\n", _PANGO.sub("", body)))


def _register(name: str, package: str, licence: str, genre: str, build: Callable[[Path], None]) -> None:
    CORPORA.register(name)(Corpus(name, f"apt-get install -y {package}", licence, build, genre=genre))


def _sword(module: str, package: str) -> Callable[[Path], None]:
    return partial(build_sword, module=module, install=f"apt-get install -y {package}")


# The World English Bible is a modern-English translation (finished 2000), so it counts as modern prose; the two
# commentaries are 18th- and 19th-century English.
_register("web-bible", "sword-text-web", "public domain (World English Bible)", "modern prose",
          _sword("engWEB2015eb", "sword-text-web"))
_register("treasury-of-david", "sword-comm-tdavid", "public domain (Spurgeon, 1869-1885)", "classics",
          _sword("tdavid", "sword-comm-tdavid"))
_register("henry-concise", "sword-comm-mhcc", "public domain (Matthew Henry, 1706-1721)", "classics",
          _sword("mhcc", "sword-comm-mhcc"))


def _story(name: str, package: str, licence: str, src: Path, globs: tuple[str, ...],
           paragraphs: Callable[[str], Iterable[str]]) -> None:
    build = partial(build_story_text, name=name, package=package, src=src, globs=globs, paragraphs=paragraphs)
    _register(name, package, licence, "modern prose", build)


_story("endless-sky", "endless-sky-data", "GPL-3+ (Endless Sky 0.9.8)", ENDLESS_SKY_DATA, ("*.txt",),
       endless_sky_paragraphs)
# English only: Crawl's translations sit in per-language subfolders.
_story("crawl", "crawl-common", "GPL-2+ (Dungeon Crawl Stone Soup 0.28)", CRAWL_DAT,
       ("descript/*.txt", "database/*.txt"), crawl_paragraphs)
# The `nation` folder holds each nation once; the rulesets elsewhere repeat them.
# The campaigns are one package each; they bring the core data (help, units, tutorial) with them.
WESNOTH_PACKAGES = " ".join(f"wesnoth-1.16-{c}" for c in ("did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof",
                                                          "sota", "sotbe", "thot", "trow", "tsg", "ttb", "utbs"))
_story("wesnoth", WESNOTH_PACKAGES, "GPL-2 (Battle for Wesnoth 1.16)", WESNOTH_DATA, ("**/*.cfg",),
       wesnoth_paragraphs)
_story("freeciv", "freeciv-data", "GPL-2+ (Freeciv 3.0)", FREECIV_DATA, ("nation/*.ruleset", "helpdata.txt"),
       freeciv_paragraphs)
