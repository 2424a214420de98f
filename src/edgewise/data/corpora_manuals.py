"""More technical writing for training (issue 26's larger mix): manuals, guides and API references from Debian's
documentation packages, read with `corpora_docs`' HTML reader and kept to running prose the same way.

Each source skips what is not prose in its own tree: reST sources, highlighted module sources, change logs and
release notes (lists of names), and other languages' copies. Sources and licences are in `edgewise.data.corpora`'s
table.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from edgewise.data.corpora_docs import _html_corpus, _html_files, build_html_docs, html_paragraphs
from edgewise.data.corpus_base import CORPORA, Corpus, write_prose

JAVA_API = Path("/usr/share/doc/openjdk-17-jre-headless/api")
RUST_DOCS = Path("/usr/share/doc/rust-doc/html")
DOC = Path("/usr/share/doc")

# Sphinx trees: `_sources` repeats each page as reST, `_modules` is highlighted source code.
_SPHINX_SKIP = ("_sources", "_modules", "_static", "_downloads", "_images")


def javadoc_paragraphs(page: str) -> list[str]:
    # Javadoc writes a description's first paragraph straight into <div class="block">, not into a <p>: read the
    # block as one paragraph.
    return html_paragraphs(page.replace('<div class="block">', '<div class="para">'))


def build_javadoc(out: Path, src: Path = JAVA_API) -> None:
    """The Java SE 17 API reference -> prose; `class-use` and `index-files` pages only repeat descriptions."""
    install = "apt-get install -y openjdk-17-doc"
    files = [f for f in _html_files(src, "the Java API documentation", install)
             if not {"class-use", "index-files"} & set(f.relative_to(src).parts)]
    write_prose(out / "java-api.txt",
                (p for f in files for p in javadoc_paragraphs(f.read_text(encoding="utf-8", errors="replace"))))


CORPORA.register("java-api")(Corpus("java-api", "apt-get install -y openjdk-17-doc",
                                    "GPL-2 with Classpath exception (OpenJDK 17)", build_javadoc, genre="technical"))

def build_html_set(out: Path, folders: dict[str, Path], install: str, skip_dirs: tuple[str, ...] = ()) -> None:
    """Several manuals of one corpus, each folder's `*.html` -> `out/NAME.txt`."""
    for name, src in folders.items():
        build_html_docs(out, src=src, name=name, install=install, skip_dirs=skip_dirs)


def _html_set(name: str, packages: str, folders: dict[str, Path], licence: str) -> None:
    install = f"apt-get install -y {packages}"
    build = partial(build_html_set, folders=folders, install=install, skip_dirs=_SPHINX_SKIP)
    CORPORA.register(name)(Corpus(name, install, licence, build, genre="technical"))


# The Rust books and the standard library's reference; `src` is the library's source as HTML, `implementors` and
# the search index are generated lists.
_html_corpus("rust-docs", "rust-doc", RUST_DOCS, "MIT or Apache-2.0 (Rust 1.63 documentation)",
             ("src", "implementors"))
_html_corpus("django-docs", "python-django-doc", DOC / "python-django-doc/html", "BSD-3-Clause (Django)",
             (*_SPHINX_SKIP, "releases"))
_html_corpus("pandas-docs", "python-pandas-doc", DOC / "python-pandas-doc/html", "BSD-3-Clause (pandas)",
             (*_SPHINX_SKIP, "whatsnew"))
_html_corpus("scipy-docs", "python-scipy-doc", DOC / "python-scipy-doc/html", "BSD-3-Clause (SciPy)",
             (*_SPHINX_SKIP, "release"))
_html_corpus("sklearn-docs", "python-sklearn-doc", DOC / "python-sklearn-doc/html", "BSD-3-Clause (scikit-learn)",
             (*_SPHINX_SKIP, "whats_new"))
_html_corpus("sympy-docs", "python-sympy-doc", DOC / "python-sympy-doc/html", "BSD-3-Clause (SymPy)", _SPHINX_SKIP)
_html_corpus("sqlalchemy-docs", "python-sqlalchemy-doc", DOC / "python-sqlalchemy-doc/html", "MIT (SQLAlchemy)",
             (*_SPHINX_SKIP, "changelog"))
_html_corpus("astropy-docs", "python-astropy-doc", DOC / "python-astropy-doc/html", "BSD-3-Clause (Astropy)",
             (*_SPHINX_SKIP, "whatsnew", "changelog"))
_html_corpus("sphinx-docs", "sphinx-doc", DOC / "sphinx-doc/html", "BSD-2-Clause (Sphinx)", _SPHINX_SKIP)
_html_corpus("qt-docs", "qtbase5-doc-html", Path("/usr/share/qt5/doc"), "GFDL-1.3, no invariant sections (Qt 5)")
_html_corpus("r-manuals", "r-doc-html", Path("/usr/share/R/doc/manual"), "GPL-2+ (R manuals)")
_html_corpus("gimp-help", "gimp-help-en", Path("/usr/share/gimp/2.0/help/en"), "GFDL-1.2+, no invariant sections")
# Each LilyPond manual is there twice, split into pages and as one `*-big-page.html`.
_html_corpus("lilypond-docs", "lilypond-doc-html", DOC / "lilypond/html/Documentation", "GFDL-1.3+ (LilyPond)",
             ("changes",), r".*-big-page\.html")
_html_corpus("apache-docs", "apache2-doc", DOC / "apache2-doc/manual/en", "Apache-2.0 (Apache HTTP Server 2.4)")
_html_corpus("exim-docs", "exim4-doc-html", DOC / "exim4-doc-html", "GPL-2+ (Exim 4 specification)")
_html_corpus("maxima-docs", "maxima-doc", DOC / "maxima-doc/html", "GPL-2 (Maxima manual)")
_html_corpus("abs-guide", "abs-guide", DOC / "abs-guide/html", "public domain (Advanced Bash-Scripting Guide)")
_html_corpus("gnu-standards", "gnu-standards", DOC / "gnu-standards", "GFDL-1.3+, no invariant sections")
_html_set("debian-guides", "debian-reference-en debian-policy developers-reference installation-guide-amd64",
          {"debian-reference": Path("/usr/share/debian-reference"), "debian-policy": DOC / "debian-policy/policy.html",
           "developers-reference": Path("/usr/share/developers-reference"),
           "installation-guide": DOC / "installation-guide-amd64/en"},
          "GPL-2+ (Debian Reference, Policy Manual, Developer's Reference, Installation Guide)")
# Octave's two manuals are folders named `*.html`.
_html_set("octave-docs", "octave-doc",
          {"octave": DOC / "octave/octave.html", "liboctave": DOC / "octave/liboctave.html"}, "GPL-3+ (GNU Octave)")
_html_set("gnucash-docs", "gnucash-docs", {"gnucash-guide": DOC / "gnucash-docs/gnucash-guide-en",
                                           "gnucash-help": DOC / "gnucash-docs/gnucash-help-en"},
          "GFDL-1.1+, no invariant sections (GnuCash)")
