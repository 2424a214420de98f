"""The bundle manifest: its format, and the checks that refuse a tampered or truncated bundle (see models.bundle).

Kept apart from writing bundles so that the file resolvers (models.files) can read a bundle without importing
the writer, which itself resolves the model folder it copies.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgewise.errors import CorruptModelError
from edgewise.home import sha256_file

FORMAT = "edgewise-bundle"
VERSION = 1


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CorruptModelError(f"{path}/manifest.json is not valid JSON: rebuild the bundle with edgewise optimize") from None
    if manifest.get("format") != FORMAT:
        raise CorruptModelError(f"{path}/manifest.json is not an Edgewise bundle manifest (format != {FORMAT!r})")
    if manifest.get("version") != VERSION:
        raise CorruptModelError(f"{path}: bundle version {manifest.get('version')!r} is not supported "
                                f"(this Edgewise reads version {VERSION}): rebuild it")
    return manifest


def verify_bundle(path: Path, manifest: dict) -> None:
    """Refuse a bundle whose files do not match their recorded hashes (tampered or truncated)."""
    files = manifest.get("files") or {}
    if not files:
        raise CorruptModelError(f"{path}: bundle manifest lists no files: rebuild it")
    for rel, digest in files.items():
        f = (path / rel).resolve()
        if path.resolve() not in f.parents:
            raise CorruptModelError(f"{path}: manifest entry {rel!r} points outside the bundle: refusing it")
        if not f.is_file():
            raise CorruptModelError(f"{path}: bundle file {rel} is missing: rebuild or re-copy the bundle")
        if sha256_file(f) != digest:
            raise CorruptModelError(f"{path}: bundle file {rel} does not match its sha256 in manifest.json "
                                    "(tampered or corrupt): rebuild or re-copy the bundle")
