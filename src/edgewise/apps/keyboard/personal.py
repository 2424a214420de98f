"""What the keyboard learns about its user: word n-gram counts in a local SQLite file, nothing else.

The file is written in WAL mode and every learned word (or passage) is one transaction, so a crash or a
kill -9 leaves either the whole update or none of it. Reads go to an in-memory mirror that reloads when another
connection commits (PRAGMA data_version), so suggestions never wait on the disk.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edgewise.apps.keyboard.text import SENTENCE_BREAK as _SENTENCE_BREAK
from edgewise.apps.keyboard.text import WORDS as _WORDS
from edgewise.errors import EdgewiseError
from edgewise.home import edgewise_home

SCHEMA_VERSION = 1
ORDER = 3  # trigrams: two words of history

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ngrams (
    history TEXT NOT NULL,       -- the previous 0, 1 or 2 words, lower case, space-joined
    word TEXT NOT NULL,          -- lower case
    count INTEGER NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (history, word)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spellings (
    word TEXT PRIMARY KEY,       -- lower case
    display TEXT NOT NULL        -- as the user last typed it ("Paris", "iPhone")
) WITHOUT ROWID;
"""


def default_store_path() -> Path:
    return edgewise_home() / "keyboard" / "personal.sqlite"


def history_words(context: str, n: int = ORDER - 1) -> tuple[str, ...]:
    """The last n words of the current sentence, lower case (the user model's history)."""
    # The last 256 characters hold the last two words; splitting a whole document per keystroke would not.
    tail = _SENTENCE_BREAK.split(context[-256:].replace("\u2019", "'"))[-1]
    return tuple(w.lower() for w in _WORDS.findall(tail)[-n:]) if n else ()


@dataclass
class _Mirror:
    counts: dict  # history -> {word: count}
    totals: dict  # history -> total count
    spellings: dict  # word -> display
    total_words: int
    vocab: list  # sorted lower-case words, for prefix lookups by bisection


