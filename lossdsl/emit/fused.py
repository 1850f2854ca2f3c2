"""Fused gradients: the element gradient that the Keras emitter writes as the backward pass.

Input: the stable form of a program (bindings and result, as the Keras emitter
prints them). Output: `d(per-sample loss) / d(y_pred)` (or `/ d(y_true)`) for one element, in terms
of the same binding symbols (so that it shares the forward pass's locals and
common subexpressions), or None where the compiler does not fuse.

The emitter then writes `call()` as a `keras.ops.custom_gradient` function
whose backward pass is that expression times the upstream gradient: one
elementwise pass instead of the chain of kernels autodiff builds, which the
benchmark (`bench/run.py`) shows is faster under `tf.function`.

When it fuses: the Jacobian of the per-sample loss must be diagonal in the last
axis, so that one element's gradient is an elementwise expression:

* an elementwise loss (the mean over the last axis is implicit) with no
  reduction of `y_pred` anywhere in it;
* a per-sample loss whose reductions of `y_pred` (`sum`, `mean`) are not nested
  inside one another (Dice: `1 - 2 sum(y p) / (sum(y) + sum(p))`), and with no
  other tensor function of `y_pred` (softmax, logsumexp, max, normalize).

And where the loss reads y_true, its gradient with respect to y_true must fuse
too (the same conditions for y_true: `e^2 / mean(y_true^2)` keeps autodiff),
so that a target computed by a trained model gets its gradient.

And the program and its gradient must be small (MAX_NODES, MAX_DEPTH; no
`max`/`min` of more than two terms): differentiating costs SymPy time that
grows with them.
Everything else keeps autodiff, as does any program whose gradient holds
something the printer cannot write (the emitter falls back).

Kinks follow TensorFlow's gradients, as Keras's losses on TensorFlow do:
`abs'(0) = sign(0) = 0`, `relu'(0) = 0`, `maximum(x, c)' = [x >= c]`, and
`clip(x, lo, hi)'` is 1 on the closed interval [lo, hi]. A tie between two
arguments that both read y_pred goes to the one printed first, as TensorFlow's
`maximum(a, b)` gives it to `a` (`_TieMax`, `_TieMin`, `_TieClip`), so it counts
once, and each step compares the two operands the forward pass compares
(`_AtLeast`, `_Above`), not a difference SymPy has rearranged, which rounds
apart near a tie; a power `b^x` is differentiated as TensorFlow's `pow`, `x b^(x - 1) b' +
b^x log(b) x'` with `log(b)` taken as 0 where `b <= 0` (`_Power`), so a zero
base has a finite gradient.
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.construct import folded_condition
from lossdsl.derivative import differentiated
from lossdsl.rewrites import exact_exponents
from lossdsl.symbolic import Y_PRED, Y_TRUE

# Programs with more nodes than this (bindings counted once), or nested deeper, keep autodiff.
MAX_NODES = 400
MAX_DEPTH = 40
_REDUCTIONS = (sf.ReduceSum, sf.ReduceMean)


class _TFRelu(sf.Relu):
    """`relu` differentiated as TensorFlow does: 0 at 0."""

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)


class _Step(sp.Function):
    """A step between the operands the forward pass compares, printed as their comparison: `[a >= b]`
    (`_AtLeast`) or `[a > b]` (`_Above`). (A Heaviside of `a - b` is printed as SymPy rearranges the
    difference, which rounds apart from the forward pass's own comparison near a tie:
    `clip(-e, e, delta)` gave the gradient to neither side where `y_pred - y_true` rounded to
    delta; found by a review.)"""

    nargs = 2
    strict = False

    @classmethod
    def eval(cls, a, b):
        gap = a - b
        if not (gap.is_number and gap.is_comparable):
            return None
        return sp.Integer(1) if (gap > 0 if cls.strict else gap >= 0) else sp.Integer(0)

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class _AtLeast(_Step):
    """`[a >= b]`."""


class _Above(_Step):
    """`[a > b]`."""

    strict = True


_STEPS = (sp.Heaviside, _Step)


class _TieMax(sp.Function):
    """`max(a, b)` differentiated as TensorFlow differentiates `keras.ops.maximum(a, b)`: a tie
    goes to `a`, the argument printed first (`[a >= b]` and `[b > a]`). SymPy's `H(a - b)` and
    `H(b - a)`, printed as steps that are 1 at 0, counted a tie twice: `maximum(y_pred,
    relu(y_pred))` had the gradient 2 for y_pred > 0 (found by fuzzing)."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return _AtLeast(a, b) if argindex == 1 else _Above(b, a)


class _TieMin(sp.Function):
    """`min(a, b)` as TensorFlow differentiates `keras.ops.minimum(a, b)`: `[a <= b]`, `[b < a]`."""

    nargs = 2

    def fdiff(self, argindex=1):
        a, b = self.args
        return _AtLeast(b, a) if argindex == 1 else _Above(a, b)


class _TieClip(sp.Function):
    """`clip(x, lo, hi)` as TensorFlow differentiates what it is printed as: `keras.ops.clip` for
    numbers as bounds (`[lo <= x <= hi]` for x), else `minimum(maximum(x, lo), hi)`
    (`maximum(lo, x)` where x is a number: the tie goes to lo). Each step compares two of the
    operands themselves (`maximum(x, lo)` is x or lo exactly)."""

    nargs = 3

    def fdiff(self, argindex=1):
        x, lo, hi = self.args
        if sf.is_literal(x):  # maximum(lo, x)
            low_is_x, low_is_lo = _Above(x, lo), _AtLeast(lo, x)
        else:
            low_is_x, low_is_lo = _AtLeast(x, lo), _Above(lo, x)
        if argindex == 1:
            return low_is_x * _AtLeast(hi, x)
        if argindex == 2:
            return low_is_lo * _AtLeast(hi, lo)
        return low_is_x * _Above(x, hi) + low_is_lo * _Above(lo, hi)


