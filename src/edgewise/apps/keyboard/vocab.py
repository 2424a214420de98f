"""The tokenizer's vocabulary seen as word pieces: which tokens start a word, which continue one, and a
prefix index over them so a keystroke finds its candidate tokens with two bisections instead of a scan."""

from __future__ import annotations

import bisect
import re
from functools import lru_cache

import numpy as np

from edgewise.runtime.backend import Tokenizer

# A token that is a whole word piece: a letter or digit, then letters, digits or apostrophes.
_WORD = re.compile(r"[^\W_](?:[^\W_]|')*")
# A continuation may also open with an apostrophe: "'t", "'re", "'s".
_CONT = re.compile(r"'?[^\W_](?:[^\W_]|')*")
_TOP = "\U0010ffff"


class PrefixIndex:
    """Token ids keyed by their lower-cased text, sorted for prefix range queries."""

    def __init__(self, pairs: list[tuple[str, int]]):
        pairs.sort()
        self.keys = [k for k, _ in pairs]
        self.ids = np.fromiter((i for _, i in pairs), dtype=np.int64, count=len(pairs))
        self.exact: dict[str, np.ndarray] = {}
        for k, i in pairs:
            self.exact.setdefault(k, [])
            self.exact[k].append(i)  # type: ignore[union-attr]
        self.exact = {k: np.asarray(v, dtype=np.int64) for k, v in self.exact.items()}

    def starting_with(self, p: str) -> np.ndarray:
        """Ids of tokens whose key starts with p (all of them for p == "")."""
        if not p:
            return self.ids
        lo = bisect.bisect_left(self.keys, p)
        hi = bisect.bisect_left(self.keys, p + _TOP, lo)
        return self.ids[lo:hi]

    def proper_prefixes_of(self, p: str) -> list[np.ndarray]:
        """Ids of tokens whose key is a non-empty proper prefix of p (they need more tokens to cover p)."""
        return [self.exact[p[:j]] for j in range(1, len(p)) if p[:j] in self.exact]


class TokenIndex:
    """Word-piece classes and prefix indexes for one tokenizer, built once (about 0.2 s for 49k tokens).

    Keys keep the leading space: " sat" starts a word after a space, and a bare " " token (small vocabularies
    spell " fox" as " " + "fox") is a start that still needs its word.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.strings = token_strings(tokenizer)
        start_sp, start_nosp, cont = [], [], []
        special = set(getattr(tokenizer.hf, "all_special_ids", []) or [])
        for i, s in enumerate(self.strings):
            if i in special or not s or "\ufffd" in s:
                continue
            low = s.lower()
            if s == " " or s[0] == " " and _WORD.fullmatch(s, 1):
                start_sp.append((low, i))
            elif _CONT.fullmatch(s) or s == "'":
                cont.append((low, i))
                if s[0] != "'":
                    start_nosp.append((low, i))
        self.start_sp = PrefixIndex(start_sp)  # " word" (or a bare " "): starts a word after a space
        self.start_nosp = PrefixIndex(start_nosp)  # "word": starts a word glued to the text, or continues one
        self.cont = PrefixIndex(cont)  # continues the word being built ("ur", "'t", "'")
        self.bare_space = self.start_sp.exact.get(" ", np.zeros(0, dtype=np.int64))

    def start_index(self, sep: str) -> PrefixIndex:
        return self.start_sp if sep else self.start_nosp


def token_strings(tokenizer: Tokenizer) -> list[str]:
    """The text of every token id, decoded on its own (partial UTF-8 bytes come out as U+FFFD)."""
    hf = tokenizer.hf
    n = len(hf)
    pieces = hf.convert_ids_to_tokens(list(range(n)))
    decoder = repr(getattr(getattr(hf, "backend_tokenizer", None), "decoder", ""))
    if "ByteLevel" in decoder:
        # Byte-level BPE: each piece maps char -> byte through GPT-2's table; 30x faster than decoding ids.
        table = _byte_decoder()
        out = []
        for p in pieces:
            if p is None or any(c not in table for c in p):
                out.append("")
                continue
            out.append(bytes(table[c] for c in p).decode("utf-8", errors="replace"))
        for tid in getattr(hf, "all_special_ids", []) or []:
            if tid < n:
                out[tid] = ""
        return out
    return [hf.decode([i], skip_special_tokens=True) for i in range(n)]


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    # GPT-2's reversible byte <-> printable-unicode map (bytes_to_unicode), inverted.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}
