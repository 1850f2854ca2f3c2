"""The hostile corpus: every input in tests/corpus/hostile.json is answered, with a LossError at worst.

The corpus is a JSON list of strings (so that multi-line inputs, control
characters and lone surrogates survive). It holds the adversarial inputs of
tests/test_robustness.py up to 12,000 characters and the programs of
tests/test_limits.py (at and past each limit), hand-written ones (Python,
SymPy, shell, SQL and template injection; numbers at and past float range;
parameter and binding names that collide with Python or the generated class;
descriptions that try to close the docstring; inputs at the size, depth,
tower and list limits) and a sample of what the fuzzer (tests/fuzzgen.py)
drew, chosen for the variety of their outcomes. To grow it, append the inputs
that `python bench/fuzz.py --minutes N` writes to its `--out` file.

Each input is one test: with lossdsl's and SymPy's caches cleared, `compile`
returns a `CompiledLoss` or raises a `LossError` with a non-empty message and
a line and column that are ints (from 1) or None; `check` returns diagnostics
without raising, with an error among them exactly when `compile` raised. The
tests guard against hangs only (tests/hangguard.py); that each input is
answered within a second is a goal of the benchmark `bench/fuzz.py --corpus`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fuzzgen import failure, probe
from hangguard import answers_within
from sympy.core.cache import clear_cache

import lossdsl
from lossdsl import pipeline

CORPUS = Path(__file__).resolve().parent / "corpus" / "hostile.json"
INPUTS: list[str] = json.loads(CORPUS.read_text(encoding="ascii"))
# What each input gave (filled in by the tests below, read by the last one).
OUTCOMES: dict[int, str] = {}


@pytest.fixture(scope="module", autouse=True)
def _warm_parser():
    lossdsl.compile("abs(e)")  # the parser is built once, before the hang guards


def test_the_corpus_is_large_and_distinct():
    assert len(INPUTS) >= 300
    assert all(isinstance(text, str) for text in INPUTS)
    assert len(set(INPUTS)) == len(INPUTS)


@pytest.mark.parametrize(
    "index", range(len(INPUTS)), ids=[f"{i:03d}" for i in range(len(INPUTS))]
)
def test_hostile_input(index):
    text = INPUTS[index]
    pipeline._front_end_cached.cache_clear()
    clear_cache()
    with answers_within():
        outcome = probe(text)
    assert failure(outcome) is None, (failure(outcome), outcome.trace)
    if isinstance(outcome.result, lossdsl.LossError):
        err = outcome.result
        assert isinstance(err.message, str) and err.message.strip()
        assert err.line is None or (type(err.line) is int and err.line >= 1)
        assert err.column is None or (type(err.column) is int and err.column >= 1)
    else:
        assert outcome.result.source == text
    assert isinstance(outcome.diagnostics, list)
    assert all(isinstance(d, lossdsl.Diagnostic) for d in outcome.diagnostics)
    OUTCOMES[index] = "compiles" if outcome.compiled else type(outcome.result).__name__


def test_the_corpus_covers_every_outcome():
    if len(OUTCOMES) < len(INPUTS):
        pytest.skip(
            f"only {len(OUTCOMES)} of the {len(INPUTS)} corpus inputs ran in this session"
        )
    assert set(OUTCOMES.values()) >= {
        "compiles",
        "LossSyntaxError",
        "LossNameError",
        "LossTypeError",
        "LossLimitError",
        "NoPredictionDependenceError",
        "NotDifferentiableError",
    }
