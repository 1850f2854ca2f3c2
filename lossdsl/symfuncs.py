"""SymPy function classes for the operations SymPy lacks or that code generation keeps whole.

Two families:

* Tensor operations over the last axis (`ReduceSum`, `ReduceMean`, `ReduceMax`,
  `ReduceMin`, `LogSumExp`, `Softmax`, `LogSoftmax`, `Normalize`), the label
  encoder `OneHot` and the constant `Vector`. They stay unevaluated in
  `CompiledLoss.expr`; the element gradient of a reduction is defined through
  `fdiff` (`sum` -> 1, `mean` -> 1/C, `logsumexp` -> softmax), where `C` is the
  size of the last axis.
* Elementwise heads (`Sigmoid`, `Softplus`, `Relu`, `Clip`, `Log1p`, `Expm1`,
  `Round`) that the emitters keep as one operation. `plain()` rewrites each into
  ordinary SymPy (`Sigmoid(x)` -> `1/(1 + exp(-x))`), which is the form the
  public `expr` uses. All of them evaluate on constants (numbers, and `pi`
  and expressions of it, which `Max` and `Min` must be able to compare).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading

import sympy as sp

from lossdsl import hyperbolic
from lossdsl.derivative import by_chain_rule
from lossdsl.derivative import derivative as chain_rule_derivative
from lossdsl.errors import LossLimitError

# The size of the last axis, for the element gradient of `mean`.
C = sp.Symbol("C", positive=True, integer=True)


class _WholeInFolds(sp.Function):
    """A function that SymPy's `piecewise_fold` leaves whole, with any Piecewise inside it."""

    def has(self, *patterns) -> bool:
        """As SymPy's, except that a Piecewise inside is not reported to SymPy's `piecewise_fold`.

        SymPy folds a condition that holds a Piecewise (every `ExprCondPair` does), and
        `piecewise_fold` pulls a Piecewise out of any function whose arguments hold one,
        `f(Piecewise((a, c), (b, True)))` -> `Piecewise((f(a), c), (f(b), True))`: right for a
        function of one element, wrong over an axis (`max(where(y_pred > 0, y_pred, -5)) > 0`
        became an elementwise condition). `piecewise_fold` asks the function itself whether it
        holds a Piecewise, and leaves it whole when it does not.
        """
        if sp.Piecewise in patterns and _called_from_piecewise_fold(sys._getframe(1)):
            patterns = tuple(p for p in patterns if p is not sp.Piecewise)
            if not patterns:
                return False
        return super().has(*patterns)


class TensorFunction(_WholeInFolds):
    """An operation over the last axis: stays unevaluated."""

    nargs = 1
    is_real = True
    keras_name = ""

    @property
    def is_number(self) -> bool:
        # A tensor, not a number, even of constants (`sum([1, 2])`): SymPy must not try
        # to compare or evaluate it (`Max` raises "not comparable" on such a "number").
        return False

    @classmethod
    def eval(cls, *args):
        # `where` nested in a `where` inside the argument, flattened (exactly), so that no
        # Piecewise under the axis holds another: `piecewise_fold`, which leaves the function
        # whole (`has`), would fold such a pair again and again until the recursion limit.
        flat = [_flat_piecewise(arg) if arg.has(sp.Piecewise) else arg for arg in args]
        if any(new is not old for new, old in zip(flat, args, strict=True)):
            return cls(*flat)
        return None


_PIECEWISE_MODULE = sys.modules[sp.piecewise_fold.__module__].__dict__


def _called_from_piecewise_fold(frame) -> bool:
    """`frame` runs SymPy's `piecewise_fold` (or a generator expression inside it)."""
    code = frame.f_code
    return frame.f_globals is _PIECEWISE_MODULE and code.co_qualname.split(".")[0] == "piecewise_fold"


def folded_condition(cond: sp.Basic) -> sp.Basic:
    """`cond` folded as SymPy's `ExprCondPair` folds a condition that holds a Piecewise, with
    each tensor function that holds one left whole.

    `where(where(c, y_pred, max(where(...))) <= 1, ...)`: SymPy folds the condition into
    `Piecewise((y_pred <= 1, c), (max(...) <= 1, True))` and, while any of its values still holds
    a Piecewise (`max(...) <= 1` does, under the axis, where `has` cannot hide it), folds it
    again, until the recursion limit (a second, then a LossLimitError). Here each such tensor
    function stands aside as a symbol while the condition folds, as does each `ITE` of an earlier
    fold; the result is written as SymPy writes it (`_if_then_else`), and folds no further.

    Raises:
        LossLimitError: more than MAX_CASES cases, or a result over MAX_FOLDED_SIZE terms.
    """
    if not isinstance(cond, sp.Basic) or not cond.has(sp.Piecewise):
        return cond
    _check_cases(cond)
    hidden: dict[sp.Basic, sp.Dummy] = {}
    stack = [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, _WholeInFolds):  # a tensor function, or a `where` held whole
            if sp.Basic.has(node, sp.Piecewise) and node not in hidden:
                hidden[node] = sp.Dummy()
            continue
        if isinstance(node, sp.ITE) and not node.has(sp.Piecewise):
            # An earlier fold's: `piecewise_fold` would put it in conjunctive normal form.
            hidden.setdefault(node, sp.Dummy())
            continue
        stack.extend(node.args)
    if any(isinstance(node, Held) for node in hidden) and cond.xreplace(hidden).has(sp.Piecewise):
        # Folded into cases, a condition that holds a `Held` one sends SymPy's `piecewise_fold` round
        # and round (its own `has` sees into the Held) to the recursion limit.
        raise LossLimitError(
            "this `where` condition reads a `where` whose own condition compares a value that is not"
            " finite in its other branch (`log(0)`, `1 / 0`): lossdsl cannot fold the two into one"
            " condition; keep the inner value finite (e.g. clip it away from 0)"
        )
    try:
        folded = sp.piecewise_fold(cond.xreplace(hidden) if hidden else cond)
    except TypeError:  # a branch SymPy cannot compare: `log(0) > -10` is `zoo > -10`
        return _held(cond)
    if isinstance(folded, sp.Piecewise):
        folded = _if_then_else(folded)
    if hidden:
        folded = folded.xreplace({stand_in: node for node, stand_in in hidden.items()})
    if tree_size(folded) > MAX_FOLDED_SIZE:
        raise LossLimitError(
            "this `where` condition reads `where`s whose conditions read `where`s in turn: folded into one"
            f" condition it has over {MAX_FOLDED_SIZE:,} terms; the limit is {MAX_FOLDED_SIZE:,}"
        )
    return folded


