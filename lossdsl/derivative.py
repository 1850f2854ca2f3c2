"""Differentiation: `derivative(expr, x)`, SymPy's derivative built by the rules SymPy itself
applies, and `differentiated(expr, x)`, which takes it through stand-ins where SymPy's own is
slow or wrong (a Max or Min of many arguments, an Abs, steps, `0^u`, long chains; see the
section comment below `derivative`).

`sympy.diff` enters `Derivative.__new__` at every node of the expression: it sympifies and
checks its variables, asks whether each partial result is zero (an assumption query over the
whole subtree) and walks each partial result again looking for unevaluated derivatives. That
overhead was half the time spent differentiating the library's fused gradients: 60 ms of a
pass over the library that took about 270 ms, 31 ms through this module (2026-12-01).

Here sums, products, powers and functions differentiated by the chain rule are taken by the
same rules SymPy's own methods apply (`Add`, `Pow` and `Function._eval_derivative`, and for a
product `Mul._eval_derivative_n_times`, the Leibniz rule, each term one `Mul` of all the
factors), written out so that the recursion stays here (each subtree is visited once per
rule, not re-entered through `Derivative`); any other node (Piecewise, Abs, a class with a
derivative of its own) goes to `sympy.diff`. The
result is the expression `sympy.diff` builds, node for node: the rules call the same
constructors on the same arguments in the same order.
"""

from __future__ import annotations

import itertools

import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.ntheory.multinomial import multinomial_coefficients_iterator

from lossdsl import subtrees
from lossdsl.rebuild import swapped, with_inert_non_real
from lossdsl.symfuncs import step

# The chain rule `f'(a) a'` as SymPy's functions and its Max and Min apply it.
_CHAIN_RULES = (sp.Function._eval_derivative, sp.Max._eval_derivative)
# Where an expression holds none of these, no factor of it is infinite (`is_finite` is False
# only for them among the values a program builds): a product with 0 is 0.
_INFINITE = (sp.S.Infinity, sp.S.NegativeInfinity, sp.S.ComplexInfinity, sp.S.NaN)


def by_chain_rule(node: sp.Basic) -> bool:
    """SymPy differentiates `node` by the chain rule, `sum_i f_i'(args) args_i'` (`fdiff`)."""
    return (
        isinstance(node, (sp.Function, sp.Max, sp.Min))
        and type(node)._eval_derivative in _CHAIN_RULES
    )


