"""The element gradient: d(loss)/d(y_pred) for one element, through the last axis.

Input: the core SymPy form of a loss (`SymbolicLoss.core`: heads kept whole,
bindings inlined) and whether it is one value per sample. Output: the
derivative with respect to one element `y_pred_j`, as an expression in the
element symbols (`y_pred`, `y_true` standing for element j) and in reductions
over the last axis.

What it is the derivative of: for a per-sample loss (`sum(...)`, `mean(...)`
at the top), of that value; for an elementwise loss (the mean over the last
axis implicit), of its sum over the last axis, so that an elementwise loss
without reductions has its plain derivative (`e^2` -> `2 y_pred - 2 y_true`)
and one that reads a reduction counts every element the reduction feeds
(`y_pred * sum(y_pred)` -> `2 sum(y_pred)`).

SymPy's own `diff` knows one element only: `sum(x)'` as `x'` is right at the
top of a loss, wrong where a reduction sits inside another term, whose other
elements also read it (the variance `mean((y_pred - mean(y_pred))^2)` got a
factor `1 - 1/C` too many). Here each tensor function is a node of a small
reverse-mode pass over the last axis: a term holding a reduction `r` passes
`sum_c d(term_c)/dr` to it (a number per sample), a vector function passes
its vector-Jacobian product to its argument (`softmax(a)` with upstream `u`:
`softmax(a) (u - sum(u softmax(a)))`), each as a weight on the argument's own
element derivative.

Conventions at kinks: `max(x)` and `min(x)` share the gradient among the
elements equal to the extreme, as TensorFlow does; `normalize` is `x / sqrt(sum(x^2))` (Keras clamps the squared
norm at its epsilon, below which the gradient differs).
"""

from __future__ import annotations

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from lossdsl import construct, rebuild
from lossdsl import symfuncs as sf
from lossdsl.derivative import differentiated
from lossdsl.errors import LossLimitError
from lossdsl.semantics import MAX_TREE_SIZE


def element_gradient(
    core: sp.Expr, y_true: sp.Symbol, y_pred: sp.Symbol, per_sample: bool
) -> sp.Expr:
    """d(core)/d(y_pred_j) (per sample) or d(sum over the last axis of core)/d(y_pred_j) (elementwise)."""
    return _Pass(y_true, y_pred).weighted(
        core, sp.Integer(1), elementwise=not per_sample
    )


def sums_the_axis(core: sp.Expr, y_pred: sp.Symbol, per_sample: bool) -> bool:
    """Whether `element_gradient` is taken through the other elements of the last axis: an
    elementwise loss whose element reads a reduction or vector function of y_pred (each element
    may then reach y_pred_j through it; where it is read only in a `where`'s condition, the result
    is the element's own derivative, still truly of the sum)."""
    return not per_sample and bool(_outermost_tensor_terms(core, y_pred))


class _Pass:
    def __init__(self, y_true: sp.Symbol, y_pred: sp.Symbol):
        self.y_pred = y_pred
        self.elements = (y_true, y_pred)
        self.sizes = _Sizes()

    def weighted(self, expr: sp.Expr, weight: sp.Expr, elementwise: bool) -> sp.Expr:
        """d/d(y_pred_j) of `sum_c weight_c expr_c` (elementwise) or of `weight expr`, the weight held fixed."""
        terms = _outermost_tensor_terms(expr, self.y_pred)
        if not terms:
            return weight * differentiated(expr, self.y_pred)
        stand_ins = {term: sp.Dummy(f"t{k}", real=True) for k, term in enumerate(terms)}
        back = {symbol: term for term, symbol in stand_ins.items()}
        opened = rebuild.substitute(expr, stand_ins)
        # The terms are added once, at the end, and their size counted as they come (adding each to
        # a growing sum, and walking the sum after each, was quadratic: 9 s for 600 `max(k*y_pred)`).
        parts = [weight * differentiated(opened, self.y_pred)]
        size = self.sizes.of(parts[0])
        # Of a sum, each stand-in's derivative is that of the terms that hold it (the whole sum,
        # differentiated once for each of its 600 reductions, took seconds).
        holding = {symbol: [] for symbol in back}
        for addend in sp.Add.make_args(opened):
            for symbol in addend.free_symbols & holding.keys():
                holding[symbol].append(addend)
        for term, symbol in stand_ins.items():
            upstream = rebuild.substitute(
                weight * differentiated(sp.Add(*holding[symbol]), symbol), back
            )
            if upstream == 0:
                continue
            self.sizes.check(upstream)
            if isinstance(term, sf.VECTOR_FUNCTIONS):
                parts.append(self.vector_product(term, upstream))
            else:
                parts.append(self.summed(upstream, elementwise) * self.reduction(term))
            size += self.sizes.of(parts[-1])
            _check_limit(size)
        return rebuild.substitute(sp.Add(*parts), back)

    def reduction(self, term: sp.Expr) -> sp.Expr:
        """d(term)/d(y_pred_j) for a reduction over the last axis."""
        (argument,) = term.args
        if isinstance(term, sf.ReduceSum):
            return self.weighted(argument, sp.Integer(1), elementwise=True)
        if isinstance(term, sf.ReduceMean):
            return self.weighted(argument, sp.Integer(1), elementwise=True) / sf.C
        if isinstance(term, sf.LogSumExp):
            return self.weighted(argument, sp.exp(argument - term), elementwise=True)
        if isinstance(term, (sf.ReduceMax, sf.ReduceMin)):
            # 1 where the element is the extreme (`H(0) = 1`; the argument never passes it), shared
            # among the elements that tie for it, as TensorFlow shares it. A step, not a Piecewise:
            # SymPy folds a condition that holds a Piecewise (`max(where(...))`) without end.
            gap = argument - term if isinstance(term, sf.ReduceMax) else term - argument
            at_extreme = sf.step(gap, sp.Integer(1))
            return self.weighted(
                argument, at_extreme / sf.ReduceSum(at_extreme), elementwise=True
            )
        raise TypeError(f"no element gradient for {type(term).__name__}")

    def vector_product(self, term: sp.Expr, upstream: sp.Expr) -> sp.Expr:
        """d/d(y_pred_j) of `sum_c upstream_c term_c` for a vector function, the upstream held fixed."""
        (argument,) = term.args
        if isinstance(term, sf.Softmax):
            if not self.varies_along_axis(upstream):
                return sp.Integer(
                    0
                )  # softmax sums to 1: a constant upstream passes nothing
            weight = term * upstream - term * sf.ReduceSum(
                upstream * term
            )  # distributed: s (y / s) is y
        elif isinstance(term, sf.LogSoftmax):
            weight = upstream - sf.Softmax(argument) * self.summed(upstream, True)
        elif isinstance(term, sf.Normalize):
            weight = (upstream - term * sf.ReduceSum(upstream * term)) / sp.sqrt(
                sf.ReduceSum(argument**2)
            )
        else:
            raise TypeError(f"no element gradient for {type(term).__name__}")
        self.sizes.check(
            weight
        )  # it reads the upstream twice: nested vector functions double it
        return self.weighted(argument, weight, elementwise=True)

    def summed(self, expr: sp.Expr, elementwise: bool) -> sp.Expr:
        """`sum_c expr_c` over the elements of an elementwise term (`C expr` where expr is one per sample)."""
        if not elementwise:
            return expr
        return sf.ReduceSum(expr) if self.varies_along_axis(expr) else sf.C * expr

    def varies_along_axis(self, expr: sp.Basic) -> bool:
        return sf.varies_along_axis(expr, self.elements)


