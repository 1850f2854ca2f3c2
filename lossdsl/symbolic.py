"""Stage 3: `Resolved` -> `SymbolicLoss` (SymPy).

Each binding becomes a SymPy expression over the inputs, the parameters and
the symbols of earlier bindings; the loss is then inlined into one
expression (`core`). `core` keeps elementwise heads such as `Sigmoid` whole
for code generation; `expr` is the public form, in plain SymPy and in plain
symbols named "y_true", "y_pred" and the parameters.

Constant arithmetic is folded in Python floats, never in SymPy's exact
integers, so `10^10^10` or `exp(exp(100))` stop at once with a
`LossLimitError` instead of building a number with billions of digits. SymPy
also merges constants on its own (`10^308 * y_pred * 10` is `1e309*y_pred`,
bindings that square themselves square their coefficients): every number in
a built expression must stay within float range, or it is a `LossLimitError`
too. Sums and products are built in one step (`Add(*terms)`), which keeps a
long chain linear in its length.

SymPy's automatic simplification costs time quadratic to cubic in the depth
of what it is handed (assumption queries and `is_number` walk the whole
argument, at every level): 95 nested `1/(1 + 2*...)` took seconds. So a
sub-expression deeper than SHALLOW_DEPTH is handed on behind a stand-in
symbol (`_Translator.shallow`); every operation still evaluates, on at most
SHALLOW_DEPTH levels, and the stand-ins are put back at the end without
re-evaluation (`_reveal`). A program nested less deeply than that (every
real loss) is translated exactly as before.

Powers of sums, products or powers (to a number) may nest at most
MAX_NESTED_POWERS deep once the bindings are inlined; deeper is a
`LossLimitError` at the loss: SymPy's questions about such powers, asked by
the checks, the code and the gradient, cost more steeply with each level.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field

import sympy as sp

from lossdsl import bound_constants, construct, hyperbolic, nodes, rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.errors import LossError, LossInternalError, LossLimitError
from lossdsl.forking import hold_across_fork
from lossdsl.functions import FUNCTIONS, builder, kind_of
from lossdsl.gradient import MAX_GRADIENT_SIZE, derivative_size, element_gradient
from lossdsl.semantics import BUILTIN_CONSTANTS, MAX_TREE_SIZE, VECTOR, Resolved

# Held around every SymPy computation of a compile and of a compiled loss's outputs (pipeline.py,
# compiled.py): SymPy is not thread-safe. Its cache hands every thread the same objects, whose
# assumptions it computes lazily into a dict on each object. Compiling from four threads at once,
# Piecewise's canonicalization of the `!=` conditions of a `where` went round until the C stack
# overflowed (a segfault in the many-threads test, 1 run in 8 after the modules were touched),
# and a compile gave other code than a serial one (2 runs in 65); never in one thread. Reentrant:
# an output may compile.
SYMPY_LOCK = threading.RLock()
hold_across_fork("sympy", SYMPY_LOCK)

Y_TRUE = sp.Symbol("y_true", real=True)
Y_PRED = sp.Symbol("y_pred", real=True)
_EXACT_INT = 2**53

# Exceptions SymPy raises when it cannot build or canonicalise an expression.
_SYMPY_FAILURES = (
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    NotImplementedError,
)

_COMPARISONS = {
    "<": sp.Lt,
    "<=": sp.Le,
    ">": sp.Gt,
    ">=": sp.Ge,
    "==": sp.Eq,
    "!=": sp.Ne,
}
SHALLOW_DEPTH = 16
# Programs with more comparisons, `where`s, `max`es and `min`s than this are built without
# SymPy's simplification of them (see `decides` and `construct.deciding`).
MAX_DECIDED = 32
_SIMPLIFIED_CALLS = ("where", "max", "min", "maximum", "minimum")


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
    # id(node) -> the node's SymPy form over binding symbols and stand-ins (see `node_expr`)
    node_exprs: dict[int, sp.Basic] = field(default_factory=dict, repr=False)
    # stand-in symbol -> the deep sub-expression it stands for; binding symbol -> its inlined form with
    # stand-ins; stand-in -> its revealed, inlined form (a cache for `node_expr`)
    hidden: dict[sp.Symbol, sp.Basic] = field(default_factory=dict, repr=False)
    inline: dict[sp.Symbol, sp.Basic] = field(default_factory=dict, repr=False)
    revealed: dict[sp.Basic, sp.Basic] = field(default_factory=dict, repr=False)
    _public: dict[sp.Symbol, sp.Symbol] = field(default_factory=dict, repr=False)
    # whether SymPy simplified the comparisons, `where`s, `max`es and `min`s (see `decides`)
    decide: bool = True
    _derivative: sp.Expr | None = field(default=None, repr=False, compare=False)
    # rewrites.stable_form's (bindings, result), computed once: the checks ask whether the code's form
    # still reads y_pred, and the emitter writes it (not an init field: `dataclasses.replace` of another
    # result starts without it)
    stable: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # rewrites.reshared_stable_form's (statements, result), computed once: three checks read it
    reshared: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # rewrites.inlined_code_form's answer as a 1-tuple (it may be None), computed once: two checks read it
    inlined: tuple | None = field(default=None, init=False, repr=False, compare=False)
    # (gradient, display) -> the LaTeX written for it: the front end is cached by program text, so
    # every CompiledLoss of one program (under any class name) shares it
    latex: dict[tuple[bool, bool], str] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The modules `python_source()` wrote, by class name, description, `fast` and `xla`: kept with the analysis,
    # which the front end's cache shares among the compiles of one text, so that compiling a program
    # again and making its loss (`loss()`, `FormulaLoss`, unpickling) does not write it again (half
    # of a fresh compile's time; a review of scale).
    python_sources: dict[tuple[str, str, bool, bool], str] = field(
        default_factory=dict, repr=False, compare=False
    )
    # id(node) -> `node_expr`'s answer, computed once: the jump check asks for the node above each
    # `where` (the whole loss, for a sum of `where`s), whose bindings each ask substitutes again
    node_forms: dict[int, sp.Basic] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def per_sample(self) -> bool:
        """True when the loss is already one value per sample (no implicit mean)."""
        return self.resolved.per_sample

    def defaults(self) -> dict[sp.Symbol, float]:
        """Each parameter's symbol and its default: the values the checks take them at."""
        return {
            self.params[name]: float(value)
            for name, value in self.resolved.params.items()
        }

    def public(self, expr: sp.Basic) -> sp.Basic:
        """`expr` in plain symbols (no assumptions), as users build them with `sympy.Symbol(name)`.
        The size of the last axis stays `symfuncs.C`, but where a parameter is named `C` it is named
        `C_` (underscores added until no parameter has the name): two symbols printed alike read as
        one (`C*(2*y_pred - 2*y_true)/C`, which does not cancel)."""
        if not self._public:
            self._public = {
                s: sp.Symbol(s.name) for s in (Y_TRUE, Y_PRED, *self.params.values())
            }
            if sf.C.name in self.params:
                name = sf.C.name
                while name in self.params:
                    name += "_"
                self._public[sf.C] = sp.Symbol(name, positive=True, integer=True)
        # Renaming symbols changes no structure: skip SymPy's re-evaluation, which
        # costs seconds on deeply nested expressions.
        public = rebuild.xreplaced(rebuild.as_sympy_piecewise(expr), self._public)
        return hyperbolic.settle(public)

    def plain(self) -> sp.Expr:
        """The inlined loss in plain SymPy, still in real symbols."""
        with sp.evaluate(False):
            return rebuild.plain(self.core)

    def gradient(self) -> sp.Expr:
        """d(loss)/d(y_pred) for one element, in real symbols (for an elementwise loss, of its sum
        over the last axis: lossdsl/gradient.py).

        Differentiated in the core form, whose heads have closed-form
        derivatives (Sigmoid' = Sigmoid (1 - Sigmoid)), then made plain.
        """
        derivative = (
            self.derivative()
        )  # outside the block: differentiating must evaluate
        with sp.evaluate(False):
            return rebuild.plain(derivative)

    def derivative(self) -> sp.Expr:
        """d(core)/d(y_pred), heads kept whole; computed once (the gradient and its LaTeX both need it)."""
        if self._derivative is None:
            try:
                self._derivative = self._differentiate()
            except (
                LossLimitError
            ) as err:  # a limit found inside the gradient's code has no place
                raise err.placed(
                    self.resolved.program.result.span, self.resolved.source
                ) from None
        return self._derivative

    def _differentiate(self) -> sp.Expr:
        """d(core)/d(y_pred), or a LossLimitError where it would be too large to build."""
        # The derivative of a max or min of n arguments holds n steps, each against the max
        # of the other n - 1: about 2 n^2 operations (300 arguments: 180,000, four seconds,
        # and six more for its LaTeX). Over the operation limit, a LossLimitError at once.
        terms = sum(len(m.args) ** 2 for m in subtrees.atoms(self.core, sp.Max, sp.Min))
        if 2 * terms > MAX_TREE_SIZE:
            largest = max(
                len(m.args) for m in subtrees.atoms(self.core, sp.Max, sp.Min)
            )
            raise LossLimitError(
                f"the gradient of this loss's max or min of {largest:,} arguments would hold about"
                f" {2 * terms:,} operations; the limit is {MAX_TREE_SIZE:,}"
            )
        # Bindings used twice double the written-out derivative at each level: SymPy took
        # 7-40 s over such a chain of 12-14 (found by a fuzzing review). Estimated first.
        estimate = derivative_size(self.core, Y_PRED)
        if estimate > MAX_GRADIENT_SIZE:
            raise LossLimitError(  # placed by `derivative`
                f"the gradient of this loss would hold about {estimate:,} operations written out;"
                f" the limit is {MAX_GRADIENT_SIZE:,}"
            )
        return element_gradient(self.core, Y_TRUE, Y_PRED, self.per_sample)


