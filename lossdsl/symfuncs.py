"""SymPy function classes for the operations SymPy lacks or that code generation keeps whole.

Two families:

* Tensor operations over the last axis (`ReduceSum`, `ReduceMean`, `ReduceMax`,
  `ReduceMin`, `LogSumExp`, `Softmax`, `LogSoftmax`, `Normalize`), the label
  encoder `OneHot` and the constant `Vector`. They stay unevaluated in
  `CompiledLoss.expr`; the element gradient of a reduction is defined through
  `fdiff` (`sum` -> 1, `mean` -> 1/C, `logsumexp` -> softmax), where `C` is the
  size of the last axis.
* Elementwise heads (`Sigmoid`, `Softplus`, `Relu`, `Clip`, `Log1p`, `Expm1`,
  `Round`) that the emitters keep as one operation. `rebuild.plain` rewrites each
  into ordinary SymPy (`Sigmoid(x)` -> `1/(1 + exp(-x))`), which is the form the
  public `expr` uses. All of them evaluate on constants (numbers, and `pi`
  and expressions of it, which `Max` and `Min` must be able to compare).

Besides: `Where`, SymPy's Piecewise whose power stays a power of it; `Held`, a
`where` that a condition reads, held whole (`construct.folded_condition` builds it); and
`SelfEqual` and `SelfUnequal`, a value compared with itself, kept as a NaN test.
"""

from __future__ import annotations

import sys
import threading

import sympy as sp
from sympy.core.sympify import (
    _sympify as _strict,
)  # SymPy's conversion that takes no text

from lossdsl import subtrees

# The size of the last axis, for the element gradient of `mean`.
C = sp.Symbol("C", positive=True, integer=True)


class WholeInFolds(sp.Function):
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


class TensorFunction(WholeInFolds):
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
    return (
        frame.f_globals is _PIECEWISE_MODULE
        and code.co_qualname.split(".")[0] == "piecewise_fold"
    )


class Held(WholeInFolds):
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
        return printer._print(
            self.args[0], **options
        )  # options: LaTeX's `exp` of a power

    _sympystr = _latex = _numpycode = _pythoncode = _print_held


def _flat_piecewise(expr: sp.Basic) -> sp.Basic:
    """`expr` with every Piecewise value that is itself a Piecewise merged into its parent:
    `Piecewise((Piecewise((a, c), (b, True)), d), (f, True))` is `Piecewise((a, d & c), (b, d), (f, True))`."""

    def nested(node: sp.Basic) -> bool:
        return isinstance(node, sp.Piecewise) and any(
            isinstance(pair.expr, sp.Piecewise) for pair in node.args
        )

    def merged(node: sp.Piecewise) -> sp.Piecewise:
        pairs = []
        for value, cond in node.args:
            inner = merged(value) if nested(value) else value
            if isinstance(inner, sp.Piecewise):
                pairs += [(v, sp.And(cond, c)) for v, c in inner.args]
            else:
                pairs.append((value, cond))
        return node.func(*pairs, evaluate=False)

    return (
        expr.replace(nested, merged)
        if any(nested(node) for node in sp.preorder_traversal(expr))
        else expr
    )


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

    def _eval_is_positive(self):
        # a sum of positive elements (`sum(exp(x))`): `abs(exp(x) / sum(exp(x)))` is then the
        # softmax, not `exp(x) abs(1 / sum(exp(x)))`, whose exponential overflowed (fuzzing)
        return True if self.args[0].is_positive else None

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_nonnegative else None


class ReduceMean(TensorFunction):
    keras_name = "mean"

    @classmethod
    def eval(cls, *args):
        if isinstance(args[0], Softmax):
            return 1 / C  # as ReduceSum's
        return super().eval(*args)

    def fdiff(self, argindex=1):
        return 1 / C

    def _eval_is_positive(self):
        return True if self.args[0].is_positive else None

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_nonnegative else None


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

    @classmethod
    def eval(cls, *args):
        # Of one value per sample, spread along the axis as the code spreads it (`softmax(mean(y_pred)
        # + 0*y_pred)`, which SymPy folds to the mean): C equal values, each 1/C whatever y_pred is.
        # Held whole, the dependence check's probe took the loss for varying (rounding at 1e6; a
        # review).
        if one_per_sample(args[0]):
            return 1 / C
        return super().eval(*args)


