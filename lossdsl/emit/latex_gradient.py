"""The gradient's LaTeX: `SymbolicLoss` -> `\\frac{\\partial L}{\\partial \\hat{y}} = ...`.

Input: a resolved program (for the name policy and the error's source) and
its SymPy form, whose `derivative()` is printed (the loss's elementwise heads
kept whole). Output: one LaTeX string, printed by SymPy's `LatexPrinter`
(which orders terms its own way) through `GradientPrinter`, with the loss's
names and notation: `Piecewise` prints as `cases` (display) or `[a if c else
b]` (inline, mathtext-safe). Before printing, `tidy` writes integral floats
as integers and takes common factors out of sums (below TIDY_LIMIT nodes), and
`shield_powers` keeps symbolic powers whole (`ExpOf`, `PowerOf`) so that SymPy
does not simplify their exponents.

Limits: a gradient that would write out more than semantics.MAX_TREE_SIZE
operations raises `LossLimitError`; `latex.emit_latex` turns a
`RecursionError` into one.
"""

from __future__ import annotations

import itertools
import math
import re

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from lossdsl import construct, hyperbolic, rebuild
from lossdsl import symfuncs as sf
from lossdsl.emit.tex_names import NamePolicy
from lossdsl.emit.tex_notation import (
    FUNCTION_LIKE,
    GRADIENT_LHS,
    NAMED_FUNCTIONS,
    REDUCTIONS,
    SUMMED_GRADIENT_LHS,
    VECTOR_FUNCTIONS,
    Y_HAT_TEX,
    Y_TEX,
    number_tex,
    paren,
    reduction_index,
    sigmoid_tex,
)
from lossdsl.errors import LossLimitError
from lossdsl.gradient import sums_the_axis
from lossdsl.semantics import BUILTIN_CONSTANTS, MAX_TREE_SIZE, Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss

# The builtin eps, for printing: the derivative holds its value (1e-7, and 0.9999999 for `1 - eps`),
# which reads as `\epsilon` again where the loss's LaTeX writes it so.
EPS = sp.Symbol("eps_builtin", positive=True)
EPS_FLOAT = BUILTIN_CONSTANTS["eps"]
# ... and where a user's name is `\epsilon`, as its value, `10^{-7}`, as the loss's LaTeX writes it
# there (`1 + 10^{-7}`, not `1.0000001`; a review).
EPS_VALUE = sp.Symbol("eps_builtin_value", positive=True)


_NUMBER_BEFORE_FRACTION = re.compile(r"(\d) \\frac")
_FACTOR_MARK = " \x00"
_MARK_BEFORE_NUMBER = re.compile(_FACTOR_MARK + r"(?=[\d.])")
# ... and a thin space between upright words, as the loss's `juxtapose` writes them: `\mathrm{aa}
# \mathrm{bb}` rendered as one word, aabb, beside a parameter `aabb` (a review of the LaTeX).
# (Before parentheses, the `\cdot` of a name that reads as a function, below.)
_MARK_BY_WORD = re.compile(
    r"(\\mathrm\{[^{}]*\})"
    + _FACTOR_MARK
    + r"(?!\\left\()|"
    + _FACTOR_MARK
    + r"(?=\\mathrm\{)"
)


