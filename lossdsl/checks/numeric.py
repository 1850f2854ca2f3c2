"""A float evaluator for SymPy trees of lossdsl's elementwise functions.

The checks sample expressions at points (boundaries of `where`, dependence
probes). `evaluate` walks the tree with Python's `math`: no code generation,
no `lambdify`. Tensor operations raise `Unsupported`; domain errors give NaN.

`compiled(expr)` is the same function for an expression evaluated at many
points (the jump check bisects hundreds of times): the tree is turned once
into nested Python closures, one per node, which then compute exactly what
`evaluate` computes, in the same order, raising the same errors (an
unsupported operation only when its value is asked for), at a fraction of the
cost of dispatching on every node at every point.

`compiled_rows(expr, size, per_sample)` evaluates the per-sample loss of a
program that works over the last axis (sums, means, softmax, list literals)
on one row of `size` values of each input: an elementwise node is computed at
one position of the row, a function over the axis at every position. With
`float32=True` each operation's value is rounded to float32 as a float32
computation would give it: inf past float32's range, 0 below its smallest
number, NaN where an operation meets inf it cannot resolve (`inf * 0`).
"""

from __future__ import annotations

import math
import struct

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from lossdsl import hyperbolic
from lossdsl import symfuncs as sf
from lossdsl.functions import float_sigmoid, float_softplus


class Unsupported(Exception):
    """The expression holds an operation this evaluator does not compute."""


def _heaviside(x: float) -> float:
    return 1.0 if x > 0 else (0.0 if x < 0 else 0.5)


UNARY = {
    sp.exp: math.exp,
    sp.log: math.log,
    sp.Abs: abs,
    sp.sin: math.sin,
    sp.cos: math.cos,
    sp.tan: math.tan,
    hyperbolic.sinh: math.sinh,
    hyperbolic.cosh: math.cosh,
    hyperbolic.tanh: math.tanh,
    sp.asin: math.asin,
    sp.acos: math.acos,
    sp.atan: math.atan,
    sp.erf: math.erf,
    sp.sign: lambda x: float((x > 0) - (x < 0)),
    sp.floor: math.floor,
    sp.ceiling: math.ceil,
    sp.Heaviside: _heaviside,
    sf.Sigmoid: float_sigmoid,
    sf.Softplus: float_softplus,
    sf.Relu: lambda x: max(x, 0.0),
    sf.Log1p: math.log1p,
    sf.Expm1: math.expm1,
    sf.Round: round,
    sf.Held: lambda x: x,
}

RELATIONS = {
    sp.StrictLessThan: lambda a, b: a < b,
    sp.LessThan: lambda a, b: a <= b,
    sp.StrictGreaterThan: lambda a, b: a > b,
    sp.GreaterThan: lambda a, b: a >= b,
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
    sf.SelfEqual: lambda a, b: a == b,
    sf.SelfUnequal: lambda a, b: a != b,
}
_NOTS = (sp.Not, sf.NegatedOrdering)


def evaluate(expr: sp.Basic, env: dict[sp.Symbol, float]) -> float:
    """The value of `expr` with its symbols set from `env` (NaN outside a domain)."""
    try:
        return float(_eval(expr, env))
    except (ValueError, ZeroDivisionError):
        return math.nan
    except OverflowError:
        return math.inf


def _eval(expr, env):
    if expr.is_Symbol:
        if expr not in env:
            raise Unsupported(f"no value for {expr}")
        return env[expr]
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        return float(expr)
    if expr is sp.true:
        return True
    if expr is sp.false:
        return False
    func = expr.func
    if func is sp.Add:
        return math.fsum(_eval(a, env) for a in expr.args)
    if func is sp.Mul:
        result = 1.0
        for a in expr.args:
            result *= _eval(a, env)
        return result
    if func is sp.Pow:
        base, exponent = (_eval(a, env) for a in expr.args)
        if base == 0 and exponent < 0:
            return math.inf
        return math.pow(base, exponent)
    if func in UNARY:
        return UNARY[func](_eval(expr.args[0], env))
    if func is sp.Max:
        return max(_eval(a, env) for a in expr.args)
    if func is sp.Min:
        return min(_eval(a, env) for a in expr.args)
    if func is sf.Clip:
        x, lo, hi = (_eval(a, env) for a in expr.args)
        return min(max(x, lo), hi)
    if issubclass(func, sp.Piecewise):
        for value, cond in expr.args:
            if _eval(cond, env):
                return _eval(value, env)
        return math.nan
    if func in RELATIONS:
        return RELATIONS[func](_eval(expr.args[0], env), _eval(expr.args[1], env))
    if func is sp.And:
        return all(_eval(a, env) for a in expr.args)
    if func is sp.Or:
        return any(_eval(a, env) for a in expr.args)
    if func in _NOTS:
        return not _eval(expr.args[0], env)
    if func is sp.ITE:  # (SymPy's form of a condition on a `where`'s value)
        return (
            _eval(expr.args[1], env)
            if _eval(expr.args[0], env)
            else _eval(expr.args[2], env)
        )
    raise Unsupported(f"cannot evaluate {func}")


