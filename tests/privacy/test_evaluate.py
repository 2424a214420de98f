"""The recall/precision scorer, and the targets of issue 13 measured on the hand-written set."""

from pathlib import Path

import pytest

from edgewise.errors import EdgewiseError
from edgewise.privacy import pii
from edgewise.privacy.evaluate import Labelled, load_labelled, score
from edgewise.privacy.pii import Entity

HAND = Path(__file__).resolve().parents[1] / "data" / "pii_handwritten.jsonl"
# Issue 13's targets. Overall precision measured 0.900 (262/291) with the committed model on this machine; the
# test allows one more false span, since int8 kernels differ slightly between CPUs (AVX2, AVX-512, ARM).
PERSON_RECALL = ADDRESS_RECALL = 0.90
OVERALL_PRECISION = 0.89


def test_caught_means_every_letter_and_digit_is_covered():
    row = Labelled("call Anna Lee at 12 Oak St", [(5, 13, "person"), (17, 26, "street_address")])
    t = score([row], lambda text: [Entity("person", 5, 9, "Anna"), Entity("phone", 17, 26, "12 Oak St")])
    assert (t["person"].caught, t["person"].gold) == (0, 1)  # "Lee" still leaks
    assert t["street_address"].caught == 1  # redacted, even if as the wrong kind
    assert (t["phone"].pred, t["phone"].pred_ok) == (1, 0)  # wrong kind: a per-kind false positive
    assert (t["all"].pred, t["all"].pred_ok) == (2, 2)  # but it overlaps PII: fine overall


def test_load_labelled_finds_every_occurrence(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"text": "Bo met Bo", "pii": [["person", "Bo"]]}\n{"text": "none"}\n')
    rows = load_labelled(p)
    assert rows[0].gold == [(0, 2, "person"), (7, 9, "person")] and rows[1].gold == []
    p.write_text('{"text": "Bo", "pii": [["person", "Al"]]}\n')
    with pytest.raises(EdgewiseError, match="not in the text"):
        load_labelled(p)


def test_hand_written_set_shape():
    rows = load_labelled(HAND)
    assert len(rows) >= 150
    assert sum(1 for r in rows if not r.gold) >= 40  # prompts with no PII at all


def test_targets_on_the_hand_written_set():  # the tagger ships in the package: this never skips
    t = score(load_labelled(HAND), pii.detect)
    for kind in ("email", "phone", "credit_card", "iban", "ip", "national_id"):
        assert t[kind].recall >= 0.95, (kind, t[kind].misses)
    assert t["person"].recall >= PERSON_RECALL, t["person"].misses
    assert t["street_address"].recall >= ADDRESS_RECALL, t["street_address"].misses
    assert t["all"].precision >= OVERALL_PRECISION, {g: c.false for g, c in t.items() if c.false}