class GradientPrinter(LatexPrinter):
    """SymPy's LaTeX printer with lossdsl's names and functions.

    Inputs and parameters print as in the loss; the tensor functions of
    `symfuncs` print as in the loss; `Piecewise` prints as `cases` (display)
    or `[a if c else b]` (inline); sums put positive terms first.
    """

    def __init__(
        self, policy: NamePolicy, params: dict[str, sp.Symbol], *, display: bool
    ) -> None:
        names = {
            Y_TRUE: Y_TEX,
            Y_PRED: Y_HAT_TEX,
            EPS: r"\epsilon",
            EPS_VALUE: number_tex(repr(EPS_FLOAT)).text,
        }
        names.update(
            {symbol: policy.names[name].tex() for name, symbol in params.items()}
        )
        # (`\mathrm{i}` for SymPy's imaginary unit: a parameter `i` prints as `i`; a review)
        super().__init__(
            {"symbol_names": names, "inv_trig_style": "full", "imaginary_unit": "ri"}
        )
        # Factors are joined by a mark that `_print_Mul` reads as the loss's `juxtapose` does: a
        # `\cdot` before a digit (SymPy's own rule wants a digit before it too: `\hat{y}_{c} 3^{x}`
        # read as a subscript c3; a review). A space before it, so that SymPy counts the words of
        # a fraction's parts as it would count them joined by spaces.
        self._settings["mul_symbol_latex"] = _FACTOR_MARK
        self.display = display
        self.sigmoid = sigmoid_tex(policy.claims(r"\sigma"))
        # (`\operatorname{step}` where a name prints as H as well: `H \theta \operatorname{H}`
        # read as one letter twice; a LaTeX review)
        self.heaviside = (
            r"\theta"
            if not policy.claims(r"\theta")
            else r"\operatorname{step}"
            if policy.claims("H")
            else r"\operatorname{H}"
        )
        self.dirac = r"\delta_{\mathrm{D}}" if policy.claims(r"\delta") else r"\delta"
        self.taken = set(names.values())
        # names that read as a function before parentheses (`\sigma \left(x\right)`): a `\cdot` there
        names_like = sorted(
            (t for t in self.taken if FUNCTION_LIKE.fullmatch(t)), key=len, reverse=True
        )
        self.function_like = (
            re.compile(
                "("
                + "|".join(map(re.escape, names_like))
                + r")((?:\^\{[^{}]*\})?) \\left\("
            )
            if names_like
            else None
        )
        self.index: str | None = None
        self.depth = 0

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        # A reduction, a derivative or `\log\operatorname{softmax}` runs to the right: `(\sum_{c} x) y`,
        # not `\sum_{c} x y`.
        if not last and isinstance(
            expr, (*sf.REDUCTIONS, sf.LogSoftmax, sp.Derivative, sp.Subs)
        ):
            return True
        if isinstance(expr, sp.Piecewise) and not self.display:
            return False  # `[a if c else b]` is closed
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_Mul(self, expr):
        # `-\left(a + b\right)` with stretchy parentheses (SymPy writes `- (a + b)`).
        if expr.could_extract_minus_sign() and (-expr).is_Add:
            return "-" + paren(self._print(-expr))
        text = super()._print_Mul(expr)
        text = _MARK_BEFORE_NUMBER.sub(r" \\cdot ", text)
        text = _MARK_BY_WORD.sub(lambda m: (m.group(1) or "") + r"\,", text).replace(
            _FACTOR_MARK, " "
        )
        # A number before a fraction takes a `\cdot`, as in the loss (`juxtapose`): `2
        # \frac{1}{C}\sum_{c}` read as the mixed number two and 1/C (a review).
        text = _NUMBER_BEFORE_FRACTION.sub(r"\1 \\cdot \\frac", text)
        if self.function_like is not None:
            text = self.function_like.sub(
                lambda m: m.group(1) + m.group(2) + r" \cdot \left(", text
            )
        return text

    def _print_Add(self, expr, order=None):
        # As SymPy's, with a `cases` block that more terms follow in parentheses: `\end{cases} + 1`
        # read as part of its last row (the loss's printer did so already; a review).
        tex = ""
        terms = self._as_ordered_terms(expr, order=order)
        for i, term in enumerate(terms):
            if i and term.could_extract_minus_sign():
                tex, term = tex + " - ", -term
            elif i:
                tex += " + "
            term_tex = self._print(term)
            if self._needs_add_brackets(term) or (
                i < len(terms) - 1 and term_tex.endswith(r"\end{cases}")
            ):
                term_tex = paren(term_tex)
            tex += term_tex
        return tex

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        # Leading positive terms read better: `y - \hat{y}`, not `- \hat{y} + y`.
        return sorted(terms, key=lambda t: t.could_extract_minus_sign())

    def _print_Symbol(self, expr, style="plain"):
        text = super()._print_Symbol(expr, style)
        if self.index and expr in (Y_TRUE, Y_PRED):
            return f"{text}_{{{self.index}}}"
        return text

    def _print_Piecewise(self, expr, exp=None):
        pairs = list(expr.args)
        # A Piecewise in the `otherwise` branch continues the same list of cases.
        while pairs[-1].cond == sp.true and isinstance(pairs[-1].expr, sp.Piecewise):
            pairs[-1:] = pairs[-1].expr.args
        rows = [(self._print(e), self._print(c)) for e, c in pairs]
        *conditional, (last_value, last_cond) = rows
        last_cond_true = pairs[-1].cond == sp.true
        if self.display:
            lines = [f"{v} & \\text{{if }} {c}" for v, c in conditional]
            lines.append(
                f"{last_value} & "
                + (
                    "\\text{otherwise}"
                    if last_cond_true
                    else f"\\text{{if }} {last_cond}"
                )
            )
            cases = "\\begin{cases}\n" + " \\\\\n".join(lines) + "\n\\end{cases}"
            return self._power(
                cases, exp, closed=False
            )  # a power of a `where` (symfuncs.Where)
        chain = "".join(
            rf"{v} \;\mathrm{{if}}\; {c} \;\mathrm{{else}}\; " for v, c in conditional
        )
        tail = (
            last_value
            if last_cond_true
            else rf"{last_value} \;\mathrm{{if}}\; {last_cond}"
        )
        return self._power(r"\left[" + chain + tail + r"\right]", exp)

    def _print_NegatedOrdering(self, expr):
        # `not (a < b)` kept (symfuncs): SymPy's `\neg a < b` reads as a comparison of `\neg a`
        return rf"\neg \left({self._print(expr.args[0])}\right)"

    def _print_ITE(self, expr):
        # SymPy folds a `where` inside a condition into `ITE(c, a, b)`: `(c \wedge a) \vee (\neg c
        # \wedge b)`, which prints c twice. Where c holds another ITE that doubles at each level
        # (2^n copies: a 600-character program took 30 s to print 4 MB; found by a review), so
        # such an ITE prints as a `where` does inline, `[a if c else b]`, c once.
        cond, then, other = expr.args
        if not cond.has(sp.ITE):
            return self._print(sp.Or(sp.And(cond, then), sp.And(sp.Not(cond), other)))
        once = {  # a branch that is True or False: c once, in a plain and/or
            (sp.false, None): lambda: sp.And(sp.Not(cond), other),
            (sp.true, None): lambda: sp.Or(cond, other),
            (None, sp.false): lambda: sp.And(cond, then),
            (None, sp.true): lambda: sp.Or(sp.Not(cond), then),
        }
        for (a, b), form in once.items():
            if (a is None or then == a) and (b is None or other == b):
                return self._print(form())
        cond, then, other = (self._print(arg) for arg in (cond, then, other))
        return (
            rf"\left[{then} \;\mathrm{{if}}\; {cond} \;\mathrm{{else}}\; {other}\right]"
        )

    def _print_Heaviside(self, expr, exp=None):
        # A step with its own value at 0 (1: a `max` over the last axis, whose argument is never
        # above 0) as the condition it tests, `[x \geq 0]`: `\theta` is 1/2 there (a review).
        x, *at_zero = expr.args
        if at_zero and at_zero[0] in (0, 1):
            relation = r" \geq 0" if at_zero[0] == 1 else " > 0"
            return self._power(r"\left[" + self._print(x) + relation + r"\right]", exp)
        return self._power(self.heaviside + paren(self._print(x)), exp)

    def _print_DiracDelta(self, expr, exp=None):
        return self._power(self.dirac + paren(self._print(expr.args[0])), exp)

    def _print_sign(self, expr, exp=None):
        return self._power(
            NAMED_FUNCTIONS["sign"] + paren(self._print(expr.args[0])), exp
        )

    @staticmethod
    def _power(tex: str, exp, *, closed: bool = True) -> str:
        """`tex` raised to `exp` (SymPy passes the exponent of a function's power); open forms get parentheses."""
        if exp is None:
            return tex
        return (tex if closed else paren(tex)) + "^{" + str(exp) + "}"

    def _dummy(self) -> str:
        """The name of a `Subs` point: the first of u, v, s, t, \\xi, u', u'', ... that nothing else prints as."""
        primed = ("u" + "'" * k for k in itertools.count(1))
        return next(
            n
            for n in itertools.chain(("u", "v", "s", "t", r"\xi"), primed)
            if n not in self.taken
        )

    def _print_Subs(self, subs):
        expr, old, new = subs.args
        dummy = self._dummy()
        fresh = {o: sp.Symbol(f"lossdsl_dummy_{i}") for i, o in enumerate(old)}
        self._settings["symbol_names"].update({s: dummy for s in fresh.values()})
        body = self._print(expr.xreplace(fresh))
        points = ", ".join(f"{dummy} = {self._print(n)}" for n in new)
        return r"\left. " + body + r" \right|_{" + points + "}"

    def _reduce(self, name: str, expr, closed: bool = False) -> str:
        index = reduction_index(self.depth)
        saved = self.index
        self.index, self.depth = index, self.depth + 1
        operand = expr.args[0]
        try:
            arg = self._print(operand)
        finally:
            self.index, self.depth = saved, self.depth - 1
        if not closed and (
            operand.is_Add
            or operand.could_extract_minus_sign()
            or isinstance(operand, sp.Piecewise)
        ):
            arg = paren(arg)
        return REDUCTIONS[name] % index + (paren(arg) if closed else " " + arg)

    def _print_reduction(self, name: str, expr, exp, closed: bool = False) -> str:
        return self._power(self._reduce(name, expr, closed), exp, closed=False)

    def _print_ReduceSum(self, expr, exp=None):
        return self._print_reduction("sum", expr, exp)

    def _print_ReduceMean(self, expr, exp=None):
        return self._print_reduction("mean", expr, exp)

    def _print_ReduceMax(self, expr, exp=None):
        return self._print_reduction("max", expr, exp)

    def _print_ReduceMin(self, expr, exp=None):
        return self._print_reduction("min", expr, exp)

    def _print_LogSumExp(self, expr, exp=None):
        return self._print_reduction("logsumexp", expr, exp, closed=True)

    def _vector(self, name: str, expr, exp=None) -> str:
        index, self.index = self.index, None
        try:
            text = VECTOR_FUNCTIONS[name] + paren(
                ", ".join(self._print(a) for a in expr.args)
            )
        finally:
            self.index = index
        if index:
            text += f"_{{{index}}}"
        return self._power(text, exp, closed=name != "log_softmax")

    def _print_Softmax(self, expr, exp=None):
        return self._vector("softmax", expr, exp)

    def _print_LogSoftmax(self, expr, exp=None):
        return self._vector("log_softmax", expr, exp)

    def _print_Normalize(self, expr, exp=None):
        return self._vector("normalize", expr, exp)

    def _print_OneHot(self, expr, exp=None):
        return self._vector("onehot", expr, exp)

    def _print_Vector(self, expr, exp=None):
        index, self.index = self.index, None
        try:
            text = r"\left[" + ", ".join(self._print(a) for a in expr.args) + r"\right]"
        finally:
            self.index = index
        return self._power(text + (f"_{{{index}}}" if index else ""), exp)

    def _print_Round(self, expr, exp=None):
        return self._power(
            NAMED_FUNCTIONS["round"] + paren(self._print(expr.args[0])), exp
        )

    # ---- the elementwise heads the loss keeps whole (their derivatives are heads too)

    def _named(self, name: str, expr, exp=None) -> str:
        return self._power(
            name + paren(", ".join(self._print(a) for a in expr.args)), exp
        )

    def _print_Sigmoid(self, expr, exp=None):
        return self._named(self.sigmoid, expr, exp)

    def _print_Softplus(self, expr, exp=None):
        return self._named(NAMED_FUNCTIONS["softplus"], expr, exp)

    def _print_Relu(self, expr, exp=None):
        return self._named(NAMED_FUNCTIONS["relu"], expr, exp)

    def _print_Clip(self, expr, exp=None):
        return self._named(NAMED_FUNCTIONS["clip"], expr, exp)

    def _print_Log1p(self, expr, exp=None):
        x = expr.args[0]
        if x.is_Add or (-x).is_Add:
            # One sum: `1 + (1 - \hat{y})` is `2 - \hat{y}`, `1 + -(a + b)` is `1 - a - b`.
            inner = self._print(1 + x if x.is_Add else 1 - (-x))
        elif x.could_extract_minus_sign():
            inner = "1 - " + self.parenthesize(-x, PRECEDENCE["Add"])
        else:
            inner = "1 + " + self._print(x)
        return self._power(r"\log" + paren(inner), exp)

    def _print_Expm1(self, expr, exp=None):
        return self._power(paren(self._print(sp.exp(expr.args[0])) + " - 1"), exp)

    def _print_Float(self, expr):
        value = float(expr)
        if not math.isfinite(value):
            return super()._print_Float(expr)
        # As the loss prints numbers: `10^{-7}`, not `1.0 \cdot 10^{-7}`.
        return ("-" if value < 0 else "") + number_tex(f"{abs(value):.15g}").text

    def _print_ExpOf(self, expr, exp=None):
        return self._power(
            self._print(sp.exp(expr.args[0], evaluate=False)), exp, closed=False
        )

    def _print_PowerOf(self, expr, exp=None):
        return self._power(
            self._print(sp.Pow(*expr.args, evaluate=False)), exp, closed=False
        )

    def _print_Pow(self, expr, *args, **kwargs):
        if expr.base.is_Float:
            # (a plain decimal needs no brackets, `0.5^{\hat{y}}`; a negative one or one written
            # `10^{-3}` or with `\times` does; a LaTeX review)
            base = self._print(expr.base)
            base = base if re.fullmatch(r"[0-9.]+", base) else paren(base)
            return base + "^{" + self._print(expr.exp) + "}"
        return super()._print_Pow(expr, *args, **kwargs)