# The deepest that powers of compound terms (a sum, a product or a power, to a number) may nest in a
# loss, bindings inlined: `(2 + (1 + y_pred^2)^-0.5)^-2` nests 3 deep (a division by a sum, `1 / (1
# + x)`, is one level; so is a root of one). SymPy's questions about such a power (is it 0? finite?
# positive? its real part?) take its base over a common denominator, or into real and imaginary
# parts, and ask again of each part: their cost grows steeply with each level. `max(..., y_pred^2)`
# around 16 levels of `(2 + ...)^-0.5` over exp(y_pred) took 4 s to compile, the gradient's LaTeX
# of 20 levels of `2 / (3 + ...)^2` 22 s, and `sqrt(...)` around 4 levels
# of `1 / (2 + sqrt(1 + ...))^2` over sigmoid(y_pred) (9 deep) 72 s to emit, where 3 levels took
# 0.08 s (a review of robustness). No bundled loss, test case, example or fuzzed program nests them
# more than 2 deep.
MAX_NESTED_POWERS = 8


def to_sympy(resolved: Resolved) -> SymbolicLoss:
    """Translate a resolved program into SymPy."""
    decide = decides(resolved)
    with construct.deciding(decide):
        symbolic = _Translator(resolved).run()
    symbolic.decide = decide
    nesting = powers_nesting(symbolic.core)
    if nesting > MAX_NESTED_POWERS:
        raise LossLimitError(
            f"this loss nests powers of sums, products or powers (a division by a sum, a root of one)"
            f" {nesting} deep once its bindings are substituted; the limit is {MAX_NESTED_POWERS}",
            span=resolved.program.result.span,
        )
    return symbolic