class _CrossEntropySum(sf.ReduceSum):
    """`sum(t * log_softmax(x))` over the last axis, for labels `t` free of y_pred.

    Its gradient in x is elementwise in closed form, `t - softmax(x) sum(t)` (written with
    `exp(log_softmax(x))`, which the forward pass has computed), so a loss built on it fuses as
    one whose reductions are sums: the softmax cross-entropy on logits, for any labels.
    """

    nargs = 2

    def fdiff(self, argindex=2):
        labels, logits = self.args
        if argindex == 1:
            return sf.LogSoftmax(logits)
        return labels - sp.exp(sf.LogSoftmax(logits)) * sf.ReduceSum(labels)


class _Power(sp.Function):
    """`x^a` for an exponent that is not a number (or a fractional power of a product),
    differentiated as TensorFlow's `pow`: `a x^(a - 1)` in x, `x^a log(x)` in a (its log guarded
    by `_guarded_logs_of_bases`).

    (SymPy writes `a x^a / x`, which is 0/0 at x = 0 where `a x^(a - 1)` is 0 for a > 1:
    the focal factor `(1 - p_t)^gamma` at a perfect prediction; and for an exponent that reads
    y_pred as well, `x^a (a' log(x) + a x' / x)`, NaN at x = 0: `relu(y_pred)^(y_pred + 2)`.)
    """

    nargs = 2

    def fdiff(self, argindex=1):
        base, exponent = self.args
        if argindex == 1:
            return exponent * _Power(base, exponent - 1)
        return _Power(base, exponent) * sp.log(base)


def fused_gradient(
    bindings, result: sp.Basic, elementwise: bool, wrt: sp.Symbol = Y_PRED
) -> sp.Expr | None:
    """The element gradient of the per-sample loss through `bindings`, or None where it is not fused.

    Args:
        bindings: `(name, symbol or None, value)` in order, as `rewrites.stable_form` returns them.
        result: the loss expression over those symbols.
        elementwise: the loss is elementwise (its per-sample value is the mean over the last axis,
            which the caller applies, as it applies 1/C to the gradient).
        wrt: `Y_PRED`, or `Y_TRUE` for the gradient with respect to the target (a target computed
            from trainable weights needs it too).
    """
    definitions = {symbol: value for _, symbol, value in bindings if symbol is not None}
    if (
        _size([result, *definitions.values()]) > MAX_NODES
        or _depth([result, *definitions.values()]) > MAX_DEPTH
    ):
        # The chain rule through 200 nested sigmoids takes SymPy seconds and gives a product of 200.
        return None
    predicted = dependent_symbols(bindings, Y_PRED)
    # A binding of a log_softmax is read through (`l = log_softmax(y_pred)`, `-sum(y_true * l)`),
    # so that its sums take the closed form too; a binding that nothing reads then is left out.
    logs = _log_softmax_bindings(definitions)
    bindings = [
        (name, symbol, _cross_entropies(value, predicted, logs))
        for name, symbol, value in bindings
    ]
    result = _cross_entropies(result, predicted, logs)
    if logs:
        bindings = _read_by(result, bindings)
    depends = dependent_symbols(bindings, wrt)
    definitions = {symbol: value for _, symbol, value in bindings if symbol is not None}
    exprs = (result, *definitions.values())
    if any(
        len(m.args) > 2 for expr in exprs for m in subtrees.atoms(expr, sp.Max, sp.Min)
    ):
        # The gradient of a max of n terms holds n steps, each against the max of the others.
        return None
    if any(expr.has(sf.OneHot) for expr in exprs):
        # The gradient of a label's column is a gather's: exactly 0 in the other columns, where a
        # product with the one-hot row would give 0 * inf = nan beside a label with p = 0.
        return None
    if not _diagonal(result, definitions, depends, inside=elementwise, wrt=wrt):
        return None
    derivatives: dict[sp.Basic, sp.Expr] = {}
    originals: dict[sp.Basic, sp.Basic] = {}
    try:
        for _, symbol, value in bindings:
            if symbol is not None and symbol in depends:
                derivatives[symbol] = _total(
                    value, derivatives, wrt, originals, definitions
                )
        gradient = _total(result, derivatives, wrt, originals, definitions)
    except (TypeError, ValueError, AttributeError, NotImplementedError, RecursionError):
        return None
    if (
        gradient.has(sp.Derivative, sp.Subs, sp.DiracDelta)
        or _size([gradient]) > MAX_NODES
    ):
        return None
    gradient = _restored(gradient, originals)
    if any(power.exp.is_Float for power in subtrees.atoms(gradient, sp.Pow)):
        # A fractional power of a fractional power keeps its Float exponents (rewrites.exact_exponents),
        # and so do the powers its derivative makes: `x^1.5 x^-2.5` is `x^-1.0`, exact again here.
        gradient = exact_exponents(gradient)
    if gradient.has(_CrossEntropySum):
        return None
    # Differentiating a Piecewise leaves products unevaluated (`Mul(1.0, x)`), and so does SymPy's
    # `Abs` for what it simplifies inside (`abs(-maximum(e, 1))` holds `Mul(-1, y_pred - y_true)`,
    # unevaluated, with no `abs` left): evaluate them. (Everywhere: run only where a Piecewise was
    # differentiated, the code of such programs changed.)
    gradient = rebuild.replaced(gradient, lambda e: e.is_Mul, lambda e: sp.Mul(*e.args))
    # (a binding's symbol and its value are one base: `p^(g - 1)` of `p = sigmoid(x)` beside the
    # chain rule's `sigmoid(x)`, a NaN gradient at g < 1 where p rounds to 0; a review)
    gradient = _with_joined_powers(gradient, definitions)
    # Each pass below only where what its query looks for is there (a walk of `has` costs less
    # than one of `replace`).
    gathered = gradient
    # The bindings that may be infinite, which a product with a select must select around too
    # (`m0 = exp(-y_pred)` then `where(y_pred > 0, m0, y_pred)`: the chain rule's `m0 * where(c, 1,
    # 0)` was inf * 0 = NaN at y_pred = -87, where autodiff selects; found by differential fuzzing).
    unbounded = set()
    for _, symbol, value in bindings:
        if symbol is not None and _unbounded(value, unbounded):
            unbounded.add(symbol)
    if gradient.has(*_STEPS, sp.Piecewise):
        gradient = rebuild.replaced(
            gradient, lambda e: _gated_sum_times_unbounded(e, unbounded), _distributed
        )
    if gradient.has(*_STEPS):
        gradient = rebuild.replaced(
            gradient,
            lambda e: e.is_Mul and e.has(*_STEPS),
            lambda e: _masked(e, unbounded),
        )
    if gradient.has(sp.Piecewise):
        gradient = rebuild.replaced(
            gradient,
            lambda e: (
                e.is_Mul and any(map(_selects, e.args)) and _unbounded(e, unbounded)
            ),
            _selected,
        )
    if (
        gradient != gathered
    ):  # (again: the selects take sums apart, where a power may meet its base)
        gradient = _with_joined_powers(gradient, definitions)
    if gradient.has(sp.log):
        gradient = rebuild.replaced(
            gradient, lambda e: e.is_Mul and e.has(sp.log), _guarded_logs_of_bases
        )
    if gathered.has(*_STEPS, sp.Piecewise) and _size([gradient]) > MAX_NODES:
        # Taken apart and selected at every level of a nesting that reads the level below twice,
        # the gradient grew with each (53,000 characters of code for seven levels, 3 s): autodiff.
        return None
    roots = _roots_of_zero(gradient, definitions)
    if roots and roots - _roots_of_zero(exprs, definitions, forward=True):
        return None
    if gradient.has(Y_TRUE):
        gradient = rebuild.replaced(gradient, _holds_a_pair, _paired_errors)
    return gradient