class ExpOf(sp.Function):
    """`exp(z)` with a symbolic `z`, kept whole for printing (see `shield_powers`)."""

    nargs = 1


class PowerOf(sp.Function):
    """`b^z` with a symbolic exponent `z`, kept whole for printing (see `shield_powers`)."""

    nargs = 2


def shield_powers(expr: sp.Basic) -> sp.Basic:
    """`expr` with symbolic powers as inert heads that print the same.

    SymPy's `LatexPrinter._print_Mul` asks `fraction(..., exact=True)` where
    each factor goes, and for a power with a negative symbolic exponent that
    runs `is_constant()`, which simplifies the exponent: with a large constant
    inside (`exp(-cosh(10^7 / (y - \\hat{y}))^2)`, the derivative of
    `erf(cosh(...))`) that never ends. Such a factor prints in the numerator
    (`e^{-z}`) either way, so nothing changes but the time.
    """

    def shielded(expr: sp.Basic) -> sp.Basic:
        expr = expr.replace(
            lambda e: isinstance(e, sp.exp) and not e.args[0].is_number,
            lambda e: ExpOf(e.args[0]),
        )
        return expr.replace(
            lambda e: e.is_Pow and not e.exp.is_number, lambda e: PowerOf(e.base, e.exp)
        )

    return rebuild.with_inert_steps(
        lambda e: rebuild.with_inert_minmax(shielded, e), expr
    )


