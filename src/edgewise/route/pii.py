"""PII detection and reversible redaction.

Regexes find candidates; validators (Luhn for cards, ISO 13616 mod-97 for IBANs, the stdlib
`ipaddress` parser for IPs) throw out look-alikes. Person names need a model: none ships offline,
so `person` is only detected once someone registers a detector with `register_detector("person")`.

    text, mapping = redact("mail bob@example.com")   # -> "mail [EMAIL_1]", {"[EMAIL_1]": "bob@example.com"}
    restore(cloud_answer, mapping)                    # puts the values back
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable, NamedTuple

from edgewise.errors import EdgewiseError
from edgewise.registry import Registry


class Entity(NamedTuple):
    kind: str
    start: int
    end: int
    value: str


Detector = Callable[[str], Iterable[Entity]]
DETECTORS: Registry[Detector] = Registry("PII detector")

# Placeholder label per kind, and the order in which overlapping matches win: the most specific,
# best-validated kinds first, so a card number is never half-eaten by the phone regex.
LABELS = {
    "email": "EMAIL",
    "iban": "IBAN",
    "credit_card": "CREDIT_CARD",
    "ipv6": "IPV6",
    "ipv4": "IPV4",
    "phone": "PHONE",
    "person": "PERSON",
}
PRIORITY = list(LABELS)


def register_detector(kind: str) -> Callable[[Detector], Detector]:
    """Hook for extra detectors, e.g. a local NER model for `person`: fn(text) -> iterable of Entity."""
    if kind not in LABELS:
        LABELS[kind] = re.sub(r"\W", "_", kind.upper())
        PRIORITY.append(kind)
    return DETECTORS.register(kind)


def available_kinds() -> list[str]:
    return [k for k in PRIORITY if k in DETECTORS]


# --- validators ------------------------------------------------------------------------------

def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: move the first four chars to the end, letters -> 10..35, the number mod 97 must be 1."""
    s = iban.replace(" ", "").upper()
    if not (15 <= len(s) <= 34 and s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()):
        return False
    if len(s) != IBAN_LENGTHS.get(s[:2], len(s)):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


# --- detectors -------------------------------------------------------------------------------

# Each pattern starts with a character class, with the left-boundary check as a lookbehind *after*
# the first character: that lets the regex engine skip ahead in C (a leading lookbehind makes it
# try every position, ~3x slower on long prompts).
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# 13-19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)")
# Compact ("DE89370400440532013000") or printed in groups of four ("DE89 3704 0044 ...").
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)"
                   r"(?![A-Za-z0-9])")
# Lengths for common countries (ISO 13616 registry); other countries rely on the checksum alone.
IBAN_LENGTHS = {"AT": 20, "BE": 16, "CH": 21, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
                "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "SE": 24}
_IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![0-9A-Za-z:]|\.\d)")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")  # any IPv6 address has two colons this close
# International (+CC ...), bracketed area codes, or plain groups; validated by digit count below.
_PHONE = re.compile(r"[+(\d](?<![\w+].)"
                    r"(?:(?<=\+)\d{1,3}[ .-]?(?:\(\d{1,5}\)[ .-]?)?\d{2,5}"  # +CC [(area)] group
                    r"|(?<=\()\d{1,5}\)[ .-]?\d{2,5}"  # (area) group
                    r"|(?<=\d)\d{1,4})"  # a group that began with the first digit
                    r"(?:[ .-]?\d{2,5}){1,4}(?!\w)")
_ISO_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{4}")


@register_detector("email")
def _emails(text: str) -> Iterable[Entity]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield Entity("email", m.start(), m.end(), m.group())


@register_detector("credit_card")
def _cards(text: str) -> Iterable[Entity]:
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            yield Entity("credit_card", m.start(), m.end(), m.group())


@register_detector("iban")
def _ibans(text: str) -> Iterable[Entity]:
    for m in _IBAN.finditer(text):
        # Grouped form may run into a following upper-case word ("... 0130 00 OK"): drop whole
        # trailing groups until the checksum holds (at most two tries, so chance hits stay rare).
        span = m.group()
        for _ in range(3):
            if iban_ok(span):
                yield Entity("iban", m.start(), m.start() + len(span), span)
                break
            if " " not in span:
                break
            span = span.rsplit(" ", 1)[0]


@register_detector("ipv4")
def _ipv4(text: str) -> Iterable[Entity]:
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Entity("ipv4", m.start(), m.end(), m.group())


@register_detector("ipv6")
def _ipv6(text: str) -> Iterable[Entity]:
    if not _IPV6_HINT.search(text):
        return
    for m in _IPV6.finditer(text):
        s = m.group()
        if not any(c not in ":" for c in s):  # a bare "::" is punctuation, not an address
            continue
        try:
            ipaddress.IPv6Address(s)
        except ValueError:
            continue
        yield Entity("ipv6", m.start(), m.end(), s)


@register_detector("phone")
def _phones(text: str) -> Iterable[Entity]:
    for m in _PHONE.finditer(text):
        s = m.group()
        digits = re.sub(r"\D", "", s)
        if _ISO_DATE.fullmatch(s):
            continue
        grouped = bool(re.search(r"[ .()-]", s))
        # E.164 allows at most 15 digits. Without a '+' or brackets we want 9+ digits, or a local
        # 3-4 grouping, so that years, prices and counts stay untouched.
        if not 7 <= len(digits) <= 15:
            continue
        if s.startswith("+") or "(" in s or len(digits) >= 9 or (grouped and re.fullmatch(r"\d{3}[ .-]\d{4}", s)):
            yield Entity("phone", m.start(), m.end(), s)


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
    if len(taken) > 1:
        taken.sort(key=lambda e: e.start)
    return taken


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
        ents = detect(text, self.kinds)
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
