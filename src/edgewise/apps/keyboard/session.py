"""A typing session: the text so far, its suggestions, accepting one, and learning each finished word.

The terminal UI and the web page both drive this one object, so they learn and accept identically.
"""

from __future__ import annotations

import re
import threading

from edgewise.apps.keyboard.engine import KeyboardEngine, Suggestions
from edgewise.apps.keyboard.text import split_context

_FINISHED = re.compile(r"([^\W_](?:[\w']*[^\W_])?)(?=[^\w'])")
MAX_LEARN_PER_EDIT = 20  # a paste teaches at most this many words


class TypingSession:
    def __init__(self, engine: KeyboardEngine, k: int = 3, learn: bool = True):
        self.engine = engine
        self.k = k
        self.learn_enabled = learn
        self.text = ""
        self.last: Suggestions | None = None
        self.lock = threading.Lock()

    def set_text(self, new: str) -> list[str]:
        """Replace the text (after a keystroke, an accept or a paste); learn the words it finished."""
        old = self.text
        self.text = new
        if not self.learn_enabled or new == old:
            return []
        # Only text added after the word being typed counts: editing or deleting earlier text teaches nothing.
        before_word = split_context(old).committed
        if not new.startswith(before_word) or len(new) <= len(old.rstrip()):
            return []
        learned = []
        region_start = len(before_word)
        for m in _FINISHED.finditer(new, region_start):
            if len(learned) >= MAX_LEARN_PER_EDIT:
                break
            self.engine.learn(new[:m.start()], m.group(1))
            learned.append(m.group(1))
        return learned

    def suggest(self) -> Suggestions:
        self.last = self.engine.suggest_detailed(self.text, "", self.k)
        return self.last

    def accept(self, i: int) -> bool:
        """Put suggestion i in place of the word being typed, followed by a space."""
        if self.last is None or not 0 <= i < len(self.last.words):
            return False
        self.set_text(apply_suggestion(self.text, self.last.words[i]))
        return True


def apply_suggestion(text: str, word: str) -> str:
    """The text with its current partial word replaced by `word` and a space after it."""
    s = split_context(text)
    head = text[: len(text) - len(s.prefix)] if s.prefix else text
    if not s.prefix and head and not head[-1].isspace() and s.sep == " ":
        head += " "  # "Hello," + "world" needs the space the user did not type
    return head + word + " "
