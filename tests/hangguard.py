"""A guard against hangs in the tests: not a speed goal.

The tests that feed the compiler hostile or huge programs once met SymPy
loops that ran for minutes or for ever. `answers_within()` stops such a test
with a clear failure instead of letting it run into CI's time limit. Its limit
is generous on purpose, so that a busy machine does not fail a test: how fast
the compiler answers is measured by the benchmarks, `bench/fuzz.py --corpus`
(every program of tests/corpus/hostile.json within a second) and
`bench/run.py` (compile latency of the bundled losses).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

HANG_SECONDS = 30.0


class NoAnswer(BaseException):
    """Raised in the guarded code when the time is up (a BaseException, so no `except Exception` keeps it)."""


@contextmanager
def answers_within(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def _time_is_up(signum, frame):
        raise NoAnswer(f"no answer within {seconds:g} s: a hang")

    previous = signal.signal(signal.SIGALRM, _time_is_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
