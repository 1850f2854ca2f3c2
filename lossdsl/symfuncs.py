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

import sympy as sp

# The size of the last axis, for the element gradient of `mean`.
C = sp.Symbol("C", positive=True, integer=True)


class TensorFunction(sp.Function):
    """An operation over the last axis: stays unevaluated."""

    nargs = 1
    is_real = True
    keras_name = ""

    @property
    def is_number(self) -> bool:
        # A tensor, not a number, even of constants (`sum([1, 2])`): SymPy must not try
        # to compare or evaluate it (`Max` raises "not comparable" on such a "number").
        return False


class ReduceSum(TensorFunction):
    keras_name = "sum"

    def fdiff(self, argindex=1):
        return sp.Integer(1)


class ReduceMean(TensorFunction):
    keras_name = "mean"

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
        return sp.Heaviside(self.args[0])

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
        x, lo, hi = self.args
        if argindex == 1:
            return sp.Heaviside(x - lo) * sp.Heaviside(hi - x)
        if argindex == 2:
            return sp.Heaviside(lo - x)
        return sp.Heaviside(x - hi)

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


def plain(expr: sp.Expr) -> sp.Expr:
    """`expr` with every elementwise head rewritten into ordinary SymPy."""
    return expr.replace(lambda e: isinstance(e, Head) and not isinstance(e, Round), lambda e: e.plain())