class PersonalStore:
    """A user n-gram model (orders 1..3, Witten-Bell interpolation) persisted in SQLite.

    path=":memory:" keeps everything in memory (used by `keyboard eval --learn`, so an evaluation never
    touches the user's real store).
    """

    def __init__(self, path: str | Path | None = None):
        self.path = str(path) if path is not None else str(default_store_path())
        if self.path != ":memory:":
            p = Path(self.path)
            p.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.chmod(p.parent, 0o700)
            except OSError:
                pass
        try:
            self.conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives a process crash or kill -9 (it is in the WAL, in the OS
            # cache); only a power cut can drop the last few. One fsync per typed word would cost milliseconds.
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA secure_delete=ON")  # forgotten words are overwritten, not just unlinked
            with self._tx():
                for stmt in _SCHEMA.strip().split(";"):
                    if stmt.strip():
                        self.conn.execute(stmt)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('total_words', '0')")
        except sqlite3.DatabaseError as e:
            raise EdgewiseError(f"cannot open the keyboard's personal store {self.path}: {e} "
                                "(run `edgewise keyboard forget` to start a fresh one)") from None
        if self.path != ":memory:":
            try:
                os.chmod(self.path, 0o600)  # what a person types is private
            except OSError:
                pass
        self._version = None
        self._mirror: _Mirror | None = None
        # One connection shared by the web server's threads: every use of it goes through this lock.
        self._lock = threading.RLock()

    # --- writing ---------------------------------------------------------------------------------------
    def _tx(self):
        return _Transaction(self.conn, getattr(self, "_lock", None))

    def learn(self, context: str, word: str) -> None:
        """Learn that `word` followed `context`: one atomic commit."""
        self.learn_words([(history_words(context), word)])

    def learn_text(self, text: str) -> int:
        """Learn every word of a passage in one atomic commit; returns the number of words learned."""
        items = []
        for sentence in _SENTENCE_BREAK.split(text.replace("\u2019", "'")):
            words = _WORDS.findall(sentence)
            for i, w in enumerate(words):
                items.append((tuple(x.lower() for x in words[max(0, i - ORDER + 1):i]), w))
        self.learn_words(items)
        return len(items)

    def learn_words(self, items: list[tuple[tuple[str, ...], str]]) -> None:
        now = time.time()
        rows = []
        for hist, word in items:
            word = word.strip()
            if not word or not _WORDS.fullmatch(word):
                continue
            low = word.lower()
            for n in range(min(len(hist), ORDER - 1) + 1):
                rows.append((" ".join(hist[len(hist) - n:]) if n else "", low, word))
        if not rows:
            return
        with self._lock:
            with self._tx():
                self.conn.executemany(
                    "INSERT INTO ngrams VALUES (?, ?, 1, ?) ON CONFLICT(history, word) "
                    "DO UPDATE SET count = count + 1, last_seen = excluded.last_seen",
                    [(h, w, now) for h, w, _ in rows])
                self.conn.executemany("INSERT OR REPLACE INTO spellings VALUES (?, ?)",
                                      [(w, d) for h, w, d in rows if h == ""])
                n_words = sum(1 for h, _, _ in rows if h == "")
                self.conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'total_words'",
                                  (n_words,))
            # Our own commit does not move data_version (only other connections' do): update the mirror in place.
            m = self._mirror
            if m is not None:
                for h, w, d in rows:
                    followers = m.counts.setdefault(h, {})
                    if h == "" and w not in followers:
                        bisect.insort(m.vocab, w)
                    followers[w] = followers.get(w, 0) + 1
                    m.totals[h] = m.totals.get(h, 0) + 1
                    if h == "":
                        m.spellings[w] = d
                m.total_words += n_words

    def forget(self) -> None:
        """Erase everything learned: rows deleted with secure_delete, the file vacuumed, the WAL truncated."""
        with self._lock:
            self._forget()

    def _forget(self) -> None:
        with self._tx():
            self.conn.execute("DELETE FROM ngrams")
            self.conn.execute("DELETE FROM spellings")
            self.conn.execute("UPDATE meta SET value = '0' WHERE key = 'total_words'")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._mirror = None

    # --- reading ---------------------------------------------------------------------------------------
    def _load(self) -> _Mirror:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> _Mirror:
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._mirror is not None and version == self._version:
            return self._mirror
        counts: dict = defaultdict(dict)
        totals: dict = defaultdict(int)
        for h, w, c in self.conn.execute("SELECT history, word, count FROM ngrams"):
            counts[h][w] = c
            totals[h] += c
        spell = dict(self.conn.execute("SELECT word, display FROM spellings"))
        total = int(self.conn.execute("SELECT value FROM meta WHERE key = 'total_words'").fetchone()[0])
        vocab = sorted(counts.get("", {}))
        self._mirror, self._version = _Mirror(dict(counts), dict(totals), spell, total, vocab), version
        return self._mirror

    @property
    def total_words(self) -> int:
        return self._load().total_words

    def probabilities(self, context: str, prefix: str = "", limit: int = 16) -> dict[str, float]:
        """P_user(word | last two words) for known words starting with `prefix` (lower-cased keys)."""
        with self._lock:  # the mirror is updated in place by learn_words
            return self._probabilities(context, prefix, limit)

    def _probabilities(self, context: str, prefix: str, limit: int) -> dict[str, float]:
        m = self._load()
        if not m.total_words:
            return {}
        hist = history_words(context)
        p_low = prefix.lower()
        lo = bisect.bisect_left(m.vocab, p_low)
        hi = bisect.bisect_left(m.vocab, p_low + "\U0010ffff", lo)
        uni = m.counts.get("", {})
        # Candidates: words seen after this history, plus the most frequent words with the prefix
        # (bounded, so a large store still answers in well under a millisecond).
        vocab = set(heapq.nlargest(64, m.vocab[lo:hi], key=uni.__getitem__)) if hi - lo > 64 else set(m.vocab[lo:hi])
        for n in range(1, len(hist) + 1):
            vocab.update(w for w in m.counts.get(" ".join(hist[len(hist) - n:]), {}) if w.startswith(p_low))
        if not vocab:
            return {}
        probs = {w: self._prob(m, hist, w) for w in vocab}
        best = sorted(probs.items(), key=lambda kv: -kv[1])[:limit]
        return dict(best)

    def _prob(self, m: _Mirror, hist: tuple[str, ...], w: str) -> float:
        # Witten-Bell: P(w|h) = (c(h,w) + T(h) P(w|h')) / (c(h) + T(h)), T(h) = distinct followers of h.
        uni = m.counts.get("", {})
        v = max(len(uni), 1)
        p = (uni.get(w, 0) + 1.0 / v) / (m.totals.get("", 0) + 1.0)
        for n in range(1, len(hist) + 1):
            h = " ".join(hist[len(hist) - n:])
            followers = m.counts.get(h)
            if not followers:
                continue
            t = len(followers)
            p = (followers.get(w, 0) + t * p) / (m.totals[h] + t)
        return p

    def confidence(self, context: str) -> float:
        """How much the user's own history knows about this context, in [0, 1): grows with evidence."""
        with self._lock:
            m = self._load()
            hist = history_words(context)
            seen = m.totals.get(" ".join(hist[-1:]), 0) if hist else 0
            return 1.0 - math.exp(-(m.total_words / 200.0 + seen / 2.0))

    def display(self, word_lower: str) -> str | None:
        return self._load().spellings.get(word_lower)

    # --- export ----------------------------------------------------------------------------------------
    def export(self) -> dict:
        with self._lock:
            rows = self.conn.execute("SELECT history, word, count, last_seen FROM ngrams ORDER BY history, word"
                                     ).fetchall()
            spell = dict(self.conn.execute("SELECT word, display FROM spellings"))
        words, ngrams = [], []
        for h, w, c, t in rows:
            entry = {"word": spell.get(w, w) if not h else w, "count": c, "last_seen": round(t, 3)}
            if h:
                ngrams.append({"history": h.split(" "), **entry})
            else:
                words.append(entry)
        return {"format": "edgewise-keyboard-personal", "version": SCHEMA_VERSION, "path": self.path,
                "total_words": self._load().total_words, "words": words, "ngrams": ngrams}

    def export_json(self) -> str:
        return json.dumps(self.export(), indent=2, ensure_ascii=False)

    def integrity(self) -> str:
        with self._lock:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.conn.close()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error: one learned update is all or nothing."""

    def __init__(self, conn: sqlite3.Connection, lock=None):
        self.conn = conn
        self.lock = lock or threading.RLock()

    def __enter__(self):
        self.lock.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
        return False