# Past this many nodes the gradient is printed as SymPy gives it (factoring costs time).
TIDY_LIMIT = 2_000


def tidy(expr: sp.Basic) -> sp.Basic:
    """The gradient in a form that reads better, with the same value.

    Floats with integer values become integers (`1.0 \\hat{y}` -> `\\hat{y}`), and
    common factors come out of sums (`2 \\hat{y} - 2 y` -> `2 (\\hat{y} - y)`).
    """
    # Max and Min pass through as inert stand-ins: factored, each was rebuilt with evaluation, which
    # compares every pair of its arguments (a `max` of 20 terms with square roots: 20 s).
    return rebuild.with_inert_steps(
        lambda e: rebuild.with_inert_minmax(_tidied, e), expr
    )


def _tidied(expr: sp.Basic) -> sp.Basic:
    expr = _whole_floats(
        _sums_for_scaled_means(
            _sum_coefficients(_power_quotients(_tanh_quotients(expr)))
        )
    )
    if sum(1 for _ in sp.preorder_traversal(expr)) <= TIDY_LIMIT:
        try:
            # (and whole floats again: factoring makes them, `0.5 * (2 x - 2 y)` -> `1.0 (x - y)`)
            expr = _whole_floats(sp.factor_terms(expr))
        except (TypeError, ValueError):
            # SymPy rebuilds what it factors with evaluation, and refuses to compare a value it
            # knows is not real: `maximum(log(-exp(y_pred)), 3 y_pred)`'s steps, or `(-1 -
            # y_pred^2)^0.5` once factored as `I (1 + y_pred^2)^0.5`. Printed as it is.
            pass
    return expr


