"""Stage 3: `Resolved` -> `SymbolicLoss` (SymPy).

Each binding becomes a SymPy expression over the inputs, the parameters and
the symbols of earlier bindings; the loss is then inlined into one
expression (`core`). `core` keeps elementwise heads such as `Sigmoid` whole
for code generation; `expr` is the public form, in plain SymPy and in plain
symbols named "y_true", "y_pred" and the parameters.

Constant arithmetic is folded in Python floats, never in SymPy's exact
integers, so `10^10^10` or `exp(exp(100))` stop at once with a
`LossLimitError` instead of building a number with billions of digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from lossdsl import nodes
from lossdsl import symfuncs as sf
from lossdsl.errors import LossLimitError
from lossdsl.functions import FUNCTIONS, builder, kind_of
from lossdsl.semantics import BUILTIN_CONSTANTS, Resolved

Y_TRUE = sp.Symbol("y_true", real=True)
Y_PRED = sp.Symbol("y_pred", real=True)
_EXACT_INT = 2**53

_COMPARISONS = {"<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne}


@dataclass
class SymbolicLoss:
    """The loss in SymPy: per-binding expressions, the inlined loss, and its public forms."""

    resolved: Resolved
    params: dict[str, sp.Symbol]
    # (name, symbol, expression over earlier binding symbols); symbol is None for conditions
    bindings: list[tuple[str, sp.Symbol | None, sp.Basic]]
    result: sp.Expr
    core: sp.Expr
    # binding symbol -> its inlined expression
    substitutions: dict[sp.Symbol, sp.Basic] = field(default_factory=dict, repr=False)
    _public: dict[sp.Symbol, sp.Symbol] = field(default_factory=dict, repr=False)

    @property
    def per_sample(self) -> bool:
        """True when the loss is already one value per sample (no implicit mean)."""
        return self.resolved.per_sample

    def public(self, expr: sp.Basic) -> sp.Basic:
        """`expr` in plain symbols (no assumptions), as users build them with `sympy.Symbol(name)`."""
        if not self._public:
            self._public = {s: sp.Symbol(s.name) for s in (Y_TRUE, Y_PRED, *self.params.values())}
        # Renaming symbols changes no structure: skip SymPy's re-evaluation, which
        # costs seconds on deeply nested expressions.
        with sp.evaluate(False):
            return expr.xreplace(self._public)

    def plain(self) -> sp.Expr:
        """The inlined loss in plain SymPy, still in real symbols."""
        with sp.evaluate(False):
            return sf.plain(self.core)

    def gradient(self) -> sp.Expr:
        """d(loss)/d(y_pred) for one element, in real symbols.

        Differentiated in the core form, whose heads have closed-form
        derivatives (Sigmoid' = Sigmoid (1 - Sigmoid)), then made plain.
        """
        derivative = sp.diff(self.core, Y_PRED)
        with sp.evaluate(False):
            return sf.plain(derivative)


def to_sympy(resolved: Resolved) -> SymbolicLoss:
    """Translate a resolved program into SymPy."""
    return _Translator(resolved).run()


def node_expr(symbolic: SymbolicLoss, node: nodes.Node) -> sp.Basic:
    """The SymPy form of one node of the program, bindings inlined."""
    translator = _Translator(symbolic.resolved)
    for name, symbol, value in symbolic.bindings:
        if symbol is None:
            translator.conditions[name] = value
        else:
            translator.binding_symbols[name] = symbol
    return translator.visit(node).xreplace(symbolic.substitutions)


class _Translator:
    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        self.params = {name: sp.Symbol(name, real=True) for name in resolved.params}
        self.binding_symbols: dict[str, sp.Symbol] = {}
        self.conditions: dict[str, sp.Basic] = {}

    def run(self) -> SymbolicLoss:
        bindings = []
        for name, st in self.r.bindings.items():
            value = self.visit(st.value)
            if self.r.of(st.value).kind == "condition":
                self.conditions[name] = value
                bindings.append((name, None, value))
            else:
                symbol = sp.Dummy(name, real=True)
                self.binding_symbols[name] = symbol
                bindings.append((name, symbol, value))
        result = self.visit(self.r.result)
        inline: dict[sp.Symbol, sp.Basic] = {}
        for _, symbol, value in bindings:
            if symbol is not None:
                inline[symbol] = value.xreplace(inline)
        core = result.xreplace(inline)
        return SymbolicLoss(self.r, self.params, bindings, result, core, inline)

    def visit(self, node: nodes.Node) -> sp.Basic:
        return getattr(self, "visit_" + type(node).__name__)(node)

    def visit_Number(self, node: nodes.Number) -> sp.Expr:
        return _number(node.value, exact="." not in node.text and "e" not in node.text.lower())

    def visit_Name(self, node: nodes.Name) -> sp.Basic:
        kind, name = self.r.refs[id(node)]
        if kind == "input":
            return Y_TRUE if name == "y_true" else Y_PRED
        if kind == "param":
            return self.params[name]
        if kind == "binding":
            return self.conditions.get(name) or self.binding_symbols[name]
        if name == "e":
            return Y_TRUE - Y_PRED
        if name == "pi":
            return sp.pi
        return sp.Float(BUILTIN_CONSTANTS[name])

    def visit_Unary(self, node: nodes.Unary) -> sp.Expr:
        operand = self.visit(node.operand)
        return -operand if node.op == "-" else operand

    def visit_Chain(self, node: nodes.Chain) -> sp.Expr:
        values = [self.visit(o) for o in node.operands]
        result = values[0]
        for op, operand, value in zip(node.ops, node.operands[1:], values[1:]):
            if op == "+":
                result = result + value
            elif op == "-":
                result = result - value
            elif op == "*":
                result = result * value
            else:
                if value.is_Number and value == 0:
                    raise LossLimitError("division by the constant 0", span=operand.span)
                result = result / value
            if result.is_Number:
                result = _checked(result, node)
        return result

    def visit_Power(self, node: nodes.Power) -> sp.Expr:
        base, exponent = self.visit(node.base), self.visit(node.exponent)
        if base.is_Number and exponent.is_Number:
            return _fold(math.pow, (base, exponent), node, exact=base.is_Integer and exponent.is_Integer)
        return base**exponent

    def visit_Compare(self, node: nodes.Compare) -> sp.Basic:
        return _COMPARISONS[node.op](self.visit(node.left), self.visit(node.right))

    def visit_BoolOp(self, node: nodes.BoolOp) -> sp.Basic:
        values = [self.visit(o) for o in node.operands]
        return sp.And(*values) if node.op == "and" else sp.Or(*values)

    def visit_Not(self, node: nodes.Not) -> sp.Basic:
        return sp.Not(self.visit(node.operand))

    def visit_Vector(self, node: nodes.Vector) -> sp.Expr:
        return sf.Vector(*[self.visit(item) for item in node.items])

    def visit_Call(self, node: nodes.Call) -> sp.Basic:
        args = [self.visit(a) for a in node.args]
        n = len(args)
        fn = FUNCTIONS[node.func]
        if kind_of(node.func, n) == "elementwise" and fn.fold and all(a.is_Number for a in args):
            return _fold(fn.fold, args, node)
        return builder(node.func, n)(*args)


def _number(value: float, exact: bool = False) -> sp.Expr:
    if exact and value.is_integer() and abs(value) < _EXACT_INT:
        return sp.Integer(int(value))
    return sp.Float(value)


def _checked(value: sp.Expr, node: nodes.Node) -> sp.Expr:
    """A folded SymPy number, as long as it stays within float range."""
    try:
        as_float = float(value)
    except (OverflowError, TypeError, ValueError):
        as_float = math.inf
    if not math.isfinite(as_float):
        raise LossLimitError("this constant is too large for a float", span=node.span)
    if value.is_Integer and abs(as_float) >= _EXACT_INT:
        return sp.Float(as_float)
    return value


def _fold(function, args, node: nodes.Node, exact: bool = False) -> sp.Expr:
    """Apply `function` to numeric SymPy args in floats; LossLimitError if the result is not a finite real."""
    try:
        value = float(function(*[float(a) for a in args]))
    except OverflowError:
        raise LossLimitError("this constant overflows a float", span=node.span) from None
    except (ValueError, ZeroDivisionError):
        raise LossLimitError("this constant is not a finite real number", span=node.span) from None
    if not math.isfinite(value):
        raise LossLimitError("this constant overflows a float", span=node.span)
    return _number(value, exact=exact)