def _holds_a_pair(node: sp.Basic) -> bool:
    """`node` is a sum with a term that is a product with y_pred and one with y_true (`_paired_errors`)."""
    if not node.is_Add:
        return False
    factors = [sp.Mul.make_args(term) for term in node.args]
    return any(Y_PRED in f for f in factors) and any(Y_TRUE in f for f in factors)


def _paired_errors(total: sp.Add) -> sp.Expr:
    """`total` with each pair of terms `r y_pred` and `-r y_true` as `-r (y_true - y_pred)`.

    SymPy distributes what multiplies an error over it (`0.3 e^2 + 0.1 e^4` has the gradient
    `0.6 y_pred - 0.6 y_true + ...`), and computed so, XLA fuses the multiplication and the
    subtraction into one multiply-add, which is not 0 where y_pred equals y_true: 1.18 at a
    perfect prediction for `log(mean(0.3 e^2 + 0.1 e^4) + eps)`, where autodiff gives 0 (a review
    of XLA's numerics). The error computed first is exactly 0 there, and it is the forward pass's
    `y_true - y_pred`, shared. A sum whose terms all have one coefficient is left to the printer,
    which takes it out whole (`keras_printer.common_coefficient`); a number that is a power of 2
    scales exactly, and its pair is left as it is.
    """
    terms = total.args
    if len({abs(term.as_coeff_Mul()[0]) for term in terms}) == 1:
        return total
    index = {term: i for i, term in enumerate(terms)}
    paired: set[int] = set()
    errors = []
    for i, term in enumerate(terms):
        if i in paired:
            continue
        rest = term / Y_PRED
        if rest.has(Y_PRED) or (rest.is_Number and scales_exactly(rest)):
            continue
        j = index.get(-rest * Y_TRUE)
        if j is not None and j != i and j not in paired:
            paired.update((i, j))
            errors.append(sp.Mul(-rest, Y_TRUE - Y_PRED, evaluate=False))
    if not errors:
        return total
    return sp.Add(*(term for i, term in enumerate(terms) if i not in paired), *errors)


def scales_exactly(number: sp.Number) -> bool:
    """`number` is plus or minus a power of 2: scaling by it is exact in binary floating point."""
    return number != 0 and math.frexp(abs(float(number)))[0] == 0.5


