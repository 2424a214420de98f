"""No keyboard evaluation text shares a 12-word run with any training corpus of issue 26's mix.

Every corpus and eval text is built from what this machine already has (nothing is fetched here); one that cannot
be built skips with the command that brings its package. test_eval_texts.py checks the first four corpora the same
way; this file covers the whole registry (`KEYBOARD_MIX_CORPORA`, issue 26's larger mix).
"""

from __future__ import annotations

import os

import pytest

from edgewise.data.corpora import KEYBOARD_MIX_CORPORA, training_texts
from edgewise.data.corpus_mix import shared_runs
from edgewise.data.eval_texts import EVAL_TEXTS, NPM_MOBY, NPM_SOTU, NPM_SPAM, keyboard_eval_text, npm_dir
from edgewise.errors import EdgewiseError

NPM = {"sotu": NPM_SOTU, "email": NPM_SPAM, "mobydick": NPM_MOBY}


def _training(name: str):
    try:
        return training_texts((name,)), None
    except EdgewiseError as e:
        return None, str(e)


def _eval(name: str):
    if name in NPM and not (npm_dir() / NPM[name].tarball).exists():
        return None, f"{NPM[name].tarball} is not packed in {npm_dir()}: run `make keyboard-setup`"
    try:
        return keyboard_eval_text(name).read_text(encoding="utf-8"), None
    except EdgewiseError as e:
        return None, str(e)


# Building the mix from the installed Debian packages and streaming it past the eval texts took about 13 minutes
# on 2 busy cores for the 12.8M-word v4 mix; the 26.3M-word larger mix takes longer to build the first time
# (docs/corpora.md): more than the rest of `make test`. So it runs where the corpora are set up (`make
# keyboard-setup` runs `python -m edgewise.data.corpus_mix --overlap`, which fails on any shared run) and here only
# when asked.
pytestmark = pytest.mark.skipif(
    os.environ.get("EDGEWISE_CORPUS_CHECK") != "1",
    reason="the whole-mix overlap check builds every corpus first (lilypond-docs alone: 593 s): "
           "EDGEWISE_CORPUS_CHECK=1 runs it here, and `make keyboard-setup` runs it as "
           "`python -m edgewise.data.corpus_mix --overlap`")


@pytest.fixture(scope="module")
def built():
    corpora = {n: _training(n) for n in KEYBOARD_MIX_CORPORA}
    evals = {n: _eval(n) for n in EVAL_TEXTS}
    files = [p for paths, _ in corpora.values() if paths for p in paths]
    hits = shared_runs({n: text for n, (text, _) in evals.items() if text is not None}, files)
    return corpora, evals, hits


@pytest.mark.parametrize("name", KEYBOARD_MIX_CORPORA)
def test_corpus_builds_to_prose_lines(name, built):
    paths, why = built[0][name]
    if paths is None:
        pytest.skip(why)
    assert paths and all(p.stat().st_size > 0 for p in paths)
    head = paths[0].read_text(encoding="utf-8").splitlines()[:200]
    assert all(line.strip() == line and line for line in head), "one non-empty paragraph per line"


@pytest.mark.parametrize("name", EVAL_TEXTS)
def test_no_eval_text_quotes_any_training_corpus(name, built):
    text, why = built[1][name]
    if text is None:
        pytest.skip(why)
    assert built[2][name] == [], built[2][name][:5]