class Held(_WholeInFolds):
    """A `where` that a condition reads, held whole instead of folded out: `log(Held(where(c, y_pred,
    0))) > -10`, for a branch whose comparison SymPy refuses (`log(0)` is zoo, `sqrt(-1)` is I),
    where Keras compares -inf or NaN as it comes. Its value, derivative and printed forms are
    those of the `where` it holds."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        return arg if arg.is_Number or not arg.has(sp.Piecewise) else None

    def _eval_is_extended_real(self):
        return self.args[0].is_extended_real

    def _eval_derivative(self, symbol):
        return self.args[0].diff(symbol)

    def _print_held(self, printer, **options) -> str:
        return printer._print(self.args[0], **options)  # options: LaTeX's `exp` of a power

    _sympystr = _latex = _numpycode = _pythoncode = _print_held


def _held(cond: sp.Basic) -> sp.Basic:
    """`cond` with each `where` it reads, outside a tensor function, held whole (`Held`)."""
    mapping: dict[sp.Basic, sp.Basic] = {}
    stack = [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, sp.Piecewise):
            mapping[node] = Held(node)
        elif not isinstance(node, _WholeInFolds):
            stack.extend(node.args)
    return cond.xreplace(mapping)


def _if_then_else(folded: sp.Piecewise) -> sp.Basic:
    """A Piecewise of conditions `((v1, c1), ..., (vn, True))` as nested `ITE(c1, v1, ITE(...))`,
    as SymPy's `rewrite(ITE)` writes it (printed as `where`: a condition that is False on NaN
    takes the other branch, as NumPy's `where` does), without its search for an earlier condition
    that always holds (`as_set` on every condition, solving inequalities).

    With the ITEs of earlier folds hidden from `piecewise_fold` (`folded_condition`), which puts
    each in conjunctive normal form (`simplify_logic`): a chain of seven `where`s, each reading the
    last in its condition, took 20 s (found by a fuzzing review).
    """
    pairs = list(folded.args)
    if pairs[-1].cond != sp.true:
        return folded.rewrite(sp.ITE)  # no default branch: SymPy's own checks
    last = pairs[-1].expr
    for value, cond in reversed(pairs[:-1]):
        last = sp.ITE(cond, value, last)
    return last.xreplace({r: r.canonical for r in last.atoms(sp.core.relational.Relational)})


# A folded condition's size (nodes, a shared part counted at each use) past which the checks and the
# printers would take seconds over it.
MAX_FOLDED_SIZE = 2000


def tree_size(expr: sp.Basic) -> int:
    """The number of nodes of `expr` written out as a tree (each shared part counted where it is
    used), counted over its distinct parts."""
    return folded_up(expr, lambda node, sizes: 1 + sum(sizes))


def folded_up(expr: sp.Basic, combine):
    """`combine(node, [the values of its arguments])` for each distinct part of `expr`, arguments
    first; the value of `expr` itself. Without recursion."""
    values: dict[sp.Basic, object] = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in values:
            continue
        if ready or not node.args:
            values[node] = combine(node, [values[a] for a in node.args])
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in values)
    return values[expr]


# How many cases a `where` condition may fold into: each `where` in it doubles them (SymPy folds
# a condition that holds a Piecewise into one that does not); 2^8 took 1.7 to 5 seconds.
MAX_CASES = 64


def _check_cases(cond: sp.Basic) -> None:
    """LossLimitError where folding `cond` would make more than MAX_CASES cases."""
    cases, count, stack = 1, 0, [cond]
    while stack:
        node = stack.pop()
        if isinstance(node, TensorFunction):  # left whole by the fold
            continue
        if isinstance(node, sp.Piecewise):
            cases *= len(node.args)
            count += 1
        stack.extend(node.args)
    if cases > MAX_CASES:
        raise LossLimitError(
            f"this `where` condition holds {count} `where`s, {cases:,} cases once folded; the limit is {MAX_CASES}"
        )


def _flat_piecewise(expr: sp.Basic) -> sp.Basic:
    """`expr` with every Piecewise value that is itself a Piecewise merged into its parent:
    `Piecewise((Piecewise((a, c), (b, True)), d), (f, True))` is `Piecewise((a, d & c), (b, d), (f, True))`."""

    def nested(node: sp.Basic) -> bool:
        return isinstance(node, sp.Piecewise) and any(isinstance(pair.expr, sp.Piecewise) for pair in node.args)

    def merged(node: sp.Piecewise) -> sp.Piecewise:
        pairs = []
        for value, cond in node.args:
            inner = merged(value) if nested(value) else value
            if isinstance(inner, sp.Piecewise):
                pairs += [(v, sp.And(cond, c)) for v, c in inner.args]
            else:
                pairs.append((value, cond))
        return node.func(*pairs, evaluate=False)

    return expr.replace(nested, merged) if any(nested(node) for node in sp.preorder_traversal(expr)) else expr


class ReduceSum(TensorFunction):
    keras_name = "sum"

    @classmethod
    def eval(cls, *args):
        # A softmax sums to 1 over its axis, whatever its argument: `sum(softmax(y_pred))` is a
        # constant, found as one by the dependence check instead of passing with a zero gradient.
        if isinstance(args[0], Softmax):
            return sp.Integer(1)
        return super().eval(*args)

    def fdiff(self, argindex=1):
        return sp.Integer(1)


class ReduceMean(TensorFunction):
    keras_name = "mean"

    @classmethod
    def eval(cls, *args):
        if isinstance(args[0], Softmax):
            return 1 / C  # as ReduceSum's
        return super().eval(*args)

    def fdiff(self, argindex=1):
        return 1 / C


class ReduceMax(TensorFunction):
    keras_name = "max"


class ReduceMin(TensorFunction):
    keras_name = "min"


class LogSumExp(TensorFunction):
    keras_name = "logsumexp"

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0] - self)


class Softmax(TensorFunction):
    keras_name = "softmax"


class LogSoftmax(TensorFunction):
    keras_name = "log_softmax"


class Normalize(TensorFunction):
    keras_name = "normalize"


class OneHot(TensorFunction):
    keras_name = "one_hot"


REDUCTIONS = (ReduceSum, ReduceMean, ReduceMax, ReduceMin, LogSumExp)
VECTOR_FUNCTIONS = (Softmax, LogSoftmax, Normalize)


def varies_along_axis(expr: sp.Basic, elements: tuple) -> bool:
    """Whether `expr` has a value per element: one of `elements` (the input symbols), a list or a
    vector function outside every reduction over the last axis."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, (Vector, *VECTOR_FUNCTIONS, OneHot)) or node in elements:
            return True
        if not isinstance(node, REDUCTIONS):
            stack.extend(node.args)
    return False


