import re

import pytest

from edgewise.errors import EdgewiseError
from edgewise.privacy import pii
from edgewise.privacy.base import register_detector
from edgewise.privacy.patterns import iban_ok, luhn_ok
from edgewise.privacy.pii import StreamRestorer, detect, redact, restore

# One value per kind, each known-valid: Luhn-valid test card numbers, IBANs from the ISO 13616 examples.
SAMPLES = {
    "email": "jane.doe+work@example.co.uk",
    "phone": "+44 20 7946 0958",
    "credit_card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ipv4": "192.168.10.254",
    "ipv6": "2001:db8::8a2e:370:7334",
}


# The pattern kinds: these tests pin the patterns; the name/address tagger has tests of its own.
PATTERN_KINDS = ("email", "iban", "credit_card", "us_ssn", "uk_nino", "ipv6", "ipv4", "phone")


def kinds(text):
    return [(e.kind, e.value) for e in detect(text, PATTERN_KINDS)]


@pytest.mark.parametrize("kind,value", SAMPLES.items())
def test_each_kind_is_found_in_a_sentence(kind, value):
    assert kinds(f"Please note {value}, thanks.") == [(kind, value)]


@pytest.mark.parametrize("value", ["5500-0000-0000-0004", "378282246310005", "6011111111111117"])
def test_more_valid_cards(value):
    assert kinds(f"card {value} ok") == [("credit_card", value)]


def test_luhn_and_iban_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and iban_ok("NL91 ABNA 0417 1643 00")
    assert not iban_ok("GB82WEST12345698765433")  # one digit off fails mod-97
    assert not iban_ok("DE89370400440532013")  # right checksum family, wrong length for DE


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112 expired",  # Luhn fails
    "iban DE89 3704 0044 0532 0130 01 is wrong",  # mod-97 fails
    "iban GB82WEST12345698765433",  # mod-97 fails
    "ip 999.12.1.1 is not an address",
    "ip 10.0.0 is incomplete",
    "version 1.2.3 and std::vector and 12:30:45",
    "in 2024 it cost 12.50 on 2024-01-15, order 123456",
    "no pii here at all",
    "user@localhost is not routable mail",
])
def test_negatives(text):
    assert detect(text, PATTERN_KINDS) == []


def test_overlaps_go_to_the_most_specific_kind():
    # A card number is also a long digit run the phone pattern would take.
    assert kinds("pay 4111111111111111 now") == [("credit_card", "4111111111111111")]
    assert kinds("ip ::ffff:10.0.0.1 mapped") == [("ipv6", "::ffff:10.0.0.1")]


def test_phone_shapes():
    assert kinds("call (415) 555-2671") == [("phone", "(415) 555-2671")]
    assert kinds("call 555-1234 today") == [("phone", "555-1234")]
    assert kinds("call 020 7946 0958") == [("phone", "020 7946 0958")]


def test_redact_restore_round_trip_every_kind():
    text = " / ".join(f"{k}: {v}" for k, v in SAMPLES.items()) + f" / again {SAMPLES['email']}"
    red, mapping = redact(text, PATTERN_KINDS)
    for v in SAMPLES.values():
        assert v not in red
    assert red.count("[EMAIL_1]") == 2  # the same value keeps the same placeholder
    assert set(mapping) == {"[EMAIL_1]", "[PHONE_1]", "[CREDIT_CARD_1]", "[IBAN_1]", "[IPV4_1]", "[IPV6_1]"}
    assert restore(red, mapping) == text


def test_placeholders_are_stable_and_never_collide_with_user_text():
    red, mapping = redact("a@b.io, c@d.io, a@b.io; the template says [EMAIL_1]", PATTERN_KINDS)
    assert red == "[EMAIL_2], [EMAIL_3], [EMAIL_2]; the template says [EMAIL_1]"
    assert restore(red, mapping) == "a@b.io, c@d.io, a@b.io; the template says [EMAIL_1]"


def test_restore_tolerates_dropped_brackets():
    _, mapping = redact("write to a@b.io")
    assert restore("Sure, I wrote to EMAIL_1.", mapping) == "Sure, I wrote to a@b.io."
    assert restore("EMAIL_10 stays", mapping) == "EMAIL_10 stays"


def test_stream_restorer_joins_split_placeholders():
    red, mapping = redact("mail a@b.io and x@y.io")
    r = StreamRestorer(mapping)
    out = "".join(r.feed(c) for c in [red[i:i + 3] for i in range(0, len(red), 3)]) + r.flush()
    assert out == "mail a@b.io and x@y.io"
    r = StreamRestorer(mapping)
    assert r.feed("array[0") == "array"  # "[0" could start a placeholder: held back
    assert r.feed("] = 1") == "[0] = 1"


def test_kinds_filter_and_unknown_kind():
    assert kinds("a@b.io 192.168.0.1") == [("email", "a@b.io"), ("ipv4", "192.168.0.1")]
    assert [e.kind for e in detect("a@b.io 192.168.0.1", kinds=["ipv4"])] == ["ipv4"]
    with pytest.raises(EdgewiseError, match="unknown PII kind"):
        detect("x", kinds=["ssn"])


def test_a_kind_without_a_detector_is_refused(monkeypatch):
    monkeypatch.setitem(pii.LABELS, "passport", "PASSPORT")  # a known label with no detector registered
    with pytest.raises(EdgewiseError, match="no detector for PII kind 'passport'"):
        from edgewise.route.policies.privacy import PrivacyConfig
        PrivacyConfig(kinds=("passport",))


def _employee_ids(text):
    for m in re.finditer(r"\bEMP-\d{6}\b", text):
        yield pii.Entity("employee_id", m.start(), m.end(), m.group())


def test_detector_hook_adds_a_kind():
    if "employee_id" not in pii.DETECTORS:
        register_detector("employee_id")(_employee_ids)

    red, mapping = redact("ticket for EMP-123456 from a@b.io", ["employee_id", "email"])
    assert red == "ticket for [EMPLOYEE_ID_1] from [EMAIL_1]"
    assert restore(red, mapping) == "ticket for EMP-123456 from a@b.io"
