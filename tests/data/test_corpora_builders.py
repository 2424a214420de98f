"""The issue-26 corpus builders on tiny hand-made inputs shaped like their Debian packages' files, the genre report's
arithmetic, and the 12-word overlap check on a planted quotation."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from edgewise.data.corpora import CORPORA, KEYBOARD_MIX_CORPORA, KEYBOARD_V4_CORPORA
from edgewise.data.corpus_base import GENRES, Corpus
from edgewise.data.corpora_dicts import build_dictd, build_gcide, build_jargon, _devil_headword, _foldoc_headword
from edgewise.data.corpora_docs import build_html_docs, build_perl_docs, html_paragraphs, pod_paragraphs
from edgewise.data.corpus_mix import MixRow, count_words, genre_totals, mix_table, shared_runs
from edgewise.errors import EdgewiseError

PROSE = "The quick reader turns every page of this manual with a patient and careful hand."


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---- HTML manuals -------------------------------------------------------------------------------------------

PAGE = f"""<!DOCTYPE html><html><head><title>Page title words here and more</title></head><body>
<nav><p>Navigation links for the whole site are listed right here.</p></nav>
<div class="wy-grid-for-nav"><section class="wy-nav-content-wrap"><div class="body">
<p>Use the <code class="literal">len()</code> function to count the items in a list, as the examples show.</p>
<p>An unclosed paragraph that still reads as running text for the reader here
<p>{PROSE}</p>
<pre>for x in range(10):
    print("a code block is never prose, however many words it has")</pre>
<table><tr><td><p>A table cell that looks like a sentence is still a table.</p></td></tr></table>
<dl class="std option"><dt>-v</dt><dd><p>Print more about what the program does while it runs.</p></dd></dl>
<div class="para">DocBook puts its running text in a div of class para, like this one does.</div>
<p>x = {{"a": 1, "b": [2, 3]}}; y = f(x) + g(x) * 3 // 4</p>
<p>\u201cCurly quotes\u201d and an em dash\u2014typed as a keyboard types them, plain ASCII.</p>
</div></section></div>
<div class="footer"><p>Copyright 2001-2023 by the people who wrote all of this text.</p></div>
</body></html>"""


def test_html_paragraphs_keep_running_text_only():
    paras = html_paragraphs(PAGE)
    assert "Use the len() function to count the items in a list, as the examples show." in paras
    assert "An unclosed paragraph that still reads as running text for the reader here" in paras
    assert PROSE in paras
    assert "DocBook puts its running text in a div of class para, like this one does." in paras
    text = "\n".join(paras)
    for gone in ("Navigation", "a code block", "table cell", "Print more", "Copyright", "Page title"):
        assert gone not in text


def test_build_html_docs_writes_prose_once_and_skips_sources(tmp_path):
    src, out = tmp_path / "html", tmp_path / "out"
    (src / "library").mkdir(parents=True)
    (src / "_sources").mkdir()
    out.mkdir()
    (src / "index.html").write_text(PAGE)
    (src / "library" / "os.html").write_text(PAGE.replace(PROSE, "Another page has its own sentence about files "
                                                          "and folders for the reader."))
    (src / "_sources" / "index.html").write_text("<p>The reST source copy repeats the page and must not be read.</p>")
    (src / "changelog.html").write_text("<p>A change log is a list of names and numbers, not running prose.</p>")
    build_html_docs(out, src=src, name="demo-docs", install="apt-get install -y demo",
                    skip_dirs=("_sources",), skip_files=r"changelog\.html")
    lines = _lines(out / "demo-docs.txt")
    assert lines.count(PROSE) == 1 and len(lines) == len(set(lines)), "boilerplate kept once"
    assert "Another page has its own sentence about files and folders for the reader." in lines
    assert '"Curly quotes" and an em dash--typed as a keyboard types them, plain ASCII.' in lines
    assert not any("reST" in x or "change log" in x or "y = f(x)" in x for x in lines)


def test_build_html_docs_without_the_package_says_what_to_install(tmp_path):
    with pytest.raises(EdgewiseError, match="apt-get install -y demo"):
        build_html_docs(tmp_path, src=tmp_path / "absent", name="demo-docs", install="apt-get install -y demo")


# ---- Perl's POD ---------------------------------------------------------------------------------------------

POD = """=head1 NAME

perlfake - a manual that exists only in this test

=head1 DESCRIPTION