class Vector(sp.Function):
    """A constant vector along the last axis: `[0.3, 0.7]`."""

    is_real = True

    @property
    def is_number(self) -> bool:
        # A vector of numbers is not a number (see `TensorFunction.is_number`).
        return False

    @classmethod
    def eval(cls, *items):
        return None


def step(x: sp.Expr, *at_zero: sp.Expr) -> sp.Expr:
    """`Heaviside(x)` (or `Heaviside(x, at_zero)`), evaluated only where the sign of `x` is known.

    Where it is not, SymPy's Heaviside asks whether `x` has an imaginary part, which it answers by
    taking `im` of every level of `x` (`log` of a `clip` of a `log` ...): the steps of 100 chained
    `clip(log(a), -1, 1)` took 7 s to build. A loss's values are real; built unevaluated, the step
    is what SymPy builds once it has found no imaginary part.
    """
    if x.is_extended_negative or x.is_zero or x.is_extended_positive or x is sp.nan:
        return sp.Heaviside(x, *at_zero)
    return sp.Heaviside(x, *at_zero, evaluate=False)


class Head(sp.Function):
    """An elementwise operation kept whole for code generation."""

    is_real = True

    def plain(self) -> sp.Expr:
        raise NotImplementedError


class Sigmoid(Head):
    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return 1 / (1 + sp.exp(-x))
        return None

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def plain(self):
        return 1 / (1 + sp.exp(-self.args[0]))


class Softplus(Head):
    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.log(1 + sp.exp(x))
        return None

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])

    def plain(self):
        return sp.log(1 + sp.exp(self.args[0]))


class Relu(Head):
    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.Max(0, x)
        return None

    def fdiff(self, argindex=1):
        return step(self.args[0])

    def plain(self):
        return sp.Max(0, self.args[0])


class Clip(Head):
    nargs = 3

    @classmethod
    def eval(cls, x, lo, hi):
        if x.is_number and lo.is_number and hi.is_number:
            return sp.Min(sp.Max(x, lo), hi)
        return None

    def fdiff(self, argindex=1):
        # Of min(max(x, lo), hi), right where the bounds cross too (the upper one wins).
        x, lo, hi = self.args
        if argindex == 1:
            return step(x - lo) * step(hi - x)
        if argindex == 2:
            return step(lo - x) * step(hi - lo)
        return step(x - hi) * step(x - lo) + step(lo - hi) * step(lo - x)

    def plain(self):
        x, lo, hi = self.args
        return sp.Min(sp.Max(x, lo), hi)


class Log1p(Head):
    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.log(1 + x)
        return None

    def fdiff(self, argindex=1):
        return 1 / (1 + self.args[0])

    def plain(self):
        return sp.log(1 + self.args[0])


class Log1pDiff(Head):
    """`log1p(a) - log1p(b)` for `a, b >= 0`, with one log1p: `±log1p(|a - b| / (1 + min side))`.

    With `d = a - b`: `log1p(d / (1 + b))` where `d >= 0`, `-log1p(-d / (1 + a))` where `d < 0`.
    The quotient is >= 0 on both sides, so log1p keeps its accuracy (`log1p(d / (1 + b))` alone
    is not accurate where `(1 + a) / (1 + b)` is near 0: MSLE with y_true = 0 and y_pred = 1e6
    came out 190.50 for 190.87); the sides are chosen on the arguments, each smooth, so autodiff
    through it gives `1 / (1 + a)` at `a = b` too. Only `rewrites` builds it; the Keras printer
    writes it as one log1p in code spelled for XLA, else as a call that takes that form only while
    TensorFlow traces for XLA (`emit.xla_forms`) and the two log1p elsewhere.
    """

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number:
            return sp.log(1 + a) - sp.log(1 + b)
        return None

    def fdiff(self, argindex=1):
        a, b = self.args
        return 1 / (1 + a) if argindex == 1 else -1 / (1 + b)

    def plain(self):
        a, b = self.args
        return sp.log(1 + a) - sp.log(1 + b)


def softplus_pair(x: sp.Expr, a: sp.Expr, b: sp.Expr, bind=lambda value: value) -> sp.Expr:
    """`a softplus(-x) + b softplus(x)` (the binary cross-entropy on logits: a = y, b = 1 - y) with
    one softplus, as Keras's `sigmoid_cross_entropy_with_logits` computes it, `relu(x) - y x +
    log1p(exp(-|x|))`, but with `relu(x) - y x` as `where(x >= 0, 1 - y, -y) x`:
    `where(x >= 0, b, -a) x + (a + b) softplus(-|x|)`.

    No large terms cancel, in the value or in any order in which autodiff adds up the
    derivative's parts: `softplus(x) - a x` lost every digit at a = 1 and x = 15 in float32 (0 for
    3.1e-7; found by a differential review), and `relu(x) - a x + ...` its gradient's on JAX.
    `-|x|` is `x` times the sign `1 - 2 step(x)`, `step(x) = where(x >= 0, 1, 0)`, so that autodiff
    gives the derivative, `(a + b) / 2 - a`, at x = 0 whatever a backend takes for abs'(0).

    As operations: the step is a cast (a selection is a slow kernel on PyTorch's CPU), the sign
    is read by the derivative too, and where `a + b` is a number, `b` is written as that number
    less `a` and `a` is one term (`y`, `2 y`, not `1 - y`), the coefficient of `x` is
    `(a + b) step(x) - a`, one rounding (`step - (1 - y)` would print `step + y - 1`, which loses
    a label of 1e-8 in 1; a `b` written otherwise keeps its own form). Put through `bind` (the
    rewriter's shared binding), the derivative reads it whole, `coefficient + sign sigmoid(-|x|)`,
    so that nothing cancels there either. Measured in docs/decisions.md.
    """
    up = x >= 0
    step = Where((1, up), (0, True))
    total = sp.expand(a + b)
    if total.is_number and not a.is_Add and b == total - a:
        coefficient = total * step - a
    else:
        coefficient = Where((b, up), (-a, True))
    return bind(coefficient) * x + total * Softplus((1 - 2 * step) * x)


def negative_abs_argument(expr: sp.Basic) -> sp.Basic | None:
    """`x` where `expr` is `softplus_pair`'s `-|x|`, `(1 - 2 where(x >= 0, 1, 0)) x`; else None."""
    if not isinstance(expr, sp.Mul) or len(expr.args) != 2:
        return None
    sign, x = expr.args if isinstance(expr.args[0], sp.Add) else expr.args[::-1]
    if x.is_Add or sign != 1 - 2 * Where((1, x >= 0), (0, True)):
        return None
    return x


