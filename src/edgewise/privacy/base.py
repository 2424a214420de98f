"""The PII detector registry: the Entity a detector yields, placeholder labels, and `register_detector`.

Detectors (privacy/patterns.py, privacy/tagger.py, a user's own) import this module to register; privacy/pii.py
imports them and runs them. Kept below both, so no detector imports the module that imports it.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, NamedTuple

from edgewise.registry import Registry


class Entity(NamedTuple):
    kind: str
    start: int
    end: int
    value: str


Detector = Callable[[str], Iterable[Entity]]
DETECTORS: Registry[Detector] = Registry("PII detector")

# Placeholder label per kind, and the order in which overlapping matches win: the most specific,
# best-validated kinds first, so a card number is never half-eaten by the phone pattern.
LABELS = {
    "email": "EMAIL",
    "iban": "IBAN",
    "credit_card": "CREDIT_CARD",
    "us_ssn": "US_SSN",
    "uk_nino": "UK_NINO",
    "ipv6": "IPV6",
    "ipv4": "IPV4",
    "phone": "PHONE",
    "person": "PERSON",
    "street_address": "ADDRESS",
}
PRIORITY = list(LABELS)
# Kinds whose spans come from a model and are fuzzy at the edges: where they overlap a validated
# match, the rest of the span is kept (an address holding a phone-like postcode still gets redacted).
FUZZY: set[str] = set()


def register_detector(kind: str, fuzzy: bool = False) -> Callable[[Detector], Detector]:
    """Hook for extra detectors, e.g. a local NER model: fn(text) -> iterable of Entity."""
    if kind not in LABELS:
        LABELS[kind] = re.sub(r"\W", "_", kind.upper())
        PRIORITY.append(kind)
    if fuzzy:
        FUZZY.add(kind)
    return DETECTORS.register(kind)


def available_kinds() -> list[str]:
    return [k for k in PRIORITY if k in DETECTORS]
