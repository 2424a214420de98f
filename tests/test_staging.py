"""Staged writes (edgewise.staging): a folder or file appears whole or not at all, and the one it replaces is never
missing while the new one goes in."""

import os
import stat
import threading

import pytest

from edgewise import staging
from edgewise.staging import commit_dir, new_staging_dir, staged_dir, staged_file, write_text_atomic


def _tree(path):
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def _leftovers(parent, name):
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_a_new_folder_appears_whole_with_ordinary_permissions(tmp_path):
    out = tmp_path / "deep" / "out"
    with staged_dir(out) as tmp:
        assert tmp.parent == out.parent and tmp.name.startswith(".out.") and not out.exists()
        (tmp / "sub").mkdir()
        (tmp / "sub" / "a.txt").write_text("a")
    assert _tree(out) == {"sub/a.txt": "a"}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # not mkdtemp's private 0700
    assert _leftovers(out.parent, "out") == []


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "aside-then-in"])
def test_replacing_keeps_the_old_folder_until_the_new_one_is_in(tmp_path, monkeypatch, swap):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    if not swap:
        monkeypatch.setattr(staging, "exchange", lambda a, b: False)
    seen = []
    real_replace = os.replace

    def spy(src, dst):  # the old folder must still be whole at each rename of the fallback
        seen.append(_tree(out) if out.exists() else None)
        real_replace(src, dst)

    monkeypatch.setattr(staging.os, "replace", spy)
    with staged_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
        assert _tree(out) == {"old.txt": "old"}
    assert _tree(out) == {"new.txt": "new"}
    assert _leftovers(tmp_path, "out") == []
    assert seen == ([] if swap else [{"old.txt": "old"}, None])


def test_a_failure_inside_leaves_the_old_folder_and_no_leftovers(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert _tree(out) == {"keep.txt": "keep"} and _leftovers(tmp_path, "out") == []


def test_a_reader_never_sees_the_folder_missing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    if not staging.exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this system cannot swap folders atomically (the fallback has a rename-long gap)")
    out = tmp_path / "out"
    out.mkdir()
    missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not out.is_dir():
                missing.append(1)

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(200):
            tmp = new_staging_dir(out)
            (tmp / "n").write_text(str(i))
            commit_dir(tmp, out)
    finally:
        stop.set()
        t.join()
    assert not missing and (out / "n").read_text() == "199"


def test_files_are_replaced_whole(tmp_path):
    f = tmp_path / "state.json"
    write_text_atomic(f, "v1")
    write_text_atomic(f, "v2")
    assert f.read_text() == "v2"
    with pytest.raises(RuntimeError):
        with staged_file(f) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert f.read_text() == "v2" and [p.name for p in tmp_path.iterdir()] == ["state.json"]