def _roots_of_zero(exprs, definitions: dict, forward: bool = False) -> set[sp.Basic]:
    """The bases `b` of `_row_zero` that `exprs` divide by a fractional power of (`b^(-1/2)`, through
    bindings: `1 / n` of `n = sqrt(b)`); in the `forward` pass, by any power of them.

    Where the gradient holds such a power and the forward pass does not, the forward pass is finite
    at `b = 0` and the chain rule's product there is `0 * inf` (the chain rule of `sqrt(b)`, times
    a factor of 0): NaN, where TensorFlow's autodiff gives 0 (its `sqrt` gradient of an upstream
    of 0 is 0). A cosine similarity written out, `sum(y_true y_pred) / (sqrt(sum(y_true^2))
    sqrt(sum(y_pred^2)) + eps)`, was NaN at a row of zeros (an output layer initialised to 0):
    such a loss keeps autodiff (a review).
    """
    found = set()
    for expr in exprs if isinstance(exprs, (tuple, list)) else [exprs]:
        for power in subtrees.atoms(expr, sp.Pow):
            if not (power.exp.is_Number and power.exp < 0):
                continue
            base, exponent = _root(power, definitions)
            if (
                (forward or not _whole(exponent))
                and exponent < 0
                and _row_zero(base, definitions)
            ):
                found.add(base)
    return found


def _row_zero(base: sp.Basic, definitions: dict) -> bool:
    """`base` holds a reduction (directly or through bindings), and SymPy cannot tell that it is
    positive: a row of zeros (an output layer initialised to 0, dead units) can make it 0.
    (Elementwise, a `where` guards such a power where it is written, and the fused gradient
    selects as autodiff does.)"""
    seen, todo = set(), [base]
    while todo:
        expr = todo.pop()
        if expr.has(*sf.REDUCTIONS):
            return base.is_positive is not True
        fresh = [s for s in expr.free_symbols if s in definitions and s not in seen]
        seen.update(fresh)
        todo.extend(definitions[s] for s in fresh)
    return False


def _root(power: sp.Pow, definitions: dict) -> tuple[sp.Basic, sp.Number]:
    """`power` as `b^k`, through bindings and powers of powers with numeric exponents."""
    node, exponent = power, sp.Integer(1)
    for _ in range(MAX_DEPTH):
        node = definitions.get(node, node)
        if not (node.is_Pow and node.exp.is_Number):
            break
        node, exponent = node.base, exponent * node.exp
    return node, exponent


def _with_joined_powers(gradient: sp.Expr, definitions: dict) -> sp.Expr:
    """`gradient` with `_joined_powers` applied to each product that splits a power."""
    if not any(map(_lowered, subtrees.atoms(gradient, sp.Pow))):
        return gradient
    return rebuild.replaced(
        gradient,
        lambda e: _splits_a_power(e, definitions),
        lambda e: _joined_powers(e, definitions),
    )


def _powers(product: sp.Mul, definitions: dict) -> dict[sp.Basic, list[sp.Basic]]:
    """The factors of `product` by their base (`b` and `b^x` both under `b`; a binding's symbol under
    its value)."""
    found: dict[sp.Basic, list[sp.Basic]] = {}
    for factor in product.args:
        base = factor.base if factor.is_Pow else factor
        found.setdefault(definitions.get(base, base), []).append(factor)
    return found


def _whole(number: sp.Basic) -> bool:
    return number.is_Number and float(number).is_integer()


def _lowered(factor: sp.Basic) -> bool:
    """`b^(x - c)`: a power whose exponent is not a number and has a negative whole number in it.
    (Whole numbers only: moved between powers of a negative base, a fraction made two NaNs of a
    finite product, `b^(g - 0.5) * b^2` as `b^g * b^1.5`; the change review.)"""
    if not factor.is_Pow or factor.exp.is_Number:
        return False
    shift = factor.exp.as_coeff_Add()[0]
    return shift < 0 and _whole(shift)


def _counted(factor: sp.Basic) -> bool:
    """`b` or `b^k`, k a positive whole number."""
    return not factor.is_Pow or (_whole(factor.exp) and factor.exp > 0)


def _splits_a_power(node: sp.Basic, definitions: dict) -> bool:
    """A product of `b^(x - c)` and `b` (or `b^k`), which SymPy keeps apart: `b^(g - 1) * b`; or of
    a sum whose every term holds `b^(x - c)` and `b` (`_shared_power`)."""
    if not node.is_Mul:
        return False
    powers = _powers(node, definitions)
    if any(
        any(map(_lowered, factors)) and any(map(_counted, factors))
        for factors in powers.values()
    ):
        return True
    return _shared_power(node, definitions) is not None


def _shared_power(product: sp.Mul, definitions: dict) -> tuple[int, sp.Pow] | None:
    """(the index of a sum, `b^(x - c)`) where every term of that factor of `product` holds the
    power `b^(x - c)` and another factor is `b` or `b^k`, else None: the product rule's
    `(g p^(g - 1) - y g p^(g - 1)) p (1 - p)` of a focal loss on logits, where `p^(g - 1)` was
    inf and `p` 0 for a logit of -88 at g < 1, a NaN gradient (a review)."""

    def based(base: sp.Basic) -> sp.Basic:
        return definitions.get(base, base)

    counted = {based(f.base if f.is_Pow else f) for f in product.args if _counted(f)}
    for index, factor in enumerate(product.args):
        if not factor.is_Add:
            continue
        shared = None
        for term in factor.args:
            lowered = {
                f
                for f in sp.Mul.make_args(term)
                if _lowered(f) and based(f.base) in counted
            }
            shared = lowered if shared is None else shared & lowered
            if not shared:
                break
        if shared:
            return index, min(shared, key=sp.default_sort_key)
    return None


