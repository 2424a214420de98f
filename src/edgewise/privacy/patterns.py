"""Pattern detectors for structured PII: a cheap regex finds candidates, a validator throws out look-alikes.

Validators: RFC-ish shape for e-mail, Luhn and issuer prefixes for cards, ISO 13616 mod-97 and the country's
length for IBANs, the stdlib `ipaddress` parser for IPs, Google's libphonenumber metadata (`phonenumbers`) for
phones, and the issuing rules for US SSNs and UK National Insurance numbers (neither has a check digit: the
rules are which number blocks are never issued).

Importing this module registers the detectors with `edgewise.privacy.pii`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable

import phonenumbers as pn

from edgewise.privacy.base import Entity, register_detector

# --- validators ------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# Issuer prefixes (IIN ranges) of the card networks in use: Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay, Maestro, Mir. A Luhn-valid 16-digit order number passes Luhn one time in ten;
# the prefix check throws out most of those.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9][1-9]|[3-6]\d\d|7[01]\d|720)|3[47]|6011|64[4-9]|65|35"
                          r"|3(?:0[0-5]|[689])|62|5[06-9]|6[0-9]|220[0-4]")
_CARD_LENGTHS = {"3": (14, 15, 16, 19), "4": (13, 16, 19)}  # Amex/Diners/JCB; Visa. Others: 16-19.


def card_ok(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
        return False
    if len(digits) not in _CARD_LENGTHS.get(digits[0], (16, 17, 18, 19)):
        return False
    return len(set(digits)) > 1 and luhn_ok(digits)


# Lengths from the ISO 13616 IBAN registry.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24,
    "XK": 20,
}


def iban_ok(iban: str) -> bool:
    """ISO 13616: the registry length for the country, then move the first four chars to the end,
    letters -> 10..35, and the number mod 97 must be 1."""
    s = iban.replace(" ", "").upper()
    if not (s[:2].isalpha() and s[2:4].isdigit() and s.isalnum()) or len(s) != IBAN_LENGTHS.get(s[:2]):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(digits: str) -> bool:
    """US SSN issuing rules (SSA): area 000, 666 and 900-999 are never issued, nor group 00 or serial 0000;
    plus the numbers printed in ads and docs that people copy."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return len(set(digits)) > 1 and digits not in ("123456789", "078051120", "219099999")


# HMRC: first letter not D F I Q U V; second not D F I O Q U V; prefixes BG GB KN NK NT TN ZZ never issued.
_NINO = re.compile(r"[A-Za-z](?<![A-Za-z0-9][A-Za-z])[A-Za-z] ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d](?![A-Za-z0-9])")
_NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def nino_ok(s: str) -> bool:
    s = s.replace(" ", "").upper()
    a, b = s[0], s[1]
    if a in "DFIQUV" or b in "DFIOQUV" or s[:2] in _NINO_BAD_PREFIX:
        return False
    return s[:2].isupper() and s[2:8].isdigit() and s[8] in "ABCD"


# --- patterns --------------------------------------------------------------------------------

# Each pattern starts with a character class, with the left-boundary check as a lookbehind *after*
# the first character: that lets the regex engine skip ahead in C (a leading lookbehind makes it
# try every position, ~3x slower on long prompts).
_EMAIL = re.compile(r"[A-Za-z0-9._%+-](?<![\w.+-][A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,}(?![\w-])")
# 13-19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"\d(?<![\d-]\d)(?:[ -]?\d){12,18}(?!\d)")
# Compact ("DE89370400440532013000") or printed in groups of four ("DE89 3704 0044 ..."), either case.
_IBAN = re.compile(r"[A-Za-z](?<![A-Za-z0-9][A-Za-z])[A-Za-z]\d{2}"
                   r"(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,3})?)(?![A-Za-z0-9])")
_IPV4 = re.compile(r"\d(?<![\d.]\d)\d{0,2}(?:\.\d{1,3}){3}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![0-9A-Za-z:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![0-9A-Za-z:]|\.\d)")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")  # any IPv6 address has two colons this close
_SSN = re.compile(r"\d(?<![\w.-]\d)\d\d([- .]?)\d\d\1\d{4}(?![\w-]|\.\d)")
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|ss#|social security|soc\.? ?sec|tax ?id|itin)\b")

# Phone candidates, deliberately broad: libphonenumber decides. `+CC` or `00CC` international forms,
# an optional national "(0)", bracketed area codes, digit groups split by single spaces, dots or dashes.
_PHONE = re.compile(r"[+(\d](?<![\w+].)(?:(?<=\+)|(?<=\()\d{1,5}\)[ .-]?|(?<=\d))"
                    r"\d{0,5}(?: ?\(0\))?(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w+])")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}|\d{1,2}[-./]\d{4}")
_PHONE_CONTEXT = re.compile(r"(?i)(?:\b(?:call|calls|called|calling|phone|tel|telephone|mobile|mob|cell|cellphone|"
                            r"landline|fax|ring|rang|text|txt|sms|whatsapp|signal|reach|dial|number|contact|"
                            r"hotline|helpline|extension|ext|handy|portable|telefon|telefono|téléphone|tél)\b|"
                            r"\btel\.|☎|📞)")
_NOT_PHONE_CONTEXT = re.compile(r"(?i)\b(?:order|invoice|inv|ticket|ref|reference|tracking|account|acct|case|po|sku|"
                                r"serial|id|receipt|booking|confirmation|transaction|batch|lot|part|model|build|"
                                r"version|isbn|issue|pr|row|item|iban|bic|swift|routing|sort code|card|zip|postcode|"
                                r"postal|plz|cep|pin|code|nr)\b|\bno\.|#")
