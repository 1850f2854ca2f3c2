"""The locks held across `os.fork`, so that a forked child never starts with one of them taken.

A compile holds `symbolic.SYMPY_LOCK` (one compile at a time). A process forked by another
thread meanwhile (the default start method of `multiprocessing` and `concurrent.futures` on
Linux before Python 3.14) got the lock taken by a thread that does not exist in it, and its
first compile waited for ever, with no word (a review of concurrency: a thread compiling
candidates beside a process pool training them). Each lock named here is taken before the fork
and given back after it, in the parent and in the child: a fork waits for the compile in progress.

The locks are taken in the order the code nests them (`ORDER`, outermost first: a compile takes
the parser's lock and makes a loss's class within its own) and given back in reverse, so that a
fork never waits for one of them while holding another that its holder waits for; exactly those
taken are given back (a module imported by another thread while a fork waits may name its lock
then: giving back a lock not taken raised, and left the others held for ever; the change review).
Other libraries' fork handlers run before this one where they were registered later (`logging`'s
takes its module lock), so a fork waiting for a compile may hold theirs meanwhile: a stall of
other threads for the compile's length, not a deadlock, since no compile waits for them.
"""

from __future__ import annotations

import os

ORDER = ("sympy", "parser", "classes")
_locks: dict[str, object] = {}


def hold_across_fork(name: str, lock) -> None:
    """Take `lock` (one of `ORDER`) before every fork of this process and give it back after."""
    if name not in ORDER:
        raise ValueError(
            f"unknown lock {name!r}: its place in ORDER decides when a fork takes it"
        )
    _locks[name] = lock


_taken: list = []  # what `_take` took, for `_give_back` (a lock may be named while a fork waits)


def _take() -> None:
    for lock in [_locks[name] for name in ORDER if name in _locks]:
        lock.acquire()
        _taken.append(lock)


def _give_back() -> None:
    while _taken:
        _taken.pop().release()


if hasattr(os, "register_at_fork"):  # (not on Windows, which does not fork)
    os.register_at_fork(
        before=_take, after_in_parent=_give_back, after_in_child=_give_back
    )
