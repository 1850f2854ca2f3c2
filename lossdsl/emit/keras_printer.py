"""Stage 5 (Keras), the printer: SymPy expressions as `keras.ops` calls.

SymPy's `Printer`, dispatching `_print_<Class>` along the MRO, one method per
node kind, with one table (`KERAS_OPS`) from SymPy class to `keras.ops` name.
It is strict: a node it does not know raises `KerasEmitError`; no expression
is ever turned into code through `str()`. What it prints goes into the
statements `call_body.CallBody` lays out: a child too long for its line moves
to a temporary there.
"""

from __future__ import annotations

import math
import struct
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import sympy as sp
from sympy.printing.printer import Printer

from lossdsl import hyperbolic
from lossdsl import symfuncs as sf
from lossdsl.construct import power
from lossdsl.emit.fused import scales_exactly
from lossdsl.emit.plan import (
    AXIS_FUNCTIONS,
    CONST,
    DROPPED,
    ELEM,
    KEPT,
    SAMPLE,
    Local,
    _OrientedAbs,
    _OrientedSign,
    _SoftmaxCrossEntropy,
    e_oriented,
    has_negative_coefficient,
    repeated_divisor,
)
from lossdsl.emit.pytext import (
    PREC_ADD,
    PREC_ATOM,
    PREC_MUL,
    PREC_UNARY,
    Code,
    exact_in_float32,
    float_literal,
    is_name,
    is_number_text,
    is_short,
    wrap,
)
from lossdsl.errors import KerasEmitError
from lossdsl.rewrites import equals_number
from lossdsl.symbolic import Y_PRED, Y_TRUE

if TYPE_CHECKING:
    from lossdsl.emit.call_body import CallBody


def _count_power(expr: sp.Expr) -> int | None:
    """k where `expr` is `C^-k`, C the size of the last axis (the gradient of `mean`), else None."""
    if expr.is_Pow and expr.base == sf.C and expr.exp.is_Integer and expr.exp < 0:
        return int(-expr.exp)
    return None


# One table: SymPy class -> keras.ops function.
KERAS_OPS: dict[type, str] = {
    sp.Abs: "abs",
    sp.exp: "exp",
    sp.log: "log",
    sf.Log1p: "log1p",
    sf.Expm1: "expm1",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    hyperbolic.sinh: "sinh",
    hyperbolic.cosh: "cosh",
    hyperbolic.tanh: "tanh",
    sp.asin: "arcsin",
    sp.acos: "arccos",
    sp.atan: "arctan",
    sp.erf: "erf",
    sf.Sigmoid: "sigmoid",
    # keras.ops.softplus is the stable log(1 + exp(x)) on every backend.
    sf.Softplus: "softplus",
    sf.Relu: "relu",
    sf.Clip: "clip",
    sp.sign: "sign",
    sp.floor: "floor",
    sp.ceiling: "ceil",
    sf.Round: "round",
    sp.Max: "maximum",
    sp.Min: "minimum",
    sf.ReduceSum: "sum",
    sf.ReduceMean: "mean",
    sf.ReduceMax: "max",
    sf.ReduceMin: "min",
    sf.LogSumExp: "logsumexp",
    sf.Softmax: "softmax",
    sf.LogSoftmax: "log_softmax",
    sf.Normalize: "normalize",
    sp.StrictLessThan: "less",
    sp.LessThan: "less_equal",
    sp.StrictGreaterThan: "greater",
    sp.GreaterThan: "greater_equal",
    sp.Equality: "equal",
    sp.Unequality: "not_equal",
    sf.SelfEqual: "equal",
    sf.SelfUnequal: "not_equal",
    sp.And: "logical_and",
    sp.Or: "logical_or",
    sp.Not: "logical_not",
    sf.NegatedOrdering: "logical_not",
    sp.Xor: "logical_xor",
    # SymPy turns a comparison with a piecewise operand into ITE(condition, then, else).
    sp.ITE: "where",
}
# Functions with more than two arguments in SymPy but two in keras.ops: nested.
_BINARY_FOLDS = (sp.Max, sp.Min, sp.And, sp.Or)


def common_coefficient(expr: sp.Add) -> sp.Number | None:
    """The coefficient every term of `expr` has, up to its sign, where it is not 1 or a power of 2;
    else None.

    SymPy distributes a number over a sum (`2/3 (y_pred - y_true)` is `2 y_pred/3 - 2 y_true/3`),
    and the code computed it so: two roundings where one will do, and under XLA a fused multiply-add
    whose result is not 0 where y_pred equals y_true, which a gradient's `1 / (... + eps)` then
    multiplies by 10^7 (`log(sum(e^2)/5 + eps)`: 0.14 at a perfect prediction, where autodiff gives
    0; a differential review). Taken out again, the difference is computed first, exactly 0 there.
    (A power of 2 scales exactly: that sum is computed alike either way, and is printed as before.)
    """
    coefficients = [term.as_coeff_Mul()[0] for term in expr.args]
    first = abs(coefficients[0])
    if (
        first == 1
        or not first.is_finite
        or any(abs(c) != first for c in coefficients[1:])
    ):
        return None
    if any(sf.is_literal(term) for term in expr.args):
        return None
    return None if scales_exactly(first) else first