def compiled(
    expr: sp.Basic,
    stand_ins: dict[sp.Basic, sp.Symbol] | None = None,
    memo: dict | None = None,
):
    """A function `env -> float` equal to `lambda env: evaluate(expr, env)` (see the module docstring);
    each part of `expr` that is a key of `stand_ins` is read from `env` under its symbol instead.
    `memo`, a dict a caller keeps for several expressions compiled without `stand_ins`, holds the
    closure of each part (a function of the part alone), so that a part they share is built once."""

    def make(node: sp.Basic, parts: list):
        symbol = stand_ins.get(node)
        return _closure(node, parts) if symbol is None else _closure(symbol, [])

    root = _closure_tree(expr, make if stand_ins else None, None if stand_ins else memo)

    def value(env: dict[sp.Symbol, float]) -> float:
        try:
            return float(root(env))
        except (ValueError, ZeroDivisionError):
            return math.nan
        except OverflowError:
            return math.inf

    return value


def _closure_tree(expr: sp.Basic, make=None, done: dict | None = None):
    """The closure computing `_eval(expr, env)`, built bottom-up without recursion (each node's by
    `make(node, argument closures)`, `_closure` unless given; `done`: what earlier calls with the
    same `make` built, which takes what this one builds)."""
    make = make or _closure
    done = {} if done is None else done
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        if not ready and node.args:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in done)
            continue
        done[node] = make(node, [done.get(a) for a in node.args])
    return done[expr]


def _closure(expr, parts):  # noqa: C901 - one branch per case of `_eval`, in its order
    """The closure for one node of `_eval`, given the closures of its arguments."""
    if expr.is_Symbol:

        def symbol(env, expr=expr):
            if expr not in env:
                raise Unsupported(f"no value for {expr}")
            return env[expr]

        return symbol
    if expr.is_Number or isinstance(expr, sp.NumberSymbol):
        try:
            constant = float(expr)
        except Exception:  # noqa: BLE001 - raised again, as `_eval` raises it, when the value is asked for
            return lambda env, expr=expr: float(expr)
        return lambda env: constant
    if expr is sp.true:
        return lambda env: True
    if expr is sp.false:
        return lambda env: False
    func = expr.func
    if func is sp.Add:
        return lambda env: math.fsum(
            [part(env) for part in parts]
        )  # (a list: the same values, sooner)
    if func is sp.Mul:

        def product(env):
            result = 1.0
            for part in parts:
                result *= part(env)
            return result

        return product
    if func is sp.Pow:
        base_part, exponent_part = parts

        def power(env):
            base, exponent = base_part(env), exponent_part(env)
            if base == 0 and exponent < 0:
                return math.inf
            return math.pow(base, exponent)

        return power
    if func in UNARY:
        function, (inner,) = UNARY[func], parts[:1]
        return lambda env: function(inner(env))
    if func is sp.Max:
        return lambda env: max([part(env) for part in parts])
    if func is sp.Min:
        return lambda env: min([part(env) for part in parts])
    if func is sf.Clip:

        def clip(env):
            x, lo, hi = (part(env) for part in parts)
            return min(max(x, lo), hi)

        return clip
    if issubclass(func, sp.Piecewise):
        branches = parts  # the (value, condition) closures of its ExprCondPairs

        def piecewise(env):
            for value, cond in branches:
                if cond(env):
                    return value(env)
            return math.nan

        return piecewise
    if isinstance(expr, ExprCondPair):
        return tuple(
            parts
        )  # read by the Piecewise above; `_eval` never evaluates a pair by itself
    if func in RELATIONS:
        relation, (left, right) = RELATIONS[func], parts[:2]
        return lambda env: relation(left(env), right(env))
    if func is sp.And:
        return lambda env: all(part(env) for part in parts)
    if func is sp.Or:
        return lambda env: any(part(env) for part in parts)
    if func in _NOTS:
        (inner,) = parts[:1]
        return lambda env: not inner(env)
    if func is sp.ITE:  # (SymPy's form of a condition on a `where`'s value)
        test, then, otherwise = parts[:3]
        return lambda env: then(env) if test(env) else otherwise(env)
    return _unsupported(func)


