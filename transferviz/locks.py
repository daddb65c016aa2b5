"""OS file locks (``flock``) that keep builds and readers of one cache from destroying each other.

Two kinds, both advisory ``flock`` locks, which the kernel drops when the holding process dies
(SIGKILL included), so a killed build never leaves a stale lock behind:

* the **run lock** ``cache/.builds/<run>.lock``: held exclusively for a build's whole life, so a
  second build of the same run refuses at once; the file records the holder (pid, host, start);
* a **folder lock** ``<build folder>/.lock``: the writing build holds it exclusively while it
  writes, a reader (the dashboard) holds it shared while it serves the build, and pruning deletes a
  folder only when it can take it exclusively.

Taking a lock needs only read access to the lock file, so a reader works on a read-only cache.
Locks are released by closing the descriptor, never by ``LOCK_UN``: a descriptor inherited across
``fork`` (gunicorn's ``--preload``) shares one lock, which ``LOCK_UN`` would drop for every process.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["FileLock", "holder_line", "try_lock"]


class FileLock:
    """A held ``flock`` on ``path``; :meth:`release` (or leaving a ``with`` block) closes it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def record_holder(self) -> None:
        """Writes who holds the lock (pid, host, start time) into the lock file, for the refusal message."""
        assert self._fd is not None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        data = (json.dumps(info) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # the kernel drops the lock with the last descriptor of this open file

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a lock nobody released must not outlive its owner object
        self.release()


def try_lock(path: Path, *, shared: bool = False, create: bool = True) -> FileLock | None:
    """Takes a non-blocking ``flock`` on ``path``: the lock, or None when another holder conflicts.

    ``create``: make the file when it is missing (a build); without it a missing file raises
    ``FileNotFoundError``. The file is opened read-only unless the holder must record itself, so a
    shared lock works on a read-only cache. Other ``OSError`` (no permission, read-only folder) propagate.
    """
    flags = os.O_RDONLY
    if create:
        flags = os.O_RDWR | os.O_CREAT
    fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return FileLock(path, fd)


def holder_line(path: Path) -> str:
    """``pid 1234, since 2026-12-06 12:00:00 UTC`` (the host too when it is another machine) from the
    lock file; what is known when the holder has not written it yet."""
    try:
        info: Any = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "pid unknown"
    host = info.get("host")
    where = f" on {host}" if host and host != socket.gethostname() else ""
    since = f", since {info['since']}" if info.get("since") else ""
    return f"pid {info['pid']}{where}{since}"
