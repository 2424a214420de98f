"""Incremental detokenisation: the text of each new token without decoding the whole output again.

Decoding all ids on every step costs O(n) per token, O(n^2) per answer. StreamingDetokenizer decodes a window of
a few tokens instead: the tokens since the last emitted boundary (`prefix`) and after it (`read`). The window's
first tokens give the decoder the context it needs (a SentencePiece leading space, a byte-level merge), and the
text added past the prefix's own text is the delta. A window whose text ends in U+FFFD is an incomplete UTF-8
sequence (a character split across byte tokens): it is held until the character completes.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


class StreamingDetokenizer:
    """Feed token ids one at a time with `add`; each call returns the text they completed (often "").
    `flush` returns whatever is still held (an incomplete character at the very end decodes to U+FFFD),
    so the deltas joined equal `tokenizer.decode(all ids)`."""

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self._prefix = 0  # window start: tokens before it are emitted and no longer decoded
        self._read = 0  # tokens up to here are emitted

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens) if ids else ""

    def add(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        before = self._decode(self.ids[self._prefix:self._read])
        now = self._decode(self.ids[self._prefix:])
        if len(now) > len(before) and not now.endswith(REPLACEMENT):
            self._prefix, self._read = self._read, len(self.ids)
            return now[len(before):]
        return ""

    def flush(self) -> str:
        """The text of the held tokens, complete or not; the stream then continues from an empty window."""
        before = self._decode(self.ids[self._prefix:self._read])
        now = self._decode(self.ids[self._prefix:])
        self._prefix = self._read = len(self.ids)
        return now[len(before):]