def powers_nesting(expr: sp.Basic) -> int:
    """How deep powers of sums, products or powers to a number nest in `expr` (`(1 + (2 + x)^-1)^0.5`: 2)."""

    def nesting(node: sp.Basic, below: list[int]) -> int:
        compound = (
            type(node) is sp.Pow
            and node.exp.is_Number
            and isinstance(node.base, (sp.Add, sp.Mul, sp.Pow))
        )
        return max(below, default=0) + compound

    return construct.folded_up(expr, nesting) if isinstance(expr, sp.Basic) else 0


def node_expr(symbolic: SymbolicLoss, node: nodes.Node) -> sp.Basic:
    """The SymPy form of one node of the program, bindings inlined (computed once per node)."""
    form = symbolic.node_forms.get(id(node))
    if form is None:
        form = symbolic.node_forms[id(node)] = _node_form(symbolic, node)
    return form


def _node_form(symbolic: SymbolicLoss, node: nodes.Node) -> sp.Basic:
    with construct.deciding(symbolic.decide):
        known = symbolic.node_exprs.get(id(node))
        if known is not None:
            return _reveal(known, symbolic.hidden, symbolic.inline, symbolic.revealed)
        translator = _Translator(symbolic.resolved)
        for name, symbol, value in symbolic.bindings:
            if symbol is None:
                translator.conditions[name] = value
            else:
                translator.binding_symbols[name] = symbol
        return rebuild.substitute(translator.visit(node), symbolic.substitutions)


def decides(resolved: Resolved) -> bool:
    """Whether SymPy may simplify the comparisons, `where`s, `max`es and `min`s of this program.

    Yes for up to MAX_DECIDED of them, bindings substituted (each use of a binding
    builds its value again); beyond, they are built cheaply (see `construct.deciding`).
    """
    counts: dict[str, int] = {}

    def count(root: nodes.Node) -> int:
        total = 0
        for node in nodes.walk(root):
            if isinstance(node, nodes.Compare):
                total += 1
            elif isinstance(node, nodes.Call) and node.func in _SIMPLIFIED_CALLS:
                total += 1
            elif isinstance(node, nodes.Name):
                ref = resolved.refs.get(id(node))
                if ref and ref[0] == "binding":
                    total += counts.get(ref[1], 0)
            if total > MAX_DECIDED:
                break
        return total

    for name, st in resolved.bindings.items():
        counts[name] = count(st.value)
    return count(resolved.result) <= MAX_DECIDED