def _tanh_quotients(expr: sp.Basic) -> sp.Basic:
    """`sinh(x)^k / cosh(x)^k` in a product as `tanh(x)^k`: the gradient of the log-cosh loss read
    `\\frac{\\sinh(\\hat{y} - y)}{\\cosh(\\hat{y} - y)}` (a LaTeX review)."""
    if not expr.has(hyperbolic.sinh) or not expr.has(hyperbolic.cosh):
        return expr

    def merged(product: sp.Mul) -> sp.Basic:
        factors = list(product.args)
        for factor in product.args:
            base, k = factor.as_base_exp()
            quotient = (
                hyperbolic.cosh(base.args[0]) ** -k
                if isinstance(base, hyperbolic.sinh)
                else None
            )
            if quotient is not None and quotient in factors and factor in factors:
                factors.remove(factor)
                factors.remove(quotient)
                factors.append(hyperbolic.tanh(base.args[0]) ** k)
        return sp.Mul(*factors)

    return expr.replace(
        lambda e: isinstance(e, sp.Mul) and e.has(hyperbolic.sinh), merged
    )


def _sum_coefficients(expr: sp.Basic) -> sp.Basic:
    """A number that multiplies what a sum or mean over the last axis reads, before it: `\\sum_{c}
    2 x_{c}` as `2 \\sum_{c} x_{c}`, and the categorical cross-entropy's `- \\sum_{c} \\left(-
    \\frac{...}{...}\\right)` as `+ \\sum_{c} \\frac{...}{...}` (a LaTeX review)."""

    def scaled(e: sp.Basic) -> bool:
        return (
            isinstance(e, (sf.ReduceSum, sf.ReduceMean))
            and e.args[0].as_coeff_Mul()[0] != 1
        )

    def pulled(e: sp.Basic) -> sp.Basic:
        coefficient, rest = e.args[0].as_coeff_Mul()
        return coefficient * type(e)(rest)

    return (
        expr.replace(scaled, pulled) if expr.has(sf.ReduceSum, sf.ReduceMean) else expr
    )