class Expm1(Head):
    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            return sp.exp(x) - 1
        return None

    def fdiff(self, argindex=1):
        return sp.exp(self.args[0])

    def plain(self):
        return sp.exp(self.args[0]) - 1


class Round(Head):
    """Round half to even, as NumPy and Keras do."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number:
            try:
                return sp.Integer(round(float(x)))
            except (TypeError, ValueError, OverflowError):  # zoo, nan, inf: leave it to the finiteness check
                return None
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def plain(self):
        return self


# ------------------------------------------------------------------ cheap construction
#
# SymPy simplifies Max, Min, comparisons and Piecewise when it builds them, through its
# assumptions system: Max and Min compare every pair of arguments (`_find_localzeros`, with
# `factor_terms` on each difference: seconds for `max` of 40 powers of `e`, minutes for 900),
# a comparison asks whether `a - b` is positive (milliseconds for `exp(-k y_pred) > k`), and a
# Piecewise rewrites every comparison in its conditions again. A real loss holds a handful of
# these and keeps SymPy's simplifications. A program that holds more (hundreds fit in 10,000
# characters) is built cheaply instead: arguments flattened and deduplicated, numbers merged,
# comparisons decided only between numbers, `where` simplified only when its condition is
# decided or its branches are equal; everything else stays as written. The translator says
# which, per program, with `deciding(...)` (thread-local, so threads do not mix programs).
SMALL_MINMAX = 4
# Operands of a comparison beyond this many nodes are never handed to the assumptions system.
SMALL_OPERAND = 24

_state = threading.local()


@contextlib.contextmanager
def deciding(decide: bool):
    """Within the block, build Max, Min, comparisons and `where` with SymPy's simplifications or without."""
    before = getattr(_state, "decide", True)
    _state.decide = decide
    try:
        yield
    finally:
        _state.decide = before


def _deciding() -> bool:
    return getattr(_state, "decide", True)


def _small(expr: sp.Basic, limit: int = SMALL_OPERAND) -> bool:
    """`expr` has at most `limit` nodes (counted without recursion, stopping early)."""
    count, stack = 0, [expr]
    while stack:
        count += 1
        if count > limit:
            return False
        stack.extend(stack.pop().args)
    return True


def _small_conditions(cond: sp.Basic) -> bool:
    """Each comparison in `cond` is of small operands that SymPy may compare: not one it knows is
    not real (`log(-1 - y_pred^2) > 0`: SymPy's Piecewise raises where it rewrites it)."""
    return all(
        _small(side) and side.is_extended_real is not False
        for rel in cond.atoms(sp.core.relational.Relational)
        for side in rel.args
    )


# How often SymPy's Piecewise may rebuild itself while it canonicalizes its conditions.
MAX_SETTLE = 40


class Unsettled(ValueError):
    """SymPy's canonical form of a `where` condition did not settle."""


class Where(sp.Piecewise):
    """A `where`: SymPy's Piecewise, except that a power of it stays a power of it.

    Piecewise takes a power into its branches: `sqrt(where(y_pred > 0, y_pred, 1))` became
    `Piecewise((sqrt(y_pred), y_pred > 0), (1, True))` and `y_true / where(...)` a quotient in
    each branch, so the code took the root, or divided, in the branch the user had guarded
    against, where autodiff's gradient is 0 * inf = NaN. A power of a Where is built as written;
    its derivative is taken through the Where (`Where^(-1/2) * Where((1, c), (0, True)) / 2`),
    which never reads the guarded branch.
    """

    def _eval_power(self, exponent):
        return None


# SymPy's printers look up a Function subclass's print method by its own name only: named as
# its parent, a Where prints as a Piecewise everywhere (pickle finds the class by its qualname).
Where.__name__ = "Piecewise"


class _SettlingPiecewise(Where):
    """A Piecewise whose evaluation may rebuild itself at most MAX_SETTLE times over.

    SymPy turns a comparison with a Piecewise operand into `ITE(...)`, and for
    some of those the canonical form flips between two forms for ever
    (`Ne(2*y_pred - y_true, y_true - y_pred)` and its mirror): Piecewise.eval
    rebuilds itself until the recursion limit, which took a second. Built as this
    class, that loop stops at once with `Unsettled`; what settles is handed back
    as an ordinary Piecewise.
    """

    @classmethod
    def eval(cls, *args):
        depth = getattr(_state, "settle", 0)
        if depth >= MAX_SETTLE:
            raise Unsettled("SymPy's canonical form of this `where` condition does not settle")
        _state.settle = depth + 1
        try:
            return super().eval(*args)
        finally:
            _state.settle = depth


def _sympy_piecewise(pairs) -> sp.Expr:
    """`sp.Piecewise(*pairs)`, evaluated, with the loop guard of `_SettlingPiecewise`."""
    result = _SettlingPiecewise(*pairs)
    if isinstance(result, _SettlingPiecewise):
        return Where(*result.args, evaluate=False)
    return result


def minmax(cls: type, args) -> sp.Expr:
    """`cls(*args)` for `cls` Max or Min (see the section comment)."""
    flat: list[sp.Expr] = []
    for arg in args:
        flat.extend(arg.args if type(arg) is cls else (arg,))
    decide = _deciding() and all(a.is_extended_real is not False for a in flat)
    if decide and (pair := _against_a_number(flat)) is not None:
        x, number = pair
        # What SymPy's evaluation decides for `max(x, c)`, from two assumptions queries: its
        # comparisons of the pair took 1.5-6 ms (hinge's `maximum(1 - t * y_pred, 0)`), and the
        # queries themselves 1.8 ms there, where `_takes_both_signs` sees at once that neither holds.
        if _takes_both_signs(x - number):
            return cls(x, number, evaluate=False)
        above, below = (x - number).is_extended_nonnegative, (x - number).is_extended_nonpositive
        if above or below:
            return x if bool(above) == (cls is sp.Max) else number
        return cls(x, number, evaluate=False)
    if decide and len(flat) <= SMALL_MINMAX:
        return cls(*flat)
    numbers = [a for a in flat if a.is_Number]
    others = list(dict.fromkeys(a for a in flat if not a.is_Number))
    if numbers:
        others.append(max(numbers) if cls is sp.Max else min(numbers))
    if decide and len(others) <= SMALL_MINMAX:
        return cls(*others)
    if len(others) == 1:
        return others[0]
    return cls(*others, evaluate=False)


