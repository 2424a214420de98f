"""benchmarks/keyboard_vs_presage.py keeps every row: a peer that crashes is a failed row, not a lost run.

The peer is the real presage_simulator, made to crash by a corrupt (empty) n-gram database: it aborts with
"no such table: _3_gram", as it does on the assertion failures seen on long texts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "keyboard_vs_presage.py"
SHIPPED_DB = Path("/usr/share/presage/database_en.db")

pytestmark = pytest.mark.skipif(shutil.which("presage_simulator") is None,
                                reason="presage_simulator is missing: apt-get install -y presage")


def _bench(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env)


def test_a_crashing_peer_is_a_failed_row_and_the_run_goes_on(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("The cat sat on the mat. The dog ran home to his own bed.\nIt was late.\n")
    (tmp_path / "corrupt.db").write_bytes(b"")
    dbs = ["--presage-db", "corrupt.db"] + (["--presage-db", "shipped"] if SHIPPED_DB.exists() else [])
    r = _bench("--text", "tiny.txt", *dbs, "--no-keyboard", "--json", "out.json", cwd=tmp_path)

    assert r.returncode == 1, r.stderr  # some row failed; the run still finished
    out = json.loads((tmp_path / "out.json").read_text())
    failed, *others = out["rows"]
    assert failed["ok"] is False and failed["text"] == "tiny.txt" and "corrupt.db" in failed["system"]
    assert "presage_simulator" in failed["error"] and "_3_gram" in failed["error"]
    assert out["failed"] == 1
    if SHIPPED_DB.exists():  # the row after the crash ran and was recorded
        assert others[0]["ok"] is True and others[0]["kn"] > 0 and 0 < others[0]["ksr"] < 100
    assert "FAILED" in r.stdout


def test_the_json_defaults_to_a_file_in_the_working_folder(tmp_path):
    (tmp_path / "t.txt").write_text("Hello there.\n")
    (tmp_path / "corrupt.db").write_bytes(b"")
    r = _bench("--text", "t.txt", "--presage-db", "corrupt.db", "--no-keyboard", cwd=tmp_path)
    assert r.returncode == 1
    assert json.loads((tmp_path / "keyboard_vs_presage.json").read_text())["rows"][0]["ok"] is False


def test_a_missing_peer_is_named_before_any_work(tmp_path):
    (tmp_path / "t.txt").write_text("Hello there.\n")
    r = _bench("--text", "t.txt", "--presage-db", "shipped", "--no-keyboard", cwd=tmp_path,
               env={"PATH": str(tmp_path), "HOME": str(tmp_path)})  # nothing on PATH
    assert r.returncode == 2
    assert "missing: presage_simulator" in r.stderr and "make keyboard-setup" in r.stderr
    assert not (tmp_path / "keyboard_vs_presage.json").exists()


def test_presage_none_with_no_keyboard_is_refused_before_any_work(tmp_path):
    (tmp_path / "t.txt").write_text("Hello there.\n")
    r = _bench("--text", "t.txt", "--presage-db", "none", "--no-keyboard", cwd=tmp_path)
    assert r.returncode == 2 and "nothing to run" in r.stderr
    assert not (tmp_path / "keyboard_vs_presage.json").exists()


def test_an_unknown_corpus_mix_for_presage_is_refused_before_any_work(tmp_path):
    (tmp_path / "t.txt").write_text("Hello there.\n")
    r = _bench("--text", "t.txt", "--presage-db", "shipped", "--presage-corpora", "nosuch", "--no-keyboard",
               cwd=tmp_path)
    assert r.returncode == 2 and "not a corpus mix" in r.stderr and "keyboard" in r.stderr
    assert not (tmp_path / "keyboard_vs_presage.json").exists()