class LogSoftmax(TensorFunction):
    keras_name = "log_softmax"

    @classmethod
    def eval(cls, *args):
        if one_per_sample(args[0]):  # as Softmax's
            return -sp.log(C)
        return super().eval(*args)


def one_per_sample(x: sp.Basic) -> bool:
    """Whether `x` holds one value per sample: a reduction's, with what else it holds constant
    (every symbol, input or parameter, read inside a reduction; no list, no labels)."""
    if not x.has(*REDUCTIONS):
        return False
    # (a list, labels, a vector function: not one value per sample)
    return not any(
        n.is_Symbol or isinstance(n, (TensorFunction, Vector))
        for n in subtrees.outside(x, REDUCTIONS)
    )


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


def softplus_pair(
    x: sp.Expr, a: sp.Expr, b: sp.Expr, bind=lambda value: value
) -> sp.Expr:
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
    step = _nonnegative_step(x)
    total = sp.expand(a + b)
    if total.is_number and not a.is_Add and b == total - a:
        coefficient = total * step - a
    else:
        coefficient = Where((b, up), (-a, True))
    return bind(coefficient) * x + total * Softplus(negative_abs(x))


def _nonnegative_step(x: sp.Expr) -> sp.Expr:
    """`where(x >= 0, 1, 0)`."""
    return Where((1, x >= 0), (0, True))


def negative_abs(x: sp.Expr) -> sp.Expr:
    """`-|x|` as `(1 - 2 where(x >= 0, 1, 0)) x`, so that autodiff gives `softplus(-|x|)`'s
    derivative at x = 0 whatever a backend takes for abs'(0) (`softplus_pair`, and the rewrites'
    `logaddexp`)."""
    return (1 - 2 * _nonnegative_step(x)) * x


def negative_abs_argument(expr: sp.Basic) -> sp.Basic | None:
    """`x` where `expr` is `negative_abs(x)`; else None."""
    if not isinstance(expr, sp.Mul) or len(expr.args) != 2:
        return None
    sign, x = expr.args if isinstance(expr.args[0], sp.Add) else expr.args[::-1]
    if x.is_Add or sign != 1 - 2 * _nonnegative_step(x):
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
            except (
                TypeError,
                ValueError,
                OverflowError,
            ):  # zoo, nan, inf: leave it to the finiteness check
                return None
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def plain(self):
        return self


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

    @classmethod
    def eval(cls, *args):
        """Piecewise's evaluation, which rebuilds the Where while it canonicalizes its conditions,
        at most MAX_REBUILDS times over; past that, the Where as it then stands. For some
        conditions SymPy's canonical form flips between two forms for ever
        (`(y_true - y_pred)^3 >= y_true - 2*y_pred` and `2*y_pred - y_true >= -(y_true - y_pred)^3`):
        a Where built unevaluated from such a condition (`construct.piecewise`) was rebuilt with
        evaluation by its derivative, or by CSE, until the recursion limit (a LossLimitError
        from `gradient()` or `python_source()` for a one-line program)."""
        depth = getattr(_REBUILDS, "depth", 0)
        if depth >= MAX_REBUILDS:
            return None
        _REBUILDS.depth = depth + 1
        try:
            return super().eval(*args)
        except TypeError:
            # SymPy's canonical form of a condition may compare NaN or zoo on the way ("Invalid
            # NaN comparison": the derivative of 17 `where`s nested in conditions, a review):
            # the Where is then kept as it stands, the same value.
            return None
        finally:
            _REBUILDS.depth = depth


# How often a Where's evaluation may rebuild it (see `Where.eval`); per thread.
MAX_REBUILDS = 50
_REBUILDS = threading.local()


