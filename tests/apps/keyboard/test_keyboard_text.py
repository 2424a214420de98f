"""Where the current word starts, casing, and Presage's word units (checked against presage_simulator itself)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from edgewise.apps.keyboard.text import apply_case, presage_config, presage_units, split_context

PRESAGE = shutil.which("presage_simulator")
TEXTS = {
    "plain": "The cat sat on the mat. The dog sat on the log.\n",
    "no-newline": "no trailing newline here",
    "hard": ("\"Don't worry,\" she said -- it's only 3.14% of the café's budget (roughly $2,000).\n"
             "Well-known facts: e-mail isn't snail_mail; naïve users' \"quotes\" aren't 'always' right!!\n\n"
             "   Tabs\tand   spaces... end\n"),
    "leading-punct": "...and then -- nothing.",
}


def run_presage(path, tmp_path) -> dict[str, int]:
    """ki, ks, kn as presage_simulator prints them, with a read-only n-gram config and a throwaway HOME."""
    cfg = tmp_path / "presage.xml"
    cfg.write_text(presage_config("/usr/share/presage/database_en.db", suggestions=3, repeat=True))
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([PRESAGE, "-q", "-c", str(cfg), str(path)], capture_output=True, text=True, env=env,
                         timeout=120).stdout
    return {k: int(v) for k, v in re.findall(r"^(ki|ks|kn) : (\d+)$", out, re.M)}


def our_kn(text: str) -> int:
    units, trailing = presage_units(text)
    return sum(u.n_bytes + 1 for u in units) + trailing


@pytest.mark.skipif(PRESAGE is None, reason="presage is not installed (apt-get install -y presage)")
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_kn_equals_presage_simulator(name, tmp_path):
    path = tmp_path / f"{name}.txt"
    path.write_bytes(TEXTS[name].encode("utf-8"))
    assert our_kn(TEXTS[name]) == run_presage(path, tmp_path)["kn"]


def test_presage_units_split_like_forward_tokenizer():
    units, trailing = presage_units("I don't-know, 3.14!")
    assert [u.word for u in units] == ["I", "don", "t", "know", "3", "14"]
    assert trailing  # the "!" after the last word is one more (empty) simulated word
    assert presage_units("café")[0][0].n_bytes == 5  # bytes, as std::string::size() counts


@pytest.mark.parametrize("context, partial, expect", [
    ("The cat sat on the ", "", ("The cat sat on the", " ", "", False)),
    ("The cat sat on the ", "ma", ("The cat sat on the", " ", "ma", False)),
    ("The cat sat on the ma", "", ("The cat sat on the", " ", "ma", False)),
    ("I don'", "", ("I", " ", "don'", False)),
    ("I don", "'", ("I", " ", "don'", False)),
    ("It is late. ", "", ("It is late.", " ", "", True)),
    ("", "", ("", "", "", True)),
    ("Hello,", "", ("Hello,", " ", "", False)),
    ("He said \"", "", ("He said \"", "", "", False)),
    ("first line\n", "se", ("first line\n", "", "se", True)),
    ("(", "hel", ("(", "", "hel", True)),  # an opening bracket at the start still starts a sentence
])
def test_split_context(context, partial, expect):
    s = split_context(context, partial)
    assert (s.committed, s.sep, s.prefix, s.sentence_start) == expect


@pytest.mark.parametrize("candidate, prefix, start, shown", [
    ("the", "", False, "the"),
    ("the", "", True, "The"),
    ("the", "th", True, "The"),
    ("Paris", "pa", False, "Paris"),
    ("capital", "CA", False, "CAPITAL"),
    ("don't", "don'", False, "don't"),
])
def test_apply_case(candidate, prefix, start, shown):
    assert apply_case(candidate, prefix, start) == shown