class _Translator:
    def __init__(self, resolved: Resolved) -> None:
        self.r = resolved
        self.params = {name: sp.Symbol(name, real=True) for name in resolved.params}
        self.binding_symbols: dict[str, sp.Symbol] = {}
        self.conditions: dict[str, sp.Basic] = {}
        self.exprs: dict[int, sp.Basic] = {}
        self.hidden: dict[sp.Symbol, sp.Basic] = {}
        self._stand_ins: dict[sp.Basic, sp.Symbol] = {}
        self._depths: dict[sp.Basic, int] = {}
        # Bindings of constants (`a = 1e20`) in floats: a part made of numbers and them is computed
        # so, with the limits of written numbers (`sin(cosh(a))` hung SymPy, whose substitution took
        # the sine of cosh(1e20) to the precision of its argument; a review): `bound_constants`.
        self._constants: dict[sp.Symbol, float] = {}
        # Whether a binding's value holds a list (`Vector`), directly or through another binding.
        self._lists: dict[sp.Symbol, bool] = {}
        # Whether the program writes a list at all (most do not: no list's items to check)
        self._writes_lists = any(
            isinstance(node, nodes.Vector) for node in nodes.walk(resolved.program)
        )
        # Parts made of lists and numbers alone (bindings of such put in), by node, not yet within
        # a larger such part: each statement's are checked once it is built (`_check_lists`).
        self._list_parts: dict[int, tuple[nodes.Node, sp.Expr]] = {}
        self._list_values: dict[sp.Symbol, sp.Expr] = {}  # bindings of such parts

    def run(self) -> SymbolicLoss:
        shallow_bindings = []
        for name, st in self.r.bindings.items():
            value = self.visit(st.value)
            self._check_lists()
            if self.r.of(st.value).kind == "condition":
                self.conditions[name] = value
                shallow_bindings.append((name, None, value))
            else:
                symbol = sp.Dummy(name, real=True)
                self.binding_symbols[name] = symbol
                self._lists[symbol] = self._holds_list(value)
                if self._writes_lists:
                    listed = self._with_list_bindings(value)
                    if _is_list_constant(listed):
                        self._list_values[symbol] = _as_numbers(listed)
                shallow_bindings.append((name, symbol, value))
                with contextlib.suppress(
                    bound_constants.NotFinite
                ):  # (its node has said so)
                    if (number := self.constant_value(value)) is not None:
                        self._constants[symbol] = number
        shallow_result = self.visit(self.r.result)
        self._check_lists()
        inline: dict[sp.Symbol, sp.Basic] = {}
        for (_, symbol, value), st in zip(
            shallow_bindings, self.r.bindings.values(), strict=True
        ):
            if symbol is not None:
                inline[symbol] = self.shallow(
                    _guarded(lambda v=value: rebuild.substitute(v, inline), st.value)
                )
        # Put the stand-ins back: in the bindings as written, and in the inlined forms.
        as_written: dict[sp.Symbol, sp.Basic] = {}
        # (Guarded: folding a condition on the way may meet a limit, which then has its place.)
        bindings = [
            (
                n,
                sym,
                _guarded(lambda v=v: _reveal(v, self.hidden, {}, as_written), st.value),
            )
            for (n, sym, v), st in zip(
                shallow_bindings, self.r.bindings.values(), strict=True
            )
        ]
        result = _guarded(
            lambda: _reveal(shallow_result, self.hidden, {}, as_written), self.r.result
        )
        revealed: dict[sp.Basic, sp.Basic] = {}
        checked = _Checked()
        substitutions: dict[sp.Symbol, sp.Basic] = {}
        for (_, symbol, _), st in zip(
            shallow_bindings, self.r.bindings.values(), strict=True
        ):
            if symbol is not None:
                value = _guarded(
                    lambda s=symbol: _reveal(inline[s], self.hidden, inline, revealed),
                    st.value,
                )
                substitutions[symbol] = _finite_inside(value, st.value, checked)
                # Later bindings hold this one's inlined form: reveal it once.
                revealed[inline[symbol]] = value
        core = _guarded(
            lambda: _reveal(shallow_result, self.hidden, inline, revealed),
            self.r.result,
        )
        core = _finite_inside(core, self.r.result, checked)
        return SymbolicLoss(
            self.r,
            self.params,
            bindings,
            result,
            core,
            substitutions,
            node_exprs=self.exprs,
            hidden=self.hidden,
            inline=inline,
            revealed=revealed,
        )

    def _never_real_part(self, node: nodes.Node) -> nodes.Node | None:
        """The innermost part below `node` whose value SymPy holds as not real (`_never_real`), read
        from the values already made; None where there is none."""
        stack = [(child, False) for child in reversed(node.children)]
        while stack:  # post-order: a part's own parts first
            part, seen = stack.pop()
            if not seen:
                stack.append((part, True))
                stack.extend((child, False) for child in reversed(part.children))
                continue
            value = self.exprs.get(id(part))
            if isinstance(value, sp.Expr) and _never_real(value):
                return part
        return None

    def visit(self, node: nodes.Node) -> sp.Basic:
        try:
            value = getattr(self, "visit_" + type(node).__name__)(node)
        except LossError as err:
            if (
                err.line is None and err.span is None
            ):  # raised below the nodes: this one is its place
                raise type(err)(err.message, span=node.span) from None
            raise
        except _SYMPY_FAILURES as err:
            # A part that is never real (`log(-where(y_pred > 1, 2, 1))`, `(-exp(y_pred))^(1/3)`)
            # under a function that compares it (`relu`, `maximum`, `sign`, a condition): SymPy
            # refuses the comparison ("not comparable"); the error is the part's, where it is made.
            unreal = self._never_real_part(node)
            if unreal is not None:
                raise LossLimitError(_NEVER_REAL, span=unreal.span) from None
            # SymPy gave up on this node (e.g. a Piecewise whose condition holds another
            # where over a constant vector): a gap to report, never a crash.
            raise LossInternalError(
                f"lossdsl cannot represent this part in SymPy ({type(err).__name__}: {err});"
                " this is a gap in lossdsl, not necessarily a mistake in the program",
                span=node.span,
            ) from None
        self.exprs[id(node)] = value
        self.fold_through_bindings(node, value)
        if self._writes_lists:
            self._note_list_part(node, value)
        return self.shallow(value)

    def _with_list_bindings(self, value: sp.Basic) -> sp.Basic:
        """`value` with the bindings of parts made of lists and numbers alone put in (unevaluated)."""
        if not self._list_values or not isinstance(value, sp.Basic):
            return value
        return rebuild.xreplaced(value, self._list_values)

    def _check_list_divisors(
        self, divisors: list[tuple[nodes.Node, sp.Expr]], result: sp.Expr
    ) -> None:
        """A LossLimitError at the first of a chain's divisors that is made of lists and numbers alone
        (bindings of such put in) with an item 0, as for a single 0: `[1, 2] / [3, 0] * e` and
        `e^2 / [3, 0]` were only warned of, where `([1, 2] / [3, 0]) * e` was this error. Not where
        the chain as a whole is made of lists and numbers: the check of such parts says so once per
        statement (`_check_lists`), at the chain (asked at each divisor, a quotient of quotients 97
        deep of a list of 4,500 items took 7 s; a review)."""
        if _is_list_constant(self._with_list_bindings(result)):
            return
        for operand, value in divisors:
            value = self._with_list_bindings(value)
            if not _is_item_by_item(value):
                continue
            item = _zero_item(value)
            if item is not None:
                raise LossLimitError(
                    f"division by the constant 0 (item {item} of the list)",
                    span=operand.span,
                )

    def _note_list_part(self, node: nodes.Node, value: sp.Basic) -> None:
        """Keep `node` as a part to check where its value is made of lists and numbers alone; the
        parts it holds are then within it, and checked with it."""
        value = self._with_list_bindings(value)
        if not _is_item_by_item(value):
            return
        for child in node.children:
            self._list_parts.pop(id(child), None)
        self._list_parts[id(node)] = (node, value)

    def _check_lists(self) -> None:
        """Check the largest parts made of lists and numbers alone of the statement just built (each
        item of each, once: checked at every node, a list of 4,000 numbers under 190 functions took
        seconds; a review)."""
        parts, self._list_parts = self._list_parts, {}
        for node, value in parts.values():
            _check_constant_list(node, value)

    def fold_through_bindings(self, node: nodes.Node, value: sp.Basic) -> None:
        """A LossLimitError at `node` where its value, made of numbers and bindings of constants, is
        past float's range, not a real number or a division by 0 in floats, as for written numbers
        (numbers alone were judged where they were folded)."""
        if (
            not self._constants
            or not isinstance(value, sp.Expr)
            or not value.free_symbols
        ):
            return
        try:
            self.constant_value(value)
        except bound_constants.NotFinite as err:
            raise LossLimitError(_BOUND_NOT_FINITE[err.kind], span=node.span) from None

    def constant_value(self, value: sp.Basic) -> float | None:
        """`value` in floats where it is made of numbers and bindings of constants, else None.

        Raises:
            bound_constants.NotFinite: where that value is not a finite real number.
        """
        if (
            not isinstance(value, sp.Expr)
            or not value.free_symbols <= self._constants.keys()
        ):
            return None
        try:
            return bound_constants.value_of(value, self._constants)
        except bound_constants.Unknown:
            return None

    def _bound_constant(self, value: sp.Basic) -> float | None:
        """`constant_value(value)` of a value that reads bindings of constants, None for any other
        (or one that is not finite: its own node says so)."""
        if not self._constants or not value.free_symbols:
            return None
        try:
            return self.constant_value(value)
        except bound_constants.NotFinite:
            return None

    def depth(self, expr: sp.Basic) -> int:
        """The depth of a SymPy expression (stand-ins count 0), memoized; no recursion."""
        depths = self._depths
        stack = [(expr, False)]
        while stack:
            current, ready = stack.pop()
            if current in depths:
                continue
            if not current.args:
                depths[current] = 0
            elif ready:
                depths[current] = 1 + max(depths[a] for a in current.args)
            else:
                stack.append((current, True))
                stack.extend((a, False) for a in current.args if a not in depths)
        return depths[expr]

    def shallow(self, expr: sp.Basic) -> sp.Basic:
        """`expr`, or a stand-in symbol for it when it is deeper than SHALLOW_DEPTH (the same one each time)."""
        if (
            not isinstance(expr, sp.Expr)
            or not expr.args
            or self.depth(expr) <= SHALLOW_DEPTH
        ):
            return expr
        stand_in = self._stand_ins.get(expr)
        if stand_in is None:
            stand_in = sp.Dummy("deep", real=True)
            self._stand_ins[expr] = stand_in
            self.hidden[stand_in] = expr
        return stand_in

    def visit_Number(self, node: nodes.Number) -> sp.Expr:
        return _number(
            node.value, exact="." not in node.text and "e" not in node.text.lower()
        )

    def visit_Name(self, node: nodes.Name) -> sp.Basic:
        kind, name = self.r.refs[id(node)]
        if kind == "input":
            return Y_TRUE if name == "y_true" else Y_PRED
        if kind == "param":
            return self.params[name]
        if kind == "binding":
            # A condition binding stands for its (inlined) relational; `or` would ask for its truth value.
            return (
                self.conditions[name]
                if name in self.conditions
                else self.binding_symbols[name]
            )
        if name == "e":
            return Y_TRUE - Y_PRED
        if name == "pi":
            return sp.pi
        return sp.Float(BUILTIN_CONSTANTS[name])

    def visit_Unary(self, node: nodes.Unary) -> sp.Expr:
        operand = self.visit(node.operand)
        return _finite(-operand, node) if node.op == "-" else operand

    def visit_Chain(self, node: nodes.Chain) -> sp.Expr:
        values = [self.visit(o) for o in node.operands]
        parts = [values[0]]
        divisors: list[tuple[nodes.Node, sp.Expr]] = []
        for op, operand, value in zip(
            node.ops, node.operands[1:], values[1:], strict=True
        ):
            if op == "+" or op == "*":
                parts.append(value)
            elif op == "-":
                parts.append(-value)
            else:
                if (
                    value.is_Number and value.is_zero
                ):  # `Float(0.0) == 0` is False in SymPy
                    raise LossLimitError(
                        "division by the constant 0", span=operand.span
                    )
                if self._bound_constant(value) == 0:
                    # `a = 0` then `y_pred / a`: at the divisor, as `1 / a` has it (the loss as a
                    # whole was "not a finite number"; a review of the language)
                    raise LossLimitError(
                        _BOUND_NOT_FINITE["division by 0"], span=operand.span
                    )
                if self._writes_lists:
                    divisors.append((operand, value))
                parts.append(1 / value)
        result = sp.Add(*parts) if node.kind == "add" else sp.Mul(*parts)
        if divisors:
            self._check_list_divisors(divisors, result)
        if node.kind == "mul" and self._constants and result.free_symbols:
            # The factors of bound constants that SymPy gathered (`a = 1e200` then `e^2*a*a`, whose
            # `a^2` overflows), judged as a constant node is (`fold_through_bindings`).
            gathered = [
                f
                for f in sp.Mul.make_args(result)
                if f.free_symbols and f.free_symbols <= self._constants.keys()
            ]
            try:
                self.constant_value(sp.Mul(*gathered))
            except bound_constants.NotFinite as err:
                raise LossLimitError(
                    _BOUND_NOT_FINITE[err.kind], span=node.span
                ) from None
        return _finite(result, node)

    def visit_Power(self, node: nodes.Power) -> sp.Expr:
        base, exponent = self.visit(node.base), self.visit(node.exponent)
        if _is_constant_expression(base) and _is_constant_expression(exponent):
            folded = _constant_power(
                base, exponent, node, exact=base.is_Integer and exponent.is_Integer
            )
            if base.is_Number and exponent.is_Number:
                return folded
        if exponent.is_Number and exponent.is_zero:
            # `y_pred^0.0` (or `^1e-400`, 0 once read) is 1, as `y_pred^0` is: SymPy keeps a
            # Float exponent of 0 unevaluated, and the loss seemed to depend on y_pred.
            return sp.Integer(1)
        return _finite(base ** _inexact(exponent), node)

    def visit_Compare(self, node: nodes.Compare) -> sp.Basic:
        return construct.relation(
            _COMPARISONS[node.op], self.visit(node.left), self.visit(node.right)
        )

    def visit_BoolOp(self, node: nodes.BoolOp) -> sp.Basic:
        values = [self.visit(o) for o in node.operands]
        return sp.And(*values) if node.op == "and" else sp.Or(*values)

    def visit_Not(self, node: nodes.Not) -> sp.Basic:
        return construct.negation(self.visit(node.operand))

    def visit_Vector(self, node: nodes.Vector) -> sp.Expr:
        return sf.Vector(*[self.visit(item) for item in node.items])

    def visit_Call(self, node: nodes.Call) -> sp.Basic:
        args = [self.visit(a) for a in node.args]
        n = len(args)
        fn = FUNCTIONS[node.func]
        if node.func == "pow" and n == 2 and all(a.is_number for a in args):
            return _constant_power(
                *args, node
            )  # as `a^b` is (a Float, no `pi` kept: as pow() folded)
        if (
            kind_of(node.func, n) == "elementwise"
            and fn.fold
            and all(a.is_number for a in args)
        ):
            return _fold(fn.fold, args, node)
        if node.func == "pow" and n == 2:
            args[1] = _inexact(args[1])
        if kind_of(node.func, n) in ("reduction", "vector") and (
            length := self._same_items(node.args[0], args[0])
        ):
            return _finite(_OF_SAME_ITEMS[builder(node.func, n)](args[0], length), node)
        return _finite(builder(node.func, n)(*args), node)

    def _holds_list(self, value: sp.Basic) -> bool:
        # (one walk, each shared part once: a binding's value may be large)
        found = subtrees.atoms(value, sf.Vector, sp.Dummy)
        return any(
            isinstance(part, sf.Vector) or self._lists.get(part, False)
            for part in found
        )

    def _same_items(self, node: nodes.Node, value: sp.Basic) -> int | None:
        """The length of the list `node` where its value is the same in every item (a number, or a
        constant expression of parameters), which SymPy then holds as that one value (`[1, 2, 3] *
        0` is 0); else None."""
        info = self.r.of(node)
        if (
            info.shape != VECTOR
            or not info.length
            or not isinstance(value, sp.Expr)
            or self._holds_list(value)
        ):
            return None
        return info.length


