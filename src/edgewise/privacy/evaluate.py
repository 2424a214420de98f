"""Recall and precision of PII detection per kind, on labelled text.

A gold value counts as caught when every letter and digit of it lies inside some detected span, of any
kind: what matters for privacy is that none of it reaches the cloud, and a house number redacted as a
phone still hides it. A detected span is correct when it overlaps a gold value of its own kind group
(per-kind precision) or of any kind (overall precision).

    rows = load_labelled("tests/data/pii_handwritten.jsonl")
    table = score(rows, lambda text: pii.detect(text))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from edgewise.errors import EdgewiseError

# Kinds that the targets group together.
GROUP = {"ipv4": "ip", "ipv6": "ip", "us_ssn": "national_id", "uk_nino": "national_id"}
ORDER = ("email", "phone", "credit_card", "iban", "ip", "national_id", "person", "street_address")


def group(kind: str) -> str:
    return GROUP.get(kind, kind)


@dataclass
class Labelled:
    text: str
    gold: list[tuple[int, int, str]]  # (start, end, kind)


@dataclass
class Counts:
    gold: int = 0
    caught: int = 0
    pred: int = 0
    pred_ok: int = 0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.caught / self.gold if self.gold else None

    @property
    def precision(self) -> float | None:
        return self.pred_ok / self.pred if self.pred else None


def load_labelled(path: str | Path) -> list[Labelled]:
    """JSONL, one prompt a line: {"text": ..., "pii": [[kind, value], ...]}; every occurrence of a value is gold."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        text, gold = obj["text"], []
        for kind, value in obj.get("pii", []):
            start = text.find(value)
            if start < 0:
                raise EdgewiseError(f"{path}:{n}: {kind} value {value!r} is not in the text")
            while start >= 0:
                gold.append((start, start + len(value), kind))
                start = text.find(value, start + 1)
        rows.append(Labelled(text, gold))
    return rows


def _alnum_positions(text: str, a: int, b: int) -> list[int]:
    return [i for i in range(a, b) if text[i].isalnum()]


def score(rows: Iterable[Labelled], detect: Callable[[str], Iterable], kinds: Iterable[str] | None = None
          ) -> dict[str, Counts]:
    """Counts per kind group, plus "all" (overall precision over every detected span).
    detect(text) yields objects with .kind, .start, .end (pii.Entity)."""
    table: dict[str, Counts] = {g: Counts() for g in ORDER}
    table["all"] = Counts()
    wanted = None if kinds is None else {group(k) for k in kinds}
    for row in rows:
        preds = [p for p in detect(row.text) if wanted is None or group(p.kind) in wanted]
        covered = set()
        for p in preds:
            covered.update(range(p.start, p.end))
        for a, b, kind in row.gold:
            g = group(kind)
            if wanted is not None and g not in wanted:
                continue
            c = table.setdefault(g, Counts())
            c.gold += 1
            table["all"].gold += 1
            if all(i in covered for i in _alnum_positions(row.text, a, b)):
                c.caught += 1
                table["all"].caught += 1
            else:
                c.misses.append(row.text[a:b])
        for p in preds:
            g = group(p.kind)
            c = table.setdefault(g, Counts())
            c.pred += 1
            table["all"].pred += 1
            same = any(p.start < b and a < p.end and group(k) == g for a, b, k in row.gold)
            anyk = same or any(p.start < b and a < p.end for a, b, _ in row.gold)
            c.pred_ok += same
            table["all"].pred_ok += anyk
            if not same:
                c.false.append(row.text[p.start:p.end])
    return table


def format_table(tables: dict[str, dict[str, Counts]]) -> str:
    """A markdown table: one row per kind group, recall and precision per named column set."""
    names = list(tables)
    head = "| kind | " + " | ".join(f"{n} recall | {n} precision" for n in names) + " |"
    sep = "|---|" + "---|---|" * len(names)
    lines = [head, sep]
    groups = [g for g in (*ORDER, "all") if any(g in t and (t[g].gold or t[g].pred) for t in tables.values())]
    for g in groups:
        cells = []
        for n in names:
            c = tables[n].get(g, Counts())
            r = f"{c.recall:.3f} ({c.caught}/{c.gold})" if c.gold else "—"
            p = f"{c.precision:.3f} ({c.pred_ok}/{c.pred})" if c.pred else "—"
            cells.append(f"{r} | {p}")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
