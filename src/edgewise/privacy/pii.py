"""PII detection and reversible redaction.

Structured kinds (e-mail, phone, card, IBAN, IP, US SSN, UK NINO) come from patterns with validators
(privacy/patterns.py); person names and street addresses from a small on-device token classifier
(privacy/tagger.py, the int8 ONNX model shipped in edgewise/data/pii-tagger), registered when its model is
found. More detectors plug in with `privacy.base.register_detector(kind)`. A router whose privacy relies on the
tagger checks it at start (`require_detectors`) and refuses to start without it.

    text, mapping = redact("mail bob@example.com")   # -> "mail [EMAIL_1]", {"[EMAIL_1]": "bob@example.com"}
    restore(cloud_answer, mapping)                    # puts the values back
"""

from __future__ import annotations

import re
from typing import Iterable

from edgewise.errors import EdgewiseError
from edgewise.privacy import tagger
# The registry (register_detector, available_kinds) lives in privacy/base.py, so detectors register without
# importing this module.
from edgewise.privacy.base import DETECTORS, FUZZY, LABELS, PRIORITY, Entity


# --- detection and redaction -----------------------------------------------------------------

def detect(text: str, kinds: Iterable[str] | None = None) -> list[Entity]:
    """All PII entities in text, non-overlapping, sorted by position."""
    if kinds is not None:
        kinds = set(kinds)
        for k in kinds:
            if k not in LABELS:
                raise EdgewiseError(f"unknown PII kind {k!r}: choose from {', '.join(LABELS)}")
    taken: list[Entity] = []
    for kind in PRIORITY:
        if (kinds is not None and kind not in kinds) or kind not in DETECTORS:
            continue
        for e in DETECTORS.get(kind)(text):
            if all(e.end <= t.start or e.start >= t.end for t in taken):
                taken.append(e)
            elif kind in FUZZY:
                taken.extend(_outside(e, taken, text))
    if len(taken) > 1:
        taken.sort(key=lambda e: e.start)
    return taken


def _outside(e: Entity, taken: list[Entity], text: str) -> list[Entity]:
    """The parts of a fuzzy span not covered by entities already taken, trimmed, if any word is left."""
    pieces = [(e.start, e.end)]
    for t in taken:
        nxt = []
        for a, b in pieces:
            if t.end <= a or t.start >= b:
                nxt.append((a, b))
                continue
            if a < t.start:
                nxt.append((a, t.start))
            if t.end < b:
                nxt.append((t.end, b))
        pieces = nxt
    out = []
    for a, b in pieces:
        while a < b and not text[a].isalnum():
            a += 1
        while b > a and not text[b - 1].isalnum():
            b -= 1
        if b - a >= 2:
            out.append(Entity(e.kind, a, b, text[a:b]))
    return out


class Redactor:
    """Redacts several texts (e.g. every message of a chat) with one shared placeholder table,
    so the same value gets the same placeholder everywhere."""

    def __init__(self, kinds: Iterable[str] | None = None):
        self.kinds = None if kinds is None else list(kinds)
        self.mapping: dict[str, str] = {}  # placeholder -> original value
        self._by_value: dict[tuple[str, str], str] = {}
        self._count: dict[str, int] = {}
        self.found: dict[str, int] = {}  # kind -> number of entities (values never leave here)

    def __call__(self, text: str) -> str:
        ents = self._recurring(text, detect(text, self.kinds))
        if not ents:
            return text
        out, pos = [], 0
        for e in ents:
            self.found[e.kind] = self.found.get(e.kind, 0) + 1
            out.append(text[pos:e.start])
            out.append(self._placeholder(e, text))
            pos = e.end
        out.append(text[pos:])
        return "".join(out)

    def _recurring(self, text: str, ents: list[Entity]) -> list[Entity]:
        """A name or address the tagger found once is hidden wherever it recurs, in this text and the later
        ones: the model may miss the second "Ana Lima" that its context makes less name-like."""
        known = {(e.kind, e.value) for e in ents if e.kind in FUZZY}
        known |= {key for key in self._by_value if key[0] in FUZZY}
        extra: list[Entity] = []
        for kind, value in sorted(known, key=lambda kv: -len(kv[1])):
            for m in re.finditer(r"(?<!\w)" + re.escape(value) + r"(?!\w)", text):
                if all(m.end() <= e.start or m.start() >= e.end for e in ents + extra):
                    extra.append(Entity(kind, m.start(), m.end(), value))
        return sorted(ents + extra, key=lambda e: e.start) if extra else ents

    def _placeholder(self, e: Entity, text: str) -> str:
        key = (e.kind, e.value)
        if key not in self._by_value:
            label = LABELS[e.kind]
            n = self._count.get(label, 0) + 1
            # Skip any number whose placeholder already appears literally in the user's text.
            while f"[{label}_{n}]" in text:
                n += 1
            self._count[label] = n
            ph = f"[{label}_{n}]"
            self._by_value[key] = ph
            self.mapping[ph] = e.value
        return self._by_value[key]


def require_detectors(mode: str, kinds: Iterable[str] | None = None) -> None:
    """Fail closed at start-up: privacy `mode` scans for `kinds` (None = every kind); raise one line naming the
    detector that is missing and the fix, rather than let its values reach the cloud. The tagger counts as
    present when EDGEWISE_PII_MODEL=off, the user's explicit choice of patterns only."""
    wanted = set(LABELS) if kinds is None else set(kinds)
    if wanted & set(tagger.KINDS):
        tagger.require(f"privacy mode {mode}")


def redact(text: str, kinds: Iterable[str] | None = None) -> tuple[str, dict[str, str]]:
    """Replace PII by stable placeholders. Returns (redacted_text, {placeholder: original})."""
    r = Redactor(kinds)
    return r(text), r.mapping


_PH = re.compile(r"\[([A-Z][A-Z0-9_]*_\d+)\]")


def restore(text: str, mapping: dict[str, str]) -> str:
    """Put original values back. Also accepts placeholders whose brackets the model dropped."""
    if not mapping:
        return text
    text = _PH.sub(lambda m: mapping.get(m.group(), m.group()), text)
    bare = {ph[1:-1]: v for ph, v in mapping.items()}
    pat = re.compile(r"(?<![\w\[])(" + "|".join(sorted(map(re.escape, bare), key=len, reverse=True)) + r")(?![\w\]])")
    return pat.sub(lambda m: bare[m.group()], text)


class StreamRestorer:
    """`restore` for a stream of text deltas: a placeholder may arrive split ("[EMA", "IL_1]"),
    so a possible placeholder prefix is held back until it is complete or proven not to be one."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping
        self._held = ""
        self._max = max((len(p) for p in mapping), default=0)

    def feed(self, delta: str) -> str:
        if not self.mapping:
            return delta
        buf = self._held + delta
        cut = buf.rfind("[")
        # Hold back from the last '[' if it has no ']' yet and could still grow into a placeholder.
        if cut != -1 and "]" not in buf[cut:] and len(buf) - cut < self._max:
            self._held, ready = buf[cut:], buf[:cut]
        else:
            self._held, ready = "", buf
        return restore(ready, self.mapping)

    def flush(self) -> str:
        out, self._held = restore(self._held, self.mapping), ""
        return out