def _without(term: sp.Basic, factor: sp.Basic) -> sp.Basic:
    """`term` with one of its factors `factor` taken out (SymPy's `term / factor` keeps `b^(1 - g)
    b^(g - 1)`: it adds no exponents that are not numbers)."""
    factors = list(sp.Mul.make_args(term))
    factors.remove(factor)
    return sp.Mul(*factors)


def _joined_powers(product: sp.Mul, definitions: dict) -> sp.Expr:
    """`b^(g - 1) * b` -> `b^g`, the same value where `b` is not 0, and at 0 the limit the chain
    rule's own product lost: `0^(g - 1) * 0` is `inf * 0 = nan` at g < 1 (the asymmetric loss's
    `(1 - p)^g` at a logit of 88, where `p` rounds to 1, with the paper's g = 0: its gradient was
    NaN where the loss is finite; a review). Only as much of `b`'s numeric powers as the exponent
    lacks joins it: `b^(g - 1) * b^2` is `b^g * b`, and `b^g * b` stays (a power of its own would
    cost a `power` where the forward pass's `b^g` is shared)."""
    shared = _shared_power(product, definitions)
    if (
        shared is not None
    ):  # taken out of the sum, the power joins its base (SymPy adds the exponents)
        index, power = shared
        total = sp.Add(*(_without(term, power) for term in product.args[index].args))
        product = sp.Mul(
            power, total, *product.args[:index], *product.args[index + 1 :]
        )
        if not product.is_Mul:
            return product
    factors = []
    for powers in _powers(product, definitions).values():
        lowered = [f for f in powers if _lowered(f)]
        counted = [f for f in powers if _counted(f)]
        if not (lowered and counted):
            factors.extend(powers)
            continue
        factors.extend(f for f in powers if not _lowered(f) and not _counted(f))
        available = sum((f.exp if f.is_Pow else sp.S.One) for f in counted)
        for power in lowered:
            lacking = -power.exp.as_coeff_Add()[0]
            taken = min(lacking, available)
            available -= taken
            factors.append(
                sp.Pow(power.base, power.exp + taken)
            )  # (its own: a binding's symbol)
        if available:
            factors.append(
                sp.Pow(counted[0].base if counted[0].is_Pow else counted[0], available)
            )
    return sp.Mul(*factors)


def _guarded_logs_of_bases(product: sp.Mul) -> sp.Expr:
    """`b^x * log(b) * ...` -> `b^x * where(b > 0, log(b), 0) * ...`, as TensorFlow's gradient of `pow`.

    d/dx b^x = b^x log(b) is `0 * -inf = nan` at b = 0, where the limit (and autodiff on every
    backend) is 0: `y_true^y_pred` with labels of 0 had NaN gradients (found by a numeric review).
    """
    bases = {f.base for f in product.args if f.is_Pow and not f.exp.is_Number}
    guarded = [
        sf.Where(
            (f, folded_condition(sp.StrictGreaterThan(f.args[0], 0), exact=True)),
            (0, True),
        )
        if isinstance(f, sp.log) and f.args[0] in bases and not f.args[0].is_positive
        else f
        for f in product.args
    ]
    return product if guarded == list(product.args) else sp.Mul(*guarded)


def _gated(expr: sp.Basic) -> bool:
    """`expr` holds a step or a select (a `where` with a branch of 0)."""
    return expr.has(*_STEPS) or any(_selects(p) for p in expr.atoms(sp.Piecewise))


def _gated_sum_times_unbounded(expr: sp.Basic, unbounded: set) -> bool:
    """`expr` is `(s1 A + s2 B + ...) C`: a sum whose terms hold steps or selects, times factors
    that may be infinite (`_distributed` takes it apart)."""
    if not expr.is_Mul:
        return False
    sums = [f for f in expr.args if f.is_Add and _gated(f)]
    return bool(sums) and _unbounded(
        sp.Mul(*(f for f in expr.args if f is not sums[0])), unbounded
    )


def _distributed(product: sp.Mul) -> sp.Expr:
    """`(s1 A + s2 B) C` -> `s1 A C + s2 B C`, so that each step or select gates its own product
    (`_masked`, `_selected`): SymPy gathers the chain rule's terms over a common factor, and
    `sqrt(maximum(y_pred, where(y_pred > 2, y_pred, 0)))'` was `(s1/2 + s2/2) / sqrt(...)`, 0 / 0 =
    NaN for every y_pred < 0, where autodiff selects 0 (a review)."""
    total = next(f for f in product.args if f.is_Add and _gated(f))
    rest = [f for f in product.args if f is not total]
    return sp.Add(*(sp.Mul(term, *rest) for term in total.args))


def _masked(product: sp.Mul, unbounded: set) -> sp.Expr:
    """`A * H(z1) * H(z2)` -> `where(z1 >= 0 and z2 >= 0, A, 0)`.

    A select, as TensorFlow's own gradients of `relu`, `maximum` and `clip` are: where the
    step is 0, an infinite or undefined `A` (the gradient of `log(p)` at the clipped p = 0)
    is dropped, where a product would give `0 * inf = nan`.
    """
    steps = [f for f in product.args if isinstance(f, _STEPS)]
    rest = sp.Mul(*(f for f in product.args if not isinstance(f, _STEPS)))
    if not steps or rest.has(*_STEPS):
        return product
    conditions = [_step_condition(step) for step in steps]
    if any(c.has(sp.Piecewise) for c in conditions):
        # SymPy folds a `where` out of a condition (`e <= exp(3^where(y_pred > 0, 1e10, 1))` into
        # one condition per branch), evaluating the constants it builds: exp(3^1e10) ran mpmath
        # for minutes (found by a review). The select is a `_Masked`, which holds the steps'
        # operands; a product with a bounded `A` is printed as it is.
        if not _unbounded(rest, unbounded):
            return product
        return _Masked(rest, *(part for step in steps for part in _step_operands(step)))
    condition = (
        conditions[0] if len(conditions) == 1 else sp.And(*conditions, evaluate=False)
    )
    return sf.Where((rest, condition), (sp.Integer(0), True), evaluate=False)


