"""Text rules of the keyboard: where the current word starts, sentence starts, casing, and Presage's word units.

Everything here is pure string handling, so the engine, the evaluator, the TUI and the web page agree on what
"the current word" is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Brackets and quotes that open a phrase: the next word follows them with no space.
_OPENERS = "([{\"\u201c\u2018"
_SENTENCE_END = ".!?\n"
_CLOSERS = "\"')]}\u201d\u2019"
# What the count models (the user's store, the Kneser-Ney n-gram) call a word, and where their histories reset.
WORDS = re.compile(r"[^\W_](?:[\w']*[^\W_])?'?")
SENTENCE_BREAK = re.compile(r"[.!?\n]")


@dataclass(frozen=True)
class Split:
    """A text cut where the current word begins."""

    committed: str  # text the language model reads as context (the space before the word is in `sep`)
    sep: str  # " " when the word is preceded by a space (typed or implied), "" when it is glued on
    prefix: str  # the part of the current word already typed ("" for a next-word prediction)
    sentence_start: bool  # the word starts a sentence, so suggestions are capitalised


_WORD_TAIL = re.compile(r"[\w']+$")
_TAIL = 128  # characters: no word is longer, and the regex must not scan a whole document per keystroke


def trailing_word(text: str) -> str:
    """The word being typed at the end of `text` ("" when it ends in a space or punctuation)."""
    m = _WORD_TAIL.search(text[-_TAIL:].replace("\u2019", "'"))
    word = m.group() if m else ""
    # Leading apostrophes are opening quotes, not part of the word.
    return word.lstrip("'")


def split_context(context: str, partial: str = "") -> Split:
    """Cut `context + partial` at the start of the word being typed.

    The caller may pass the whole text as `context` with an empty `partial`: a trailing word (including one
    that ends in an apostrophe, "don'") is then taken as the partial word, so the word after an apostrophe
    continues it.
    """
    text = context + partial
    word = trailing_word(text)
    before = text[: len(text) - len(word)]
    if before.endswith(" "):
        committed, sep = before[:-1], " "
    elif before == "" or before[-1] in "\n\t" or before[-1] in _OPENERS and _opens(before):
        committed, sep = before, ""
    elif word:
        committed, sep = before, ""  # glued to punctuation, e.g. "(hello" or "--hello"
    else:
        committed, sep = before, " "  # after "Hello," the next word comes after a space the user will type
    tail = before[-_TAIL:]
    return Split(committed, sep, word, is_sentence_start(tail if tail.strip() or len(before) <= _TAIL else before))


def _opens(before: str) -> bool:
    # A straight double quote opens a phrase when it follows whitespace or starts the text.
    if before[-1] != '"':
        return True
    return len(before) == 1 or before[-2].isspace() or before[-2] in _OPENERS


def is_sentence_start(before: str) -> bool:
    """True when the next word starts a sentence: at the start of the text, after . ! ? or a newline."""
    s = before.rstrip(" \t")
    s = s.rstrip(_CLOSERS + _OPENERS) if s and s[-1] in _CLOSERS + _OPENERS else s
    return s == "" or s[-1] in _SENTENCE_END or before.endswith("\n")


def capitalise(word: str) -> str:
    return word[:1].upper() + word[1:] if word else word


def apply_case(candidate: str, prefix: str, sentence_start: bool) -> str:
    """Display form of a candidate word given what the user typed.

    The typed prefix is kept as typed and the model's casing completes it; a capital the model gives the first
    letter (proper nouns: "paris" offers "Paris") or a sentence start capitalises it, as a phone keyboard's
    automatic shift would; an all-caps prefix gives an all-caps word.
    """
    if len(prefix) >= 2 and prefix.isupper():
        return candidate.upper()
    out = prefix + candidate[len(prefix):]
    if sentence_start or candidate[:1].isupper():
        out = capitalise(out)
    return out


# --- Presage's word units --------------------------------------------------------------------------------
# presage_simulator splits its input with ForwardTokenizer(DEFAULT_BLANKSPACE_CHARS, DEFAULT_SEPARATOR_CHARS)
# (src/lib/core/charsets.h): ASCII blanks and ASCII punctuation separate words; every other byte, non-ASCII
# UTF-8 included, is part of a word. Lengths are in bytes (std::string::size()).
PRESAGE_BLANKS = " \f\n\r\t\v"
PRESAGE_SEPARATORS = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_UNIT = re.compile("[^" + re.escape(PRESAGE_BLANKS + PRESAGE_SEPARATORS) + "]+")


@dataclass(frozen=True)
class Unit:
    """One word as presage_simulator sees it: the text before it and the word itself."""

    start: int  # character offset in the text
    word: str

    @property
    def n_bytes(self) -> int:
        return len(self.word.encode("utf-8"))


def presage_units(text: str) -> tuple[list[Unit], bool]:
    """The words presage_simulator would simulate, and whether it simulates one more, empty, word at the end.

    ForwardTokenizer returns a last empty token when separators or blanks follow the last word (its
    hasMoreTokens() is still true there); presage_simulator counts it as one key in both ki and kn.
    """
    units = [Unit(m.start(), m.group()) for m in _UNIT.finditer(text)]
    end = units[-1].start + len(units[-1].word) if units else 0
    trailing_empty = len(text.encode("utf-8")) > len(text[:end].encode("utf-8"))
    return units, trailing_empty


_PRESAGE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<Presage>
  <PredictorRegistry><LOGGER>ERROR</LOGGER><PREDICTORS>DefaultSmoothedNgramPredictor</PREDICTORS></PredictorRegistry>
  <ContextTracker><LOGGER>ERROR</LOGGER><SLIDING_WINDOW_SIZE>80</SLIDING_WINDOW_SIZE>
    <LOWERCASE_MODE>yes</LOWERCASE_MODE><ONLINE_LEARNING>{online}</ONLINE_LEARNING></ContextTracker>
  <Selector><LOGGER>ERROR</LOGGER><SUGGESTIONS>{k}</SUGGESTIONS><REPEAT_SUGGESTIONS>{repeat}</REPEAT_SUGGESTIONS>
    <GREEDY_SUGGESTION_THRESHOLD>0</GREEDY_SUGGESTION_THRESHOLD></Selector>
  <PredictorActivator><LOGGER>ERROR</LOGGER><PREDICT_TIME>1000</PREDICT_TIME>
    <MAX_PARTIAL_PREDICTION_SIZE>60</MAX_PARTIAL_PREDICTION_SIZE><COMBINATION_POLICY>Meritocracy</COMBINATION_POLICY>
  </PredictorActivator>
  <ProfileManager><LOGGER>ERROR</LOGGER><AUTOPERSIST>false</AUTOPERSIST></ProfileManager>
  <Predictors><DefaultSmoothedNgramPredictor><PREDICTOR>SmoothedNgramPredictor</PREDICTOR><LOGGER>ERROR</LOGGER>
    <DBFILENAME>{db}</DBFILENAME><DELTAS>0.01 0.1 0.89</DELTAS><LEARN>{learn}</LEARN>
    <DatabaseConnector><LOGGER>ERROR</LOGGER></DatabaseConnector></DefaultSmoothedNgramPredictor></Predictors>
</Presage>
"""


def presage_config(db, suggestions: int = 3, learn: bool = False, repeat: bool = False) -> str:
    """A Presage XML config for `presage_simulator -c`: its smoothed trigram predictor over `db` (Debian ships
    /usr/share/presage/database_en.db), `suggestions` per key, optionally learning as it goes. The comparator the
    keyboard's KSR is measured against; keyboard.evaluate counts keys exactly as presage_simulator does."""
    return _PRESAGE_XML.format(k=suggestions, db=db, learn=str(learn).lower(), online="yes" if learn else "no",
                               repeat="yes" if repeat else "no")