def _unsupported(func):
    def unsupported(env):
        raise Unsupported(f"cannot evaluate {func}")

    return unsupported


# ------------------------------------------------------------------ rows

# The keys of an environment of `compiled_rows` that hold the position in the row being computed,
# and the values over the row computed so far (the same at every position).
_AT = "position"
_ROW_VALUES = "row values"


def compiled_rows(
    expr: sp.Basic,
    size: int,
    per_sample: bool,
    float32: bool = False,
    bound: list[tuple[sp.Symbol, sp.Basic]] = (),
    fixed: dict[sp.Basic, float] | None = None,
    overflow: bool = True,
    memo: dict | None = None,
):
    """A function `env -> float`: the per-sample loss of `expr` on one row, where `env` maps y_true
    and y_pred to tuples of `size` floats (parameters to floats): the mean over the row of an
    elementwise loss, or the loss itself where it is already one value per sample.

    With `float32`, each operation is rounded to float32 (see the module docstring), and where one
    gives inf from finite arguments, the node is appended to `env[OVERFLOWED]` if there is one;
    without `overflow`, a value past float32's range is kept as it is, not rounded to inf.
    `bound`: (symbol, value) pairs, each value reading only earlier symbols, computed where `expr`
    reads the symbol (a program's bindings, as its code computes them). `fixed`: nodes computed as
    the given constant instead. `memo`: as `compiled`'s, for calls with the same `size`, `float32`,
    `overflow`, `bound` and `fixed`."""
    fixed = fixed or {}
    made: dict[sp.Symbol, object] = {}

    def make(node, parts):
        if node in fixed:
            return lambda env, value=fixed[node]: value
        if node in made:
            return made[node]
        closure = _row_closure(node, parts, size)
        return (
            _in_float32(node, closure, parts, overflow)
            if float32 and callable(closure)
            else closure
        )

    for symbol, value in bound:
        made[symbol] = _closure_tree(value, make, memo)
    root = _closure_tree(expr, make, memo)
    positions = range(size) if not per_sample else range(1)

    def value(env: dict) -> float:
        try:
            env = {**env, sf.C: float(size), _ROW_VALUES: {}}
            values = [root({**env, _AT: at}) for at in positions]
            return float(math.fsum(values) / len(values))
        except (ValueError, ZeroDivisionError):
            return math.nan
        except OverflowError:
            return math.inf

    return value


# float32's largest number plus half a unit in its last place: anything larger rounds to inf.
FLOAT32_INF_FROM = 3.4028235677973366e38
_FLOAT32 = struct.Struct("f")


def to_float32(value: float) -> float:
    """`value` rounded to the nearest float32 (inf past its range, 0 below its smallest number)."""
    if not math.isfinite(value):
        return value
    if abs(value) >= FLOAT32_INF_FROM:
        return math.copysign(math.inf, value)
    return _FLOAT32.unpack(_FLOAT32.pack(value))[0]


# The key of an environment of `compiled_rows(float32=True)` under which a list collects each node
# that gave inf from finite arguments.
OVERFLOWED = "overflowed"