class _Masked(sp.Function):
    """`_Masked(A, a1, b1, strict1, a2, b2, strict2, ...)`: `A` where every `a_i >= b_i` (`a_i > b_i`
    where `strict_i` is 1), else 0, printed as a select (`keras.ops.where`) of the comparisons,
    for steps that compare a `where`, which a SymPy condition would fold (see `_masked`); the
    operands are arguments of their own, which cse may share as it shares any value.

    Multiplied, an infinite or undefined `A` gave NaN where a step was 0: the gradient of
    `maximum(y_pred, where(y_pred > 2, y_pred, sqrt(y_true * y_pred)))` at y_true = 0 (found by
    fuzzing), where autodiff selects."""

    def fdiff(self, argindex=1):
        raise NotImplementedError("a fused gradient is not differentiated again")


def _step_operands(step: sp.Basic) -> tuple[sp.Basic, sp.Basic, sp.Integer]:
    """`(a, b, strict)` where `step` is 1: `a >= b`, or `a > b` for a strict step (as `_step_condition`)."""
    if isinstance(step, _Step):
        return (*step.args, sp.Integer(step.strict))
    strict = sp.Integer(len(step.args) > 1 and step.args[1] == 0)
    constant, rest = step.args[0].as_coeff_Add()
    if rest.could_extract_minus_sign():  # c - x >= 0: c >= x
        return constant, -rest, strict
    return rest, -constant, strict


def _selects(factor: sp.Basic) -> bool:
    """`factor` is a `where` with a branch of 0 (the derivative of a `where` with a constant branch)."""
    return isinstance(factor, sp.Piecewise) and any(
        value == 0 for value, _ in factor.args
    )


def _unbounded(expr: sp.Basic, unbounded: set) -> bool:
    """`expr` holds a logarithm, an exponential (`exp`, `sinh`, `cosh`: inf in float32 from 89), a
    power that may be infinite or NaN (a negative or fractional exponent), or a binding of
    `unbounded`: a product with it must select, where a product with a bounded factor may multiply."""
    return (
        expr.has(sp.log, sp.exp, sp.sinh, sp.cosh)
        or any(not (p.exp.is_Integer and p.exp >= 0) for p in expr.atoms(sp.Pow))
        or not unbounded.isdisjoint(expr.free_symbols)
    )


def _selected(product: sp.Mul) -> sp.Expr:
    """`where(c, a, 0) * B` -> `where(c, a * B, 0)`, a select, as autodiff's gradient of a `where` is.

    The chain rule through a function of a `where` multiplies the `where`'s derivative by the
    function's: `log(where(y_pred > 0, y_pred, 0))'` is `where(c, 1, 0) / where(c, y_pred, 0)`,
    0 / 0 = NaN where c fails, and autodiff gives 0 there (found by a review).
    """
    index = next(i for i, factor in enumerate(product.args) if _selects(factor))
    rest = sp.Mul(*(factor for i, factor in enumerate(product.args) if i != index))
    return _chained(rest, product.args[index])


def _step_condition(step: sp.Basic) -> sp.Basic:
    """Where `step` is 1: `a >= b` or `a > b` for `_AtLeast` and `_Above`; for a Heaviside, `z >= 0`,
    or `z > 0` for a step that is 0 at 0, as `x >= c` or `x <= c`."""
    if isinstance(step, _Step):
        relation = sp.StrictGreaterThan if step.strict else sp.GreaterThan
        return relation(*step.args, evaluate=False)
    strict = len(step.args) > 1 and step.args[1] == 0
    constant, rest = step.args[0].as_coeff_Add()
    if rest.could_extract_minus_sign():  # c - x >= 0: x <= c
        relation = sp.StrictLessThan if strict else sp.LessThan
        return relation(-rest, constant, evaluate=False)
    relation = sp.StrictGreaterThan if strict else sp.GreaterThan
    return relation(rest, -constant, evaluate=False)


def cross_entropy_parts(
    expr: sp.Basic, aliases: dict | None = None
) -> tuple[sp.Basic, sp.Basic] | None:
    """(t, x) where `expr` is `sum(t * log_softmax(x))` over the last axis, or None (`aliases`:
    binding symbols read as the log_softmax they hold)."""
    if type(expr) is not sf.ReduceSum:
        return None
    factors = [(aliases or {}).get(f, f) for f in sp.Mul.make_args(expr.args[0])]
    logs = [f for f in factors if isinstance(f, sf.LogSoftmax)]
    if len(logs) != 1:
        return None
    return sp.Mul(*(f for f in factors if f is not logs[0])), logs[0].args[0]