def _takes_both_signs(expr: sp.Basic) -> bool:
    """`expr` is a sum with a term `k * s` where `s` is a real symbol of unknown sign that no other
    term reads and `k` a product of finite numbers and real symbols not known to be 0: with `k`
    nonzero, the term, and so the sum, takes every real value as `s` runs over the reals, so
    neither `expr >= 0` nor `expr <= 0` can be proved (`1 - t * y_pred`)."""
    if not isinstance(expr, sp.Add):
        return False
    for term in expr.args:
        factors = sp.Mul.make_args(term)
        for s in factors:
            if not (s.is_Symbol and s.is_extended_real and s.is_extended_positive is None):
                continue
            if s.is_extended_negative is not None or s.is_zero is not None:
                continue
            if not all(_nonzero_factor(f) for f in factors if f is not s):
                continue
            if not any(s in other.free_symbols for other in expr.args if other is not term):
                return True
    return False


def _nonzero_factor(factor: sp.Basic) -> bool:
    """A finite nonzero number, or a real symbol that may be nonzero."""
    if factor.is_Number:
        return bool(factor.is_finite) and not factor.is_zero
    return factor.is_Symbol and bool(factor.is_extended_real) and factor.is_zero is not True


def _against_a_number(flat: list) -> tuple[sp.Expr, sp.Number] | None:
    """`(x, c)` for two arguments, `c` a finite number and `x` no number and holding no Max or Min
    (SymPy collapses a Max of a Min against a number); else None."""
    if len(flat) != 2:
        return None
    number, x = flat if flat[0].is_Number else flat[::-1]
    if not number.is_Number or not number.is_finite or x.is_number or x.has(sp.Max, sp.Min):
        return None
    return x, number


def maximum(*args) -> sp.Expr:
    """Elementwise `max(a, b, ...)` as SymPy's Max (see `minmax`)."""
    return minmax(sp.Max, args)


def minimum(*args) -> sp.Expr:
    """Elementwise `min(a, b, ...)` as SymPy's Min (see `minmax`)."""
    return minmax(sp.Min, args)


def relation(cls: type, left: sp.Basic, right: sp.Basic) -> sp.Basic:
    """`cls(left, right)` for a SymPy relational (see the section comment)."""
    if left.is_extended_real is False or right.is_extended_real is False:
        return cls(left, right, evaluate=False)
    if left.is_Number and right.is_Number or (_deciding() and _small(left) and _small(right)):
        return cls(left, right)
    difference = left - right
    if difference.is_Number:
        return cls(difference, 0)
    return cls(left, right, evaluate=False)


def where(cond: sp.Basic, a: sp.Expr, b: sp.Expr) -> sp.Expr:
    """`where(cond, a, b)` as `Piecewise((a, cond), (b, True))` (see the section comment)."""
    return _piecewise([(a, cond), (b, sp.true)])


def _piecewise(pairs) -> sp.Expr:
    """A Piecewise of (value, condition) pairs, the last condition True (see the section comment)."""
    pairs = [(value, folded_condition(cond)) for value, cond in pairs]
    if _deciding() and all(_small_conditions(cond) for _, cond in pairs):
        try:
            return _sympy_piecewise(pairs)
        except Unsettled:
            pass  # built as it is written, below
    kept = []
    for value, cond in pairs:
        if cond == sp.false:
            continue
        kept.append((value, cond))
        if cond == sp.true:
            break
    if not kept or kept[-1][1] != sp.true:
        return Where(*pairs)  # no default branch: let SymPy say what it makes of it
    if len({value for value, _ in kept}) == 1:
        return kept[0][0]
    return Where(*kept, evaluate=False)


def is_literal(expr: sp.Basic) -> bool:
    """A number (not a list, not a function of a tensor): printed as a Python float."""
    return isinstance(expr, sp.Expr) and bool(expr.is_number) and not expr.has(Vector, TensorFunction)


def inlined(expr: sp.Basic, definitions: dict) -> sp.Basic:
    """`expr` with the symbols of `definitions` replaced by their values, and theirs in turn: for
    questions about its value (sign, order), not for printing. A Max, Min, comparison or `where`
    whose arguments changed is built as it stands, not compared or folded again (with `xreplace`,
    SymPy compared each rebuilt `maximum(x, y_true)` of a nested program's large `x`: minutes for
    four levels of `softplus(maximum(...))`); sums, products and the rest are built as SymPy builds
    them, so that `sympy.ordered` sorts what was built before as it did then."""
    for _ in range(len(definitions) + 1):
        replaced = _bottom_up(expr, definitions, _as_it_stands)
        if replaced == expr:
            break
        expr = replaced
    return expr


def _as_it_stands(node: sp.Basic, args: list) -> sp.Basic:
    if isinstance(node, (sp.Max, sp.Min, sp.core.relational.Relational)):
        return node.func(*args, evaluate=False)
    if isinstance(node, (sp.Piecewise, sp.functions.elementary.piecewise.ExprCondPair)):
        return sp.Basic.__new__(type(node), *args)  # (SymPy folds a `where` in a condition)
    if type(node) is sp.Heaviside:
        return step(*args)
    return node.func(*args)


def substitute(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """`expr.xreplace(mapping)`, without recursion, rebuilding Max and Min through `minmax`
    and comparisons through `relation`.

    (`xreplace` rebuilds a changed node with `func(*args)`, which would hand a Max of
    many arguments back to SymPy's pairwise comparisons.)
    """
    if not mapping:
        return expr

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        if isinstance(node, (sp.Max, sp.Min)):
            return minmax(type(node), args)
        if isinstance(node, sp.core.relational.Relational):
            return relation(type(node), *args)
        if isinstance(node, sp.Piecewise):
            return _piecewise([pair.args for pair in args])
        if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
            return node.func(args[0], folded_condition(args[1]))
        if type(node) is sp.Heaviside:
            return step(*args)
        return node.func(*args)

    return _bottom_up(expr, mapping, rebuild)


def substitute_in_turn(expr: sp.Basic, pairs) -> sp.Basic:
    """`expr` with `substitute(expr, {value: replacement})` applied for each `(value, replacement)`
    of `pairs` in order. A value that is not a subexpression of `expr` as it then stands is
    skipped without walking and rebuilding the tree (the substitution would change nothing)."""
    present = _subexpressions(expr)
    for value, replacement in pairs:
        if value in present:
            expr = substitute(expr, {value: replacement})
            present = _subexpressions(expr)
    return expr


def _subexpressions(expr: sp.Basic) -> set:
    """Every node of `expr`, without recursion."""
    found = {expr}
    stack = [expr]
    while stack:
        for arg in stack.pop().args:
            if arg not in found:
                found.add(arg)
                stack.append(arg)
    return found


class _CannotRebuild(Exception):
    """`_bottom_up`'s rebuild function has no way to rebuild a node."""


def _bottom_up(expr: sp.Basic, mapping: dict, rebuild, every: bool = False) -> sp.Basic:
    """`expr` with the nodes in `mapping` replaced, every changed node above them (every node
    with arguments, if `every`) made again by `rebuild(node, new_args)` (which may raise
    `_CannotRebuild`), without recursion."""
    done: dict[sp.Basic, sp.Basic] = {}
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in done:
            continue
        if node in mapping:
            done[node] = mapping[node]
        elif not node.args:
            done[node] = node
        elif not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in done)
        else:
            args = [done[a] for a in node.args]
            same = unchanged(args, node.args)
            done[node] = node if same and not every else rebuild(node, args)
    return done[expr]