# A reduction or vector function over a list of n items that are all the value c, which SymPy holds
# as c alone: of c itself, it would read the length of y_pred's last axis (`sum([1, 2, 3] * 0 + 1)`
# was that length, not 3; `logsumexp([1, 2, 3] - [1, 2, 3])` its log, not log 3).
_OF_SAME_ITEMS = {
    sf.ReduceSum: lambda c, n: n * c,
    sf.ReduceMean: lambda c, n: c,
    sf.ReduceMax: lambda c, n: c,
    sf.ReduceMin: lambda c, n: c,
    sf.LogSumExp: lambda c, n: c + sp.Float(math.log(n)),
    sf.Softmax: lambda c, n: sp.Float(1 / n),
    sf.LogSoftmax: lambda c, n: sp.Float(-math.log(n)),
    sf.Normalize: lambda c, n: sf.Normalize(sf.Vector(*[c] * n)),
}

_BOUND = "once its bindings' values are put in"
_BOUND_NOT_FINITE = {
    "overflow": f"this constant overflows a float {_BOUND}",
    "not real": f"this constant is not a finite real number {_BOUND}",
    "division by 0": f"division by the constant 0 {_BOUND}",
}


_LIST_NOT_FINITE = {
    "overflow": "this constant overflows a float",
    "not real": "this constant is not a finite real number",
    "division by 0": "division by the constant 0",
}