def _outermost_tensor_terms(expr: sp.Basic, y_pred: sp.Symbol) -> list[sp.Basic]:
    """The tensor functions of `expr` that depend on y_pred and sit inside no other, in a fixed order."""
    found: dict[sp.Basic, None] = {}
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, sf.TensorFunction):
            if node.has(y_pred):
                found[node] = None
            continue
        stack.extend(reversed(node.args))
    return list(found)


class _Sizes:
    """The size of expressions written out (each shared part counted where it is used, as a
    `preorder_traversal` counts), remembered for every part met: a gradient's parts share most of
    what they hold (the upstream of a nested reduction holds the one above it), so each is counted
    once, not walked again at every level (seconds for 60 nested `max(y_pred * ...)`)."""

    def __init__(self) -> None:
        self.known: dict[sp.Basic, int] = {}

    def check(self, expr: sp.Basic) -> None:
        _check_limit(self.of(expr))

    def of(self, expr: sp.Basic) -> int:
        return construct.folded_up(expr, lambda node, sizes: 1 + sum(sizes), self.known)


def _check_limit(size: int) -> None:
    if size > MAX_TREE_SIZE:
        raise LossLimitError(
            f"the gradient of this loss would hold more than {MAX_TREE_SIZE:,} operations"
            " (its tensor functions nest too deeply)"
        )


# The most operations a gradient may hold written out (each shared part counted where it is used),
# as `derivative_size` estimates it before differentiating: twice the limit of the gradient's LaTeX,
# which counts what SymPy built (`gradient()` returns it with its parts shared: a `max` of 100
# linear pieces, about 65,000 written out, in a second or two).
MAX_GRADIENT_SIZE = 2 * MAX_TREE_SIZE


def derivative_size(expr: sp.Basic, wrt: sp.Symbol) -> int:
    """About how many operations d(expr)/d(wrt) holds written out, from `expr`'s shape alone.

    The rules write each part's derivative out: a sum's is its terms'; a product's, for each
    factor that depends on `wrt`, its derivative times the other factors; a function's or a
    power's, its derivative at its arguments (counted as the node again) times theirs; a `where`'s,
    its branches'. Over the library it is within 0.5x-2.4x of the derivative SymPy builds;
    bindings used twice double the tree at each level (`a{k} = erf(a{k-1}) + a{k-1}`: 69,000 at
    12 levels, for a derivative of 101,000 that took SymPy 7 to 9 seconds), which this finds in
    milliseconds. Without recursion.
    """

    def combine(node: sp.Basic, parts: list[tuple[int, int]]) -> tuple[int, int]:
        # (size written out, its derivative's) from the arguments' own
        size = 1 + sum(s for s, _ in parts)
        live = [(s, d) for s, d in parts if d]
        if not node.args:
            derivative = 1 if node == wrt else 0
        elif not live or isinstance(
            node, sp.logic.boolalg.Boolean
        ):  # a condition selects, no more
            derivative = 0
        elif isinstance(
            node, ExprCondPair
        ):  # a branch: its derivative, under its condition
            derivative = parts[0][1] + parts[1][0] if parts[0][1] else 0
        elif isinstance(node, sp.Piecewise):
            derivative = sum(d for _, d in live) + len(node.args)
        elif isinstance(node, sp.Add):
            derivative = sum(d for _, d in live) + len(live) - 1
        elif isinstance(node, sp.Mul):
            derivative = sum(d + size - s for s, d in live) + len(live) - 1
        else:
            derivative = sum(d + size for _, d in live) + len(live) - 1
        return size, derivative

    return construct.folded_up(expr, combine)[1]
