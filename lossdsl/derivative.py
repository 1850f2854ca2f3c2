"""`derivative(expr, x)`: SymPy's derivative, built by the rules SymPy itself applies.

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

import sympy as sp
from sympy.core.function import ArgumentIndexError
from sympy.ntheory.multinomial import multinomial_coefficients_iterator

# The chain rule `f'(a) a'` as SymPy's functions and its Max and Min apply it.
_CHAIN_RULES = (sp.Function._eval_derivative, sp.Max._eval_derivative)
# Where an expression holds none of these, no factor of it is infinite (`is_finite` is False
# only for them among the values a program builds): a product with 0 is 0.
_INFINITE = (sp.S.Infinity, sp.S.NegativeInfinity, sp.S.ComplexInfinity, sp.S.NaN)


def by_chain_rule(node: sp.Basic) -> bool:
    """SymPy differentiates `node` by the chain rule, `sum_i f_i'(args) args_i'` (`fdiff`)."""
    return isinstance(node, (sp.Function, sp.Max, sp.Min)) and type(node)._eval_derivative in _CHAIN_RULES


def derivative(expr: sp.Basic, symbol: sp.Symbol) -> sp.Basic:
    """d expr / d symbol, as `sympy.diff(expr, symbol)` builds it."""
    reads: dict[sp.Basic, bool] = {}
    # One walk for the whole expression (a walk per product costs the depth times the size).
    finite = isinstance(expr, sp.Basic) and not expr.has(*_INFINITE)

    def depends(node: sp.Basic) -> bool:
        found = reads.get(node)
        if found is None:
            if node.is_Atom or type(node).free_symbols is not sp.Basic.free_symbols:
                found = symbol in node.free_symbols  # a bound variable is not free (Derivative, Lambda)
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
        if kind is sp.Mul:  # Mul._eval_derivative_n_times: the Leibniz rule, in its order
            terms = []
            for orders, coefficient in multinomial_coefficients_iterator(len(node.args), 1):
                factors = [d(arg) if order else arg for order, arg in zip(orders, node.args, strict=True)]
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
        result = result.replace(lambda x: isinstance(x, sp.Derivative), lambda x: x.canonical)
    return result