This manual explains how B<bold> and I<italic> text and C<< $a <=> $b >> read
when the L<perlfunc/sort> page and L<the tutorial|perlintro> are linked.

    my $code = "indented text is verbatim code";
    print $code;

=over 4

=item sort LIST

Sorts the LIST and returns the sorted list value to the caller E<gt> here.

=back

=begin html

<p>A format block is for one formatter only and is not read at all.</p>

=end html

=cut

sub code_after_cut { "a paragraph after the cut is code, not text" }
"""


def test_pod_paragraphs_drop_commands_code_and_formatting():
    paras = list(pod_paragraphs(POD))
    assert paras == [
        "perlfake - a manual that exists only in this test",
        "This manual explains how bold and italic text and $a <=> $b read when the sort page and the tutorial "
        "are linked.",
        "Sorts the LIST and returns the sorted list value to the caller > here.",
    ]


def test_build_perl_docs_skips_change_logs(tmp_path):
    src, out = tmp_path / "pod", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "perlfake.pod").write_text(POD)
    (src / "perl5360delta.pod").write_text("=head1 DESCRIPTION\n\nThis release log lists changes made to this "
                                           "version and is skipped by the builder.\n")
    build_perl_docs(out, src=src)
    lines = _lines(out / "perl-docs.txt")
    assert "Sorts the LIST and returns the sorted list value to the caller > here." in lines
    assert not any("release log" in x for x in lines)


# ---- dictd databases: GCIDE, FOLDOC, The Devil's Dictionary ---------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(n: int) -> str:
    s = ""
    while True:
        s = _B64[n % 64] + s
        n //= 64
        if not n:
            return s


def _dictd(folder: Path, db: str, entries: list[tuple[str, str]]) -> None:
    """A dictd database as dictfmt writes it: the entries' text (gzip; dictzip is gzip-compatible) and an index
    of `headword TAB base-64 offset TAB base-64 length` lines."""
    data, index = b"", []
    for head, text in entries:
        raw = text.encode()
        index.append(f"{head}\t{_b64(len(data))}\t{_b64(len(raw))}")
        data += raw
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{db}.dict.dz").write_bytes(gzip.compress(data))
    (folder / f"{db}.index").write_text("\n".join(sorted(index)) + "\n")


GCIDE_ENTRY = """Abhor \\Ab*hor"\\, v. t. [imp. & p. p. {Abhorred}; p. pr. & vb.
   n. {Abhorring}.] [L. abhorrere; ab + horrere to bristle, shiver.]
   1. To shrink back with disgust from; to regard with horror or detestation; to loathe.
      [1913 Webster]

            I utterly abhor, yea, from my soul
            Refuse you for my judge.              --Shak.
      [1913 Webster]

            This is abhominable, which he would
            call abominable, as the clerk wrote.  --Shak. Love's
                                                  Labor's Lost,
                                                  v. 1.
      [1913 Webster]

            He comes to me for counsel, and I show him a trick. --Tatler.
      [1913 Webster]

   Syn: To hate; detest; loathe; abominate. See {Hate}.
        [1913 Webster]

