"""Fuzzing: thousands of generated programs, valid and hostile, each compile or raise a `LossError`.

The programs come from the seeded generator in tests/fuzzgen.py (its families:
well-formed programs from the grammar's parts; near-valid ones with dropped,
doubled or swapped tokens and swapped operators; hostile splices of unicode
look-alikes, control characters and injection attempts; programs at and over
the limits; random text; token soup). For each: `compile` returns a
`CompiledLoss` or raises a `LossError` with a message and a line and column
(ints or None); `check` returns diagnostics without raising and agrees with
`compile` on whether there are errors. The tests guard against hangs only
(tests/hangguard.py); answering each within a second is `bench/fuzz.py`'s goal.

The plan below runs in chunks of fixed seeds, so a failure names its chunk and
reruns alike. Every program generated is counted, and the last test asserts
that the suite generated at least MIN_PROGRAMS. Longer runs with fresh seeds:
`python bench/fuzz.py --minutes N`.
"""

from __future__ import annotations

import collections

import pytest
from fuzzgen import FAMILIES, Fuzzer, failure, probe
from hangguard import answers_within

import lossdsl

MIN_PROGRAMS = 5_000
# family -> (programs per chunk, chunks)
PLAN = {
    "valid": (400, 5),
    "near_valid": (500, 3),
    "hostile": (500, 3),
    "extreme": (125, 4),
    "text": (500, 1),
    "soup": (500, 1),
}
CHUNKS = [
    (family, chunk) for family, (_, chunks) in PLAN.items() for chunk in range(chunks)
]

GENERATED: collections.Counter = collections.Counter()
STARTED: set[tuple[str, int]] = set()


def seed(family: str, chunk: int) -> int:
    return 20_250_000 + 100 * FAMILIES.index(family) + chunk


@pytest.fixture(scope="module", autouse=True)
def _warm_parser():
    lossdsl.compile("abs(e)")  # the parser is built once, before the hang guards


def test_the_plan_covers_every_family_and_enough_programs():
    assert set(PLAN) == set(FAMILIES)
    assert sum(size * chunks for size, chunks in PLAN.values()) >= MIN_PROGRAMS


@pytest.mark.parametrize("family, chunk", CHUNKS, ids=[f"{f}-{c}" for f, c in CHUNKS])
def test_generated_programs_compile_or_raise_loss_errors(family, chunk):
    STARTED.add((family, chunk))
    fuzzer = Fuzzer(seed(family, chunk))
    failures = []
    compiled = 0
    for _ in range(PLAN[family][0]):
        source = fuzzer.draw(family)
        GENERATED[family] += 1
        with answers_within():
            outcome = probe(source)
        compiled += outcome.compiled
        problem = failure(outcome)
        if problem:
            failures.append(f"{problem}: {source[:200]!r}\n{outcome.trace[-1500:]}")
    assert not failures, (
        f"{len(failures)} of {PLAN[family][0]} failed; the first:\n"
        + "\n".join(failures[:3])
    )
    if family == "valid":
        # The generator must mostly produce programs that get through every stage.
        assert compiled >= PLAN[family][0] // 3, compiled


def test_the_fuzz_suite_generated_enough_programs():
    missing = [
        f"{family}-{chunk}"
        for family, chunk in CHUNKS
        if (family, chunk) not in STARTED
    ]
    if missing:
        pytest.skip(
            f"not every fuzz chunk ran in this session (missing: {', '.join(missing[:5])})"
        )
    total = sum(GENERATED.values())
    assert total >= MIN_PROGRAMS, dict(GENERATED)
    assert set(GENERATED) == set(FAMILIES)