def _is_list_constant(value: sp.Basic) -> bool:
    """`value` is made of lists and numbers alone."""
    return (
        isinstance(value, sp.Expr)
        and not subtrees.free_symbols(value)
        and bool(subtrees.atoms(value, sf.Vector))
    )


def _is_item_by_item(value: sp.Basic) -> bool:
    """`value` is made of lists and numbers alone, and computed item by item (no reduction or
    vector function in it): each item's value is a number of its own."""
    return _is_list_constant(value) and not subtrees.atoms(value, sf.TensorFunction)


def _check_constant_list(node: nodes.Node, value: sp.Basic) -> None:
    """A LossLimitError at `node` where its value is a function of lists of numbers alone and one
    of its items is not a finite float, as for a single number (`log(0)`): `log([1, 0, 2])` was
    -inf in every sample, `1 / [0, 1]` inf, with only the domain check's warning (a review of bad
    input). A list of numbers alone was folded where it was written. (Its caller has made sure
    that `value` is made of lists and numbers alone.)"""
    if isinstance(value, sf.Vector):
        return
    try:
        for _ in _item_values(value):
            pass
    except bound_constants.NotFinite as err:
        raise LossLimitError(
            f"{_LIST_NOT_FINITE[err.kind]} (item {err.item} of the list)",
            span=node.span,
        ) from None
    except bound_constants.Unknown:
        return


def _as_numbers(value: sp.Expr) -> sp.Expr:
    """`value`, made of lists and numbers alone, as one list of its items' floats, where each is a
    finite float; else as it is. (A binding's list, put into each later statement as its items: put
    in as its expression, each statement's check computed every binding before it again, 98
    bindings `a_k = 1 / a_(k-1)` of 100 items took 6 s.)"""
    if isinstance(value, sf.Vector):
        return value
    try:
        items = [sp.Float(number) for _, number in _item_values(value)]
    except (bound_constants.NotFinite, bound_constants.Unknown):
        return value
    return sf.Vector(*items) if items else value


def _zero_item(value: sp.Basic) -> int | None:
    """The first item (counted from 1) at which `value`, made of lists and numbers alone, is
    exactly 0 in floats; None where none is, or where an item cannot be computed (the list check
    says why, at the part that cannot)."""
    try:
        for item, number in _item_values(value):
            if number == 0:
                return item
    except (bound_constants.NotFinite, bound_constants.Unknown):
        return None
    return None