def _power_quotients(expr: sp.Basic) -> sp.Basic:
    """`b^k / b^n` in a product, k symbolic and n a whole number, as `b^{k - n}`: the derivative of
    `y_pred^k` read `\\frac{k \\hat{y}^{k}}{\\hat{y}}`, and a focal loss's `(1 - p)^{\\gamma}` over
    `1 - p` (a LaTeX review)."""

    def merged(product: sp.Mul) -> sp.Basic:
        factors = list(product.args)
        symbolic = {}
        for i, factor in enumerate(factors):
            base, k = factor.as_base_exp()
            if not k.is_number:
                symbolic.setdefault(base, i)
        for j, factor in enumerate(factors):
            base, n = factor.as_base_exp()
            if base in symbolic and n.is_Integer and n < 0:
                i = symbolic[base]
                factors[i] = sp.Pow(base, factors[i].as_base_exp()[1] + n)
                factors[j] = sp.Integer(1)
        return sp.Mul(*factors)

    def has_pair(e: sp.Basic) -> bool:
        if not isinstance(e, sp.Mul):
            return False
        bases = [f.as_base_exp() for f in e.args]
        symbolic = {b for b, k in bases if not k.is_number}
        return any(b in symbolic and k.is_Integer and k < 0 for b, k in bases)

    return expr.replace(has_pair, merged)


