"""Writing files so that nothing on disk is half-written, or written by two processes at once.

`replacing(path)` gives a temporary path in the same folder; when the block succeeds the file is
flushed to disk, made world-readable and atomically renamed over `path` (then the folder is synced),
so an interrupted writer leaves the old file or the new one, never a mix; when it fails, the
temporary file is removed. `WriterLock(path)` is an exclusive advisory lock (fcntl) on a hidden
lock file beside `path`: a second writer of the same file fails at once with a clear error instead
of silently losing the first one's rows. Temporary files are named ``{name}.{random}.partial``;
`remove_partials` clears the ones an earlier, killed writer left (call it holding the lock).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["replacing", "write_bytes", "WriterLock", "LockedError", "remove_partials", "check_writable"]


@contextlib.contextmanager
def replacing(path, mode: int = 0o644):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path, data: bytes, mode: int = 0o644) -> None:
    with replacing(path, mode) as tmp:
        Path(tmp).write_bytes(data)


def remove_partials(path) -> list[Path]:
    """Remove the temporary files a killed writer of `path` left behind; returns them."""
    path = Path(path)
    gone = []
    for p in path.parent.glob(path.name + ".*.partial"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def check_writable(path) -> None:
    """Fail now, with the path in the message, if `path` cannot be written (before any work)."""
    path = Path(path)
    if path.is_symlink():
        raise PermissionError(f"output: {str(path)!r} is a symlink; name the file itself (a write replaces "
                              "the link, and a link that leads nowhere would be replaced silently)")
    if path.is_dir():
        raise IsADirectoryError(f"output: {str(path)!r} is a folder; expected a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".partial", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise PermissionError(f"output: cannot write {str(path)!r} ({e.strerror or e})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"output: {str(path)!r} exists and is not writable")


class LockedError(RuntimeError):
    """Another process is writing the same file."""


class WriterLock:
    """Exclusive lock of one file's writers, held from `acquire()` (or `with`) to `release()`."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        self._fd = None

    def acquire(self) -> "WriterLock":
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            raise LockedError(f"output: {str(self.path)!r} is being written by another process "
                              f"({other or 'pid unknown'}); wait for it to finish, or write elsewhere") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            import fcntl
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        self.release()