def near_whole(
    number: sp.Expr, others: list[sp.Expr]
) -> tuple[sp.Integer, sp.Float] | None:
    """(m, s) where `number` is a whole number m plus a small s that float32 would lose at least a
    thousandth of in their sum, else None. SymPy folds the `1 + eps` of `log(1 - p + eps)` into
    1.0000001, which float32 reads as 1 + 1.19e-7: near p = 1 the log's argument was 12% off, and
    its gradient 11% (a review); printed `1.0 - p + 1e-07`, it is computed as written. `s` keeps
    the digits that survive the cancellation (15 less those cancelled: 1e-07, not the float64
    fold's 1.0000000005838672e-07). Not where the sum is the number times one plus or minus the
    other term, which cancels it exactly as one (`1.001 - 1.001 t^2` at t = 1; a third review)."""
    if not isinstance(number, sp.Float) or (
        len(others) == 1 and abs(others[0].as_coeff_Mul()[0]) == abs(number)
    ):
        return None
    value = float(number)
    whole = round(value)
    small = value - whole
    if (
        whole == 0
        or small == 0
        or not math.isfinite(value)
        or abs(small) >= 1e-3 * abs(whole)
    ):
        return None
    rounded = struct.unpack("f", struct.pack("f", value))[0]  # (as float32 holds it)
    if abs(rounded - whole - small) <= 1e-3 * abs(small):
        return None
    lost = max(0, math.ceil(math.log10(abs(value) / abs(small))))
    return sp.Integer(whole), sp.Float(float(f"{small:.{max(1, 15 - lost)}g}"))


