"""Output folders the user names (`--out`): checked before any long work. Writing one goes through
`edgewise.staging.staged_dir`, so it is replaced whole or not at all."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgewise.errors import EdgewiseError


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse a file, a non-empty folder without --force, or a parent we cannot write, before minutes of work."""
    if out.exists() and not out.is_dir():
        raise EdgewiseError(f"--out {out} is a file: choose a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise EdgewiseError(f"--out {out} exists and is not empty: choose another --out or pass --force")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{out.name}.check.", dir=parent))
        probe.rmdir()
    except OSError as e:
        raise EdgewiseError(f"cannot write under {parent} ({e.strerror or e}): choose another --out") from None