"""
LICENCE = "This dictionary is free software under the terms of the license printed right here in full.\n\n"


def test_build_gcide_keeps_senses_and_quotations_without_headwords_or_attributions(tmp_path):
    _dictd(tmp_path / "dictd", "gcide", [("00-database-info", LICENCE), ("Abhor", GCIDE_ENTRY)])
    (tmp_path / "out").mkdir()
    build_gcide(tmp_path / "out", src=tmp_path / "dictd")
    assert _lines(tmp_path / "out" / "gcide.txt") == [
        "To shrink back with disgust from; to regard with horror or detestation; to loathe.",
        "I utterly abhor, yea, from my soul Refuse you for my judge.",
        "This is abhominable, which he would call abominable, as the clerk wrote.",
        "He comes to me for counsel, and I show him a trick.",
    ]


def test_build_foldoc_and_devil_drop_headwords_labels_and_dates(tmp_path):
    foldoc = ("actor\n\n   1. <programming> In {object-oriented} programming, an {object} which exists as a\n"
              "   {concurrent} process of its own.\n\n   (1994-11-08)\n\n")
    devil = ("CHILDHOOD, n.  The period of human life intermediate between the\nidiocy of infancy and the folly "
             "of youth.\n\n")
    _dictd(tmp_path / "dictd", "foldoc", [("00databaseinfo", LICENCE), ("actor", foldoc)])
    _dictd(tmp_path / "dictd", "devil", [("childhood", devil)])
    for db, head in (("foldoc", _foldoc_headword), ("devil", _devil_headword)):
        (tmp_path / db).mkdir()
        build_dictd(tmp_path / db, db=db, headword=head, src=tmp_path / "dictd")
    assert _lines(tmp_path / "foldoc" / "foldoc.txt") == [
        "In object-oriented programming, an object which exists as a concurrent process of its own."]
    assert _lines(tmp_path / "devil" / "devil.txt") == [
        "The period of human life intermediate between the idiocy of infancy and the folly of youth."]


def test_dictd_without_the_package_says_what_to_install(tmp_path):
    with pytest.raises(EdgewiseError, match="apt-get install -y dict-gcide"):
        build_gcide(tmp_path, src=tmp_path)


def test_build_jargon_drops_the_headword_label_and_index_lists(tmp_path):
    text = (":cruft: n.\n\n   1. An unpleasant substance. The dust that gathers under your bed is\n   cruft; "
            "the TV comedy is not.\n\n   cruft together\n\n   cruftsmanship\n\n")
    src = tmp_path / "jargon.txt.gz"
    src.write_bytes(gzip.compress(text.encode()))
    build_jargon(tmp_path, src=src)
    assert _lines(tmp_path / "jargon.txt") == [
        "1. An unpleasant substance. The dust that gathers under your bed is cruft; the TV comedy is not."]


# ---- the registry and the genre report ------------------------------------------------------------------------

def test_every_corpus_of_the_mix_is_registered_with_a_genre_and_a_licence():
    assert set(KEYBOARD_MIX_CORPORA) == set(CORPORA.names())
    assert len(set(KEYBOARD_MIX_CORPORA)) == len(KEYBOARD_MIX_CORPORA)
    assert KEYBOARD_MIX_CORPORA[:len(KEYBOARD_V4_CORPORA)] == KEYBOARD_V4_CORPORA  # the v4 recipe's mix, kept
    for name in KEYBOARD_MIX_CORPORA:
        c = CORPORA.get(name)
        assert c.genre in GENRES and c.licence and c.install.startswith(("apt-get", "pip"))


def test_a_corpus_with_an_unknown_genre_is_refused():
    with pytest.raises(EdgewiseError, match="not one of classics"):
        Corpus("x", "apt-get install -y x", "MIT", lambda out: None, genre="poetry")


def test_genre_report_arithmetic(tmp_path):
    (tmp_path / "a.txt").write_text("one two three\nfour  five\n\n")
    (tmp_path / "b.txt").write_text("six\tseven eight nine ten\n")
    assert count_words([tmp_path / "a.txt", tmp_path / "b.txt"]) == 10
    rows = [MixRow("a", "classics", 2, 600), MixRow("b", "technical", 1, 300), MixRow("c", "classics", 1, 100)]
    totals = genre_totals(rows)
    assert list(totals) == list(GENRES)  # every genre listed, in order, zeros included
    assert totals == {"classics": 700, "modern prose": 0, "technical": 300, "dictionary": 0, "other": 0}
    table = mix_table(rows)
    assert "| a | classics | 2 | 600 | 60.0% |" in table
    assert "| **total** | | 4 | **1,000** | 100% |" in table
    assert "| classics | 700 | 70.0% |" in table and "| modern prose | 0 | 0.0% |" in table
    with pytest.raises(EdgewiseError, match="genre"):
        genre_totals([MixRow("d", "poetry", 1, 1)])


# ---- the overlap check --------------------------------------------------------------------------------------

QUOTE = "it is a truth universally acknowledged that a single man in possession"  # 12 words


def test_overlap_check_finds_a_planted_twelve_word_run(tmp_path):
    evals = {"austen": f"Chapter 1. {QUOTE.capitalize()} of a good fortune must be in want of a wife.",
             "email": "Nothing in this message appears anywhere in the training text at all, I hope."}
    train = tmp_path / "train.txt"
    train.write_text(f"Some other text.\nAs they say, \u201c{QUOTE.upper()}\u201d -- and so on.\n")
    hits = shared_runs(evals, [train])
    assert hits == {"austen": [f"train.txt: {QUOTE}"], "email": []}


def test_overlap_check_ignores_eleven_shared_words(tmp_path):
    eleven = " ".join(QUOTE.split()[:11])
    train = tmp_path / "train.txt"
    train.write_text(f"{eleven} and then something else entirely.\n")
    assert shared_runs({"austen": f"{QUOTE} of a good fortune"}, [train]) == {"austen": []}