class KerasPrinter(Printer):
    """Prints SymPy expressions as `keras.ops` calls; `code(expr, form)` returns a `Code`."""

    printmethod = "_lossdsl_keras"

    def __init__(self, body: CallBody) -> None:
        super().__init__()
        # A proxy: the body holds its printer, and a printer holding the body would make the pair a
        # cycle, which keeps the program and its SymPy expressions until the garbage collector runs.
        self.body = weakref.proxy(body)
        self._literals: dict[sp.Expr, Code] = {}  # each number printed: its code

    def code(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        """`expr` as Python, its per-sample parts in `form`."""
        return self._print(expr, form=form)

    def _print(self, expr, **kwargs) -> Code:
        form = kwargs.get("form", DROPPED)
        if expr in self.body.by_symbol:
            return self._local(self.body.by_symbol[expr], form)
        if sf.is_literal(expr):
            return self._literal(expr)
        return super()._print(expr, form=form)

    def emptyPrinter(self, expr):  # noqa: N802 - SymPy's name
        raise KerasEmitError(f"the Keras printer has no rule for {type(expr).__name__}")

    # leaves ----------------------------------------------------------------

    def _local(self, local: Local, form: str) -> Code:
        if self.body.shape(local.symbol) != SAMPLE or local.form == form:
            return Code(local.name)
        if form == KEPT:
            return Code(f"keras.ops.expand_dims({local.name}, axis=-1)")
        return Code(f"keras.ops.squeeze({local.name}, axis=-1)")

    def _literal(self, expr: sp.Expr) -> Code:
        code = self._literals.get(
            expr
        )  # (the same number is printed again and again: evaluated once)
        if code is None:
            try:
                text = float_literal(sp.N(expr))
            except (TypeError, ValueError) as err:
                raise KerasEmitError(
                    f"the constant {expr} is not a real number"
                ) from err
            code = self._literals[expr] = Code(
                text, PREC_UNARY if text.startswith("-") else PREC_ATOM
            )
        return code

    def _print_Symbol(self, expr: sp.Symbol, form: str = DROPPED) -> Code:
        if expr == Y_PRED:
            return Code("y_pred")
        if expr == Y_TRUE:
            self.body.uses_y_true = True
            return Code("y_true")
        if expr == sf.C:  # the size of the last axis (the gradient of `mean`)
            return Code("keras.ops.cast(keras.ops.shape(y_pred)[-1], y_pred.dtype)")
        if expr in self.body.param_symbols:
            name = self.body.param_symbols[expr]
            self.body.used_params.add(name)
            return Code(self.body.param_locals[name])
        raise KerasEmitError(
            f"the Keras printer does not know the symbol {expr.name!r}"
        )

    # SymPy folds some conditions to constants (`ITE(c, x > y, False)`).
    def _print_BooleanTrue(self, expr, form: str = DROPPED) -> Code:
        return Code("True")

    def _print_BooleanFalse(self, expr, form: str = DROPPED) -> Code:
        return Code("False")

    def _print_OneHot(self, expr: sf.OneHot, form: str = DROPPED) -> Code:
        if expr.args[0] != Y_TRUE:
            raise KerasEmitError("onehot() takes y_true only")
        self.body.uses_onehot = True
        return Code("y_true")

    def _print_Vector(self, expr: sf.Vector, form: str = DROPPED) -> Code:
        items = [self.code(item) for item in expr.args]
        if all(sf.is_literal(item) for item in expr.args):
            head, tail = "keras.ops.convert_to_tensor(", "dtype=y_pred.dtype"
        else:
            items = [
                self._tensor(item, code)
                for item, code in zip(expr.args, items, strict=True)
            ]
            head, tail = "keras.ops.stack(", ""
        inline = (
            f"{head}[{', '.join(c.text for c in items)}]{', ' + tail if tail else ''})"
        )
        if len(inline) <= self.body.inner:
            return Code(inline)
        # Too long for one line: a temporary, one item per line (the form `ruff format` keeps).
        name = self.body._allocate("")
        lines = (
            [f"{name} = {head}", "    ["]
            + [f"        {c.text}," for c in items]
            + ["    ],"]
        )
        lines += [f"    {tail},", ")"] if tail else [")"]
        self.body.pending += lines
        return Code(name)

    def _tensor(self, expr: sp.Basic, code: Code) -> Code:
        if expr in self.body.param_symbols:
            # a parameter given as a `keras.Variable` is that variable still (convert_to_tensor
            # returns it as it is), which TensorFlow's `stack` refused ("'str' object has no
            # attribute 'base_dtype'"; the change review): a cast to its own dtype makes it a tensor
            return Code(f"keras.ops.cast({code.text}, y_pred.dtype)")
        return self.body.typed(code) if sf.is_literal(expr) else code

    # arithmetic ------------------------------------------------------------

    def _print_Add(self, expr: sp.Add, form: str = DROPPED) -> Code:
        shared = common_coefficient(expr)
        if shared is not None:
            # (each term's rest, with its sign: dividing a Float coefficient by itself left 0.999...)
            rest = [
                sp.Mul(sp.sign(c), r) for c, r in (t.as_coeff_Mul() for t in expr.args)
            ]
            return self._print_Mul(sp.Mul(shared, sp.Add(*rest), evaluate=False), form)
        inner = self.body.child_form(expr, form)
        # SymPy's order of the terms decides only that of two or more that are not numbers (numbers
        # go last, below); a number and one other term are taken as they are. (Ordering them splits
        # each power into its base's root, `b^(-1/2)` as `sqrt(b)^-1`, built evaluated, with the
        # sign questions of `construct.power`: 20 levels of `(2 + ...)^-0.5` took 4 s to print.)
        literal = sum(map(sf.is_literal, expr.args))
        terms = list(
            expr.args
            if literal <= 1 and len(expr.args) - literal <= 1
            else expr.as_ordered_terms()
        )
        numbers = [t for t in terms if sf.is_literal(t)]
        others = [t for t in terms if not sf.is_literal(t)]
        small = None
        if (
            others
            and len(numbers) == 1
            and (split := near_whole(numbers[0], others)) is not None
        ):
            numbers = list(
                split
            )  # `1 - p + eps` as written: `1.0 - p + 1e-07`, not `1.0000001 - p`
            small = split[1]  # (added last, whatever its sign: `-y_pred - 1.0 + 1e-07`)
        terms = others + numbers  # numbers last, as Keras writes `x + ... - log2`
        positive = next(
            (t for t in terms if not has_negative_coefficient(t) and t is not small),
            None,
        )
        if positive is not None and has_negative_coefficient(terms[0]):
            terms.remove(
                positive
            )  # `y_true - y_pred` and `1.0 - p`, not `-y_pred + y_true`
            terms.insert(0, positive)
        first = self.code(terms[0], inner)
        signed = []
        for term in terms[1:]:
            negative = has_negative_coefficient(term)
            signed.append((negative, self.code(-term if negative else term, inner)))
        text = wrap(first, PREC_ADD)
        for negative, code in signed:
            candidate = f"{text} {'-' if negative else '+'} {wrap(code, PREC_ADD + 1)}"
            if len(candidate) > self.body.inner and not is_short(text):
                text = self.body.temporary(text).text
                candidate = (
                    f"{text} {'-' if negative else '+'} {wrap(code, PREC_ADD + 1)}"
                )
            if len(candidate) > self.body.inner and not is_short(code.text):
                code = self.body.temporary(code.text)
                candidate = f"{text} {'-' if negative else '+'} {code.text}"
            text = candidate
        return Code(text, PREC_ADD)

    def _print_Mul(self, expr: sp.Mul, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        coefficient, factors = expr.as_coeff_mul()
        if (
            factors and factors[0].is_Number and coefficient == 1
        ):  # an unevaluated Mul(1.0, x)
            coefficient, factors = factors[0] * coefficient, factors[1:]
        negative = coefficient < 0
        coefficient = -coefficient if negative else coefficient
        numerator: list[Code] = []
        denominator: list[Code] = []
        if not equals_number(coefficient, 1.0):
            if coefficient.is_Rational and not coefficient.is_Integer:
                if coefficient.p != 1:
                    numerator.append(self._literal(sp.Integer(coefficient.p)))
                denominator.append(self._literal(sp.Integer(coefficient.q)))
            else:
                numerator.append(self._literal(coefficient))
        factors = self._quotient_inside_abs(list(factors), inner, numerator)
        if self.body.in_backward:
            factors = self._divided_before_squaring(factors, inner, numerator)
        divided = False  # the denominator divides in turn (a power of it in the backward pass)
        for factor in factors:
            if _count_power(factor) is not None:
                numerator.append(self._count_reciprocal(_count_power(factor)))
            elif self.body.in_backward and repeated_divisor(factor):
                denominator.extend(
                    self.code(factor.base, inner) for _ in range(int(-factor.exp))
                )
                divided = True
            elif factor.is_Pow and factor.exp.is_Number and factor.exp < 0:
                denominator.append(self.code(power(factor.base, -factor.exp), inner))
            else:
                numerator.append(self.code(factor, inner))
        if not numerator:
            numerator.append(Code("1.0"))
        num = self._product(numerator)
        if negative:
            if len(numerator) == 1 and not denominator:
                return Code("-" + wrap(num, PREC_UNARY), PREC_UNARY)
            num = (
                Code("-" + num.text, num.prec)
                if num.prec >= PREC_MUL
                else Code("-" + wrap(num, PREC_UNARY), PREC_UNARY)
            )
        if not denominator:
            return num
        if divided:
            quotient = num
            for den in denominator:
                if len(quotient.text) + len(
                    den.text
                ) + 3 > self.body.inner and not is_short(quotient.text):
                    quotient = self.body.temporary(quotient.text)
                if len(quotient.text) + len(
                    den.text
                ) + 3 > self.body.inner and not is_short(den.text):
                    # a short numerator over a long divisor (`1.0 / sqrt(...)`, then `/ t1`): the
                    # divisor to a temporary, or the next division put the whole over-long quotient
                    # in one (a line past 88 columns; a review of robustness)
                    den = self.body.temporary(den.text)
                quotient = Code(
                    f"{wrap(quotient, PREC_MUL)} / {wrap(den, PREC_MUL + 1)}", PREC_MUL
                )
            return quotient
        den = self._product(denominator)
        text = f"{wrap(num, PREC_MUL)} / {wrap(den, PREC_MUL + 1)}"
        while len(text) > self.body.inner and not (
            is_short(num.text) and is_short(den.text)
        ):
            # The longer side to a temporary, then the other if it still does not fit.
            if not is_short(den.text) and (
                len(den.text) > len(num.text) or is_short(num.text)
            ):
                den = self.body.temporary(den.text)
            else:
                num = self.body.temporary(num.text)
            text = f"{wrap(num, PREC_MUL)} / {wrap(den, PREC_MUL + 1)}"
        return Code(text, PREC_MUL)

    def _count_reciprocal(self, power: int) -> Code:
        """`1 / C^power`, C the size of the last axis, taken in Python and made a tensor of y_pred's
        dtype: a 16-bit float holds no C past 65504 (the gradient of `mean(e)^2` was 0 in float16
        from C = 65520, where 1/C is a subnormal it holds), and bfloat16 rounds 257 to 256 (a
        review of dtypes). Not a cast of the Python float, which TensorFlow makes float32 first
        (float64 gradients kept float32's digits; the change review)."""
        size = "keras.ops.shape(y_pred)[-1]"
        value = f"1 / {size}" if power == 1 else f"1 / {size} ** {power}"
        inline = f"keras.ops.convert_to_tensor({value}, dtype=y_pred.dtype)"
        if len(inline) <= self.body.inner:
            return Code(inline)
        name = self.body._allocate(
            ""
        )  # one argument per line, the form `ruff format` keeps
        self.body.pending += [
            f"{name} = keras.ops.convert_to_tensor(",
            f"    {value},",
            "    dtype=y_pred.dtype,",
            ")",
        ]
        return Code(name)

    def _quotient_inside_abs(
        self, factors: list, inner: str, numerator: list[Code]
    ) -> list:
        """`|x| / d` with `d > 0` prints as `abs(x / d)`, as the user wrote it before SymPy took `d` out.

        (The mean absolute percentage error, `abs(e / maximum(abs(y_true), eps))`.) JAX's jit
        compiles the quotient inside faster, 2.1x -> 1.0x of Keras's loss, which writes it so, and
        TensorFlow's kernels do not mind. Returns the factors left to print; the abs is appended
        to `numerator`.
        """
        absolute = [f for f in factors if type(f) in (sp.Abs, _OrientedAbs)]
        below = [f for f in factors if f.is_Pow and f.exp.is_Number and f.exp < 0]
        if (
            len(absolute) != 1
            or not below
            or not all(self.body.positive(f.base) for f in below)
        ):
            return factors
        arg = absolute[0].args[0]
        if type(absolute[0]) is sp.Abs:
            arg = e_oriented(arg)  # as `_print_Abs` prints it
        quotient = sp.Mul(arg, *below, evaluate=False)
        numerator.append(self._call("abs", [self.code(quotient, inner)]))
        return [
            f
            for f in factors
            if f is not absolute[0] and not any(f is b for b in below)
        ]

    def _divided_before_squaring(
        self, factors: list, inner: str, numerator: list[Code]
    ) -> list:
        """In the backward pass, `a b / d^2` prints as `a / d * b / d`, and `a^2 / d^2` (or
        `exp(2 x) / d^2`) as `square(a / d)` (`d^3` and `d^4` as divisions in turn, after the
        first factor's): the quotient rule's `d^2` overflows where `d` does not (at `y_pred` = 45
        for `exp(y_pred) / (1 + exp(y_pred))` in float32, at 16.5 for `e^2 / (e^2 + 1)` in
        float16: NaN, or a gradient 300 times too large, where autodiff, which divides twice, is
        finite; found by a review). Returns the factors left to print; the quotients are
        appended to `numerator`."""
        for below in [f for f in factors if repeated_divisor(f)]:
            rest = [f for f in factors if f is not below]
            squared = next((f for f in rest if _square_root(f) is not None), None)
            if below.exp == -2 and squared is not None:
                # Read from the forward pass where it holds them: `exp(x)` (SymPy made `exp(2 x)` of
                # `exp(x)^2`) and the quotient itself (`square(t2)` for the logistic's `t2 = t0 / t1`).
                quotient = self.body.named(
                    sp.Mul(
                        self.body.named(_square_root(squared)), sp.Pow(below.base, -1)
                    )
                )
                numerator.append(self._call("square", [self.code(quotient, inner)]))
                factors = [f for f in rest if f is not squared]
                continue
            first = next(
                (f for f in rest if not (f.is_Pow and f.exp.is_Number and f.exp < 0)),
                None,
            )
            if first is None:
                continue
            numerator.append(self.code(sp.Mul(first, sp.Pow(below.base, -1)), inner))
            left = sp.Pow(below.base, below.exp + 1)
            factors = [left if f is below else f for f in factors if f is not first]
        return factors

    def _product(self, factors: list[Code]) -> Code:
        if len(factors) == 1:
            return factors[0]
        text = wrap(factors[0], PREC_MUL)
        for code in factors[1:]:
            candidate = f"{text} * {wrap(code, PREC_MUL)}"
            if len(candidate) > self.body.inner and not is_short(text):
                text = self.body.temporary(text).text
                candidate = f"{text} * {wrap(code, PREC_MUL)}"
            if len(candidate) > self.body.inner and not is_short(code.text):
                candidate = f"{text} * {self.body.temporary(code.text).text}"
            text = candidate
        return Code(text, PREC_MUL)

    def _print_Pow(self, expr: sp.Pow, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        base, exponent = expr.base, expr.exp
        if base is sp.zoo:
            # SymPy writes `0^(-t)` as `zoo^t` (as `(1/0)^t`) when `t` is substituted for a temporary
            base, exponent = sp.Integer(0), -exponent
        if _count_power(expr) is not None:
            return self._count_reciprocal(_count_power(expr))
        if exponent.is_Number and exponent < 0:
            den = self.code(
                power(base, -exponent), inner
            )  # (not evaluated where that changes nothing)
            return self._fit(
                [den], lambda c: f"1.0 / {wrap(c[0], PREC_MUL + 1)}", PREC_MUL
            )[0]
        if equals_number(exponent, 2.0):
            return self._call("square", [self.code(base, inner)])
        if equals_number(exponent, 0.5):
            return self._call("sqrt", [self.code(base, inner)])
        return self._call("power", [self.code(base, inner), self.code(exponent, inner)])

    # functions -------------------------------------------------------------

    def _print_Function(self, expr: sp.Function, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_exp(self, expr: sp.exp, form: str = DROPPED) -> Code:
        # In the backward pass, `exp` of the forward pass's `log_softmax(x)` (the fused gradient
        # of a cross-entropy on logits) is `softmax(x)`, the same value. Under XLA the two share
        # their exponentials (one per element, as in Keras's fused kernel), and without XLA it
        # is one kernel as `exp` is: the categorical cross-entropy on logits 1.14 -> 1.02 of
        # Keras's time under XLA, 0.95 -> 0.84 under `tf.function` (8192 x 128). Only where `x`
        # is a name (printed again, an expression would be computed again), and not in the
        # forward pass (a user's `exp(log_softmax(x))` there would leave the log_softmax unread).
        local = self.body.by_symbol.get(expr.args[0])
        if (
            self.body.in_backward
            and local is not None
            and isinstance(local.value, sf.LogSoftmax)
        ):
            (x,) = local.value.args
            if isinstance(x, sp.Symbol):
                return self._print(sf.Softmax(x), form=form)
        return self._generic(expr, form)

    def _print_Abs(self, expr: sp.Abs, form: str = DROPPED) -> Code:
        # SymPy keeps one orientation of a difference under Abs: `abs(e)` becomes
        # Abs(y_pred - y_true). The value is the same either way, but the gradient at 0 is
        # a convention of the backend (JAX takes abs'(0) = 1, TensorFlow and PyTorch 0), so
        # `e`'s orientation, y_true - y_pred (as Keras writes its own losses), is printed.
        oriented = e_oriented(expr.args[0])
        if oriented is not expr.args[0]:
            return self._call(
                "abs", [self.code(oriented, self.body.child_form(expr, form))]
            )
        return self._generic(expr, form)

    def _print_Clip(self, expr: sf.Clip, form: str = DROPPED) -> Code:
        x, lo, hi = expr.args
        if (
            self.body.shape(x) == ELEM
            and sf.is_literal(lo)
            and sf.is_literal(hi)
            and float(lo) <= float(hi)
        ):
            return self._generic(expr, form)
        # `clip(1, y_pred, 2)`, `clip([0.5, 2], y_pred, 1.5)`: keras.ops.clip takes its first
        # argument for a tensor (TensorFlow reads its dtype) of the result's shape (TensorFlow
        # checks it); a constant, a list or one value per sample is neither. And bounds that may
        # cross (`clip(eps, y_pred, y_true)`, a parameter): clip is `min(max(x, lo), hi)`, as
        # NumPy, JAX and PyTorch have it (the upper bound wins), where TensorFlow's keras.ops.clip
        # lets the lower bound win.
        # x first where it is not a number: TensorFlow's maximum and minimum pass the gradient of a
        # tie to their first argument, so x at a bound keeps it, as under keras.ops.clip.
        inner = self.body.child_form(expr, form)
        if sf.is_literal(x) and sf.is_literal(lo):
            # `clip(2, 1, y_true)`: the larger number, folded here; `keras.ops.maximum(1.0, 2.0)`
            # is a float32 tensor, which TensorFlow's `*` would not mix with a float16 or bfloat16
            # y_pred (a review)
            return self._call(
                "minimum", [self.code(sp.Max(x, lo), inner), self.code(hi, inner)]
            )
        pair = [self.code(lo, inner), self.code(x, inner)]
        low = self._call("maximum", pair if sf.is_literal(x) else pair[::-1])
        return self._call("minimum", [low, self.code(hi, inner)])

    def _print_Log1p(self, expr: sf.Log1p, form: str = DROPPED) -> Code:
        if not self.body.xla:
            return self._xla_form(
                "_log1p", [self.code(expr.args[0], self.body.child_form(expr, form))]
            )
        x = expr.args[0]
        if x.could_extract_minus_sign():
            return self._log1p_of_negated(
                self.code(-x, self.body.child_form(expr, form))
            )
        # `x * -1.0`, not `-x`: TensorFlow's graph optimizer turns `1 - (-x)` into `1 + x`, then
        # `log(1 + x)` into `log1p(x)`, and the correction would count twice.
        x = self.code(x, self.body.child_form(expr, form))
        negated = self._fit([x], lambda c: f"{wrap(c[0], PREC_MUL)} * -1.0", PREC_MUL)[
            0
        ]
        return self._log1p_of_negated(self.body.temporary(negated.text))

    def _log1p_of_negated(self, a: Code) -> Code:
        """`log1p(-a)`, spelled for XLA: `log(u) + (((1 - u) - a) if u <= 2 else 0)`, `u = 1 - a`.

        XLA's CPU log1p costs about two logs (a log and a rational function, then a select).
        For `-1 <= a <= 1` the subtraction `1 - u` is exact, so `(1 - u) - a` is what rounding
        `1 - a` lost, and `log(1 - a) = log(u) + ((1 - u) - a) / u`; the division is left out:
        the correction is at most half a unit in the last place of `u` and 0 unless
        `1/2 < u <= 2` (Sterbenz), so without it the result stays within about two units in
        the last place (measured in float32; TensorFlow's eager log1p is within four).
        Above `u = 2` rounding `u` moves log(u) by less than its own last place (and
        `(1 - u) - a` is not that error any more), so the correction is 0 there; at `a = -inf`
        it is NaN, and not selected. Accurate to about a unit in the last place, as log1p is.

        The spelling is what compilers leave alone: TensorFlow's graph optimizer turns
        `log(1 + x)` (and `log(1 - (-x))`) into `log1p(x)`, where the correction would count
        twice, and folds `(u - 1) - x` to 0; jax.jit's XLA folds `x - (u - 1)` to 0.
        """
        if not a.text.isidentifier():
            a = self.body.temporary(a.text)
        u = self.body.temporary(f"1.0 - {a.text}")
        small = self._call("less_equal", [u, Code("2.0")])
        correction = self._call(
            "where",
            [small, Code(f"(1.0 - {u.text}) - {a.text}", PREC_ADD), Code("0.0")],
        )
        # The correction's derivative is 0, and autodiff would make it `g - g`: NaN for an
        # infinite upstream `g` (`sqrt(log1p(x))` at x = 0), where log1p's gradient is inf.
        correction = self._call("stop_gradient", [correction])
        terms = [self._call("log", [u]), correction]
        return self._fit(terms, lambda c: f"{c[0].text} + {c[1].text}", PREC_ADD)[0]

    def _print_Log1pDiff(self, expr: sf.Log1pDiff, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        a, b = (self.code(arg, inner) for arg in expr.args)
        if not self.body.xla:
            return self._xla_form("_log1p_difference", [a, b])
        difference, _ = self._fit(
            [a, b],
            lambda c: f"{wrap(c[0], PREC_ADD)} - {wrap(c[1], PREC_ADD + 1)}",
            PREC_ADD,
        )
        d = self.body.temporary(difference.text)
        up = self.body.temporary(self._call("greater_equal", [d, Code("0.0")]).text)
        negated = self._call("where", [up, Code(f"-{d.text}", PREC_UNARY), d])
        denominator = self._call(
            "where",
            [
                up,
                Code(f"{wrap(b, PREC_ADD)} + 1.0", PREC_ADD),
                Code(f"{wrap(a, PREC_ADD)} + 1.0", PREC_ADD),
            ],
        )
        # log1p(|d| / (1 + the smaller side)), as log1p(-(-|d| / ...))
        quotient, _ = self._fit(
            [negated, denominator], lambda c: f"{c[0].text} / {c[1].text}", PREC_MUL
        )
        r = self.body.temporary(self._log1p_of_negated(quotient).text)
        return self._call("where", [up, r, Code(f"-{r.text}", PREC_UNARY)])

    def _print_Softplus(self, expr: sf.Softplus, form: str = DROPPED) -> Code:
        if (
            self.body.xla
        ):  # `shared_exponentials` wrote out the ones the backward pass shares
            return self._generic(expr, form)
        return self._xla_form(
            "_softplus", [self.code(expr.args[0], self.body.child_form(expr, form))]
        )

    def _print_Sigmoid(self, expr: sf.Sigmoid, form: str = DROPPED) -> Code:
        # With a softplus of the same argument only: alone, XLA's own sigmoid is faster.
        if self.body.xla or expr.args[0] not in self.body.softplus_arguments:
            return self._generic(expr, form)
        return self._xla_form(
            "_sigmoid", [self.code(expr.args[0], self.body.child_form(expr, form))]
        )

    def _print_re(self, expr: sp.re, form: str = DROPPED) -> Code:
        # SymPy writes `abs(c^x)` as `c^re(x)` when it cannot prove x real; every tensor here is.
        return self.code(expr.args[0], form)

    def _print_Held(self, expr: sf.Held, form: str = DROPPED) -> Code:
        return self.code(expr.args[0], form)

    def _print__OrientedAbs(self, expr: _OrientedAbs, form: str = DROPPED) -> Code:
        return self._call(
            "abs", [self.code(expr.args[0], self.body.child_form(expr, form))]
        )

    def _print__OrientedSign(self, expr: _OrientedSign, form: str = DROPPED) -> Code:
        return self._call(
            "sign", [self.code(expr.args[0], self.body.child_form(expr, form))]
        )

    def _print__SoftmaxCrossEntropy(
        self, expr: _SoftmaxCrossEntropy, form: str = DROPPED
    ) -> Code:
        # (through `_logits`: Keras's TensorFlow kernel reads the input of a softmax or sigmoid
        # that made its argument in place of it; found by a differential review)
        logits = self._xla_form("_logits", [self.code(expr.args[1], KEPT)])
        if self.body.class_ids:
            code = self._call(
                "sparse_categorical_crossentropy",
                [Code("y_true"), logits],
                ["from_logits=True"],
            )
        else:
            labels = self.code(expr.args[0], KEPT)
            code = self._call(
                "categorical_crossentropy", [labels, logits], ["from_logits=True"]
            )
        return self._call("expand_dims", [code], ["axis=-1"]) if form == KEPT else code

    def _print_Heaviside(self, expr: sp.Heaviside, form: str = DROPPED) -> Code:
        # Only fused gradients hold steps: `[z >= 0]` (`maximum`, `clip`: TensorFlow passes the
        # gradient at ties), or `[z > 0]` where the value at 0 is 0 (`relu`).
        inner = self.body.child_form(expr, form)
        strict = len(expr.args) > 1 and expr.args[1] == 0
        constant, rest = expr.args[0].as_coeff_Add()
        if has_negative_coefficient(rest):  # c - r >= 0: r <= c
            op, left, right = ("less" if strict else "less_equal"), -rest, constant
        else:
            op, left, right = (
                ("greater" if strict else "greater_equal"),
                rest,
                -constant,
            )
        test = self._call(op, [self.code(left, inner), self.code(right, inner)])
        return self._call("cast", [test, Code("y_pred.dtype")])

    def _print__Masked(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        # A fused gradient's select: the value where every comparison holds, else 0 (emit.fused._Masked).
        inner = self.body.child_form(expr, form)
        value, *operands = expr.args
        test = None
        for index in range(0, len(operands), 3):
            left, right, strict = operands[index : index + 3]
            op = "greater" if strict else "greater_equal"
            comparison = self._call(
                op, [self.code(left, inner), self.code(right, inner)]
            )
            test = (
                comparison
                if test is None
                else self._call("logical_and", [test, comparison])
            )
        return self._call("where", [test, self.code(value, inner), Code("0.0")])

    def _print__AtLeast(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        # A fused gradient's step between two operands the forward pass compares (emit.fused).
        return self._step("greater_equal", expr, form)

    def _print__Above(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._step("greater", expr, form)

    def _step(self, op: str, expr: sp.Basic, form: str) -> Code:
        inner = self.body.child_form(expr, form)
        test = self._call(op, [self.code(arg, inner) for arg in expr.args])
        return self._call("cast", [test, Code("y_pred.dtype")])

    # Max and Min are not Functions in SymPy; relationals are not Applications.
    def _print_MinMaxBase(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_Relational(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_BooleanFunction(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _generic(self, expr: sp.Basic, form: str) -> Code:
        op = KERAS_OPS.get(type(expr))
        if op is None:
            raise KerasEmitError(
                f"the Keras printer has no rule for {type(expr).__name__}"
            )
        inner = self.body.child_form(expr, form)
        args = list(expr.args)
        if isinstance(expr, (sp.Max, sp.Min)):
            args = self.body.tie_order(
                args
            )  # tensors first: `keras.ops.maximum(x, 0.0)`
        codes = [self.code(a, inner) for a in args]
        if isinstance(expr, (*sf.REDUCTIONS, *AXIS_FUNCTIONS)) and self._spread(
            expr, args[0]
        ):
            codes[0] = self._fit(
                codes[:1],
                lambda c: f"keras.ops.zeros_like(y_pred) + {wrap(c[0], PREC_ADD + 1)}",
                PREC_ADD,
            )[0]
        if isinstance(expr, _BINARY_FOLDS):
            result = codes[-1]
            for code in reversed(codes[:-1]):
                result = self._call(op, [code, result])
            return result
        keywords = []
        if isinstance(expr, sf.REDUCTIONS):
            keywords.append("axis=-1")
            if self.body.shape(expr) == SAMPLE and form == KEPT:
                keywords.append("keepdims=True")
        elif isinstance(expr, AXIS_FUNCTIONS):
            keywords.append("axis=-1")
        return self._call(op, codes, keywords)

    def _spread(self, expr: sp.Basic, arg: sp.Basic) -> bool:
        """Whether the argument of a function over the last axis is read spread over y_pred's shape.

        Over the last axis a constant, or one value per sample (kept: it broadcasts), still has
        y_pred's shape: SymPy folds `sum(0 * y_pred)` to `sum(0)`, and `sum(sum(y_pred) + 0 *
        y_true)` to `sum(sum(y_pred))`, which is C times the inner sum (the code took the inner sum
        alone; found by a differential review). A mean, max or min of equal values is that value.
        """
        shape = self.body.shape(arg)
        if shape == CONST:
            return True
        return shape == SAMPLE and not isinstance(
            expr, (sf.ReduceMean, sf.ReduceMax, sf.ReduceMin)
        )

    def _print_Piecewise(self, expr: sp.Piecewise, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        pieces = list(expr.args)
        if pieces[-1].cond != sp.true:
            raise KerasEmitError("a piecewise expression without a default branch")
        if len(pieces) == 2 and pieces[0].expr == 1 and pieces[1].expr == 0:
            # `where(c, 1, 0)` as the condition cast to the loss's dtype: the same values, and
            # a selection is a slow kernel on PyTorch's CPU (2 ms for 8192 x 128, a cast 0.3).
            return self._call(
                "cast", [self.code(pieces[0].cond, inner), Code("y_pred.dtype")]
            )
        if (step := _step_of(pieces)) is not None:
            # `where(c, q + k, q)` as `where(c, k, 0) + q`, k a number and q one term: the same
            # value (one rounding either way) with one kernel fewer without XLA, as the binary
            # cross-entropy's `where(x >= 0, 1 - y, -y)` (docs/decisions.md).
            default = pieces[-1].expr
            negative = has_negative_coefficient(default)
            selection = self.code(
                sf.Where((step, pieces[0].cond), (0, True), evaluate=False), inner
            )
            rest = self.code(-default if negative else default, inner)
            return Code(
                f"{wrap(selection, PREC_ADD)} {'-' if negative else '+'} {wrap(rest, PREC_ADD + 1)}",
                PREC_ADD,
            )
        result = self.code(pieces[-1].expr, inner)
        numbers = sf.is_literal(pieces[-1].expr)
        for piece in reversed(pieces[:-1]):
            condition = self.code(piece.cond, inner)
            value = self.code(piece.expr, inner)
            if numbers and sf.is_literal(piece.expr):
                # `where(c, 1.0, 2.0)` of two numbers is a float32 tensor: y_pred's dtype instead,
                # or a float16 loss multiplies float16 by float32 (TensorFlow refuses).
                value = self.body.typed(value)
            numbers = False
            result = self._call("where", [condition, value, result])
        return result

    def _call(
        self, op: str, args: list[Code], keywords: list[str] | None = None
    ) -> Code:
        return self._apply(f"keras.ops.{op}", args, keywords)

    def _xla_form(self, function: str, args: list[Code]) -> Code:
        """A call of one of the module's trace-time functions (`xla_forms`), which the module
        then defines."""
        self.body.helpers.add(function)
        return self._apply(function, args)

    def _apply(
        self, function: str, args: list[Code], keywords: list[str] | None = None
    ) -> Code:
        keywords = keywords or []
        args = [
            self.body.typed(a)
            if is_number_text(a.text) and not exact_in_float32(a.text)
            else a
            for a in args
        ]
        extra = "".join(", " + k for k in keywords)
        head = f"{function}("
        code, args = self._fit(
            args, lambda c: head + ", ".join(a.text for a in c) + extra + ")", PREC_ATOM
        )
        if len(code.text) <= self.body.inner:
            return code
        # Only names are left and they still do not fit: one argument per line, with the
        # trailing comma that makes `ruff format` keep that layout.
        name = self.body._allocate("")
        lines = [
            f"{name} = {head}",
            *(f"    {a.text}," for a in args),
            *(f"    {k}," for k in keywords),
            ")",
        ]
        self.body.pending += lines
        return Code(name)

    def _fit(
        self, codes: list[Code], assemble: Callable[[list[Code]], str], prec: int
    ) -> tuple[Code, list[Code]]:
        """Assemble `codes`; while the text is too long, move the longest argument to a temporary."""
        codes = list(codes)
        text = assemble(codes)
        while len(text) > self.body.inner:
            candidates = [
                i
                for i, c in enumerate(codes)
                if not is_name(c.text) and not is_number_text(c.text)
            ]
            if not candidates:
                break
            longest = max(candidates, key=lambda i: len(codes[i].text))
            codes[longest] = self.body.temporary(codes[longest].text)
            text = assemble(codes)
        return Code(text, prec), codes


def _square_root(factor: sp.Basic) -> sp.Basic | None:
    """`a` for a factor `a^2` or `exp(2 x)` (as `exp(x)^2`; also `exp(2 a + 2 b)`, as SymPy writes
    `exp(a + b)^2`) that does not depend on numbers alone, else None."""
    if factor.is_Pow and factor.exp == 2 and not factor.base.is_number:
        return factor.base
    if isinstance(factor, sp.exp) and not factor.args[0].is_number:
        terms = [term.as_coeff_Mul() for term in sp.Add.make_args(factor.args[0])]
        if all(c.is_Integer and c % 2 == 0 for c, _ in terms):
            return sp.exp(sp.Add(*(c / 2 * rest for c, rest in terms)))
    return None


def _step_of(pieces) -> sp.Number | None:
    """`k` for a where of one condition, `where(c, q + k, q)` as written (the first branch the
    sum of k and the default, not a form equal to it once expanded), k a nonzero finite number
    and q one term that is not a number; else None."""
    if len(pieces) != 2:
        return None
    first, default = pieces[0].expr, pieces[-1].expr
    if default.is_Add or default.is_number or not first.is_Add:
        return None
    step, rest = first.as_coeff_Add()
    if step.is_Number and step.is_finite and step != 0 and rest == default:
        return step
    return None
