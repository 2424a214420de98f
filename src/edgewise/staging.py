"""Staged writes: a folder or file appears whole or not at all, and a folder it replaces stays until the new one is in.

    with staged_dir(out) as tmp:        # a fresh sibling of `out`, removed if the block raises
        write_everything_into(tmp)
    # here `out` is the new folder; at no moment was there no `out` (if there was one before)

The steps: write into a temporary sibling (same filesystem, so rename is atomic), fsync what was written, then
rename it into place. An existing folder is swapped with the new one in one step where the system can (Linux
renameat2 RENAME_EXCHANGE); elsewhere it is renamed aside, the new one renamed in, and the old one deleted last.
Either way a crash leaves the old folder or the new one at `out` (plus, at worst, a hidden `.NAME.*` leftover
beside it), and the old one is deleted only once the new one is in. Files go the same way through `staged_file`.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and platforms) cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder under `root` (and `root`) to disk, so a rename never publishes unwritten data."""
    root = Path(root)
    if root.is_file():
        _fsync(root)
        return
    for folder, dirs, files in os.walk(root):
        for name in files:
            p = Path(folder) / name
            if not p.is_symlink():
                _fsync(p)
        _fsync(Path(folder), directory=True)


def new_staging_dir(final: Path) -> Path:
    """An empty hidden folder beside `final` (`.NAME.XXXX`), with the permissions of an ordinary new folder."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; what it becomes is an ordinary folder
    return tmp


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths on one filesystem in one atomic step (Linux renameat2); False where the system cannot."""
    if sys.platform != "linux":
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no glibc, or one older than 2.28
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):  # a filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def commit_dir(tmp: Path, final: Path) -> Path:
    """Put the finished folder `tmp` (a sibling of `final`) in place of `final`, fsynced; an existing `final` is
    swapped out (or, where the system cannot swap, renamed aside just before) and deleted once the new one is in."""
    tmp, final = Path(tmp), Path(final)
    fsync_tree(tmp)
    if not (final.exists() or final.is_symlink()):
        os.replace(tmp, final)
    elif exchange(tmp, final):
        _remove(tmp)  # `tmp` now holds what `final` was
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        os.replace(final, old / final.name)  # into a fresh private folder: the name cannot collide
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    _fsync(final.parent, directory=True)
    return final


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def discard(tmp: Path) -> None:
    """Remove a staging folder that will not be committed."""
    _remove(Path(tmp))


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh folder beside `final`; when the block ends without an exception it replaces `final`
    (commit_dir); when it raises (Ctrl-C included), it is removed and `final` is untouched."""
    tmp = new_staging_dir(final)
    try:
        yield tmp
        commit_dir(tmp, final)
    except BaseException:
        discard(tmp)
        raise


@contextmanager
def staged_file(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final` to write; on success it is fsynced and renamed over `final`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent, directory=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Replace the file `path` with `text` (UTF-8): readers see the old content or the new, never a part."""
    with staged_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


__all__ = ["commit_dir", "discard", "exchange", "fsync_tree", "new_staging_dir", "staged_dir", "staged_file",
           "write_text_atomic"]
