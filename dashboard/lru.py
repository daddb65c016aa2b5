"""A small thread-safe least-recently-used memo, for values keyed by what a user asks (unbounded in number).

A worker serves a session for hours: a memo keyed by the user's choices (the biplot's checked neurons, the
instance grid's filter and sort) must keep only the newest few, or its memory grows with every click.
``functools.lru_cache`` does not fit: the memos live per cache (``Cache.memo``), and their keys hold the
request's values rather than the function's arguments alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LruMemo"]

V = TypeVar("V")


class LruMemo(Generic[V]):
    """The values of the last ``size`` keys, least recently used out; guarded by a lock (gunicorn threads
    share it). A value is computed outside the lock: two threads may compute the same key once each."""

    def __init__(self, size: int = 8) -> None:
        self.size, self._lock, self._values = size, threading.Lock(), OrderedDict[Hashable, V]()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: Hashable, compute: Callable[[], V], size: int | None = None) -> V:
        """``key``'s value, computed by ``compute`` when not kept; ``size`` overrides the memo's bound."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        limit = self.size if size is None else size
        with self._lock:
            self._values[key] = value
            while len(self._values) > limit:
                self._values.popitem(last=False)
        return value
