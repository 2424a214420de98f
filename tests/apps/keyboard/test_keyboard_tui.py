"""The typing session shared by the terminal UI and the web page, its key handling, and the real terminal UI
driven through a pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine, PersonalStore
from edgewise.apps.keyboard.session import TypingSession, apply_suggestion
from edgewise.apps.keyboard.tui import TAB, handle_key, render


@pytest.mark.parametrize("text, word, out", [
    ("The quick brown f", "fox", "The quick brown fox "),
    ("The quick brown ", "fox", "The quick brown fox "),
    ("Hello,", "world", "Hello, world "),
    ("I don'", "don't", "I don't "),
    ("", "The", "The "),
])
def test_apply_suggestion(text, word, out):
    assert apply_suggestion(text, word) == out


def test_session_learns_each_finished_word_once(keyboard_lm, tmp_path):
    store = PersonalStore(tmp_path / "p.sqlite")
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10), personal=store)
    s = TypingSession(eng)
    learned = []
    for ch in "Zorblax eats":
        learned += s.set_text(s.text + ch)
    assert learned == ["Zorblax"]
    learned += s.set_text(s.text[:-1])  # a backspace teaches nothing
    learned += s.set_text(s.text + "s.")
    assert learned == ["Zorblax", "eats"]
    assert store.total_words == 2


def test_keys_type_accept_and_quit(keyboard_lm):
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10))
    s = TypingSession(eng, learn=False)
    for ch in "The quick brown f":
        assert handle_key(s, ch)
        s.suggest()
    assert s.last.words[0] == "fox"
    handle_key(s, TAB)
    assert s.text == "The quick brown fox "
    s.suggest()
    words = list(s.last.words)
    handle_key(s, "2")  # accepts the second suggestion when there is one, else types the digit
    assert s.text == "The quick brown fox " + (words[1] + " " if len(words) >= 2 else "2")
    s.set_text("The quick brown ")
    s.suggest()
    words = list(s.last.words)
    handle_key(s, "1")
    assert s.text == "The quick brown " + words[0] + " "
    handle_key(s, "7", pending_literal=True)  # Ctrl-V then a digit types it
    assert s.text.endswith("7")
    handle_key(s, "\x7f")
    assert not s.text.endswith("7")
    screen = render(s, 80)
    assert "Edgewise keyboard" in screen and "nothing leaves this machine" in screen
    assert handle_key(s, "\x04") is False  # Ctrl-D quits


def _read_until(fd, pattern: str, timeout: float) -> str:
    buf = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 65536).decode("utf-8", errors="ignore")
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if re.search(pattern, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf)):
                return buf
    raise AssertionError(f"{pattern!r} never appeared; screen so far: {buf[-600:]!r}")


def test_terminal_ui_in_a_real_pty(keyboard_lm_dir, tmp_path):
    master, slave = os.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "30", "EDGEWISE_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "edgewise", "keyboard", "--model", str(keyboard_lm_dir),
                             "--backend", "torch", "--forwards-per-key", "48", "--store", str(tmp_path / "p.sqlite")],
                            stdin=slave, stdout=slave, stderr=subprocess.DEVNULL, env=env, close_fds=True)
    os.close(slave)
    try:
        _read_until(master, r"Edgewise keyboard", 120)
        for ch in "The quick brown f":
            os.write(master, ch.encode())
        _read_until(master, r"1\s+fox", 60)  # the suggestion bar, updated by the keystrokes
        os.write(master, TAB.encode())
        os.write(master, b"\x04")  # Ctrl-D: leave, printing the text typed
        out = _read_until(master, r"The quick brown fox \s*$", 60)
        assert "The quick brown fox" in out
        proc.wait(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert PersonalStore(tmp_path / "p.sqlite").display("fox") == "fox"  # the accepted word was learned
