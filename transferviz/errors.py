"""The one exception type users see: its message is a single line naming the problem and the fix."""

from __future__ import annotations

import errno
import os
import re


class TransferVizError(Exception):
    """A user-facing error: bad config, missing files, incompatible checkpoint or cache."""


# What a full, read-only or forbidden disk means to a user, and what to do about it.
_DISK_ERRORS = {
    errno.ENOSPC: ("no space left on the device", "free space on that disk or pass --cache-dir a folder on "
                   "another one"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota or pass --cache-dir a folder on "
                   "another disk"),
    errno.EROFS: ("read-only file system", "pass --cache-dir a folder on a writable disk"),
    errno.EACCES: ("permission denied", "make it accessible to this user or pass --cache-dir a folder "
                   "you can write"),
    errno.EPERM: ("operation not permitted", "make it accessible to this user or pass --cache-dir a folder "
                  "you can write"),
}


def disk_error(exc: BaseException) -> TransferVizError | None:
    """The one-line error for a disk that filled up, went read-only or refused access in the middle of
    the work (what no check beforehand can rule out), or ``None`` for any other exception.

    Besides an ``OSError``'s errno, the ``[Errno N]`` of libraries that wrap it in their own message
    (pyarrow) and the ``Os { code: N`` of safetensors are recognised.
    """
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:
        found = re.search(r"(?:\[Errno |Os \{ code: )(\d+)", str(exc))
        code = int(found.group(1)) if found else None
    if code not in _DISK_ERRORS:
        return None
    cause, fix = _DISK_ERRORS[code]
    name = getattr(exc, "filename", None)
    where = f" at {os.fsdecode(name)}" if name else ""
    return TransferVizError(f"{cause}{where}; {fix} (a build that fails keeps the previous cache as it was)")
