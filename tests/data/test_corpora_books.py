"""The larger mix's builders (issue 26 item 1): SWORD modules, games' story text, javadoc, WordNet definitions, on
small inputs written the way their Debian packages write them, and on the installed packages where present."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from edgewise.data import corpora
from edgewise.data.corpora import CORPORA
from edgewise.data.corpora_books import SWORD_DIR, build_sword, osis_paragraphs, sword_entries
from edgewise.data.corpora_manuals import build_html_set, build_javadoc, javadoc_paragraphs
from edgewise.errors import EdgewiseError


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---- SWORD ----------------------------------------------------------------------------------------------------

VERSES = [
    '<div sID="g1" type="x-p"/><title type="x-s">The creation</title> <w lemma="H1">In</w> <w>the</w> beginning, '
    'God created the heavens and the earth.<note type="crossReference"><reference>John 1:1</reference></note>',
    ' The earth was formless and empty, and darkness was on the surface of the deep.',
    '<div eID="g1" type="x-p"/><div sID="g2" type="x-p"/> God said, &quot;Let there be light,&quot; and there was '
    'light.<note placement="foot">or, a light.</note>',
]


def _zmodule(folder: Path, entries: list[str], wide: bool = False, link_last: bool = False) -> None:
    """A zText module as SWORD writes it: the entries in one zlib block (`ot.bzz`), its place in `ot.bzs`, and
    (block, offset, size) per verse in `ot.bzv` (a 2-byte size; 4 bytes in the zText4/zCom4 drivers)."""
    block, index = b"", []
    for e in entries:
        raw = e.encode()
        index.append((0, len(block), len(raw)))
        block += raw
    if link_last:  # a commentary entry covering two verses: the second verse points at the same text
        index.append(index[-1])
    index.insert(0, (0, 0, 0))  # the testament heading: an empty entry
    comp = zlib.compress(block)
    folder.mkdir(parents=True)
    (folder / "ot.bzz").write_bytes(comp)
    (folder / "ot.bzs").write_bytes(struct.pack("<III", 0, len(comp), len(block)))
    fmt = "<III" if wide else "<IIH"
    (folder / "ot.bzv").write_bytes(b"".join(struct.pack(fmt, *row) for row in index))


@pytest.mark.parametrize("wide", [False, True])
def test_sword_module_reads_to_paragraphs_without_notes_or_titles(tmp_path, wide):
    _zmodule(tmp_path / "texts" / "ztext" / "demo", VERSES, wide=wide, link_last=True)
    out = tmp_path / "out"
    out.mkdir()
    build_sword(out, module="demo", install="apt-get install -y sword-text-demo", src=tmp_path)
    assert _lines(out / "demo.txt") == [
        "In the beginning, God created the heavens and the earth. The earth was formless and empty, and darkness "
        "was on the surface of the deep.",
        'God said, "Let there be light," and there was light.',
    ]


def test_a_linked_commentary_entry_is_read_once(tmp_path):
    _zmodule(tmp_path / "m", VERSES, link_last=True)
    assert len(list(sword_entries(tmp_path / "m", "apt-get install -y x"))) == len(VERSES)


def test_sword_without_the_module_says_what_to_install(tmp_path):
    with pytest.raises(EdgewiseError, match="apt-get install -y sword-comm-tdavid"):
        build_sword(tmp_path, module="tdavid", install="apt-get install -y sword-comm-tdavid", src=tmp_path)


@pytest.mark.skipif(not (SWORD_DIR / "texts/ztext/engWEB2015eb").is_dir(), reason="apt-get install -y sword-text-web")
def test_the_installed_world_english_bible_reads_as_prose():
    paras = osis_paragraphs(sword_entries(SWORD_DIR / "texts/ztext/engWEB2015eb", ""))
    head = [p for _, p in zip(range(100), paras) if p]  # the preface, then Genesis
    assert head[0].startswith("The Holy Bible is a collection of books and letters")
    genesis = next(p for p in head if p.startswith("In the beginning,"))
    assert genesis.startswith("In the beginning, God created the heavens and the earth. The earth was formless")
    assert " ," not in genesis and "<" not in genesis


# ---- games ----------------------------------------------------------------------------------------------------

ENDLESS_SKY = ('mission "Rescue"\n\tdescription `Travel to <destination> and pay <payment>.`\n\ton offer\n'
               '\t\tconversation\n\t\t\t`The captain looks at you for a long moment before she finally speaks.`\n'
               '\t\t\tchoice\n\t\t\t\t`\t"I will help you find your missing ship and its whole crew."`\n'
               '\t\t\t\t`Decline.`\n')
CRAWL = ("%%%%\n# Uniques\nAgnes\n\nThis spriggan is aged and weathered from years of travel away from the\n"
         "forests and swamps that are home to her kin.\n%%%%\nrat\n\nA rat.\n%%%%\n")
FREECIV = ('[nation_scottish]\nname=_("Scottish")\nlegend=_("Scotland was an independent kingdom from\\\n'
           ' around 1034 CE to the union with England.\\n\\nIts capital is \\"Edinburgh\\" in the east.")\n')

WESNOTH = ('[message]\n    speaker=Konrad\n    message= _ "Master Delfador! Look, there are orcs coming from all '
           'directions! What shall we do?"\n[/message]\n[message]\n    message= _ "Well done, $unit.name|, you '
           'have saved us all today."\n[/message]\n[part]\n    story= _ "<i>Twenty years</i> into her rule, she said '
           '""enough"" and turned away.\n\nThe elves waited."\n[/part]\n')

STORIES = {  # corpus: (a file as its package lays it out, the paragraphs kept)
    "endless-sky": ("missions.txt", ENDLESS_SKY, [
        "The captain looks at you for a long moment before she finally speaks.",
        '"I will help you find your missing ship and its whole crew."']),
    "crawl": ("descript/monsters.txt", CRAWL, [  # the key line, comments and short entries go
        "This spriggan is aged and weathered from years of travel away from the forests and swamps that are home "
        "to her kin."]),
    "wesnoth": ("campaigns/Heir_To_The_Throne/scenarios/01.cfg", WESNOTH, [  # the line naming a variable goes
        "Master Delfador! Look, there are orcs coming from all directions! What shall we do?",
        'Twenty years into her rule, she said "enough" and turned away.']),
    "freeciv": ("nation/scottish.ruleset", FREECIV, [
        "Scotland was an independent kingdom from around 1034 CE to the union with England.",
        'Its capital is "Edinburgh" in the east.']),
}


@pytest.mark.parametrize("name", STORIES)
def test_games_story_text_keeps_prose_only(tmp_path, name):
    path, text, expected = STORIES[name]
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(text)
    out = tmp_path / "out"
    out.mkdir()
    CORPORA.get(name).build(out, src=tmp_path)
    assert _lines(out / f"{name}.txt") == expected
    with pytest.raises(EdgewiseError, match=f"apt-get install -y {CORPORA.get(name).install.split()[3]}"):
        CORPORA.get(name).build(out, src=tmp_path / "absent")


# ---- javadoc and WordNet ---------------------------------------------------------------------------------------

JAVADOC = """<html><body><nav><p>Skip navigation links for the whole API are here.</p></nav>
<section class="description"><div class="block">Hash table based implementation of the <code>Map</code>
interface, which permits null values and the null key.</div></section>
<section class="detail"><div class="member-signature">public&nbsp;int&nbsp;size()</div>
<div class="block">Returns the number of key-value mappings in this map.</div></section></body></html>"""


def test_javadoc_reads_description_blocks(tmp_path):
    assert javadoc_paragraphs(JAVADOC) == [
        "Hash table based implementation of the Map interface, which permits null values and the null key.",
        "Returns the number of key-value mappings in this map."]
    (tmp_path / "java.base" / "class-use").mkdir(parents=True)
    (tmp_path / "java.base" / "HashMap.html").write_text(JAVADOC)
    (tmp_path / "java.base" / "class-use" / "HashMap.html").write_text(
        '<div class="block">A class-use page repeats the descriptions of every method that uses the class.</div>')
    out = tmp_path / "out"
    out.mkdir()
    build_javadoc(out, src=tmp_path)
    assert _lines(out / "java-api.txt") == javadoc_paragraphs(JAVADOC)


def test_wordnet_definitions_leave_the_examples_out(tmp_path):
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided to you, the LICENSEE, under a licence\n"
        "02084071 05 n 01 dog 0 000 | a member of the genus Canis that has been domesticated by man since "
        'prehistoric times; "the dog barked all night"\n'
        '09999999 18 n 01 x 0 000 | a short one; "too short to keep"\n')
    for pos in ("verb", "adj", "adv"):
        (tmp_path / f"data.{pos}").write_text("")
    corpora._build_wordnet_definitions(tmp_path, src=tmp_path)
    assert _lines(tmp_path / "wordnet-definitions.txt") == [
        "a member of the genus Canis that has been domesticated by man since prehistoric times"]


def test_a_set_of_manuals_writes_one_file_each_and_skips_sphinx_sources(tmp_path):
    # Octave's manuals are folders named `octave.html`: each is read as a tree of pages.
    for book in ("octave.html", "liboctave.html"):
        (tmp_path / book / "_sources").mkdir(parents=True)
        (tmp_path / book / "index.html").write_text(f"<p>The {book[:-5]} manual explains every part of it in "
                                                     "plain words.</p>")
        (tmp_path / book / "_sources" / "index.html").write_text("<p>The reST copy of this page is never read.</p>")
    out = tmp_path / "out"
    out.mkdir()
    build_html_set(out, {"octave": tmp_path / "octave.html", "liboctave": tmp_path / "liboctave.html"},
                   install="apt-get install -y octave-doc", skip_dirs=("_sources",))
    assert _lines(out / "octave.txt") == ["The octave manual explains every part of it in plain words."]
    assert _lines(out / "liboctave.txt") == ["The liboctave manual explains every part of it in plain words."]