# Regions tried for numbers written without a country code: the most common for the languages we see.
_NANP = {"US", "CA"}  # the "1" trunk prefix is optional when writing these nationally
_NANP_SHAPE = re.compile(r"(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}$")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "AU", "BR", "IE", "CH", "SE", "PL", "JP", "MX",
                 "ZA", "NG", "KE", "SG", "CN")


def _phone_ok(s: str, before: str, after: str) -> bool:
    digits = re.sub(r"\D", "", s)
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(s):
        return False
    # Part of a longer code ("ORD-2024-558812", "v2/3214 5678") or followed by one ("555 1234-A").
    if re.search(r"[A-Za-z0-9#][-/#]$|[$€£¥]\s?$", before) or re.match(r"[-/.:]\w|\s?%", after):
        return False
    # The nearest cue wins: "phone +44 ..., order 7125075182" is an order number.
    window = before[-40:]
    said_at = max((m.end() for m in _PHONE_CONTEXT.finditer(window)), default=-1)
    not_at = max((m.end() for m in _NOT_PHONE_CONTEXT.finditer(window)), default=-1)
    said = said_at > not_at
    if not_at > said_at:
        return False
    if s.startswith("+") or s.startswith("00"):
        try:
            num = pn.parse("+" + s[2:] if s.startswith("00") else s, None)
        except pn.NumberParseException:
            return False
        # Possible (a plausible length for its country code), not only valid: redaction errs to caution, and
        # the metadata lags new number ranges.
        return pn.is_possible_number(num)
    # A bare run of digits is as likely an order or account number: only with a phone word before it.
    # Without a phone word: brackets or 9+ digits, so years, counts and prices stay untouched.
    if not said and "(" not in s and len(digits) < 9:
        return False
    if not said and not re.search(r"[ .()-]", s):
        return False
    for region in PHONE_REGIONS:
        # Written nationally, a number starts with its country's trunk prefix ("0" in most of Europe):
        # without that check German metadata alone accepts most 7-11 digit runs.
        prefix = pn.PhoneMetadata.metadata_for_region(region).national_prefix
        if region in _NANP:
            if not said and not _NANP_SHAPE.match(s):
                continue
        elif prefix and not digits.startswith(prefix):
            continue
        elif not prefix and not said:  # Spain, Italy, Denmark...: too many digit runs look valid there
            continue
        try:
            num = pn.parse(s, region)
        except pn.NumberParseException:
            continue
        if pn.is_possible_number(num):
            # Possible is enough: "555.123.4567" is no valid US number (555 is no area code) but reads as a phone
            # to anyone, and "call 555-1234" is a local number without its area code. The shape checks above keep
            # order numbers, years and prices out.
            return True
    return False


# --- detectors -------------------------------------------------------------------------------


@register_detector("email")
def emails(text: str) -> Iterable[Entity]:
    if "@" not in text:
        return
    for m in _EMAIL.finditer(text):
        yield Entity("email", m.start(), m.end(), m.group())


@register_detector("iban")
def ibans(text: str) -> Iterable[Entity]:
    for m in _IBAN.finditer(text):
        # Grouped form may run into a following word ("... 0130 00 OK"): drop whole trailing groups
        # until the checksum holds (at most two tries, so chance hits stay rare).
        span = m.group()
        for _ in range(3):
            if iban_ok(span) and (span[:2].isupper() or span[:2].islower()):
                yield Entity("iban", m.start(), m.start() + len(span), span)
                break
            if " " not in span:
                break
            span = span.rsplit(" ", 1)[0]


@register_detector("credit_card")
def cards(text: str) -> Iterable[Entity]:
    for m in _CARD.finditer(text):
        if card_ok(re.sub(r"\D", "", m.group())):
            yield Entity("credit_card", m.start(), m.end(), m.group())


@register_detector("us_ssn")
def ssns(text: str) -> Iterable[Entity]:
    for m in _SSN.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if not ssn_ok(digits):
            continue
        # Nine bare digits are as likely an order number: only after an SSN word.
        if not m.group(1) and not _SSN_CONTEXT.search(text[max(0, m.start() - 40):m.start()]):
            continue
        yield Entity("us_ssn", m.start(), m.end(), m.group())


@register_detector("uk_nino")
def ninos(text: str) -> Iterable[Entity]:
    for m in _NINO.finditer(text):
        if nino_ok(m.group()):
            yield Entity("uk_nino", m.start(), m.end(), m.group())


@register_detector("ipv6")
def ipv6s(text: str) -> Iterable[Entity]:
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


@register_detector("ipv4")
def ipv4s(text: str) -> Iterable[Entity]:
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Entity("ipv4", m.start(), m.end(), m.group())


@register_detector("phone")
def phones(text: str) -> Iterable[Entity]:
    # phonenumbers' own PhoneNumberMatcher costs 5-10 ms per region per KB here (pure Python); this
    # regex finds candidates in C and libphonenumber's metadata validates each one.
    for m in _PHONE.finditer(text):
        s, start = m.group().rstrip(".- "), m.start()
        # The pattern may take a bracket that belongs to the sentence: "(call 555-1234)".
        while s.startswith("(") and s.count("(") > s.count(")"):
            s, start = s[1:], start + 1
        while s.endswith(")") and s.count(")") > s.count("("):
            s = s[:-1]
        end = start + len(s)
        if _phone_ok(s, text[max(0, start - 60):start], text[end:end + 2]):
            yield Entity("phone", start, end, s)