def _cross_entropies(expr: sp.Basic, depends: set, logs: dict) -> sp.Basic:
    """`expr` with each `sum(t * log_softmax(x))` whose labels are free of y_pred as a `_CrossEntropySum`
    (`logs`: binding symbols that hold a log_softmax, read as it)."""
    pred = {Y_PRED, *depends}
    if not expr.has(sf.LogSoftmax, *logs):
        return expr

    def parts(node: sp.Basic):
        found = cross_entropy_parts(node, logs)
        if (
            found is None
            or found[0].free_symbols & pred
            or found[0].has(sf.TensorFunction)
        ):
            return None
        return found

    return rebuild.replaced(
        expr,
        lambda node: parts(node) is not None,
        lambda node: _CrossEntropySum(*parts(node)),
    )


def _log_softmax_bindings(definitions: dict) -> dict:
    """Binding symbol -> the log_softmax it holds, directly or through a chain of bindings."""
    logs = {}
    for symbol, value in definitions.items():
        seen = 0
        while value in definitions and seen < len(definitions):
            value, seen = definitions[value], seen + 1
        if isinstance(value, sf.LogSoftmax):
            logs[symbol] = value
    return logs


def _read_by(result: sp.Basic, bindings: list) -> list:
    """The bindings that `result` reads, directly or through others (and those without a symbol)."""
    read = live_symbols(bindings, result.free_symbols)
    return [
        (name, symbol, value)
        for name, symbol, value in bindings
        if symbol is None or symbol in read
    ]


def _total(
    expr: sp.Basic,
    derivatives: dict[sp.Basic, sp.Expr],
    wrt: sp.Symbol,
    originals: dict,
    definitions: dict,
) -> sp.Expr:
    """d expr / d wrt, where the binding symbols in `derivatives` depend on `wrt` (`originals`: as
    `_prepared`'s; `definitions`: each binding symbol's value)."""
    expr = _prepared(expr, originals)
    # `derivative.differentiated`, not `sympy.diff`: SymPy differentiates `|u|` of a `u` it cannot
    # call real (`log(y_pred)` inside) through re and im, in time that doubled with each nested abs.
    total = differentiated(expr, wrt)
    # In the bindings' order (their names may print alike: the rewrites' `shared` symbols), so
    # that the sum is built in the same order in every process.
    read = expr.free_symbols
    for symbol in [s for s in derivatives if s in read]:
        if derivatives[symbol] != 0:
            total += _chained(
                differentiated(expr, symbol),
                derivatives[symbol],
                symbol,
                definitions.get(symbol),
            )
    return total


def _chained(
    outer: sp.Expr, inner: sp.Expr, symbol: sp.Basic = None, value: sp.Basic = None
) -> sp.Expr:
    """`outer * inner` for a binding's derivative `inner`; where that is a `where` with a branch of
    0, `outer` moves into the other branches, so that the product is 0 there even where `outer` is
    infinite, as autodiff's masks make it (`a^g` with `g < 1` at a binding `a = where(c, ...,
    y_true)` of 0: `inf * 0` was NaN; found by a differential review)."""
    if _selects(inner):
        pairs = [
            (value if value == 0 else outer * value, cond) for value, cond in inner.args
        ]
        return sf.Where(*pairs, evaluate=False)
    if outer.is_Add and value is not None and not value.is_Atom and inner.has(value):
        # The binding's derivative holds its value (`mu = exp(y_pred)`, whose derivative is `mu`):
        # into each term it divides, as the binding (the chain rule's `mu * (-y_true / mu^2 + ...)`
        # for `y_true / mu` had `1 / mu^2`, inf from y_pred of about -44, inf - inf = NaN, where
        # `-y_true / mu` is finite; differential fuzzing: the Gamma deviance with a log link).
        named = inner.xreplace({value: symbol})
        if _divides(outer, named):
            return sp.Add(*(term * named for term in outer.args))
    return outer * inner


def _divides(total: sp.Add, factor: sp.Expr) -> bool:
    """Some term of `total` is divided by a power of a base that `factor` is a power of or holds."""
    bases = {
        f.base if f.is_Pow else f for f in sp.Mul.make_args(factor) if not f.is_number
    }
    return any(
        f.is_Pow and f.exp.is_negative and f.base in bases
        for term in total.args
        for f in sp.Mul.make_args(term)
    )


def _prepared(expr: sp.Basic, originals: dict) -> sp.Basic:
    """`expr` with the heads whose derivatives are written differently (`_TFRelu`, `_Power`,
    `_TieMax`, `_TieMin`, `_TieClip`); each stand-in -> the node it stands for goes into
    `originals`, so that `_restored` puts a node whose arguments are unchanged back as it was
    (rebuilding a Max or Min compares its arguments again: a tenth of the library's compile
    time). One pass, bottom up (a relu inside a relu is TensorFlow's too), each stand-in made
    from its node's prepared arguments: a Max inside a Max is not built again as a Max on the way
    (SymPy compared the arguments of each: seconds for five levels of `maximum(x, y_true)`)."""
    if not expr.has(sf.Relu, sp.Pow, sp.Max, sp.Min, sf.Clip):
        return expr

    def power(node: sp.Basic) -> bool:
        # A fractional power of a product too: SymPy's `b^a a b' / b` divides by one factor of
        # b (`1 / (y_pred y_true)` is `1 / y_pred * 1 / y_true`), 0/0 where `a b^(a - 1) b'` is 0.
        return node.is_Pow and (
            not node.exp.is_Number or node.base.is_Mul and not node.exp.is_Integer
        )

    def prepared(node: sp.Basic, args: list) -> sp.Basic:
        if type(node) is sf.Relu:
            return _TFRelu(*args)
        if power(node):
            head = _Power(*args)
        elif isinstance(node, sf.Clip):
            head = _TieClip(*args)
        elif isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
            first, second = sorted(
                args, key=sf.is_literal
            )  # as the printer orders them
            head = (_TieMax if isinstance(node, sp.Max) else _TieMin)(first, second)
        else:
            return node if rebuild.unchanged(args, node.args) else node.func(*args)
        originals.setdefault(head, node)
        return head

    return rebuild.each_rebuilt(expr, prepared)


