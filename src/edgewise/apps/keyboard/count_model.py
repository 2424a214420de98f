"""The contract of the keyboard mixture's second model: what the engine asks of it, and nothing else.

The Kneser-Ney n-gram (ngram.NgramModel) and the word-level LSTM (word_lm.WordLM) both keep it, and
`engine.load_count_model` returns whichever a folder holds; the engine, the tuning replay in
benchmarks/keyboard_mixture.py and any other count model are typed against this, not against one of them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CountModel(Protocol):
    order: int  # the engine passes the last order - 1 committed words as the history
    display: dict[str, str]  # lower-case word -> how it is usually written ("i" -> "I")

    def known_order(self, history: tuple[str, ...]) -> int:
        """The longest history order the model has evidence for (0: none): it picks the mixture's weight."""

    def probabilities(self, history: tuple[str, ...], prefix: str = "", limit: int = 16) -> dict[str, float]:
        """P(word | history) of the likeliest `limit` words that start with `prefix`, keyed in lower case."""

    def size_bytes(self) -> int:
        """Bytes the model adds to the keyboard."""
