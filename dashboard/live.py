"""The dashboard over a changing cache: it keeps serving the build it opened and switches to a newly
published one at a page load (issue 15).

A rebuild publishes a new build folder by moving the run's link (``cache/<run>``), and a later build
prunes old folders -- unless a reader holds the folder's lock (``transferviz.cache.reader_lock``).
:class:`LiveCache` stands in for the :class:`Cache` wherever the app uses one (the views'
``register(app, cache)`` are unchanged): it forwards every attribute to the build it serves and holds
that build's shared lock. When the app was given the run's link, each page load (the layout request:
the page is about to be rebuilt from scratch, a safe point) checks whether the link names another
finished build; if so it opens and checks that one, takes its lock and serves it from then on; the
old build's lock is released once no request is still reading it. Given a build folder, it never switches.

Each request reads one build from start to end: its first access pins the build served at that moment.

Limits: the views derive a few values once, at registration (the URL state's classes, layers and
neuron counts, the class picker's counts): a build that changes any of them is not switched to, and
``/healthz`` says to restart. The URL state's default class and its companions are derived then too
and stay the first build's (valid, but maybe not what the new build would pick). Each gunicorn worker
switches at the first page load it serves itself.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

import dash
from flask import current_app, has_app_context, request

from transferviz.cache import Cache, reader_lock
from transferviz.errors import TransferVizError
from transferviz.locks import FileLock

__all__ = ["LiveCache", "health"]

log = logging.getLogger(__name__)

_EXTENSION = "transferviz.live"  # the Flask app's ``extensions`` key naming its LiveCache


class _Opened:
    """One opened build: its reader, its shared lock and how many requests are reading it now."""

    def __init__(self, cache: Cache, lock: FileLock | None) -> None:
        self.cache = cache
        self.lock = lock
        self.readers = 0

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def _open(path: Path) -> _Opened:
    """Opens the build ``path`` names now and takes its shared lock; retried when the folder was pruned
    between resolving the link and locking it."""
    for _ in range(3):
        cache = Cache.open(path)
        try:
            lock = reader_lock(cache.root)
        except TransferVizError:  # being deleted: the link has moved on meanwhile
            continue
        if (cache.root / "manifest.json").is_file():  # locked, so it stays
            return _Opened(cache, lock)
        if lock is not None:
            lock.release()
    raise TransferVizError(f"cache {path} kept changing while it was opened; try again")


def registered_shape(cache: Cache) -> tuple[Any, ...]:
    """What the views derive from a cache once, when the app registers their callbacks: the URL state's
    classes, layers and neuron counts, the class picker's per-class instance counts. A running app can
    switch only to a build that agrees on all of them."""
    inst = cache.instances
    counts = inst.groupby(["domain", "label"]).size()
    per_class = tuple((str(d), int(c), int(n)) for (d, c), n in zip(counts.index.tolist(), counts.tolist()))
    return tuple(cache.classes), tuple(cache.layers), tuple(sorted(cache.layer_sizes.items())), len(inst), per_class


class LiveCache:
    """The :class:`Cache` of the build being served, which follows the run's link at page loads."""

    def __init__(self, path: Path, opened: _Opened) -> None:
        self.path = path
        self.follows = path.is_symlink()  # the run's link (a build folder never changes)
        self._opened = opened
        self._counts = threading.Lock()  # guards ``readers`` and the swap
        self._switching = threading.Lock()  # one page load opens a new build at a time
        self._refused: tuple[Path, str] | None = None  # a published build not served, and why
        # the build the running request reads: a context variable (one per thread or task, as Flask's own
        # contexts are), set at the request's first access and cleared when its app context ends
        self._pin: ContextVar[_Opened | None] = ContextVar(f"{_EXTENSION}.{id(self)}", default=None)
        self._on_switch: Callable[[Cache], None] | None = None  # prepares a new build before it is served

    @classmethod
    def open(cls, path: str | Path) -> "LiveCache":
        p = Path(path)
        return cls(p, _open(p))

    def as_cache(self) -> Cache:
        """Itself, typed as the :class:`Cache` it stands in for (every attribute is forwarded)."""
        return cast(Cache, self)

    def install(self, app: dash.Dash, page: Callable[[Cache], Any]) -> None:
        """Makes ``page(cache)`` the app's layout, built once per build; before each page load (Dash's
        layout request) switches to a newly published build, whose layout it sets first; and unpins each
        request's build when the request ends.

        ``app.layout`` stays a component tree (not a function Dash would call per page load): built once
        per build, so page loads stay fast, and validated by Dash as before.
        """
        app.server.extensions[_EXTENSION] = self
        app.server.teardown_appcontext(self._unpin)
        layout_path = f"{app.config.routes_pathname_prefix}_dash-layout"

        def set_layout(cache: Cache) -> None:
            app.layout = cache.memo(("live.page_layout",), lambda: page(cache))

        @app.server.before_request
        def _page_load() -> None:
            if request.path == layout_path:
                self.refresh()

        self._on_switch = set_layout
        set_layout(self._opened.cache)

    # -- the build a request reads
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_opened" not in self.__dict__:  # not forwarded while being made
            raise AttributeError(name)
        return getattr(self.served, name)

    @property
    def served(self) -> Cache:
        """The build this request reads (pinned at its first access); outside a request the current one."""
        opened = self._pin.get()
        if opened is not None:  # the fast path: every access after the request's first
            return opened.cache
        if not self._in_my_request():
            return self._opened.cache
        with self._counts:
            opened = self._opened
            opened.readers += 1
        self._pin.set(opened)
        return opened.cache

    def _in_my_request(self) -> bool:
        return has_app_context() and current_app.extensions.get(_EXTENSION) is self

    def _unpin(self, _exc: BaseException | None = None) -> None:
        opened = self._pin.get()
        if opened is None:
            return
        self._pin.set(None)
        with self._counts:
            opened.readers -= 1
            done = opened is not self._opened and opened.readers == 0
        if done:
            opened.release()

    # -- following the link
    def published(self) -> Path | None:
        """The finished build the run's link names now (None when not following a link, or it names none)."""
        if not self.follows:
            return None
        real = Path(os.path.realpath(self.path))
        return real if (real / "manifest.json").is_file() else None

    def refresh(self) -> bool:
        """Switches to the build the link names now, when that is another finished build that opens,
        checks out and agrees with what the views were registered with; whether it switched."""
        target = self.published()
        if target is None or target == self._opened.cache.root or self._refused_reason(target):
            return False
        with self._switching:
            if target == self._opened.cache.root:  # another page load switched meanwhile
                return False
            try:
                new = _open(self.path)
            except TransferVizError as exc:
                self._refuse(target, str(exc))
                return False
            problem = self._problem(new.cache)
            if problem:
                new.release()
                self._refuse(new.cache.root, problem)
                return False
            if self._on_switch is not None:  # the new page first: whoever reads the new build gets its page
                self._on_switch(new.cache)
            with self._counts:
                old, self._opened = self._opened, new
                done = old.readers == 0
            if done:
                old.release()
            log.info("serving build %s of run %s (was %s)", new.cache.root.name, new.cache.name, old.cache.root.name)
            return True

    def _problem(self, new: Cache) -> str | None:
        try:
            new.verify()
            same = registered_shape(new) == registered_shape(self._opened.cache)
        except TransferVizError as exc:
            return str(exc)
        if not same:
            return "its classes, layers or instances differ from the served build's; restart the dashboard to serve it"
        return None

    def _refuse(self, build: Path, reason: str) -> None:
        self._refused = (build, reason)
        log.warning("not serving the newly published build %s: %s", build.name, reason)

    def _refused_reason(self, build: Path) -> str | None:
        return self._refused[1] if self._refused is not None and self._refused[0] == build else None

    # -- health
    def health(self) -> tuple[int, str]:
        """``/healthz``: 200 ``ok <run> <build>`` (and a newer build waiting for a page load or refused)
        while the served build's manifest and artifacts are on disk, else 503 with one line."""
        cache = self._opened.cache
        newer = self.published()
        newer = newer if newer is not None and newer != cache.root else None
        refused = self._refused_reason(newer) if newer is not None else None
        missing = _missing(cache)
        if missing is not None:
            fix = (f"reload the page to serve the published build {newer.name}" if newer is not None and not refused
                   else "restart the dashboard on a built cache")
            return 503, _gone(cache, missing, fix)
        served = f"ok {cache.name} {cache.root.name}"
        if newer is None:
            return 200, served
        if refused:
            return 200, f"{served}; newer build {newer.name} is published but not served: {refused}"
        return 200, f"{served}; newer build {newer.name} is published, served from the next page load"

    def __repr__(self) -> str:
        return f"LiveCache({self.path}, serving {self._opened.cache.root.name})"


def _missing(cache: Cache) -> str | None:
    """The first of the build's manifest and artifacts that is not on disk (stat calls only), or None."""
    for rel in ("manifest.json", *cache.manifest.get("artifacts", {})):
        if not os.path.exists(cache.root / rel):
            return rel
    return None


def _gone(cache: Cache, missing: str, fix: str) -> str:
    return f"error: the served build {cache.root.name} of run {cache.name} is gone ({missing} missing); {fix}"


def health(cache: Cache) -> tuple[int, str]:
    """The ``/healthz`` status and line of the app's cache: a :class:`LiveCache` or a plain :class:`Cache`."""
    if isinstance(cache, LiveCache):
        return cache.health()
    missing = _missing(cache)
    if missing is not None:
        return 503, _gone(cache, missing, "restart the dashboard on a built cache")
    return 200, f"ok {cache.name} {cache.root.name}"