def _restored(expr: sp.Basic, originals: dict) -> sp.Basic:
    """`expr` with the heads of `_prepared` back as SymPy's and lossdsl's own: the node each stood
    for (`originals`) where its arguments, restored, are as they were, else built anew. (A head
    inside a head: restored inner first, the outer's arguments are its original's; as `replace`
    did it, the outer was built anew, and SymPy compared the arguments of every `maximum(x,
    y_true)` of a nested program again: seconds at five levels.)"""
    heads = {_Power: sp.Pow, _TieMax: sp.Max, _TieMin: sp.Min, _TieClip: sf.Clip}

    def restored(node: sp.Basic, args: list) -> sp.Basic:
        if type(node) is _TFRelu:
            return sf.Relu(*args)
        if type(node) in heads:
            original = originals.get(node)
            if original is not None and _same_arguments(original, args):
                return original
            return heads[type(node)](*args)
        return node if rebuild.unchanged(args, node.args) else node.func(*args)

    return rebuild.each_rebuilt(expr, restored) if expr.has(_TFRelu, *heads) else expr


def _same_arguments(original: sp.Basic, args: list) -> bool:
    """`args`, restored, are `original`'s own (a Max or Min in any order: `_prepared` sorted them)."""
    if isinstance(original, (sp.Max, sp.Min)):
        return set(args) == set(original.args)
    return rebuild.unchanged(args, original.args)


def live_symbols(statements, reads: set) -> set:
    """The symbols of `statements` (`(name, symbol, value)` in order) that `reads` needs, directly or
    through other statements, with `reads` itself: `dependent_symbols` the other way round."""
    live = set(reads)
    for _, symbol, value in reversed(statements):
        if symbol in live:
            live |= value.free_symbols
    return live


_ERRORS = (Y_PRED - Y_TRUE, Y_TRUE - Y_PRED)


def through_the_error(bindings, result: sp.Basic) -> bool:
    """y_true and y_pred enter `result` and `bindings` only as `y_pred - y_true` (either way round):
    the loss is `f(y_pred - y_true)`, and its gradient with respect to y_true is that with respect
    to y_pred negated, without differentiating again."""
    stack = [result, *(value for _, _, value in bindings)]
    seen: set[sp.Basic] = set()
    while stack:
        node = stack.pop()
        if node in seen or node in _ERRORS:
            continue
        if node in (Y_PRED, Y_TRUE):
            return False
        seen.add(node)
        stack.extend(node.args)
    return True


def dependent_symbols(bindings, wrt: sp.Symbol) -> set[sp.Basic]:
    """The binding symbols whose values depend on `wrt`, directly or through other bindings."""
    found: set[sp.Basic] = {wrt}
    for _, symbol, value in bindings:
        if symbol is not None and value.free_symbols & found:
            found.add(symbol)
    found.discard(wrt)
    return found


def _diagonal(
    expr: sp.Basic, definitions: dict, depends: set, inside: bool, wrt: sp.Symbol
) -> bool:
    """No tensor function of `wrt` but `sum`/`mean`, and those not inside another reduction.

    `inside`: `expr` is already under a reduction (the implicit mean of an elementwise loss).
    """
    seen: set[tuple[sp.Basic, bool]] = set()
    stack = [(expr, inside)]
    while stack:
        node, under = stack.pop()
        if (node, under) in seen:
            continue
        seen.add((node, under))
        if node in definitions:
            stack.append((definitions[node], under))
            continue
        if isinstance(node, sf.TensorFunction) and not isinstance(node, (sf.OneHot,)):
            if _reads(node, wrt, depends):
                if under or not isinstance(node, _REDUCTIONS):
                    return False
                stack.extend((arg, True) for arg in node.args)
            continue
        stack.extend((arg, under) for arg in node.args)
    return True


def _reads(expr: sp.Basic, wrt: sp.Symbol, depends: set) -> bool:
    symbols = expr.free_symbols
    return wrt in symbols or bool(symbols & depends)


def _depth(exprs: list[sp.Basic]) -> int:
    """The nesting depth of `exprs` (binding symbols count as leaves), counted up to MAX_DEPTH + 1."""
    deepest = 0
    stack = [(expr, 1) for expr in exprs]
    seen: set[tuple[sp.Basic, int]] = set()
    while stack and deepest <= MAX_DEPTH:
        node, depth = stack.pop()
        if (node, depth) in seen:
            continue
        seen.add((node, depth))
        deepest = max(deepest, depth)
        stack.extend((arg, depth + 1) for arg in node.args)
    return deepest


def _size(exprs: list[sp.Basic]) -> int:
    """Distinct nodes in `exprs`, counted up to MAX_NODES + 1."""
    seen: set[sp.Basic] = set()
    stack = list(exprs)
    while stack and len(seen) <= MAX_NODES:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.args)
    return len(seen)
