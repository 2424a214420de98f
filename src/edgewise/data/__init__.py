"""Text Edgewise ships and reads: the packaged texts (`data/text/`, see SOURCES.md), the readers that check the
user's text and JSON-lines files (`edgewise.data.readers`), and training corpora built from installed packages
(`edgewise.data.corpora`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEMO_TEXT = "hamlet-act1-scene1.txt"  # the default evaluation text for language models
CALIBRATION_TEXT = "tempest-act1-scene2.txt"  # the default calibration text, kept apart from the evaluation text


def packaged_text(name: str) -> Path:
    """The path of a text file shipped in the package (`data/text/NAME`)."""
    return Path(str(resources.files("edgewise") / "data" / "text" / name))


__all__ = ["DEMO_TEXT", "CALIBRATION_TEXT", "packaged_text"]