def each_rebuilt(expr: sp.Basic, rebuild) -> sp.Basic:
    """`expr` bottom-up, every node with arguments made by `rebuild(node, new_args)`, each distinct
    node once (`Basic.replace` walks a shared one at every use), without recursion."""
    return _bottom_up(expr, {}, rebuild, every=True)


def unchanged(new_args: list, old_args: tuple) -> bool:
    """Each new argument equals the old one. Equal, not the same object: a tree may hold equal
    copies of a part, and the rebuild answers every copy with the first one's result."""
    return all(new is old or new == old for new, old in zip(new_args, old_args, strict=True))


def plain(expr: sp.Expr) -> sp.Expr:
    """`expr` with every elementwise head rewritten into ordinary SymPy, and SymPy's own hyperbolic
    functions for lossdsl's (lossdsl/hyperbolic.py)."""

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        # As `expr.replace` rebuilds (with evaluation, where an argument changed), once per
        # distinct subexpression: replace walks a shared one at every use (a gradient of 100
        # nested clips holds each inner clip in every factor: 4 s).
        if tuple(args) != node.args:
            node = node.func(*args)
        if isinstance(node, (Head, *hyperbolic.CLASSES)) and not isinstance(node, Round):
            return node.plain()
        return node

    return each_rebuilt(expr, rebuild)


# ------------------------------------------------------------------ rebuilding without evaluation
#
# `with sympy.evaluate(False):` clears SymPy's whole cache on the way in and again on the way out
# (its results were built under the other setting), which makes every later SymPy operation in
# the process start cold. The functions below build what such a block builds, node by node, with
# `evaluate=False` passed to each constructor instead; where SymPy's result would depend on the
# global setting itself (boolean operators, a condition that holds a Piecewise), they fall back
# to the block.

_EXPLICITLY_UNEVALUATED = (sp.Add, sp.Mul, sp.Pow, sp.Function, sp.Piecewise, sp.core.relational.Relational)


def _unevaluated(node: sp.Basic, args: list) -> sp.Basic | None:
    """`node.func(*args)` as SymPy builds it under `evaluate(False)`, or None where only the block can."""
    if isinstance(node, sp.Piecewise):
        if any(pair.cond.has(sp.Piecewise) for pair in args):
            return None
        return node.func(*args, evaluate=False)
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair) and args[1].has(sp.Piecewise):
        cond = folded_condition(args[1])
        # Built alike either way once the condition is folded; SymPy's fold of what is left
        # (a Piecewise under an axis) returns it as it is.
        return None if cond is args[1] else node.func(args[0], cond)
    if isinstance(node, (*_EXPLICITLY_UNEVALUATED, sp.Max, sp.Min)):
        return node.func(*args, evaluate=False)
    if isinstance(node, sp.functions.elementary.piecewise.ExprCondPair):
        # Built alike either way unless the condition holds a Piecewise (folded first).
        return None if args[1].has(sp.Piecewise) else node.func(*args)
    return None


def replace(expr: sp.Basic, mapping: dict) -> sp.Basic:
    """`expr.xreplace(mapping)` under `sympy.evaluate(False)`, without clearing SymPy's cache.

    Entries that map a node to itself change nothing and are skipped. Without recursion.
    """
    mapping = {old: new for old, new in mapping.items() if old is not new}
    if not mapping or not isinstance(expr, sp.Basic):
        return expr

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        rebuilt = _unevaluated(node, args)
        if rebuilt is None:
            raise _CannotRebuild
        return rebuilt

    def rebuild_in_block(node: sp.Basic, args: list) -> sp.Basic:
        # As xreplace under the block, but a condition that holds a Piecewise folded here (SymPy's
        # own fold searched conditions with `as_set` for minutes).
        rebuilt = _unevaluated(node, args)
        return node.func(*args) if rebuilt is None else rebuilt

    try:
        return _bottom_up(expr, mapping, rebuild)
    except _CannotRebuild:
        with sp.evaluate(False):
            return _bottom_up(expr, mapping, rebuild_in_block)


class _Inert(sp.Function):
    """A stand-in for a Max or Min (`wraps`) that SymPy rebuilds without comparing its arguments.

    It has the name of the class it stands for and sorts as that class does, so that SymPy
    orders the arguments of sums and products that hold it as it orders the original.
    """

    wraps: type = sp.Basic

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def _should_evalf(cls, arg):
        return -1

    @classmethod
    def class_key(cls):
        return cls.wraps.class_key()


_INERT: dict[type, type] = {cls: type(cls.__name__, (_Inert,), {"wraps": cls}) for cls in (sp.Max, sp.Min)}


class _InertCondition(sp.logic.boolalg.BooleanFunction):
    """A stand-in for a comparison, as `_Inert` is for a Max or Min."""

    wraps: type = sp.Basic

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def class_key(cls):
        return cls.wraps.class_key()


# What SymPy raises on when it builds it evaluated with an argument it knows is not real: a
# comparison (`log(-1 - y_pred^2) > 0`, False in Keras, where the log is NaN) and a step
# (`Heaviside(3 y_pred - log(-exp(y_pred)))`, from the gradient of a maximum), held as inert
# stand-ins where SymPy rebuilds what holds them (`cse`, `differentiated`).
_COMPARISONS = (sp.Eq, sp.Ne, sp.Lt, sp.Le, sp.Gt, sp.Ge)
_NOT_REAL_ARGUMENT: dict[type, type] = {
    **{cls: type(cls.__name__, (_InertCondition,), {"wraps": cls}) for cls in _COMPARISONS},
    sp.Heaviside: type("Heaviside", (_Inert,), {"wraps": sp.Heaviside}),
}


def _takes_non_real(node: sp.Basic) -> bool:
    return node.func in _NOT_REAL_ARGUMENT and any(arg.is_extended_real is False for arg in node.args)


