"""`python -m edgewise.data.corpus_mix`: which corpora a run reports (no corpus is built here)."""

import pytest


def test_corpus_mix_cli_takes_a_named_mix(monkeypatch, capsys):
    """`--mix keyboard-v4` reports the v4 student's 15 corpora (docs/corpora.md's command), and a mix given two
    ways is refused before any corpus is built."""
    from edgewise.data import corpus_mix
    from edgewise.data.corpora import KEYBOARD_V4_CORPORA

    asked = []
    monkeypatch.setattr(corpus_mix, "mix_rows", lambda names: asked.append(tuple(names)) or [])
    monkeypatch.setattr(corpus_mix, "mix_table", lambda rows: "table")
    assert corpus_mix.main(["--mix", "keyboard-v4"]) in (0, None)
    assert asked == [KEYBOARD_V4_CORPORA]
    with pytest.raises(SystemExit):
        corpus_mix.main(["--mix", "keyboard-v4", "--corpus", "austen"])
    with pytest.raises(SystemExit):
        corpus_mix.main(["--mix", "nope"])
    assert asked == [KEYBOARD_V4_CORPORA]  # neither refused call built anything
