"""Technical writing for training: software manuals from Debian packages, HTML or POD turned into prose.

Only running text is kept: the text of `<p>` elements outside code blocks, tables, navigation, footers and option
lists (POD: text paragraphs, not commands or indented code), one paragraph per line, typographic punctuation made
ASCII as a keyboard types it, paragraphs that are mostly code or identifiers dropped, and a paragraph repeated on
many pages (boilerplate) kept once. Sources and licences are in `edgewise.data.corpora`'s table.
"""

from __future__ import annotations

import re
from functools import partial
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator

from edgewise.data.corpus_base import CORPORA, Corpus, write_prose
from edgewise.errors import EdgewiseError

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")
POSTGRESQL_DOCS = Path("/usr/share/doc/postgresql-doc-15/html")
SQLITE_DOCS = Path("/usr/share/doc/sqlite3")
LINUX_DOCS = Path("/usr/share/doc/linux-doc-6.1/html")
LIBREOFFICE_HELP = Path("/usr/share/libreoffice/help/en-US")
DEBIAN_HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")
PERL_POD = Path("/usr/share/perl/5.36.0/pod")

# Elements whose text is never prose, and class names (Sphinx, DocBook, SQLite, LibreOffice) of navigation, code
# and option lists; a paragraph inside one of them is skipped. Inline code (`<code>len()</code>`) stays: it is part
# of the sentence, and a paragraph that is mostly identifiers fails the prose test instead.
_SKIP_TAGS = frozenset("pre table script style head nav header footer svg math".split())
# Matched against each class or id word whole: the Read-the-Docs page body sits in "wy-grid-for-nav", which is not
# "nav".
_SKIP_CLASS = re.compile(r"footer|rst-footer-buttons|sphinxsidebar\S*|sidebar|related|navigation|nav|navheader|"
                         r"navfooter|toc|toctree\S*|highlight\S*|option|cmdoption|sig|sig-\S+|wy-breadcrumbs|"
                         r"breadcrumbs?|menu|copyright|legalnotice|programlisting|synopsis|screen|example|tablenote|"
                         r"title|caption|admonition-title")
_BLOCKS = frozenset("div dl dd dt section aside ul ol li blockquote p".split())  # class-skip applies to these
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