def _item_values(value: sp.Basic):
    """(item, its float) for each item of `value`, made of lists and numbers alone, counted from 1;
    none for lists of different lengths (the semantics stage's error). `NotFinite`, with the item
    on it as `item`, where an item's is not a finite float; `Unknown` where it cannot be computed."""
    lists = subtrees.atoms(value, sf.Vector)
    length = max(len(v.args) for v in lists)
    if any(len(v.args) not in (1, length) for v in lists):
        return
    for item in range(length):
        # (each item put in without evaluation: SymPy makes `log(0)` zoo, unknown to value_of)
        items = {v: v.args[min(item, len(v.args) - 1)] for v in lists}
        try:
            number = bound_constants.value_of(rebuild.xreplaced(value, items), {})
        except bound_constants.NotFinite as err:
            err.item = item + 1
            raise
        yield item + 1, number


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
    _not_too_small(value, node)
    if value.is_Integer and abs(as_float) >= _EXACT_INT:
        return sp.Float(as_float)
    return value


def _reveal(
    expr: sp.Basic,
    hidden: dict[sp.Symbol, sp.Basic],
    inline: dict[sp.Symbol, sp.Basic],
    cache: dict[sp.Basic, sp.Basic],
) -> sp.Basic:
    """`expr` with the bindings in `inline` substituted and every stand-in in it put back.

    The substitution of bindings evaluates (all its parts are shallow); putting
    stand-ins back does not (each part was evaluated when it was built), and
    does not clear SymPy's cache either (`rebuild.xreplaced`). `cache` holds the
    stand-ins (and other parts) already put back for this `inline`.
    """
    if inline:
        expr = rebuild.substitute(expr, inline)
    todo = [s for s in subtrees.atoms(expr, sp.Dummy) if s in hidden and s not in cache]
    while todo:
        stand_in = todo[-1]
        if stand_in in cache:
            todo.pop()
            continue
        value = rebuild.substitute(hidden[stand_in], inline)
        missing = [
            s for s in subtrees.atoms(value, sp.Dummy) if s in hidden and s not in cache
        ]
        if missing:
            todo.extend(missing)
            continue
        cache[stand_in] = rebuild.xreplaced(value, cache)
        todo.pop()
    return rebuild.xreplaced(expr, cache)


_NOT_FINITE = (
    "a constant in this expression is not a finite number once its bindings are substituted"
    " (too large for a float, or a division by 0)"
)


def _never_real(value: sp.Expr) -> bool:
    """Whether SymPy holds `value` as not real: it holds `I` or is known not real, or, through a
    `where` (`log(-where(y_pred > 1, 2, 1))`), each of its branches is so folded out."""
    if value.has(sp.I) or value.is_extended_real is False:
        return True
    if not value.has(sp.Piecewise) or len(subtrees.atoms(value, sp.Piecewise)) > 4:
        return False
    try:
        folded = sp.piecewise_fold(value)
    except _SYMPY_FAILURES:
        return False
    branches = (
        [piece.expr for piece in folded.args]
        if isinstance(folded, sp.Piecewise)
        else [folded]
    )
    return all(
        branch.has(sp.I) or branch.is_extended_real is False for branch in branches
    )


_NEVER_REAL = (
    "this expression is not a real number for any input: a logarithm, root or fractional power of a"
    " value that is never positive, or an arcsin or arccos of one beyond 1"
)


_TOO_SMALL = (
    "the numbers of this expression multiply out to {number}, too small for a float (it would be 0):"
    " SymPy multiplies a product's numbers together, and takes a power of a product factor by factor"
)


def _unreal(number: sp.Expr) -> str:
    """The message for a constant that is not real (SymPy writes `sqrt(-x)` of an `x` it knows is
    positive, `sum(exp(y_pred))` say, as `I sqrt(x)`; "too large for a float" said otherwise: a
    review), or "" for another."""
    if (
        number.is_extended_real is not False
        or number.is_finite is False
        or number.has(sp.zoo, sp.nan)
    ):
        return ""  # real, or a division by 0 (`1/0` is zoo, complex infinity)
    return (
        "this expression is not a real number for any input: it takes a root or a fractional power of"
        " a value that is never positive"
    )


def _shown(number: sp.Expr) -> str:
    """A constant as a message shows it: `1.0e-360`."""
    return sp.sstr(sp.Float(number, 2)) if number.is_Number else sp.sstr(number)[:60]


def _guarded(substitute, node: nodes.Node) -> sp.Basic:
    """`substitute()`, where SymPy's own errors on a constant that is not finite become a LossLimitError.

    (Substituting `a = y_pred - y_pred` into `max(1/a, y_pred)` makes `zoo`,
    which `Max` refuses with a ValueError and a comparison with a TypeError.)
    """
    try:
        return substitute()
    except LossError as err:
        if err.line is None and err.span is None:
            raise type(err)(err.message, span=node.span) from None
        raise
    except construct.Unsettled as err:
        raise LossInternalError(
            f"lossdsl cannot represent this part in SymPy: {err}", span=node.span
        ) from None
    except (TypeError, ValueError, ArithmeticError):
        raise LossLimitError(_NOT_FINITE, span=node.span) from None


def _is_constant(expr: sp.Basic) -> bool:
    """A number, or a constant such as pi, zoo or nan."""
    return expr.is_Atom and expr.is_number


def _is_finite(number: sp.Expr) -> bool:
    try:
        return math.isfinite(float(number))
    except (OverflowError, TypeError, ValueError):
        return False


def _not_too_small(number: sp.Expr, node: nodes.Node) -> None:
    """A LossLimitError at `node` for a constant that is not 0 but is 0 as a float: SymPy multiplies
    `(y_pred / 1000)^120` out to `1.0e-360 * y_pred^120`, which the code would print as `0.0 *
    y_pred^120` (found by fuzzing)."""
    try:
        underflows = float(number) == 0 and number.is_zero is False
    except (OverflowError, TypeError, ValueError):
        return
    if underflows:
        raise LossLimitError(_TOO_SMALL.format(number=_shown(number)), span=node.span)


