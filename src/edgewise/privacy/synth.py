"""Synthetic training text for the PII tagger: Faker (MIT) names and addresses from many locales inside
message templates (e-mails, chats, support tickets, forms, prompts), with hard negatives.

Each example is {"text": str, "spans": [[start, end, kind], ...]}; kinds are the router's PII kinds.
Needs `faker` and `phonenumbers` (training and evaluation only; the router never imports this module).

    gen = Synth(seed=0)
    gen.example()                   # one example from the training templates
    gen.dataset(500, split="heldout")   # templates the model never trains on
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from pathlib import Path

import phonenumbers as pn

from edgewise.privacy.patterns import nino_ok, ssn_ok
from edgewise.privacy.synth_data import (
    NAME_LOCALES, ADDRESS_LOCALES, PHONE_REGIONS, TITLES, BRANDS, ACRONYMS, WORD_NUMBERS, ORGS, CITY_ADJ,
    EPONYMS, CAPWORDS, CITIES, COUNTRIES, TOPICS, TEMPLATES, HELDOUT_TEMPLATES, PERSON_FRAGMENTS,
    ADDRESS_FRAGMENTS, NEGATIVE_FRAGMENTS,
)


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


@dataclass
class Example:
    text: str
    spans: list[list]  # [start, end, kind]

    def as_dict(self) -> dict:
        return {"text": self.text, "spans": self.spans}


def natural_sentences(path) -> list[str]:
    """Name-free everyday sentences (WordNet's usage examples): no capital letter past the first word,
    so no proper names. They teach that ordinary words, in any context, are not PII."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if 12 <= len(line) <= 160 and not re.search(r"(?<!^)\b[A-Z]", line.replace(" I ", " i ")):
            out.append(line)
    return out


class Synth:
    """natural: optional plain sentences (see natural_sentences) mixed into training examples, with
    he/she/him swapped for names, so that names appear in contexts no template has."""

    def __init__(self, seed: int = 0, natural: list[str] | None = None):
        from faker import Faker  # here, not at the top: faker is a test extra, and natural_sentences needs none

        self.natural = natural or []
        self.rng = random.Random(seed)
        self._fakers: dict[str, "Faker"] = {}
        self._Faker = Faker
        self._seed = seed

    def _f(self, loc: str):
        if loc not in self._fakers:
            f = self._Faker(loc)
            f.seed_instance(self._seed * 1000 + len(self._fakers))
            self._fakers[loc] = f
        return self._fakers[loc]

    # --- PII values ---

    def _name_parts(self) -> tuple[str, str]:
        loc = _weighted(self.rng, NAME_LOCALES)
        f = self._f(loc)
        if loc == "ja_JP" and self.rng.random() < 0.7:
            return f.first_romanized_name(), f.last_romanized_name()
        if loc == "zh_CN" and self.rng.random() < 0.7:
            first, last = f.romanized_name().split(" ", 1)
            return first, last
        first, last = f.first_name(), f.last_name()
        if loc in ("zh_CN", "ja_JP", "ko_KR"):  # native order, no space
            return first, last
        return first, last

    def first(self) -> str:
        return self._case(self._name_parts()[0])

    def last(self) -> str:
        return self._case(self._name_parts()[1])

    def person(self) -> str:
        first, last = self._name_parts()
        r = self.rng.random()
        if r < 0.55:
            s = f"{first} {last}"
        elif r < 0.65:
            s = f"{first} {self.rng.choice(string.ascii_uppercase)}. {last}"
        elif r < 0.72:
            s = f"{last}, {first}"
        elif r < 0.80:
            s = f"{first} {self._name_parts()[0]} {last}"
        elif r < 0.87:
            s = f"{first[0]}. {last}"
        elif r < 0.93:
            s = f"{first} {last}-{self._name_parts()[1]}"
        else:
            s = first
        return self._case(s)

    def _case(self, s: str) -> str:
        r = self.rng.random()
        if r < 0.04:
            return s.upper()
        if r < 0.08:
            return s.lower()
        return s

    def address(self) -> str:
        if self.rng.random() < 0.35:  # a real city after the street: Faker's cities are invented
            loc = _weighted(self.rng, ADDRESS_LOCALES)
            post = self._f(loc).postcode() + " " if self.rng.random() < 0.7 else ""
            return self.street() + self.rng.choice([", ", ", ", " ", "\n"]) + post + self.rng.choice(CITIES)
        for _ in range(20):
            loc = _weighted(self.rng, ADDRESS_LOCALES)
            a = self._f(loc).address()
            if re.search(r"\b(?:FPO|APO|DPO|PSC|USNS|USNV|USS|USCGC|PO Box)\b", a):
                continue
            lines = [x.strip() for x in a.split("\n") if x.strip()]
            sep = self.rng.choice([", ", ", ", ", ", "\n", " ", " - "])
            return sep.join(lines)
        return "1 Main Street, Springfield"

    def street(self) -> str:
        loc = _weighted(self.rng, ADDRESS_LOCALES)
        return self._f(loc).street_address()

    def email(self) -> str:
        return self._f(self.rng.choice(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"])).email()

    def phone(self) -> str:
        region = self.rng.choice(PHONE_REGIONS)
        for _ in range(50):
            ex = pn.example_number_for_type(region, self.rng.choice([pn.PhoneNumberType.MOBILE,
                                                                    pn.PhoneNumberType.FIXED_LINE]))
            if ex is None:
                continue
            nat = str(ex.national_number)
            keep = self.rng.randint(2, 4)
            nat = nat[:keep] + "".join(self.rng.choice("0123456789") for _ in nat[keep:])
            num = pn.PhoneNumber(country_code=ex.country_code, national_number=int(nat))
            if pn.is_valid_number(num):
                fmt = self.rng.choice([pn.PhoneNumberFormat.INTERNATIONAL, pn.PhoneNumberFormat.INTERNATIONAL,
                                       pn.PhoneNumberFormat.NATIONAL, pn.PhoneNumberFormat.E164])
                return pn.format_number(num, fmt)
        return "+44 20 7946 0958"

    def card(self) -> str:
        n = self._f("en_US").credit_card_number()
        if len(n) == 16 and self.rng.random() < 0.6:
            sep = self.rng.choice([" ", "-"])
            n = sep.join(n[i:i + 4] for i in range(0, 16, 4))
        return n

    def iban(self) -> str:
        loc = self.rng.choice(["de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "en_GB", "pl_PL", "pt_PT", "fi_FI"])
        s = self._f(loc).iban()
        if self.rng.random() < 0.5:
            s = " ".join(s[i:i + 4] for i in range(0, len(s), 4))
        return s

    def ssn(self) -> str:
        while True:
            s = self._f("en_US").ssn()
            if ssn_ok(s.replace("-", "")):
                return s if self.rng.random() < 0.85 else s.replace("-", " ")

    def nino(self) -> str:
        while True:
            s = (self.rng.choice("ABCEGHJKLMNOPRSTWXYZ") + self.rng.choice("ABCEGHJKLMNPRSTWXYZ")
                 + "".join(self.rng.choice("0123456789") for _ in range(6)) + self.rng.choice("ABCD"))
            if nino_ok(s):
                return s if self.rng.random() < 0.5 else f"{s[:2]} {s[2:4]} {s[4:6]} {s[6:8]} {s[8]}"

    # --- negatives ---

    def order(self) -> str:
        r = self.rng
        return r.choice([f"#{r.randint(10000, 99999999)}", f"ORD-{r.randint(2019, 2026)}-{r.randint(1000, 999999)}",
                         f"INV-{r.randint(100, 99999):05d}",
                         f"{r.choice(string.ascii_uppercase)}{r.randint(100000, 9999999)}",
                         f"{r.randint(1000000000, 9999999999)}", f"TCK-{r.randint(1000, 99999)}",
                         f"{r.choice(['AB', 'LH', 'BA', 'UA', 'EK'])}{r.randint(10, 9999)}"])

    def version(self) -> str:
        r = self.rng
        return r.choice([f"v{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 40)}",
                         f"{r.randint(1, 5)}.{r.randint(0, 9)}",
                         f"{r.randint(1, 30)}.{r.randint(0, 12)}.{r.randint(0, 9)}-rc{r.randint(1, 4)}",
                         f"build {r.randint(1000, 99999)}", f"10.0.{r.randint(10000, 22631)}"])

    def date(self) -> str:
        f = self._f("en_US")
        d = f.date_between("-5y", "+1y")
        return self.rng.choice([d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%B %d, %Y"), d.strftime("%d %b %Y"),
                                d.strftime("%d.%m.%Y"), d.strftime("%m/%d/%y"), d.strftime("%A"), d.strftime("%B %Y")])

    def price(self) -> str:
        r = self.rng
        v = r.choice([r.randint(1, 99), r.randint(100, 9999), r.randint(10000, 2000000)])
        cents = r.choice(["", f".{r.randint(0, 99):02d}"])
        return r.choice([f"${v:,}{cents}", f"€{v}{cents}", f"£{v:,}{cents}", f"{v}{cents} EUR", f"{v:,} USD",
                         f"¥{v}"])

    def org(self) -> str:
        return self._f(self.rng.choice(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"])).company()

    def fill(self, template: str) -> Example:
        lower = template.startswith("chat:")
        if lower:
            template = template[5:]
        out, spans, pos = [], [], 0
        for m in re.finditer(r"\{(\w+)\}", template):
            out.append(template[pos:m.start()])
            pos = m.end()
            start = sum(map(len, out))
            slot = m.group(1)
            value, kind = self._slot(slot)
            if slot == "T":  # title + surname: only the surname is PII
                title, name = value
                out.append(title + " ")
                start += len(title) + 1
                value = name
            out.append(value)
            if kind:
                spans.append([start, start + len(value), kind])
        out.append(template[pos:])
        text = "".join(out)
        if lower and self.rng.random() < 0.35 and len(text.lower()) == len(text):
            text = text.lower()
        return Example(text, spans)

    def _slot(self, slot: str):
        r = self.rng
        table = {
            "P": lambda: (self.person(), "person"), "F": lambda: (self.first(), "person"),
            "L": lambda: (self.last(), "person"),
            "T": lambda: ((r.choice(TITLES), self.last() if r.random() < 0.7 else self.person()), "person"),
            "A": lambda: (self.address(), "street_address"), "S": lambda: (self.street(), "street_address"),
            "E": lambda: (self.email(), "email"), "PH": lambda: (self.phone(), "phone"),
            "CC": lambda: (self.card(), "credit_card"), "IB": lambda: (self.iban(), "iban"),
            "IP": lambda: (self._f("en_US").ipv4(), "ipv4"), "IP6": lambda: (self._f("en_US").ipv6(), "ipv6"),
            "SSN": lambda: (self.ssn(), "us_ssn"), "NINO": lambda: (self.nino(), "uk_nino"),
            "ORG": lambda: (self.org() if r.random() < 0.6 else r.choice(ORGS), None),
            "BR": lambda: (r.choice(BRANDS) if r.random() < 0.75 else r.choice(WORD_NUMBERS), None),
            "ACR": lambda: (r.choice(ACRONYMS), None),
            "CITY": lambda: (r.choice(CITIES), None), "CTRY": lambda: (r.choice(COUNTRIES), None),
            "CADJ": lambda: (r.choice(CITY_ADJ), None), "EPO": lambda: (r.choice(EPONYMS), None),
            "CAP": lambda: (r.choice(CAPWORDS) if r.random() < 0.85 else r.choice(ACRONYMS), None),
            "ORD": lambda: (self.order(), None),
            "VER": lambda: (self.version(), None), "DATE": lambda: (self.date(), None),
            "PRICE": lambda: (self.price(), None),
            "NUM": lambda: (str(r.choice([r.randint(2, 20), r.randint(20, 5000)])), None),
            "TOPIC": lambda: (r.choice(TOPICS), None),
        }
        return table[slot]()

    def _natural(self) -> Example:
        text = self.rng.choice(self.natural)
        spans = []
        m = re.search(r"\b(he|she|him)\b", text)
        if m and self.rng.random() < 0.7:
            name = self.person() if self.rng.random() < 0.6 else self.first()
            text = text[:m.start()] + name + text[m.end():]
            spans.append([m.start(), m.start() + len(name), "person"])
        elif self.rng.random() < 0.15:
            addr = self.address() if self.rng.random() < 0.5 else self.street()
            lead = self.rng.choice([" at ", " - ", ", ", " near ", " on "])
            spans.append([len(text) + len(lead), len(text) + len(lead) + len(addr), "street_address"])
            text = text + lead + addr
        if self.rng.random() < 0.6 and not spans or (spans and spans[0][0] > 0 and self.rng.random() < 0.6):
            text = text[0].upper() + text[1:]
        if self.rng.random() < 0.5:
            text += self.rng.choice([".", ".", "!", "?"])
        return Example(text, spans)

    def example(self, split: str = "train") -> Example:
        if split == "train" and self.natural and self.rng.random() < 0.3:
            parts = [self._natural() for _ in range(self.rng.randint(1, 4))]
            if self.rng.random() < 0.3:
                parts.append(self.fill(self.rng.choice(PERSON_FRAGMENTS + ADDRESS_FRAGMENTS)))
            self.rng.shuffle(parts)
        elif split == "train" and self.rng.random() < 0.5:
            pools = [PERSON_FRAGMENTS, ADDRESS_FRAGMENTS, NEGATIVE_FRAGMENTS, NEGATIVE_FRAGMENTS]
            parts = [self.fill(self.rng.choice(self.rng.choice(pools))) for _ in range(self.rng.randint(1, 4))]
            if self.rng.random() < 0.1:  # chat-style: all lower case
                parts = [Example(p.text.lower(), p.spans) if len(p.text.lower()) == len(p.text) else p for p in parts]
        else:
            pool = TEMPLATES if split == "train" else HELDOUT_TEMPLATES
            n = 1 if self.rng.random() < 0.7 else 2
            parts = [self.fill(self.rng.choice(pool)) for _ in range(n)]
        text, spans = "", []
        for i, ex in enumerate(parts):
            if i:
                text += self.rng.choice(["\n\n", " ", "\n"])
            spans += [[a + len(text), b + len(text), k] for a, b, k in ex.spans]
            text += ex.text
        return Example(text, spans)

    def dataset(self, n: int, split: str = "train") -> list[Example]:
        return [self.example(split) for _ in range(n)]