class _Paragraphs(HTMLParser):
    """Collects the text of every paragraph (`<p>`, or DocBook/Publican's `<div class="para">`) that sits in no
    skipped element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skipped?, a paragraph?)
        self.skipped = 0  # open skipped elements
        self.buf: list[str] | None = None  # the open paragraph's text
        self.out: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        if tag == "p" and self.stack and self.stack[-1][0] == "p":
            self.handle_endtag("p")  # an unclosed <p> ends where the next one starts
        cls = " ".join(v or "" for k, v in attrs if k in ("class", "id")).lower()
        skip = tag in _SKIP_TAGS or (tag in _BLOCKS and any(_SKIP_CLASS.fullmatch(w) for w in cls.split()))
        para = tag == "p" or (tag == "div" and "para" in cls.split())
        self.stack.append((tag, skip, para))
        self.skipped += skip
        if para and not self.skipped and self.buf is None:
            self.buf = []

    def handle_endtag(self, tag):
        if not any(t == tag for t, _, _ in self.stack):
            return  # a stray end tag
        while self.stack:
            t, skip, para = self.stack.pop()
            self.skipped -= skip
            if para and not any(p for _, _, p in self.stack):
                self._close_p()
            if t == tag:
                break

    def handle_data(self, data):
        if self.buf is not None and not self.skipped:
            self.buf.append(data)

    def _close_p(self):
        if self.buf is not None:
            self.out.append(" ".join("".join(self.buf).split()))
        self.buf = None


def html_paragraphs(html: str) -> list[str]:
    """The running text of an HTML page: one string per `<p>` outside code, tables, navigation and option lists."""
    parser = _Paragraphs()
    parser.feed(html)
    parser.close()
    parser._close_p()
    return [p for p in parser.out if p]


_POD_CODE = re.compile(r"([A-Z])<<+\s(.*?)\s>>+", re.S)  # C<< $a <=> $b >>
_POD_LINK = re.compile(r"L<(?:([^|<>]*)\|)?([^<>]*)>")
_POD_INNER = re.compile(r"[A-Z]<([^<>]*)>")
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}


def _pod_inline(text: str) -> str:
    text = _POD_CODE.sub(r"\2", text)
    text = re.sub(r"[XZ]<[^<>]*>", "", text)  # index entries and zero-width marks print nothing
    text = re.sub(r"E<(\w+)>", lambda m: _POD_ESCAPES.get(m.group(1), ""), text)
    text = _POD_LINK.sub(lambda m: m.group(1) or m.group(2).strip('"').split("/")[-1].strip('"'), text)
    for _ in range(4):  # nested codes, innermost first: B<I<x>>
        text = _POD_INNER.sub(r"\1", text)
    return text


def pod_paragraphs(pod: str) -> Iterator[str]:
    """Ordinary text paragraphs of a POD document: no `=command` paragraphs, no indented (verbatim) code, nothing
    between `=begin` and `=end` or after `=cut`."""
    in_pod, hidden = pod.lstrip().startswith("="), False
    for para in re.split(r"\n\s*\n", pod.replace("\r", "")):
        head = para.lstrip("\n")
        if head.startswith("="):
            word = head.split(None, 1)[0]
            in_pod = word != "=cut"
            hidden = word == "=begin" or (hidden and word != "=end")
            continue
        if in_pod and not hidden and head[:1] not in (" ", "\t", ""):
            yield " ".join(_pod_inline(head).split())


def _html_files(folder: Path, what: str, install: str) -> list[Path]:
    # is_file: some manuals (Octave, Debian Policy) have folders whose names end in .html
    files = sorted(f for f in folder.rglob("*.html") if f.is_file()) if folder.is_dir() else []
    if not files:
        raise EdgewiseError(f"{what} are missing ({folder} has no .html): {install}")
    return files


def build_html_docs(out: Path, src: Path, name: str, install: str, skip_dirs: tuple[str, ...] = (),
                    skip_files: str | None = None) -> None:
    """Every `*.html` under `src` (but folders named in `skip_dirs` and file names matching `skip_files`) ->
    `out/NAME.txt` of prose paragraphs."""
    files = [f for f in _html_files(src, name, install) if not set(f.relative_to(src).parts[:-1]) & set(skip_dirs)
             and not (skip_files and re.fullmatch(skip_files, f.name))]
    paras = (p for f in files for p in html_paragraphs(f.read_text(encoding="utf-8", errors="replace")))
    write_prose(out / f"{name}.txt", paras)


def build_perl_docs(out: Path, src: Path = PERL_POD) -> None:
    """Perl's manuals (`perl*.pod`) -> prose; the per-release change logs (`perl5*delta`) are lists, not prose."""
    files = sorted(p for p in src.glob("perl*.pod") if not re.fullmatch(r"perl5\d+delta\.pod|perldelta\.pod", p.name)) \
        if src.is_dir() else []
    if not files:
        raise EdgewiseError(f"Perl's manuals are missing ({src} has no perl*.pod): apt-get install -y perl-doc")
    write_prose(out / "perl-docs.txt", (p for f in files for p in pod_paragraphs(f.read_text(errors="replace"))))


def _html_corpus(name: str, package: str, src: Path, licence: str, skip_dirs: tuple[str, ...] = (),
                 skip_files: str | None = None) -> None:
    install = f"apt-get install -y {package}"
    build = partial(build_html_docs, src=src, name=name, install=install, skip_dirs=skip_dirs, skip_files=skip_files)
    CORPORA.register(name)(Corpus(name, install, licence, build, genre="technical"))


# `_sources` and `_downloads` repeat the pages as reST; release notes and change logs are lists of names.
# PostgreSQL's functions-matching.html gives Henry Spencer's regex description, which regex(7) (read by the
# keyboard's `manpages` eval text) also carries word for word.
_html_corpus("python-docs", "python3.11-doc", PYTHON_DOCS, "PSF-2.0 (Python documentation)",
             ("_sources", "_downloads", "_static"), r"changelog\.html")
_html_corpus("postgresql-docs", "postgresql-doc-15", POSTGRESQL_DOCS, "PostgreSQL licence (BSD-style)",
             skip_files=r"release-.*\.html|functions-matching\.html")
# requirements.html restates every other page's sentences, each tagged "(source: ..., matrix: ...)".
_html_corpus("sqlite-docs", "sqlite3-doc", SQLITE_DOCS, "public domain (SQLite)", ("releaselog",),
             r"requirements\.html")
_html_corpus("linux-docs", "linux-doc-6.1", LINUX_DOCS, "GPL-2 (Linux kernel documentation)",
             ("_sources", "_static", "_images"))
_html_corpus("libreoffice-help", "libreoffice-help-en-us", LIBREOFFICE_HELP, "MPL-2.0 (LibreOffice help)")
_html_corpus("debian-handbook", "debian-handbook", DEBIAN_HANDBOOK, "GPL-2+ or CC-BY-SA-3.0")
CORPORA.register("perl-docs")(Corpus("perl-docs", "apt-get install -y perl-doc", "GPL-1+ or Artistic (Perl)",
                                     build_perl_docs, genre="technical"))
