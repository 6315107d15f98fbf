"""The one atomic write and the one lock of the experiment directory.

Every file a run, a sweep or a model swap leaves is written with :func:`replace_atomically`:
a temporary file beside the target, fsynced, renamed onto it, and the directory fsynced, so a
reader sees the old file or the new one, never a part of one, and a crash after the call
returns cannot lose the rename. Every read-modify-write of a shared file holds :func:`locked`,
an advisory lock (``flock`` through the ``filelock`` package) that works across processes on one
host or several hosts sharing a file system, and is re-entrant within a process.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable; file systems that refuse it still renamed atomically."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_files(directory: Path) -> None:
    """fsync every file directly in ``directory`` and the directory itself: before a directory
    is renamed into place, so the rename never publishes files whose data is not on disk."""
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(Path(directory))


def replace_atomically(path: Path, write: Callable[[Path], None],
                       before_replace: Callable[[], None] | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The temporary file (``.<name>.<random>.tmp``) lives in the same directory so the rename is
    atomic; it is removed if ``write`` fails. ``before_replace`` runs between the fsync and the
    rename (a test hook for kills at that instant).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """:func:`replace_atomically` for a text file."""
    return replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def is_temporary(name: str, target: str) -> bool:
    """Whether ``name`` is a temporary file :func:`replace_atomically` made for ``target``."""
    return name.startswith(f".{target}.") and name.endswith(".tmp")


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold the exclusive lock ``lock_path`` (created if needed, kept after release).

    Re-entrant within a process: a nested ``locked`` on the same path does not deadlock. Other
    threads and processes wait.
    """
    lock_path = Path(lock_path).resolve()
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path, is_singleton=True, preserve_lock_file=True):
        yield