# SymPy's printers look up a Function subclass's print method by its own name only: named as
# its parent, a Where prints as a Piecewise everywhere (pickle finds the class by its qualname).
Where.__name__ = "Piecewise"


def is_literal(expr: sp.Basic) -> bool:
    """A number (not a list, not a function of a tensor): printed as a Python float."""
    return (
        isinstance(expr, sp.Expr)
        and bool(expr.is_number)
        and not expr.has(Vector, TensorFunction)
    )


# ------------------------------------------------------------------ a value compared with itself
#
# `x == x` is False and `x != x` True exactly where x is NaN: NumPy's test for a missing value
# (`where(y_true != y_true, 0, e^2)` masks NaN labels). SymPy decides both before any value is
# seen (`Eq(x, x)` is True), so the condition vanished and the loss read the NaN. These two keep
# the comparison. `construct.relation` builds them for the same expression on both sides where it
# reads a tensor or a parameter (`x <= x` and `x >= x` as `x == x`, the same everywhere, NaN
# included); rebuilt with different sides or with numbers (a substitution), they are SymPy's own.
#
# They are relationals, not SymPy's `Eq` and `Ne`: SymPy takes an `Eq` or `Ne` of one distinct
# argument for a comparison of booleans in places (an `ITE` with it as its condition decided it
# as if it held, the change review), and only the relational's own operator is needed to print it.


class SelfComparison(sp.core.relational.Relational):
    """A value compared with itself by `==` or `!=`, kept (see the section comment)."""

    __slots__ = ()
    sympy_class: type  # SymPy's own class of the comparison

    def __new__(cls, lhs, rhs, **options):
        lhs, rhs = _strict(lhs), _strict(rhs)
        if lhs != rhs or lhs.is_number:
            return cls.sympy_class(lhs, rhs, **options)
        return sp.Basic.__new__(cls, lhs, rhs)

    @property
    def negated(self):
        return (SelfUnequal if isinstance(self, SelfEqual) else SelfEqual)(*self.args)

    @property
    def reversed(self):
        return self

    @property
    def canonical(self):
        return self

    def _eval_simplify(self, **kwargs):
        return self  # (SymPy's would decide it, as a difference of 0)


class SelfEqual(SelfComparison):
    """`x == x`: False where x is NaN."""

    __slots__ = ()
    rel_op = "=="
    sympy_class = sp.Eq


class SelfUnequal(SelfComparison):
    """`x != x`: True where x is NaN."""

    __slots__ = ()
    rel_op = "!="
    sympy_class = sp.Ne


SELF_COMPARISONS = {sp.Eq: SelfEqual, sp.Ne: SelfUnequal}


# ------------------------------------------------------------------ `not` of an ordering
#
# `not (a < b)` is True where a or b is NaN, as NumPy's `~(a < b)` is; SymPy's `Not` of a
# comparison is the flipped comparison, `a >= b`, False there. `NegatedOrdering` is `not` of an
# ordering kept as written: a `Not` in every other respect (printed `~(a < b)`, its `not` is the
# ordering again), computed as `logical_not(less(a, b))`.

ORDERINGS = (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan)


class NegatedOrdering(sp.Not):
    """`not` of an ordering, True where a side is NaN (see the section comment)."""

    @classmethod
    def eval(cls, arg):
        # Rebuilt with what is no ordering, it is SymPy's `Not` where that is exact: of a decided
        # condition, an equality, an `and`, `or` or `ITE` (a folded `where`), another `Not`. Of
        # anything else it stays: an ordering, or the inert stand-in of one that `rebuild.cse`
        # holds in its place (SymPy's `Not` of the stand-in flipped the ordering it came back to).
        if isinstance(arg, _NEGATED_BY_SYMPY) and not isinstance(arg, ORDERINGS):
            return sp.Not(arg)
        return None


_NEGATED_BY_SYMPY = (
    sp.logic.boolalg.BooleanAtom,
    sp.core.relational.Relational,
    sp.Not,
    sp.And,
    sp.Or,
    sp.ITE,
)
