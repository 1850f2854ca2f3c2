"""Generated code against a NumPy reading of the syntax tree (tests/treeoracle.py), on fuzzed programs.

The oracle of tests/test_emit_keras.py evaluates the SymPy form, so it shares every decision
SymPy made while building it; this one reads the program as written, operation by operation,
as NumPy would. Each program comes from the seeded generator (tests/fuzzgen.py, its `valid`
family) and is computed in float64 by its default code (fused gradients, rewrites), its autodiff
code and its XLA spelling. A value is compared where NumPy's is finite and well conditioned:
float64's own rounding (the oracle in `np.longdouble`) and a relative change of 1e-12 in the
inputs each move it by less than 1e-9 of its size. What is left out, and why:

* numbers written past 1e300 or below 1e-300: the order in which SymPy multiplies them out
  decides where float64 overflows, and TensorFlow flushes subnormal numbers to 0 on the CPU;
* `erf`: TensorFlow's float64 `erf` is NaN past about 1e300 (and at inf), where NumPy's is 1
  (its float32 `erf`, Keras's default, is 1 there);
* a parameter whose default is -0.0: TensorFlow keeps one tensor per Python scalar it has
  converted, and -0.0 == 0.0, so -0.0 became 0.0 once a 0.0 had been converted in the process.

SymPy simplifies with what it can prove for real numbers, which NaN breaks (`min(maximum(250,
y_true), -3)` is -3, where NumPy's is NaN for a NaN label): the inputs here are finite.

The gradients with respect to y_pred of the same three code forms are compared with central
differences of the same oracle in `np.longdouble` (the section "gradients" below).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from backend_autodiff import values_and_gradients
from fuzzgen import Fuzzer
from treeoracle import evaluate

import lossdsl

PROGRAMS_PER_SEED = 60
SEEDS = range(8)
_EXTREME_NUMBER = re.compile(r"\d[eE][-+]?3\d\d|\d{301}")


def _left_out(spec) -> bool:
    source = spec.source
    negative_zero = any(v == 0 and np.copysign(1, v) < 0 for v in spec.params.values())
    return bool(_EXTREME_NUMBER.search(source)) or "erf" in source or negative_zero


def _programs(seed: int):
    fuzzer = Fuzzer(1_000 + seed)
    found = 0
    while found < PROGRAMS_PER_SEED:
        source = fuzzer.draw("valid")
        try:
            spec = lossdsl.compile(source)
        except lossdsl.LossError:
            continue
        if _left_out(spec):
            continue
        found += 1
        yield spec


def _inputs(spec, rng):
    width = spec.resolved.axis_length or 4
    shape = (5, width)
    for low, high in ((0.05, 0.95), (None, None)):
        if spec.resolved.uses_onehot:
            y_true = rng.integers(0, width, shape[:-1]).astype("float64")
        else:
            y_true = (
                rng.uniform(low, high, shape)
                if low is not None
                else rng.normal(0, 2, shape)
            )
        yield (
            y_true,
            rng.uniform(low, high, shape)
            if low is not None
            else rng.normal(0, 2, shape),
        )


def _comparable(spec, y_true, y_pred, expected, rng) -> np.ndarray:
    """Where NumPy's value is finite and well conditioned (see the module docstring)."""
    wide = evaluate(spec.resolved, y_true, y_pred, dtype=np.longdouble).astype(
        "float64"
    )
    wobble = 1 + 1e-12 * rng.standard_normal(y_pred.shape)
    moved = evaluate(
        spec.resolved,
        y_true if spec.resolved.uses_onehot else y_true * wobble,
        y_pred * wobble,
    )
    scale = np.maximum(np.abs(expected), 1.0)
    steady = (np.abs(wide - expected) <= 1e-9 * scale) & (
        np.abs(moved - expected) <= 1e-9 * scale
    )
    return np.isfinite(expected) & (np.abs(expected) < 1e100) & steady


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_code_computes_what_numpy_computes_from_the_syntax_tree(seed):
    import keras

    from lossdsl.runtime import loss_class

    compared = 0
    for number, spec in enumerate(_programs(seed)):
        rng = np.random.default_rng([seed, number])  # (each program its own inputs)
        for y_true, y_pred in _inputs(spec, rng):
            with np.errstate(
                all="ignore"
            ):  # (NumPy's overflow and NaN: the values say so)
                expected = evaluate(spec.resolved, y_true, y_pred)
                where = _comparable(spec, y_true, y_pred, expected, rng)
            for fast, xla in ((True, False), (False, False), (True, True)):
                loss = loss_class(spec, fast=fast, xla=xla)()
                got = keras.ops.convert_to_numpy(loss.call(y_true, y_pred))
                assert got.shape == expected.shape, spec.source
                with np.errstate(all="ignore"):
                    close = np.abs(got - expected) <= 1e-6 * np.maximum(
                        np.abs(expected), 1.0
                    )
                wrong = where & ~close
                assert not wrong.any(), (
                    spec.source,
                    fast,
                    xla,
                    got[wrong],
                    expected[wrong],
                )
            compared += int(where.sum())
    # (most values are comparable: the test compares, it does not skip)
    assert compared >= PROGRAMS_PER_SEED * 5