def _holds_non_real_arguments(expr: sp.Basic) -> bool:
    return any(map(_takes_non_real, expr.atoms(*_NOT_REAL_ARGUMENT)))


def cse(exprs: list, symbols) -> tuple[list, list]:
    """`sympy.cse(exprs, symbols=symbols)`, without evaluating the Max and Min it rebuilds.

    `sympy.cse` rebuilds every node whose arguments it replaced with `func(*args)`: for Max
    and Min that compares every pair of arguments again (minutes for `max` of 300 terms,
    milliseconds for a single `maximum(x, 0)`). Here they go through cse as inert stand-ins
    and come back unevaluated, holding what cse made of their arguments (a Max or Min that
    SymPy could simplify was simplified when it was first built).
    """
    if not any(isinstance(e, sp.Basic) and (e.has(*_INERT) or _holds_non_real_arguments(e)) for e in exprs):
        return sp.cse(exprs, symbols=symbols)
    wrapped = [_rebuild(e, _to_inert) for e in exprs]
    replacements, reduced = sp.cse(wrapped, symbols=symbols)
    return [(symbol, _rebuild(value, _from_inert)) for symbol, value in replacements], [
        _rebuild(e, _from_inert) for e in reduced
    ]


def with_inert_minmax(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each Max and Min in `expr` passed through it as an inert stand-in and
    rebuilt unevaluated (a `replace` rebuilds them with evaluation, comparing their arguments again:
    seconds for a gradient with thousands of `minimum`s)."""
    return _through_inert(transform, expr, _to_inert) if expr.has(*_INERT) else transform(expr)


def with_inert_non_real(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each comparison or step of a value SymPy knows is not real passed
    through it as an inert stand-in and rebuilt unevaluated (see `_NOT_REAL_ARGUMENT`)."""
    if not _holds_non_real_arguments(expr):
        return transform(expr)
    return _through_inert(transform, expr, _to_inert_non_real)


def with_inert_steps(transform, expr: sp.Basic) -> sp.Basic:
    """`transform(expr)` with each Heaviside passed through it as an inert stand-in and rebuilt
    unevaluated: SymPy's Heaviside, rebuilt with evaluation, takes `im` of its argument, which
    expands a power of a sum (`maximum(e, a)^987` with `a` a power of `e`: minutes; see `step`)."""
    return _through_inert(transform, expr, _to_inert_step) if expr.has(sp.Heaviside) else transform(expr)


def _through_inert(transform, expr: sp.Basic, to_inert) -> sp.Basic:
    """`transform(expr)`, with what `to_inert` converts held as inert stand-ins through it."""
    return _rebuild(transform(_rebuild(expr, to_inert)), _from_inert)


def _to_inert_step(node: sp.Basic, args: list) -> sp.Basic | None:
    return _NOT_REAL_ARGUMENT[sp.Heaviside](*args) if type(node) is sp.Heaviside else None


def _to_inert(node: sp.Basic, args: list) -> sp.Basic | None:
    return _INERT[node.func](*args) if node.func in _INERT else _to_inert_non_real(node, args)


def _to_inert_non_real(node: sp.Basic, args: list) -> sp.Basic | None:
    return _NOT_REAL_ARGUMENT[node.func](*args) if _takes_non_real(node) else None


def _from_inert(node: sp.Basic, args: list) -> sp.Basic | None:
    return node.wraps(*args, evaluate=False) if isinstance(node, (_Inert, _InertCondition)) else None


def _rebuild(expr: sp.Basic, convert) -> sp.Basic:
    """`expr` bottom-up, each node `convert(node, new args)`, or else (where that is None) the node
    itself if its arguments did not change, rebuilt without evaluation if they did; no recursion."""
    if not isinstance(expr, sp.Basic):
        return expr

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        converted = convert(node, args)
        if converted is not None:
            return converted
        if unchanged(args, node.args):
            return node
        rebuilt = _unevaluated(node, args)
        return node.func(*args) if rebuilt is None else rebuilt

    return _bottom_up(expr, {}, rebuild, every=True)


# ------------------------------------------------------------------ differentiating max and min
#
# SymPy differentiates `Max(a1, ..., an)` as the sum over i of `Heaviside(ai - Max(others))`,
# building each `Max(others)` evaluated: it compares every pair of the other arguments, n times
# over (`max` of 30 terms took ten seconds, of 50 a minute). The stand-ins below build them as
# they are, and `differentiated` puts SymPy's classes back.


class _ArgumentsMax(sp.Max):
    def fdiff(self, argindex=1):
        return step(self.args[argindex - 1] - _others(sp.Max, self.args, argindex))


class _ArgumentsMin(sp.Min):
    def fdiff(self, argindex=1):
        return step(_others(sp.Min, self.args, argindex) - self.args[argindex - 1])


def _others(cls: type, args: tuple, argindex: int) -> sp.Basic:
    if not 0 < argindex <= len(args):
        raise sp.core.function.ArgumentIndexError(cls, argindex)
    others = args[: argindex - 1] + args[argindex:]
    return others[0] if len(others) == 1 else cls(*others, evaluate=False)


class _RealAbs(sp.Abs):
    # Every value of a loss is real: |u|' = sign(u) u'. SymPy, not knowing `y_pred^0.5` or
    # `log(y_pred)` to be real, writes it with re, im and atan2.
    def _eval_derivative(self, x):
        return sp.sign(self.args[0]) * sp.diff(self.args[0], x)


def _zero_derivative(self, x):
    return sp.Integer(0)


# Steps are flat almost everywhere, and TensorFlow's gradient of each is 0 (as lossdsl's `Round`
# is): SymPy left `floor` and `ceil` as unevaluated derivatives, which it could not take with
# respect to a reduction (`y_pred * floor(sum(y_pred))`: "Can't calculate derivative wrt
# ReduceSum(y_pred)"), and took `sign`'s as a DiracDelta. Stand-ins of the same name sort alike.
_FLAT_STEPS = {
    cls: type(cls.__name__, (cls,), {"_eval_derivative": _zero_derivative}) for cls in (sp.floor, sp.ceiling, sp.sign)
}
_STEPS = tuple(_FLAT_STEPS)
_DIFFERENTIABLE = {sp.Max: _ArgumentsMax, sp.Min: _ArgumentsMin, sp.Abs: _RealAbs, **_FLAT_STEPS}
_ORIGINAL = {stand_in: cls for cls, stand_in in _DIFFERENTIABLE.items()}


def _stand_in_differentiates(node: sp.Basic) -> bool:
    """SymPy's own derivative of this Max, Min, Abs or step is slow or wrong: a Max or Min of more
    than two arguments, or of one that SymPy does not know is real (its Heaviside takes `im` of
    the argument, which raises where it is not real, `maximum(-1, log(-1 - y_pred^2))`, and
    expands a power, `minimum(maximum(e, a)^987, y_true)` with `a` a power of `e`: minutes), an
    Abs of what SymPy does not know is real, or any step."""
    if isinstance(node, _STEPS):
        return True
    if isinstance(node, sp.Abs):
        return not node.args[0].is_extended_real
    return len(node.args) > 2 or not all(a.is_extended_real for a in node.args)


def differentiated(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic:
    """`sympy.diff(expr, symbol)`, with each Max and Min of more than two arguments differentiated
    without comparing its arguments again, each Abs as that of a real value, and each long chain
    of one-argument functions as one product (see `_Chain`)."""
    stand_ins: dict[sp.Basic, sp.Basic] = {}  # each _Chain -> the chain it stands for
    expr = _chains_folded(expr, stand_ins)
    try:
        derivative = with_inert_non_real(lambda e: _diff(e, symbol), expr)
        while stand_ins and derivative.has(_Chain):  # a chain inside another's argument: once per level
            derivative = derivative.xreplace(stand_ins)
    finally:
        for stand_in in stand_ins:
            _CHAIN_LINKS.pop(int(stand_in.args[1]), None)
    return derivative


def _diff(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic:
    """`sympy.diff`, through the stand-ins of `_DIFFERENTIABLE` where `_stand_in_differentiates`,
    and of `_ZeroPower`."""
    zero_powers = {p: _ZeroPower(p.exp) for p in expr.atoms(sp.Pow) if not p.exp.is_number and p.base.is_zero}
    if zero_powers:
        derivative = _diff(expr.xreplace(zero_powers), symbol)
        return derivative.xreplace({stand_in: power for power, stand_in in zero_powers.items()})
    found = expr.atoms(sp.Max, sp.Min, sp.Abs, *_STEPS)
    if not any(_stand_in_differentiates(m) for m in found):
        return chain_rule_derivative(expr, symbol)
    return _swapped(chain_rule_derivative(_swapped(expr, _DIFFERENTIABLE), symbol), _ORIGINAL)


class _ZeroPower(sp.Function):
    """`0^u` while SymPy differentiates: a step in `u` (0 where u > 0, 1 at 0, inf where u < 0), flat
    wherever it is finite, so its derivative is 0, as every Keras backend's gradient of `power`
    with respect to the exponent at a base of 0. (SymPy's is `0^u log(0)`: NaN; `y_pred + 0^e * e`
    had a NaN gradient and emitted no code; found by fuzzing.)"""

    nargs = 1
    _eval_derivative = _zero_derivative


# A chain of one-argument functions this long is differentiated as one product.
MIN_CHAIN = 16


# The links of each chain a `_Chain` stands for, by its number, while `differentiated` runs.
_CHAIN_LINKS: dict[int, list[sp.Basic]] = {}
_chain_numbers = itertools.count()  # unique across calls and threads


class _Chain(sp.Function):
    """`_Chain(a, k)` stands for a chain `f1(f2(...fm(a)))` of one-argument functions (its links
    are `_CHAIN_LINKS[k]`) while SymPy differentiates: its derivative is the product of the links'
    derivatives, built at once. (SymPy's chain rule multiplies one factor in at each level,
    re-sorting the growing product with deep comparisons each time: 199 nested sigmoids took 15 to
    24 seconds; found by a review.)"""

    nargs = 2

    def fdiff(self, argindex=1):
        if argindex != 1:
            return sp.Integer(0)
        return sp.Mul(*(_link_derivative(link) for link in _CHAIN_LINKS[int(self.args[1])]))


def _chain_inner(node: sp.Basic) -> int | None:
    """The index of the argument of a function of one argument (any others numbers: `clip(a, -1, 1)`,
    `minimum(a, 2)`) that SymPy differentiates by the chain rule; None for any other node."""
    if not by_chain_rule(node):
        return None
    inner = [i for i, arg in enumerate(node.args) if not arg.is_number]
    return inner[0] if len(inner) == 1 else None


def _link_derivative(link: sp.Basic) -> sp.Expr:
    """`f'(a)` of a link `f(a)`, as SymPy's chain rule takes it (a max or min's step as `step` builds it)."""
    index = _chain_inner(link) + 1
    if isinstance(link, (sp.Max, sp.Min)):
        return _DIFFERENTIABLE[type(link)].fdiff(link, index)
    return link.fdiff(index)


def _chains_folded(expr: sp.Basic, stand_ins: dict) -> sp.Basic:
    """`expr` with each chain of at least MIN_CHAIN links as a `_Chain` of its innermost argument
    (itself folded so); each stand-in -> its chain goes into `stand_ins`."""
    found: dict[sp.Basic, tuple[list[sp.Basic], sp.Basic]] = {}  # chain -> its links, its argument
    stack, seen = [expr], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        links, link = [], node
        while (inner := _chain_inner(link)) is not None:
            links.append(link)
            link = link.args[inner]
        if len(links) >= MIN_CHAIN:
            found[node] = links, link
            continue
        stack.extend(node.args)
    if not found:
        return expr
    mapping = {}
    for node, (links, argument) in found.items():
        number = next(_chain_numbers)
        _CHAIN_LINKS[number] = links
        stand_in = _Chain(_chains_folded(argument, stand_ins), sp.Integer(number))
        stand_ins[stand_in] = node
        mapping[node] = stand_in
    return expr.xreplace(mapping)


def as_sympy_piecewise(expr: sp.Basic) -> sp.Basic:
    """`expr` with each `Where` as SymPy's own Piecewise, built unevaluated (a power of it stays a
    power of it), so that the public form equals the expression a user builds."""
    if not isinstance(expr, sp.Basic) or not expr.has(Where):
        return expr
    return _swapped(expr, {Where: sp.Piecewise, _SettlingPiecewise: sp.Piecewise})


def _swapped(expr: sp.Basic, table: dict[type, type]) -> sp.Basic:
    """`expr` with every node of a class in `table` rebuilt, unevaluated, as the class it maps to."""

    def rebuild(node: sp.Basic, args: list) -> sp.Basic:
        if type(node) in table:
            return table[type(node)](*args, evaluate=False)
        if unchanged(args, node.args):
            return node
        rebuilt = _unevaluated(node, args)  # a relational has no truth value: no `or` here
        return node.func(*args) if rebuilt is None else rebuilt

    return _bottom_up(expr, {}, rebuild, every=True)
