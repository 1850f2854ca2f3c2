"""Nightly fuzzing: compile and check generated programs for N minutes; report and keep what failed.

The programs come from the seeded generator of the test suite (tests/fuzzgen.py),
cycling through its families (valid, near_valid, hostile, extreme, text, soup).
Each must compile or raise a `LossError` with a message and a place, `check()`
must return diagnostics without raising, and both must answer within a second.
With `--emit`, every program that compiles is also turned into its Keras module,
which must parse and pass the generated-code audit (tests/codeaudit.py).

    python bench/fuzz.py --minutes 30 [--seed 1] [--out fuzz-failures.json] [--emit]
    python bench/fuzz.py --corpus

`--corpus` times every input of the hostile corpus (tests/corpus/hostile.json)
instead, caches cleared before each (over a second, once more: the best of two
counts), and prints the median and the slowest. The test suite runs the same
inputs for their outcomes and guards only against hangs; the second each
input must be answered within is this benchmark's goal, not a test's.

Prints a summary (programs per family, outcomes, the slowest inputs, failures)
and writes every failing input, with what went wrong and its traceback, to the
`--out` file as JSON (a list of objects), so it can be added to
tests/corpus/hostile.json. Exits 1 when anything failed. Not a test module:
pytest does not collect it.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import codeaudit  # noqa: E402
import fuzzgen  # noqa: E402
from hangguard import NoAnswer, answers_within  # noqa: E402
from sympy.core.cache import clear_cache  # noqa: E402

import lossdsl  # noqa: E402
from lossdsl import pipeline  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "hostile.json"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="how long to run (default 10)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=int(time.time()),
        help="the generator's seed (default: the time)",
    )
    parser.add_argument(
        "--out", default="fuzz-failures.json", help="where to write failing inputs"
    )
    parser.add_argument(
        "--emit",
        action="store_true",
        help="also emit and audit the Keras module of each program",
    )
    parser.add_argument(
        "--emit-timeout",
        type=int,
        default=10,
        help="seconds one emission may take (default 10)",
    )
    parser.add_argument(
        "--corpus",
        action="store_true",
        help="time the hostile corpus instead of fuzzing",
    )
    parser.add_argument(
        "--families",
        nargs="+",
        choices=fuzzgen.FAMILIES,
        default=list(fuzzgen.FAMILIES),
    )
    return parser.parse_args(argv)


def emit_failure(spec, timeout: int) -> tuple[str | None, str]:
    """What is wrong with the Keras module of a compiled program (None if nothing), and a traceback."""
    # The hang guard's NoAnswer is a BaseException: lossdsl, which turns any Exception into a
    # LossInternalError, cannot report a slow emission as a failure of its own.
    try:
        with answers_within(timeout):
            source = spec.python_source()
    except NoAnswer:
        return f"python_source() took over {timeout}s", traceback.format_exc()
    except lossdsl.LossError as err:
        return (
            f"python_source() raised {type(err).__name__}: {err.message}",
            traceback.format_exc(),
        )
    except Exception as err:  # noqa: BLE001 - what the fuzzer hunts for
        return (
            f"python_source() raised {type(err).__name__}: {err}",
            traceback.format_exc(),
        )
    try:
        findings = codeaudit.audit(source, spec)
    except SyntaxError as err:
        return f"the generated module does not parse: {err}", ""
    return (f"generated-code audit: {findings[0]}" if findings else None), ""


def time_corpus(out: str) -> int:
    """Every input of tests/corpus/hostile.json, timed with cold caches; 1 when one fails or is over a second."""
    inputs = json.loads(CORPUS.read_text(encoding="ascii"))
    lossdsl.compile("abs(e)")  # build the parser outside the timings
    timed: list[tuple[float, str]] = []
    failures: list[dict] = []
    for source in inputs:
        pipeline._front_end_cached.cache_clear()
        clear_cache()
        outcome = fuzzgen.probe(source, fuzzgen.TIME_LIMIT)
        timed.append((outcome.seconds, source))
        problem = fuzzgen.failure(outcome, fuzzgen.TIME_LIMIT)
        if problem is not None:
            failures.append(
                {
                    "family": "corpus",
                    "failure": problem,
                    "source": source,
                    "traceback": outcome.trace,
                }
            )
            print(f"FAIL {problem}: {source[:120]!r}", flush=True)
    seconds = sorted(t for t, _ in timed)
    print(
        f"{len(inputs)} corpus inputs: median {1000 * statistics.median(seconds):.1f} ms, total {sum(seconds):.1f} s"
    )
    print("slowest:")
    for elapsed, source in sorted(timed, key=lambda item: -item[0])[:10]:
        print(f"  {elapsed:6.3f}s {source[:100]!r}")
    if failures:
        Path(out).write_text(
            json.dumps(failures, indent=1, ensure_ascii=True) + "\n", encoding="utf-8"
        )
        print(f"failing inputs written to {out}")
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.corpus:
        return time_corpus(args.out)
    fuzzer = fuzzgen.Fuzzer(args.seed)
    lossdsl.compile("abs(e)")  # build the parser outside the timings
    deadline = time.monotonic() + 60 * args.minutes
    counts: dict[str, collections.Counter] = collections.defaultdict(
        collections.Counter
    )
    slowest: list[tuple[float, str, str]] = []
    failures: list[dict] = []
    total = 0
    turn = 0
    report = time.monotonic() + 60
    while time.monotonic() < deadline:
        if time.monotonic() > report:
            report += 60
            print(f"... {total:,} programs, {len(failures)} failed", flush=True)
        family = args.families[turn % len(args.families)]
        turn += 1
        source = fuzzer.draw(family)
        outcome = fuzzgen.probe(source, fuzzgen.TIME_LIMIT)
        total += 1
        counts[family][
            "compiled" if outcome.compiled else type(outcome.result).__name__
        ] += 1
        slowest = sorted(
            [*slowest, (outcome.seconds, family, source)], key=lambda item: -item[0]
        )[:5]
        problem, trace = fuzzgen.failure(outcome, fuzzgen.TIME_LIMIT), outcome.trace
        if problem is None and args.emit and outcome.compiled:
            problem, trace = emit_failure(outcome.result, args.emit_timeout)
        if problem is not None:
            failures.append(
                {
                    "family": family,
                    "failure": problem,
                    "source": source,
                    "traceback": trace,
                }
            )
            print(f"FAIL [{family}] {problem}: {source[:120]!r}", flush=True)
    print(
        f"\n{total:,} programs in {args.minutes:g} min (seed {args.seed}); {len(failures)} failed"
    )
    for family in args.families:
        outcomes = ", ".join(f"{name} {n}" for name, n in counts[family].most_common())
        print(f"  {family:<11} {sum(counts[family].values()):>7,}  {outcomes}")
    print("slowest:")
    for seconds, family, source in slowest:
        print(f"  {seconds:6.3f}s [{family}] {source[:100]!r}")
    if failures:
        Path(args.out).write_text(
            json.dumps(failures, indent=1, ensure_ascii=True) + "\n", encoding="utf-8"
        )
        print(f"failing inputs written to {args.out}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