def derivative(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic:
    """d expr / d symbol, as `sympy.diff(expr, symbol)` builds it."""
    reads: dict[sp.Basic, bool] = {}
    # One walk for the whole expression (a walk per product costs the depth times the size).
    finite = isinstance(expr, sp.Basic) and not expr.has(*_INFINITE)

    def depends(node: sp.Basic) -> bool:
        found = reads.get(node)
        if found is None:
            if node.is_Atom or type(node).free_symbols is not sp.Basic.free_symbols:
                found = (
                    symbol in node.free_symbols
                )  # a bound variable is not free (Derivative, Lambda)
            else:
                found = any(depends(arg) for arg in node.args)
            reads[node] = found
        return found

    def d(node: sp.Basic) -> sp.Basic:
        # Derivative's own quick exits: 0 for what does not read the symbol, 1 for the symbol.
        if not depends(node):
            return sp.Integer(0)
        if node == symbol:
            return sp.Integer(1)
        kind = type(node)
        if kind is sp.Add:  # Add._eval_derivative
            return sp.Add(*[d(arg) for arg in node.args])
        if (
            kind is sp.Mul
        ):  # Mul._eval_derivative_n_times: the Leibniz rule, in its order
            terms = []
            for orders, coefficient in multinomial_coefficients_iterator(
                len(node.args), 1
            ):
                factors = [
                    d(arg) if order else arg
                    for order, arg in zip(orders, node.args, strict=True)
                ]
                if finite and any(f is sp.S.Zero for f in factors):
                    continue  # 0 times finite factors: SymPy's product asks each factor whether it is finite
                terms.append(coefficient * sp.Mul(*factors))
            return sp.Add(*terms)
        if kind is sp.Pow:  # Pow._eval_derivative
            base, exponent = node.args
            d_exponent = d(exponent)
            if d_exponent is sp.S.Zero and finite and base.is_zero is not True:
                # 0 * log(base) is 0 for a base that is not 0, where log(base) is finite: SymPy builds
                # the logarithm (its evaluation asks about the base) and asks the product whether it is.
                return node * (d(base) * exponent / base)
            return node * (d_exponent * sp.log(base) + d(base) * exponent / base)
        if (
            kind is sp.Abs and node.args[0].is_extended_real
        ):  # Abs._eval_derivative, for a real argument
            # (taken here: SymPy's own takes the conjugate of the argument and differentiates it
            # again with its own rules, at every level of nested `abs`: seconds for 16 levels)
            (argument,) = node.args
            return d(argument) * sp.sign(argument)
        if by_chain_rule(node):
            terms = []
            for i, arg in enumerate(node.args, 1):
                darg = d(arg)
                if darg.is_zero:
                    continue
                try:
                    outer = node.fdiff(i)
                except ArgumentIndexError:
                    outer = sp.Function.fdiff(node, i)
                terms.append(outer * darg)
            return sp.Add(*terms)
        return sp.diff(node, symbol)

    if not isinstance(expr, sp.Basic) or not isinstance(symbol, sp.Symbol):
        return sp.diff(expr, symbol)
    try:
        result = d(expr)
    finally:
        # `d` and `depends` reach themselves through their closure: a cycle that would keep `reads`
        # (every node of the expression) until the garbage collector runs. Cleared, it is freed now.
        d = depends = None
    if result.has(sp.Derivative):  # as Derivative leaves what it could not take
        result = result.replace(
            lambda x: isinstance(x, sp.Derivative), lambda x: x.canonical
        )
    return result


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
    cls: type(cls.__name__, (cls,), {"_eval_derivative": _zero_derivative})
    for cls in (sp.floor, sp.ceiling, sp.sign)
}
_STEPS = tuple(_FLAT_STEPS)
_DIFFERENTIABLE = {
    sp.Max: _ArgumentsMax,
    sp.Min: _ArgumentsMin,
    sp.Abs: _RealAbs,
    **_FLAT_STEPS,
}
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
        result = with_inert_non_real(lambda e: _diff(e, symbol), expr)
        while stand_ins and result.has(
            _Chain
        ):  # a chain inside another's argument: once per level
            result = result.xreplace(stand_ins)
    finally:
        for stand_in in stand_ins:
            _CHAIN_LINKS.pop(int(stand_in.args[1]), None)
    return result


def _diff(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic:
    """`sympy.diff`, through the stand-ins of `_DIFFERENTIABLE` where `_stand_in_differentiates`,
    and of `_ZeroPower`."""
    zero_powers = {
        p: _ZeroPower(p.exp)
        for p in subtrees.atoms(expr, sp.Pow)
        if not p.exp.is_number and p.base.is_zero
    }
    if zero_powers:
        result = _diff(expr.xreplace(zero_powers), symbol)
        return result.xreplace(
            {stand_in: power for power, stand_in in zero_powers.items()}
        )
    found = subtrees.atoms(expr, sp.Max, sp.Min, sp.Abs, *_STEPS)
    if not any(_stand_in_differentiates(m) for m in found):
        return derivative(expr, symbol)
    return swapped(derivative(swapped(expr, _DIFFERENTIABLE), symbol), _ORIGINAL)


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
        return sp.Mul(
            *(_link_derivative(link) for link in _CHAIN_LINKS[int(self.args[1])])
        )


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
    found: dict[
        sp.Basic, tuple[list[sp.Basic], sp.Basic]
    ] = {}  # chain -> its links, its argument
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