def test_the_oracle_reads_the_program_as_numpy_would():
    # a list of equal items, a where, a reduction, a binding and a parameter, by hand
    spec = lossdsl.compile(
        "param k = 2\nv = [1, 2, 3] * 0 + k\nwhere(y_pred > 0.5, sum(v) * y_pred, log(y_true))"
    )
    y_true = np.array([[1.0, np.e, 1.0]])
    y_pred = np.array([[0.25, 1.0, 0.75]])
    np.testing.assert_allclose(
        evaluate(spec.resolved, y_true, y_pred), [(0 + 6.0 + 4.5) / 3]
    )


# ---------------------------------------------------------------- gradients
#
# The gradient of the sum of the per-sample losses with respect to y_pred, as the default code
# (fused), the autodiff code and the XLA spelling (run eagerly) compute it on the active backend,
# against central differences of the oracle in `np.longdouble`. Rows are independent, so one
# column of every row moves at a time.
# A difference is taken where it is trustworthy: at two step sizes the estimates agree, and the
# value's own rounding, divided by the step, is far below the tolerance. Compared only where the
# code's value is the oracle's (the value test above judges the rest: SymPy's `x / x` is 1 where
# NumPy's 0 / 0 in a condition is NaN). The autodiff code's gradient may be NaN there: a branch
# that a `where` does not take still sends autodiff its NaN (docs/decisions.md, "A `where` that
# guards a branch's domain"), as does an overflow inside the gradient (`x^583`, inf * 0; the
# overflow check judges the value). The fused code's gradient must be finite there: in these
# programs it is, and a NaN would be its derivative's fault.
# Left out: programs that call floor, ceil, round or sign (a staircase: its steps, far smaller
# than a large argument, read as a slope to a difference) or that write a number of 15 digits or
# more, or of 1e15 or more, which absorbs a change of the inputs
# (`cos(123456789012345678901234567890 - y_pred)` moves not at all in float64 or long double,
# though its derivative is a sine).

_STAIRCASE = re.compile(r"\b(floor|ceil|round|sign)\s*\(")
_ABSORBING_NUMBER = re.compile(
    r"(?<![.\d])\d{15}|\d\.?[eE]\+?0*(1[5-9]|[2-9]\d|[1-9]\d\d)"
)
_STEPS = (1e-6, 2e-6)


def _central_differences(spec, y_true, y_pred) -> np.ndarray:
    """d(per-sample loss)/d(y_pred), NaN where it cannot be trusted (see the section comment)."""
    wide = np.longdouble
    y_true, y_pred = np.asarray(y_true, wide), np.asarray(y_pred, wide)

    def loss(moved):
        return evaluate(spec.resolved, y_true, moved, dtype=wide)

    size = np.abs(loss(y_pred)).astype("float64")
    found = np.full(y_pred.shape, np.nan)
    for column in range(y_pred.shape[-1]):
        width = 1 + np.abs(y_pred[:, column])
        estimates = []
        for relative in _STEPS:
            up, down = y_pred.copy(), y_pred.copy()
            up[:, column] += relative * width
            down[:, column] -= relative * width
            estimates.append(
                ((loss(up) - loss(down)) / (2 * relative * width)).astype("float64")
            )
        first, second = estimates
        scale = np.maximum(np.abs(first), 1.0)
        rounding = (
            8 * size * float(np.finfo(wide).eps) / (_STEPS[0] * width.astype("float64"))
        )
        trusted = (np.abs(first - second) <= 1e-7 * scale) & (rounding <= 1e-8 * scale)
        found[:, column] = np.where(trusted, first, np.nan)
    return found


@pytest.mark.parametrize("seed", SEEDS)
def test_code_gradients_match_central_differences_of_the_syntax_tree(seed):
    from lossdsl.runtime import loss_class

    compared = 0
    for number, spec in enumerate(_programs(seed)):
        if _STAIRCASE.search(spec.source) or _ABSORBING_NUMBER.search(spec.source):
            continue
        rng = np.random.default_rng(
            [100 + seed, number]
        )  # (each program its own: a filter moves none)
        fused = {
            xla: "custom_gradient" in spec.python_source(xla=xla)
            for xla in (False, True)
        }
        for y_true, y_pred in _inputs(spec, rng):
            with np.errstate(all="ignore"):
                expected = evaluate(spec.resolved, y_true, y_pred)
                rows = _comparable(spec, y_true, y_pred, expected, rng)
                reference = _central_differences(spec, y_true, y_pred)
            for fast, xla in ((True, False), (False, False), (True, True)):
                loss = loss_class(spec, fast=fast, xla=xla)()
                values, gradient = values_and_gradients(loss.call, y_true, y_pred)
                with np.errstate(all="ignore"):
                    same_value = np.abs(values - expected) <= 1e-6 * np.maximum(
                        np.abs(expected), 1.0
                    )
                    where = (rows & same_value)[:, None] & np.isfinite(reference)
                    close = np.abs(gradient - reference) <= 1e-5 * np.maximum(
                        np.abs(reference), 1.0
                    )
                if not (fast and fused[xla]):  # autodiff's NaN: see the section comment
                    where &= np.isfinite(gradient)
                code = ("fused" if fast and fused[xla] else "autodiff") + (
                    ", XLA spelling" if xla else ""
                )
                wrong = where & ~close
                context = (seed, spec.source, code, y_pred[wrong.any(-1)])
                assert not wrong.any(), (*context, gradient[wrong], reference[wrong])
                compared += int(where.sum())
    # (most gradients are comparable: the test compares, it does not skip)
    assert compared >= PROGRAMS_PER_SEED * 35
