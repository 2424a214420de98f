"""Reading the user's text and JSON-lines files (task files, calibration text, routing data): every way they can be
wrong becomes one EdgewiseError line that says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

from edgewise.errors import EdgewiseError

MAX_BYTES = 50 * 1024 * 1024  # task files are evaluation sets, not corpora


def _check_file(path: Path, what: str) -> bytes:
    path = Path(path)
    if not path.exists():
        raise EdgewiseError(f"{what} {path} does not exist: check the path")
    if path.is_dir():
        raise EdgewiseError(f"{what} {path} is a folder: pass a file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise EdgewiseError(f"{what} {path} is {size / 1e6:.0f} MB: keep evaluation files under "
                                f"{MAX_BYTES // 1024 // 1024} MB (a sample is enough)")
        data = path.read_bytes()
    except PermissionError:
        raise EdgewiseError(f"{what} {path} is not readable: check its permissions") from None
    if not data.strip():
        raise EdgewiseError(f"{what} {path} is empty: put some text in it")
    # Text never holds NUL bytes; a binary file (a model, an archive) does within its first kilobytes.
    if b"\0" in data[:8192]:
        raise EdgewiseError(f"{what} {path} looks binary, not text: pass a UTF-8 text file")
    return data


def read_text(path: Path, what: str = "task file") -> str:
    data = _check_file(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EdgewiseError(f"{what} {path} is not UTF-8 text (bad byte at offset {e.start}): re-save it as UTF-8") from None


def jsonl_objects(text: str, path: Path, what: str, shape: str):
    """(line number, object) for every non-blank line of JSON-lines `text`; `shape` tells the user what a line
    should look like when one is not a JSON object."""
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise EdgewiseError(f"{what} {path} line {n} is not valid JSON ({e.msg}): one object per line") from None
        if not isinstance(row, dict):
            raise EdgewiseError(f"{what} {path} line {n} is not a JSON object: write {shape}")
        yield n, row


def read_jsonl(path: Path, keys: tuple[str, ...], what: str = "task file") -> list[dict]:
    """Rows of a JSON-lines file, each an object holding string values for `keys` (blank lines skipped)."""
    rows = []
    for n, row in jsonl_objects(read_text(path, what), path, what, f"{{{', '.join(map(repr, keys))}}}"):
        missing = [k for k in keys if k not in row]
        if missing:
            raise EdgewiseError(f"{what} {path} line {n} lacks {', '.join(map(repr, missing))}: each line needs "
                                f"{', '.join(map(repr, keys))}")
        for k in keys:
            if not isinstance(row[k], (str, int)) or not str(row[k]).strip():
                raise EdgewiseError(f"{what} {path} line {n}: {k!r} must be a non-empty string")
            row[k] = str(row[k])
        rows.append(row)
    if not rows:
        raise EdgewiseError(f"{what} {path} has no rows: one JSON object per line")
    return rows
