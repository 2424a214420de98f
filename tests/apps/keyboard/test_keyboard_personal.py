"""The personal store: it learns, it personalises, it exports, it forgets for real, it survives kill -9, and
nothing it does opens a network connection."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from edgewise.apps.keyboard import KeyboardConfig, KeyboardEngine, PersonalStore

PHRASE = "my cat is called Zorblax"


def test_learn_and_probabilities(tmp_path):
    s = PersonalStore(tmp_path / "p.sqlite")
    assert s.total_words == 0 and s.probabilities("my cat is", "") == {}
    for _ in range(3):
        s.learn_text(PHRASE + ". It was late.")
    probs = s.probabilities("my cat is called ", "")
    assert max(probs, key=probs.get) == "zorblax"
    assert s.display("zorblax") == "Zorblax"
    assert s.total_words == 3 * 8
    # The in-memory mirror, updated in place by each commit, equals what a fresh reader loads from disk.
    assert PersonalStore(s.path).probabilities("my cat is called ", "") == probs
    assert oct(os.stat(s.path).st_mode & 0o777) == "0o600"  # what a person types is private


def test_engine_learns_a_new_word(keyboard_lm, tmp_path):
    store = PersonalStore(tmp_path / "p.sqlite")
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=48, max_word_tokens=10), personal=store)
    assert "Zorblax" not in eng.suggest("my cat is called ", "", k=3)
    for _ in range(5):
        eng.learn("my cat is called ", "Zorblax")
        eng.learn("my cat is ", "called")
    assert eng.suggest("my cat is called ", "")[0] == "Zorblax"
    assert eng.suggest("my cat is called ", "zo")[0] == "Zorblax"
    # A second process (another store handle) sees the same learning: reads reload after another commit.
    other = PersonalStore(tmp_path / "p.sqlite")
    other.learn("hello ", "Quibbleflux")
    assert store.display("quibbleflux") == "Quibbleflux"


def test_export_and_forget_wipes_the_bytes(tmp_path):
    path = tmp_path / "p.sqlite"
    s = PersonalStore(path)
    for _ in range(4):
        s.learn_text("Quibbleflux met Zorblax at the station.")
    data = json.loads(s.export_json())
    assert data["format"] == "edgewise-keyboard-personal" and data["total_words"] == 24
    assert {"word": "Zorblax", "count": 4} == {k: v for k, v in
                                               next(w for w in data["words"] if w["word"] == "Zorblax").items()
                                               if k in ("word", "count")}
    assert any(g["history"] == ["met"] and g["word"] == "zorblax" for g in data["ngrams"])
    s.forget()
    assert s.total_words == 0 and s.export()["words"] == [] and s.export()["ngrams"] == []
    s.close()
    for f in tmp_path.iterdir():  # the database, its WAL and shared-memory files
        raw = f.read_bytes().lower()
        assert b"zorblax" not in raw and b"quibbleflux" not in raw, f.name


CHILD = textwrap.dedent("""
    import sys
    from edgewise.apps.keyboard.personal import PersonalStore
    s = PersonalStore(sys.argv[1])
    start = int(sys.argv[2])
    i = start
    while True:
        # One passage = one commit of exactly 6 words, each passage with its own marker word.
        s.learn_text(f"marker{i} alpha beta gamma delta epsilon")
        print(i, flush=True)
        i += 1
""")


def _check_whole_commits(path, committed_at_least: int) -> int:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = int(conn.execute("SELECT value FROM meta WHERE key = 'total_words'").fetchone()[0])
        unigrams = conn.execute("SELECT SUM(count) FROM ngrams WHERE history = ''").fetchone()[0] or 0
        markers = conn.execute("SELECT COUNT(*) FROM ngrams WHERE history = '' AND word LIKE 'marker%'").fetchone()[0]
        bigrams = conn.execute("SELECT COUNT(*) FROM ngrams WHERE word = 'alpha' AND history LIKE 'marker%'"
                               ).fetchone()[0]
        # Whole commits only: every counter agrees on the number of passages.
        assert total == unigrams == 6 * markers
        assert bigrams == markers
        assert conn.execute("SELECT count FROM ngrams WHERE history = 'gamma' AND word = 'delta'"
                            ).fetchone()[0] == markers
        assert markers >= committed_at_least  # every commit the writer reported is still there
        return markers
    finally:
        conn.close()


def test_kill_9_in_the_middle_of_learning_never_corrupts(tmp_path):
    path = str(tmp_path / "p.sqlite")
    done = 0
    for round_, wait in enumerate((0.3, 0.05, 0.7)):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, path, str(10**7 * round_)], stdout=subprocess.PIPE,
                                text=True)
        reported = 0
        t0 = time.monotonic()
        while reported < 20 and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if not line:
                break
            reported += 1
        time.sleep(wait)  # let it keep hammering, then kill it wherever it is
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert reported >= 20, "the writer never got going"
        done = _check_whole_commits(path, done + reported)
    store = PersonalStore(path)  # and the store opens and still works
    store.learn("", "after")
    assert store.integrity() == "ok"


def test_no_network_while_suggesting_and_learning(keyboard_lm, tmp_path, block_network):
    store = PersonalStore(tmp_path / "p.sqlite")
    eng = KeyboardEngine(keyboard_lm, KeyboardConfig(forwards_per_key=8, max_word_tokens=10), personal=store)
    text = "The quick brown fox jumps over the lazy dog. "
    for i in range(1, len(text) + 1):
        eng.suggest(text[:i])
    for w in text.split():
        eng.learn("The quick ", w.strip("."))
    store.export_json()
    assert block_network == []