def _sums_for_scaled_means(expr: sp.Basic) -> sp.Basic:
    """`C^k mean(x)^k` as `sum(x)^k` in a product: the gradient of `log(mean(exp(x)))` read
    `\\frac{e^{x}}{C \\frac{1}{C}\\sum_{c} e^{x_c}}`."""
    if not expr.has(sf.C) or not expr.has(sf.ReduceMean):
        return expr

    def powers(e: sp.Mul) -> tuple[sp.Basic | None, sp.Basic | None]:
        """(the factor that is a power of C, one that is the same power of a mean), or Nones."""
        scale = next((a for a in e.args if a.as_base_exp()[0] == sf.C), None)
        if scale is None:
            return None, None
        k = scale.as_base_exp()[1]
        mean = next(
            (
                a
                for a in e.args
                if isinstance(a.as_base_exp()[0], sf.ReduceMean)
                and a.as_base_exp()[1] == k
            ),
            None,
        )
        return (scale, mean) if mean is not None else (None, None)

    def as_sum(e: sp.Mul) -> sp.Basic:
        scale, mean = powers(e)
        base, k = mean.as_base_exp()
        rest = [a for a in e.args if a is not scale and a is not mean]
        return sp.Mul(*rest, sp.Pow(sf.ReduceSum(*base.args), k))

    return expr.replace(
        lambda e: isinstance(e, sp.Mul) and powers(e)[0] is not None, as_sum
    )


def _whole_floats(expr: sp.Basic) -> sp.Basic:
    """`expr` with each float of an integer value as that integer (`1.0 x` -> `x`)."""
    floats = {
        f: sp.Integer(int(f))
        for f in expr.atoms(sp.Float)
        if float(f).is_integer() and abs(f) < 2**53
    }
    return expr.xreplace(floats) if floats else expr


def eps_named(expr: sp.Expr, name: sp.Symbol = EPS) -> sp.Expr:
    r"""`expr` with the builtin eps's value as `EPS` (`10^{-7}` -> `\epsilon`, `0.9999999` -> `1 -
    \epsilon`, `1.0000001` -> `1 + \epsilon`, as the loss's LaTeX writes them; a new-user trial
    found a focal loss's gradient unreadable in numbers). For printing only: a literal `1e-7`
    reads as `\epsilon` too, the same value, in a program that reads the builtin eps. With `name`
    `EPS_VALUE` (a user's name is `\epsilon`), `1 - 10^{-7}` for `0.9999999`."""
    eps = EPS_FLOAT
    forms = {
        1 - eps: 1 - name,
        eps - 1: name - 1,
        1 + eps: 1 + name,
        -1 - eps: -1 - name,
    }
    if name is EPS:
        forms.update(
            {eps: name, -eps: -name}
        )  # (as a value, eps prints as `10^{-7}` already)
    floats = {f: forms[float(f)] for f in expr.atoms(sp.Float) if float(f) in forms}
    return expr.xreplace(floats) if floats else expr


def gradient_latex(resolved: Resolved, symbolic: SymbolicLoss, *, display: bool) -> str:
    """`\\frac{\\partial L}{\\partial \\hat{y}} = ...` for one element.

    The derivative is taken of the loss with its elementwise heads kept whole
    (`SymbolicLoss.core`), so it reads `\\sigma(\\hat{y}) (1 - \\sigma(\\hat{y}))`
    rather than in exponentials; it equals `SymbolicLoss.gradient()`.
    """
    gradient = symbolic.derivative()
    size = construct.tree_size(gradient)
    if size > MAX_TREE_SIZE:
        # The derivative shares its parts; printed, each is written out where it is used (the
        # chain `a{k} = tanh(a{k-1}) * a{k-1}`, 13 links: 9 MB of LaTeX in 28 s; found by a review).
        raise LossLimitError(
            f"the gradient's LaTeX would write out {size:,} operations; the limit is {MAX_TREE_SIZE:,}",
            span=resolved.program.result.span,
            source=resolved.source,
        )
    gradient = shield_powers(tidy(gradient))
    policy = NamePolicy(resolved)
    if ("builtin", "eps") in resolved.refs.values():
        gradient = eps_named(gradient, EPS_VALUE if policy.claims(r"\epsilon") else EPS)
    printer = GradientPrinter(policy, symbolic.params, display=display)
    text = printer.doprint(gradient)
    # SymPy writes `\left(x \right)`; drop the space before `\right`.
    text = text.replace(r" \right", r"\right")
    summed = sums_the_axis(symbolic.core, Y_PRED, symbolic.per_sample)
    return f"{SUMMED_GRADIENT_LHS if summed else GRADIENT_LHS} = {text}"
