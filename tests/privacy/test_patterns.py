"""Structured PII: phones through libphonenumber, national IDs with their issuing rules, card issuer prefixes."""

import pytest

from edgewise.privacy.patterns import card_ok, iban_ok, nino_ok, ssn_ok
from edgewise.privacy.pii import detect

STRUCTURED = ("email", "phone", "credit_card", "iban", "ipv4", "ipv6", "us_ssn", "uk_nino")


def found(text, kinds=STRUCTURED):
    return [(e.kind, e.value) for e in detect(text, kinds)]


@pytest.mark.parametrize("value", [
    "+44 20 7946 0958", "+1 (312) 555-0148", "+49 89 12345678", "+33 6 12 34 56 78", "+91 98765 43210",
    "+234 803 123 4567", "+81 90-1234-5678", "+55 11 91234-5678", "0049 30 12345678",
])
def test_international_phones(value):
    assert found(f"reach me at {value} today") == [("phone", value)]


@pytest.mark.parametrize("text,value", [
    ("my mobile is 07911 123456", "07911 123456"),  # UK, trunk prefix 0
    ("call the Berlin office on 030 2345 6789", "030 2345 6789"),
    ("Mon numéro: 06 12 34 56 78", "06 12 34 56 78"),
    ("Chicago: (312) 555-0148", "(312) 555-0148"),  # NANP shape needs no phone word
    ("ring 0171 2345678 tomorrow", "0171 2345678"),
    ("call 555-1234 today", "555-1234"),  # local number: only with a phone word before it
])
def test_national_phones(text, value):
    assert found(text) == [("phone", value)]


@pytest.mark.parametrize("text,value", [
    ("see 555.123.4567 tomorrow", "555.123.4567"),  # 555 is no US area code: possible, not valid
    ("+1 555 123 4567 is mine", "+1 555 123 4567"),
    ("(555) 123-4567", "(555) 123-4567"),
])
def test_possible_numbers_are_redacted_without_a_phone_word(text, value):
    """Redaction errs to caution: libphonenumber's is_possible_number is enough, is_valid_number is not needed."""
    assert found(text) == [("phone", value)]


@pytest.mark.parametrize("text", ["order 555.123.4567", "ref 555-123-4567", "version 555.123.4567"])
def test_a_nearer_order_word_still_rules_a_possible_number_out(text):
    assert found(text) == []


@pytest.mark.parametrize("text", [
    "Order 4839201756 shipped",  # bare digits, no phone word
    "order #2024558812 again, not a phone",
    "Ticket 2024-558812 is blocked",
    "[2024-03-02 14:11:09] WARN",  # a timestamp
    "Population: Lagos 15 388 000, Accra 2 514 005",
    "Invoice no. 0049 1234 5678 was paid twice",
    "paid $1 249 000 for it",
    "zip 95385-0451 and 36898-6598",  # ZIP+4 look-alikes valid in Spain or Italy
    "between 2019 and 2021 we hired 1500 people",
    "dates 12.03.2024 and 03/12/2024",
])
def test_phone_lookalikes(text):
    assert "phone" not in [k for k, _ in found(text)]


def test_nearest_cue_wins():
    assert found("Phone +44 20 7946 0958, order 7125075182") == [("phone", "+44 20 7946 0958")]


def test_ssn_rules():
    assert ssn_ok("536228726") and ssn_ok("004417788")
    for bad in ("000123456", "666123456", "912345678", "123004567", "123450000", "123456789", "111111111"):
        assert not ssn_ok(bad), bad
    assert found("SSN 536-22-8726 on file") == [("us_ssn", "536-22-8726")]
    assert found("social security number 682 20 1945") == [("us_ssn", "682 20 1945")]
    assert found("SSN: 531198402.") == [("us_ssn", "531198402")]
    assert found("order 531198402 shipped") == []  # nine bare digits need an SSN word
    assert found("code 666-12-3456 and 923-45-6789") == []


def test_nino_rules():
    assert nino_ok("AB123456C") and nino_ok("jm 48 39 21 a")
    for bad in ("DA123456A", "AO123456A", "GB123456A", "ZZ123456A", "AB123456E"):
        assert not nino_ok(bad), bad
    assert found("NI number JM 48 39 21 A please") == [("uk_nino", "JM 48 39 21 A")]
    assert found("nino PB123456A") == [("uk_nino", "PB123456A")]
    assert found("test value QQ 12 34 56 C") == []


def test_card_issuer_prefixes():
    assert card_ok("4111111111111111") and card_ok("371449635398431") and card_ok("2223003122003222")
    assert card_ok("30569309025904")  # Diners, 14 digits
    assert not card_ok("9111111111111116")  # Luhn-valid, but no network issues 9...
    assert not card_ok("0000000000000000")
    assert found("Amex 3782 822463 10005 declined") == [("credit_card", "3782 822463 10005")]


def test_ibans_every_registry_country_and_case():
    assert iban_ok("NO9386011117947") and iban_ok("MT84MALT011000012345MTLCAST001S")
    assert found("pay fr7630006000011234567890189 now") == [("iban", "fr7630006000011234567890189")]
    assert not iban_ok("XX89370400440532013000")  # not in the registry
