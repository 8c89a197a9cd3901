"""Values a worker process reads from the database and keeps a short while, and the
process's refresher thread that reads them again off the tasks' way.

Owns the rule "how old may a kept value be": ``Kept.get`` returns the value read less than
``ttl`` seconds ago (and, where a ``fits`` rule is given, read for an argument that fits the
one asked now), else reads it in the caller. ``workers.runtime`` keeps this way the
strategy in force, each chain's mode, pool guard, pool filter and recorded exclusions, the
champion model's reference and the recent outcomes; an edit in the file, the admin or the
API reaches the tasks within the value's ``ttl``.

A stage that read them in its task paid a database round trip (1-3 ms each on an idle
connection) on its way to the decision once their ``ttl`` had run out, which with 1 s
blocks was every other block, three times in the ml stage. ``start_refresher`` runs one
daemon thread in a worker's pool process that reads every value a task asked for in the
last ``IDLE_S`` again once it is half its ``ttl`` old (with the argument last asked), so
the tasks find it fresh and never wait. A read that fails there is logged and the old
value kept: once it is ``ttl`` old the task reads it itself and fails as it would have
(the callers fail closed). Without a refresher (tests, a solo pool, a command) every read
is the caller's, exactly as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

TICK_S = 0.05  # how often the refresher looks for values half their ttl old
IDLE_S = 60.0  # a value no task asked for this long is no longer read again in the background

_all: weakref.WeakSet[Kept[Any]] = weakref.WeakSet()
_all_lock = threading.Lock()


class Kept(Generic[T]):
    """One value read by ``read(arg)``, kept ``ttl`` seconds, read again by the refresher
    once ``refresh_s`` old (default: half ``ttl``; both may be changed on the object: tests
    do). ``fits(held_arg, arg)``: whether the value read for ``held_arg`` may answer ``arg``
    (default: any argument; the recent outcomes are read for a block and fit the next ones)."""

    def __init__(self, name: str, read: Callable[[Any], T], ttl: float,
                 fits: Callable[[Any, Any], bool] | None = None, refresh_s: float | None = None) -> None:
        self.name = name
        self.ttl = ttl
        self.refresh_s = ttl / 2 if refresh_s is None else refresh_s
        self._read = read
        self._fits = fits
        self._held: tuple[float, Any, T] | None = None  # (read started at, its argument, value)
        self._asked: tuple[float, Any] | None = None  # the last ask: when, and its argument
        self._lock = threading.Lock()  # orders the stores of the caller's and the refresher's reads
        self._failed_at: float | None = None  # the refresher's last failed read, while they fail
        with _all_lock:
            _all.add(self)

    def get(self, arg: Any = None) -> T:
        now = time.monotonic()
        self._asked = (now, arg)
        held = self._held
        if held is not None and now - held[0] < self.ttl and (self._fits is None or self._fits(held[1], arg)):
            return held[2]
        return self._load(now, arg)

    def refresh(self, now: float) -> bool:
        """Read again when asked within ``IDLE_S`` and ``refresh_s`` old (the refresher's
        round); whether it read. Raises what the first of a run of failed reads raises (the
        next are tried every ``refresh_s`` and logged at debug, until one succeeds)."""
        asked, held = self._asked, self._held
        if asked is None or now - asked[0] > IDLE_S:
            return False
        if held is not None and now - held[0] < self.refresh_s:
            # read within refresh_s (by the refresher, or by a caller whose argument did
            # not fit: the recent outcomes when blocks come faster than twice a second)
            return False
        if self._failed_at is not None and now - self._failed_at < self.refresh_s:
            return False  # failing (the database is down): tried again at the value's pace, not each tick
        try:
            self._load(now, asked[1])
        except Exception:
            first = self._failed_at is None
            self._failed_at = now
            if first:
                raise
            log.debug("%s: still unreadable", self.name, exc_info=True)
            return False
        if self._failed_at is not None:
            self._failed_at = None
            log.info("%s read again in the background", self.name)
        return True

    def held(self) -> T | None:
        """The value kept now, however old (None: none); reads nothing."""
        held = self._held
        return None if held is None else held[2]

    def forget(self) -> None:
        self._held = self._asked = None

    def _load(self, started: float, arg: Any) -> T:
        value = self._read(arg)
        with self._lock:  # a slower read begun earlier never replaces a newer one
            if self._held is None or self._held[0] <= started:
                self._held = (started, arg, value)
        return value


class PerKey(Generic[T]):
    """A ``Kept`` per key (a chain id): ``read(key, arg)``; ``ttl`` and ``refresh_s`` as there,
    for every key."""

    def __init__(self, name: str, read: Callable[[Any, Any], T], ttl: float,
                 fits: Callable[[Any, Any], bool] | None = None) -> None:
        self.name, self.ttl, self.refresh_s, self._read, self._fits = name, ttl, ttl / 2, read, fits
        self._by_key: dict[Any, Kept[T]] = {}

    def get(self, key: Any, arg: Any = None) -> T:
        return self._kept(key).get(arg)

    def held(self, key: Any) -> T | None:
        return self._kept(key).held()

    def _kept(self, key: Any) -> Kept[T]:
        kept = self._by_key.get(key)
        if kept is None:
            kept = self._by_key.setdefault(
                key, Kept(f"{self.name}[{key}]", lambda a, k=key: self._read(k, a), self.ttl, self._fits))
        kept.ttl, kept.refresh_s = self.ttl, self.refresh_s
        return kept

    def forget(self) -> None:
        self._by_key.clear()


_refresher: tuple[int, threading.Thread, threading.Event] | None = None
#: Rounds the refresher finished, and a condition to wait on for the next (tests).
rounds = 0
round_done = threading.Condition()


def start_refresher() -> bool:
    """Start this process's refresher thread (once per process: a forked child starts its
    own); False when it already runs."""
    global _refresher
    if _refresher is not None and _refresher[0] == os.getpid() and _refresher[1].is_alive():
        return False
    stop = threading.Event()
    thread = threading.Thread(target=_loop, args=(stop,), name="kept-refresher", daemon=True)
    _refresher = (os.getpid(), thread, stop)
    thread.start()
    return True


def stop_refresher(timeout_s: float = 5.0) -> None:
    global _refresher
    if _refresher is None or _refresher[0] != os.getpid():
        return
    _, thread, stop = _refresher
    stop.set()
    thread.join(timeout_s)
    _refresher = None


def refresh_round(now: float | None = None) -> int:
    """One pass over every kept value (the refresher's round): how many were read again.
    Each failure is logged; the others still get their read."""
    now = time.monotonic() if now is None else now
    with _all_lock:
        items = list(_all)
    read = 0
    for kept in items:
        try:
            read += kept.refresh(now)
        except Exception as exc:
            log.warning("could not read %s again in the background: %s: %s (kept: the task reads it itself "
                        "once it is %.1f s old)", kept.name, type(exc).__name__, exc, kept.ttl)
    return read


def _loop(stop: threading.Event) -> None:
    global rounds
    from django.db import close_old_connections, connections

    try:
        while not stop.wait(TICK_S):
            close_old_connections()  # a connection broken (PostgreSQL restarted) is made again
            refresh_round()
            with round_done:
                rounds += 1
                round_done.notify_all()
    finally:
        connections.close_all()
