"""`edgewise keyboard`: type in the terminal, three suggestions update on every key. Standard library only
(termios raw mode and ANSI escapes), so it runs on any POSIX terminal with nothing extra installed.

Keys: letters etc. type; Tab accepts the first suggestion, 1/2/3 accept that one (Ctrl-V then a digit types
the digit); Backspace deletes; Ctrl-W deletes a word; Enter starts a new line; Ctrl-D, Ctrl-C or Esc quits.
"""

from __future__ import annotations

import os
import shutil
import sys
import termios
import textwrap
import tty

from edgewise.apps.keyboard.session import TypingSession
from edgewise.errors import EdgewiseError

CTRL_C, CTRL_D, CTRL_V, CTRL_W, TAB, ESC = "\x03", "\x04", "\x16", "\x17", "\t", "\x1b"
BACKSPACES = ("\x7f", "\x08")
ENTERS = ("\r", "\n")

_DIM, _BOLD, _REV, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[7m", "\x1b[0m"
_CYAN = "\x1b[36m"


def render(session: TypingSession, width: int, status: str = "") -> str:
    """The whole screen as one string (so a frame is one write and never flickers half-drawn)."""
    s = session.last
    width = max(width, 30)
    lines = [f"{_BOLD}Edgewise keyboard{_RESET}{_DIM} · on-device · nothing leaves this machine{_RESET}",
             _DIM + "─" * width + _RESET]
    body = session.text + "▏"
    for para in body.split("\n"):
        lines += textwrap.wrap(para, width, drop_whitespace=False, replace_whitespace=False) or [""]
    lines.append(_DIM + "─" * width + _RESET)
    chips = []
    words = s.words if s else []
    for i in range(session.k):
        w = words[i] if i < len(words) else ""
        style = _BOLD + _CYAN if i == 0 and w else ""
        chips.append(f"{_REV} {i + 1} {_RESET} {style}{w:<14}{_RESET}")
    timing = f"{_DIM}{s.latency_ms:5.1f} ms{_RESET}" if s else ""
    lines.append("  ".join(chips) + "  " + timing)
    lines.append(_DIM + "Tab/1-3 accept · Ctrl-V digit types a digit · Ctrl-W word · Enter newline · Ctrl-D quit"
                 + _RESET)
    if status:
        lines.append(_DIM + status + _RESET)
    return "\x1b[H\x1b[2J" + "\r\n".join(lines)


def handle_key(session: TypingSession, key: str, pending_literal: bool = False) -> bool:
    """Apply one key to the session. Returns False when the key asks to quit."""
    text = session.text
    if pending_literal:
        session.set_text(text + key)
    elif key in (CTRL_C, CTRL_D, ESC):
        return False
    elif key == TAB:
        session.accept(0)
    elif key in ("1", "2", "3") and session.last and int(key) <= len(session.last.words):
        session.accept(int(key) - 1)
    elif key in BACKSPACES:
        session.set_text(text[:-1])
    elif key == CTRL_W:
        session.set_text(text[: len(text.rstrip()) - len(text.rstrip().split(" ")[-1])] if text.strip() else "")
    elif key in ENTERS:
        session.set_text(text + "\n")
    elif key.isprintable():
        session.set_text(text + key)
    return True


def run_tui(session: TypingSession, status: str = "") -> str:
    """Run the terminal UI until the user quits; returns the typed text."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        raise EdgewiseError("`edgewise keyboard` needs an interactive terminal: use `--web` or `keyboard eval`")
    old = termios.tcgetattr(fd)
    out = sys.stdout
    out.write("\x1b[?1049h")  # alternate screen: the user's scrollback is left as it was
    try:
        tty.setraw(fd)
        session.suggest()
        literal = False
        while True:
            out.write(render(session, shutil.get_terminal_size().columns - 1, status))
            out.flush()
            data = os.read(fd, 64).decode("utf-8", errors="ignore")
            if not data:
                break
            if data.startswith(ESC) and len(data) > 1:
                continue  # arrow keys and other escape sequences: not supported, ignored
            keep = True
            for ch in data:
                if literal:
                    handle_key(session, ch, pending_literal=True)
                    literal = False
                elif ch == CTRL_V:
                    literal = True
                else:
                    keep = handle_key(session, ch)
                    if not keep:
                        break
            if not keep:
                break
            session.suggest()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        out.write("\x1b[?1049l")
        out.flush()
    return session.text