def _finite(expr: sp.Basic, node: nodes.Node) -> sp.Basic:
    """`expr`, once the numbers SymPy merged at its top (coefficients, exponents) are within float range.

    Only the top level is looked at: the operands were checked when they were built.
    """
    if expr.is_Number:
        return _checked(expr, node)
    for term in sp.Add.make_args(expr):
        for factor in sp.Mul.make_args(term):
            number = factor.exp if factor.is_Pow else factor
            if _is_constant(number):
                if not _is_finite(number):
                    raise LossLimitError(
                        _unreal(number) or "this constant is too large for a float",
                        span=node.span,
                    )
                _not_too_small(number, node)
    return expr


def _is_constant_expression(expr: sp.Basic) -> bool:
    """A number or an expression of numbers and constants such as pi (not a tensor of them)."""
    return isinstance(expr, sp.Expr) and bool(expr.is_number)


@dataclass
class _Checked:
    """What `_finite_inside` has seen: constness of every sub-expression, and the constant parts found finite."""

    constant: dict[sp.Basic, bool] = field(default_factory=dict)
    finite: set[sp.Basic] = field(default_factory=set)


def _finite_inside(expr: sp.Basic, node: nodes.Node, checked: _Checked) -> sp.Basic:
    """`expr` (bindings inlined), once every number in it, and every constant part of it, is a finite real.

    A constant part is a largest sub-expression without symbols (`1.0e+308*pi`,
    `pi**4140`, `exp(100*pi**2)`): the Keras printer writes each one as a single
    float, so each must be one. Constness is found bottom-up in one pass (SymPy's
    `is_number` would walk the tree again at every level) and remembered in
    `checked` with the parts found finite, so checking a chain of bindings costs
    the size of the result, not the sum of the sizes.
    """
    constant = checked.constant
    new: list[sp.Basic] = []
    stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
    while stack:
        current, ready = stack.pop()
        if current in constant:
            continue
        if current.is_Atom:
            constant[current] = bool(current.is_number)
            new.append(current)
        elif not ready:
            stack.append((current, True))
            stack.extend((a, False) for a in current.args if a not in constant)
        else:
            constant[current] = (
                isinstance(current, sp.Expr)
                and not isinstance(current, (sf.TensorFunction, sf.Vector))
                and all(constant[a] for a in current.args)
            )
            new.append(current)
    parts = [expr] if constant[expr] else []
    for current in new:
        if current.is_Atom:
            if constant[current]:
                parts.append(current)
        elif not constant[current]:
            parts += [a for a in current.args if constant[a]]
    for part in parts:
        if part not in checked.finite:
            if not _is_finite(part):
                raise LossLimitError(_unreal(part) or _NOT_FINITE, span=node.span)
            _not_too_small(part, node)
            checked.finite.add(part)
    return expr


# A whole or fractional exponent past this is a Float: SymPy raises a number exactly to a power of
# a Rational, and takes a power of a product factor by factor (`(2 sigmoid(x))^10000000000`, in a
# binding too, computed 2^10000000000 for 50 s before the error "too large"; a review), where a
# Float's power is an arbitrary-precision float, past float's range at once.
MAX_EXACT_EXPONENT = 1024


def _inexact(exponent: sp.Expr) -> sp.Expr:
    """`exponent`, a Float where it is a Rational past MAX_EXACT_EXPONENT."""
    if exponent.is_Rational and abs(exponent) > MAX_EXACT_EXPONENT:
        return sp.Float(exponent)
    return exponent


def _constant_power(
    base: sp.Expr, exponent: sp.Expr, node: nodes.Node, exact: bool = False
) -> sp.Expr:
    """`base^exponent` of constants folded in floats, where it must be a finite real and not 0 as a
    float where it is not 0 (`pi^4140`, `(pi - 4)^0.5` are rejected; `2^-1080` was 0 silently, and
    `pi^-1000`, which SymPy keeps exact, was rejected at the expression holding it, with a message
    about products; fuzzing). The caller keeps `pi^2` exact."""
    folded = _fold(math.pow, (base, exponent), node, exact=exact)
    if folded.is_zero and base.is_zero is False:
        shown = _shown_power(base, exponent)
        raise LossLimitError(
            f"this constant, {shown}, is too small for a float (it would be 0)",
            span=node.span,
        )
    return folded


def _shown_power(base: sp.Expr, exponent: sp.Expr) -> str:
    """`base^exponent` as a message shows it: its value to two digits (`7.7e-326`) where both are
    numbers, taken in arbitrary-precision floats (`base**exponent` of an integer or a fraction is
    exact: `2^-123456789012`, the size of a small program, ran out of memory; a review), or the
    power as written where that value would be longer than the power, or where it is not a number
    (`pi**(-1000)`)."""
    power = sp.Pow(base, exponent, evaluate=False)
    if not (base.is_Number and exponent.is_Number):
        return sp.sstr(power)[:60]
    value = _shown(power.evalf(2))
    if len(value) <= 24:
        return value
    # each number with all its digits (SymPy's 15 made `0.9999999999999999^1e300` read `1.0**1.0e+300`)
    base_text, exponent_text = (
        repr(float(x)) if x.is_Float else sp.sstr(x) for x in (base, exponent)
    )
    if "-" in base_text or "/" in base_text:
        base_text = f"({base_text})"
    if "/" in exponent_text:
        exponent_text = f"({exponent_text})"
    return f"{base_text}^{exponent_text}"[:60]


def _fold(function, args, node: nodes.Node, exact: bool = False) -> sp.Expr:
    """Apply `function` to numeric SymPy args in floats; LossLimitError if the result is not a finite real."""
    try:
        value = float(function(*[float(a) for a in args]))
    except OverflowError:
        raise LossLimitError(
            "this constant overflows a float", span=node.span
        ) from None
    except (ValueError, ZeroDivisionError, TypeError):
        raise LossLimitError(
            "this constant is not a finite real number", span=node.span
        ) from None
    if not math.isfinite(value):
        raise LossLimitError("this constant overflows a float", span=node.span)
    return _number(value, exact=exact)