def _in_float32(node: sp.Basic, closure, parts, overflow: bool = True):
    """`closure`, its value rounded to float32; where Python's float overflows, the float32 value
    (inf with its sign); where it raises a domain error, NaN (a logarithm of 0: -inf). Without
    `overflow`, a value past float32's range stays as it is."""

    last: list = [
        None,
        None,
    ]  # (env, value) of the last call: a part is asked again for its value
    # where its parent overflows (`_finite`), which without this doubles the work at each level

    def rounded(env):
        if last[0] is env:
            return last[1]
        value = _rounded(env)
        last[0], last[1] = env, value
        return value

    def _rounded(env):
        try:
            value = closure(env)
        except OverflowError:
            value = _overflow(node, parts, env)
        except (ValueError, ZeroDivisionError):
            if node.func in (sp.log, sf.Log1p) and parts[0](env) == (
                0.0 if node.func is sp.log else -1.0
            ):
                return -math.inf
            return math.nan
        if isinstance(value, bool):
            return value
        value = float(value)
        if not overflow and abs(value) >= FLOAT32_INF_FROM:
            return value
        value = to_float32(value)
        if (
            math.isinf(value)
            and OVERFLOWED in env
            and all(_finite(part, env) for part in parts)
        ):
            env[OVERFLOWED].append(node)
        return value

    return rounded


def _finite(part, env) -> bool:
    if not callable(part):
        return True
    value = part(env)
    return isinstance(value, bool) or math.isfinite(value)


def _overflow(node: sp.Basic, parts, env) -> float:
    """The infinite value of `node` where computing it overflowed Python's float."""
    if node.func is sp.Pow:
        base, exponent = parts[0](env), parts[1](env)
        odd = float(exponent).is_integer() and int(exponent) % 2 == 1
        return -math.inf if base < 0 and odd else math.inf
    if node.func is hyperbolic.sinh:
        return math.copysign(math.inf, parts[0](env))
    if node.func in (
        sp.floor,
        sp.ceiling,
        sf.Round,
    ):  # of an infinite value: that value
        return parts[0](env)
    return math.inf


def _logsumexp(row: list[float]) -> float:
    top = max(row)
    if math.isinf(top):
        return top
    return top + math.log(math.fsum(math.exp(x - top) for x in row))


# Each function over the last axis, from the row of its argument to its value(s).
_REDUCE = {
    sf.ReduceSum: math.fsum,
    sf.ReduceMean: lambda row: math.fsum(row) / len(row),
    sf.ReduceMax: max,
    sf.ReduceMin: min,
    sf.LogSumExp: _logsumexp,
}


def _log_softmax(row: list[float]) -> list[float]:
    total = _logsumexp(row)
    return [x - total for x in row]


def _normalize(row: list[float]) -> list[float]:
    norm = math.sqrt(max(math.fsum(x * x for x in row), 1e-12))
    return [x / norm for x in row]


# Each vector function over the last axis, from the row of its argument to its values (the domain
# check computes a vector function of a list with them too).
ALONG = {
    sf.Softmax: lambda row: [math.exp(x) for x in _log_softmax(row)],
    sf.LogSoftmax: _log_softmax,
    sf.Normalize: _normalize,
}


def _row_closure(expr, parts, size: int):
    """`_closure` for one position of a row (`env[_AT]`), with the functions over the last axis."""
    if expr.is_Symbol:

        def symbol(env, expr=expr):
            if expr not in env:
                raise Unsupported(f"no value for {expr}")
            value = env[expr]
            return value[env[_AT]] if isinstance(value, tuple) else value

        return symbol
    if isinstance(expr, sf.Vector):
        if len(parts) == 1:  # one value: it broadcasts along the row, as in NumPy
            return parts[0]
        if len(parts) != size:
            return _unsupported(sf.Vector)  # a list of another length than the row's
        return lambda env: parts[env[_AT]](env)
    func = expr.func
    if func in _REDUCE or func in ALONG:
        (inner,) = parts
        over_row = _REDUCE.get(func) or ALONG[func]

        key = (
            object()
        )  # this node's entry in the row's values (the function itself would be a
        # closure that reaches itself: a cycle holding the closures below it until a collection)

        def computed(env):
            found = env[_ROW_VALUES]
            if key not in found:
                found[key] = over_row([inner({**env, _AT: at}) for at in range(size)])
            return found[key]

        if func in _REDUCE:
            return computed
        return lambda env: computed(env)[env[_AT]]
    return _closure(expr, parts)
