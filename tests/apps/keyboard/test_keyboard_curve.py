"""benchmarks/keyboard_learning_curve.py: blocks that give the text back, and learning that carries from block to
block, on the tiny trained keyboard LM (and, where Presage is installed, on presage_simulator's own DB copy)."""

from __future__ import annotations

import importlib.util
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"
SHIPPED_DB = Path("/usr/share/presage/database_en.db")


@pytest.fixture(scope="module")
def curve():
    sys.path.insert(0, str(BENCH))  # the script imports keyboard_vs_presage beside it, as it does when run
    try:
        spec = importlib.util.spec_from_file_location("keyboard_learning_curve", BENCH / "keyboard_learning_curve.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(BENCH))


def test_blocks_cut_at_word_starts_and_join_back_to_the_text(curve):
    text = "  One two, three.\nFour   five don't six\n\nseven eight nine ten.\n"
    blocks = curve.split_blocks(text, 3)
    assert "".join(blocks) == text
    assert [len(b.split()) for b in blocks] == [3, 3, 3, 2]
    assert blocks[1] == "Four   five don't "  # each block keeps the spaces after its last word
    assert curve.split_blocks(text, 100) == [text]
    assert curve.split_blocks(" \n", 5) == []


def test_a_block_size_under_one_is_refused_with_a_hint(curve):
    from edgewise.errors import EdgewiseError

    with pytest.raises(EdgewiseError, match="--block"):
        curve.split_blocks("a b c", 0)


def _files(tmp_path: Path, blocks: list[str]) -> list[Path]:
    out = []
    for i, b in enumerate(blocks):
        out.append(tmp_path / f"b{i}.txt")
        out[-1].write_text(b)
    return out


# Words the tiny LM never saw: without learning, every block is typed the same; with it, later blocks are cheaper.
NEW = "Zorblat quimbly frazzes the wuggle near Plonkton. "


def test_our_learning_carries_across_blocks(curve, engine, tmp_path):
    files = _files(tmp_path, [NEW] * 3)
    plain = list(curve.keyboard_blocks(engine, files, 3, learn=False))
    learning = list(curve.keyboard_blocks(engine, files, 3, learn=True))

    assert all(r["ok"] for r in plain + learning)
    assert len({r["ksr"] for r in plain}) == 1  # the same text, nothing learned: the same keys every block
    assert [r["personal_words"] for r in learning] == [7, 14, 21]  # one store, growing block by block
    # Each new word comes once a block: block 0 types them unknown, later blocks from what earlier ones learned.
    assert learning[0]["ksr"] == plain[0]["ksr"]
    assert learning[1]["ksr"] > learning[0]["ksr"] + 10
    assert learning[2]["ksr"] >= learning[1]["ksr"]


def test_gains_and_totals_from_block_rows(curve):
    def sys_(ksr, ki=10, ks=2, kn=20):
        return {"ok": True, "ksr": ksr, "ki": ki, "ks": ks, "kn": kn}

    rows = [{"systems": {"presage": sys_(40.0), "presage_learn": sys_(41.0), "edgewise": sys_(50.0),
                         "edgewise_learn": sys_(53.0)}},
            {"systems": {"presage": sys_(40.0), "presage_learn": sys_(43.0), "edgewise": sys_(50.0),
                         "edgewise_learn": {"ok": False, "error": "x"}}}]
    curve.add_gains(rows)
    assert [r["gain_presage"] for r in rows] == [1.0, 3.0]
    assert [r["gain_presage_cum_mean"] for r in rows] == [1.0, 2.0]
    assert rows[0]["gain_edgewise"] == 3.0 and rows[1]["gain_edgewise"] is None
    assert rows[1]["gain_edgewise_cum_mean"] is None  # a failed block ends the running mean
    t = curve.totals([sys_(0), sys_(0)])
    assert (t["ki"], t["ks"], t["kn"]) == (20, 4, 40)
    # One run counts the initial ks = 1 and the trailing empty word once, not once per block.
    assert t["as_one_run"] == {"ki": 19, "ks": 3, "kn": 39, "ksr": round((1 - 22 / 39) * 100, 3)}


@pytest.mark.skipif(shutil.which("presage_simulator") is None or not SHIPPED_DB.exists(),
                    reason="presage_simulator or its shipped DB is missing: apt-get install -y presage")
def test_presage_learns_into_one_db_copy_across_blocks(curve, tmp_path):
    files = _files(tmp_path, [NEW] * 2)

    def count(db: Path) -> int:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT count FROM _1_gram WHERE word = 'zorblat'").fetchone()[0]

    rows = []
    for r in curve.presage_blocks(files, SHIPPED_DB, 3, True, tmp_path):
        rows.append(r)
        rows[-1]["zorblat"] = count(tmp_path / "learning.db")  # read between blocks: what block i + 1 starts from
    assert all(r["ok"] for r in rows)
    assert [r["zorblat"] for r in rows] == [1, 2]
    assert rows[1]["ksr"] > rows[0]["ksr"]
    with sqlite3.connect(SHIPPED_DB) as c:  # the shipped DB itself is never written
        assert c.execute("SELECT count(*) FROM _1_gram WHERE word = 'zorblat'").fetchone()[0] == 0


class Stop(Exception):
    pass


SHORT = "Zorblat quimbly frazzes. "  # three words the tiny LM never saw: a block of its own


def _only(curve, monkeypatch, kind: str) -> None:
    """Keep one kind of system (and its gain) in the curve."""
    monkeypatch.setattr(curve, "SYSTEMS", {k: v for k, v in curve.SYSTEMS.items() if v[1] == kind})
    gain = "gain_edgewise" if kind == "keyboard" else "gain_presage"
    monkeypatch.setattr(curve, "GAINS", {gain: curve.GAINS[gain]})
    monkeypatch.setattr(curve, "print_block", lambda row: None)


def _runner(curve, text: Path, engine, db: Path, block: int):
    import argparse
    import json

    def run(json_path: Path, resume: bool, stop_after: int | None = None):
        before = {t["text"]: t for t in json.loads(json_path.read_text())["texts"]} if json_path.is_file() else {}

        def save(out):
            json_path.write_text(json.dumps({"texts": [out]}))
            if stop_after is not None and len(out["rows"]) == stop_after:
                raise Stop

        args = argparse.Namespace(max_words=1000, block=block, suggestions=3, check=False, resume=resume, json=json_path)
        return curve.run_text("t", text, args, engine, db, save, before.get("t"))
    return run


def _no_wall(rows):
    return [{**r, "systems": {k: {x: v for x, v in s.items() if x != "wall_s"} for k, s in r["systems"].items()}}
            for r in rows]


def test_a_resumed_run_gives_the_rows_of_one_uninterrupted_run(curve, engine, tmp_path, monkeypatch):
    """Stopped after block 2's row was saved but before its learning was kept, then resumed twice: the rows are the
    ones a run that never stopped gives, learning included (Presage's systems: the next test)."""
    import json

    _only(curve, monkeypatch, "keyboard")
    text = tmp_path / "t.txt"
    text.write_text(SHORT * 3)  # 3 blocks of 3 new words
    run = _runner(curve, text, engine, Path("unused.db"), block=3)

    whole = run(tmp_path / "whole.json", resume=False)
    assert [r["systems"]["edgewise_learn"]["personal_words"] for r in whole["rows"]] == [3, 6, 9]
    part = tmp_path / "part.json"
    with pytest.raises(Stop):
        run(part, resume=True, stop_after=2)  # block 2's row saved, its learning not yet kept
    assert json.loads((tmp_path / "part.work" / "t" / "state.json").read_text()) == {"blocks": 1}
    with pytest.raises(Stop):
        run(part, resume=True, stop_after=3)  # goes on from block 2 (its saved row dropped), stops again
    got = run(part, resume=True)  # block 3 again, then done
    assert _no_wall(got["rows"]) == _no_wall(whole["rows"])
    assert got["totals"] == whole["totals"]
    assert got["rows"][1]["systems"]["edgewise_learn"]["ksr"] > got["rows"][0]["systems"]["edgewise_learn"]["ksr"]
    # A work folder with learning that the JSON does not record is refused, not silently reused.
    part.unlink()
    with pytest.raises(curve.BenchSetupError, match="does not record"):
        run(part, resume=True)


@pytest.mark.skipif(shutil.which("presage_simulator") is None or not SHIPPED_DB.exists(),
                    reason="presage_simulator or its shipped DB is missing: apt-get install -y presage")
def test_presage_resumes_from_its_kept_db(curve, tmp_path, monkeypatch):
    _only(curve, monkeypatch, "presage")
    text = tmp_path / "t.txt"
    text.write_text(NEW * 3)  # presage_simulator reports nothing on a block of 3 words: blocks of 7
    run = _runner(curve, text, None, SHIPPED_DB, block=7)
    whole = run(tmp_path / "whole.json", resume=False)
    part = tmp_path / "part.json"
    with pytest.raises(Stop):
        run(part, resume=True, stop_after=2)  # block 2 learned into the live DB, not kept: it must not count twice
    got = run(part, resume=True)
    assert _no_wall(got["rows"]) == _no_wall(whole["rows"])
    assert got["rows"][1]["systems"]["presage_learn"]["ksr"] > got["rows"][0]["systems"]["presage_learn"]["ksr"]
    with sqlite3.connect(tmp_path / "part.work" / "t" / "presage-after-002.db") as c:
        assert c.execute("SELECT count FROM _1_gram WHERE word = 'zorblat'").fetchone()[0] == 3
