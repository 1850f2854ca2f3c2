"""The notation the LaTeX printers share, and printed fragments with their precedence.

What the inputs print as (`y_true` is `y`, `y_pred` is `\\hat{y}`), the
left-hand sides (`L(y, \\hat{y})`, `\\frac{\\partial L}{\\partial \\hat{y}}`),
operators and functions (`NAME\\left(args\\right)`: NAMED_FUNCTIONS,
VECTOR_FUNCTIONS; over the last axis: REDUCTIONS); the function names are
ones mathtext knows as well as KaTeX. `latex.LatexWriter` prints the loss
with all of it; `latex_gradient.GradientPrinter` takes the inputs' symbols,
the vector functions, `paren` and `number_tex` from here, so the gradient
reads as the loss does.

A `Fragment` is printed LaTeX with what its parent needs to know to
parenthesize it (precedence, a leading sign, a tail that runs to the right);
`wrap` adds parentheses only where the position needs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- precedence

# Loosest to tightest. NEG is a leading sign (`-x`, `-a b`): tighter than a
# sum, looser than a product, so `a (-b)` and `-(-x)` get parentheses.
(
    PREC_OR,
    PREC_AND,
    PREC_NOT,
    PREC_CMP,
    PREC_ADD,
    PREC_NEG,
    PREC_MUL,
    PREC_POW,
    PREC_ATOM,
) = range(1, 10)

Y_TEX = "y"
Y_HAT_TEX = r"\hat{y}"
LOSS_LHS = r"L(y, \hat{y})"
GRADIENT_LHS = r"\frac{\partial L}{\partial \hat{y}}"
# ... of an elementwise loss whose element reads a sum, mean, ... of y_pred: its gradient is of the
# sum over the last axis (`gradient()`: `y_pred * sum(y_pred)` -> `2 sum(y_pred)`), not of the
# element alone, which the plain head read as (a review of the LaTeX).
SUMMED_GRADIENT_LHS = r"\frac{\partial}{\partial \hat{y}} \sum_{c} L(y, \hat{y})_{c}"

COMPARISONS = {
    "<": "<",
    "<=": r"\leq",
    ">": ">",
    ">=": r"\geq",
    "==": "=",
    "!=": r"\neq",
}
BOOL_OPS = {"and": r"\wedge", "or": r"\vee"}

# Elementwise functions printed as `NAME\left(args\right)`. Mathtext knows
# all of these, `\operatorname` included (since matplotlib 1.1).
NAMED_FUNCTIONS = {
    "exp": r"\exp",
    "log": r"\log",
    "sin": r"\sin",
    "cos": r"\cos",
    "tan": r"\tan",
    "sinh": r"\sinh",
    "cosh": r"\cosh",
    "tanh": r"\tanh",
    "arcsin": r"\arcsin",
    "arccos": r"\arccos",
    "arctan": r"\arctan",
    "erf": r"\operatorname{erf}",
    "softplus": r"\operatorname{softplus}",
    "relu": r"\operatorname{relu}",
    "clip": r"\operatorname{clip}",
    "maximum": r"\max",
    "minimum": r"\min",
    "max": r"\max",
    "min": r"\min",
    "sign": r"\operatorname{sign}",
    "round": r"\operatorname{round}",
}
# Vector functions over the last axis (and the label encoder).
VECTOR_FUNCTIONS = {
    "softmax": r"\operatorname{softmax}",
    "log_softmax": r"\log\operatorname{softmax}",
    "normalize": r"\operatorname{normalize}",
    "onehot": r"\operatorname{onehot}",
}
# Reductions over the last axis, `%s` standing for the index (`logsumexp`'s operand in brackets).
REDUCTIONS = {
    "sum": r"\sum_{%s}",
    "mean": r"\frac{1}{C}\sum_{%s}",
    "max": r"\max_{%s}",
    "min": r"\min_{%s}",
    "logsumexp": r"\log\sum_{%s}\exp",
}


def reduction_index(depth: int) -> str:
    """The index of the last axis inside `depth` enclosing reductions: `c`, `c'`, `c''`, ..."""
    return "c" + "'" * depth


def sigmoid_tex(claimed: bool) -> str:
    """`\\sigma`, or `\\operatorname{sigmoid}` where a user's name prints as `\\sigma`."""
    return r"\operatorname{sigmoid}" if claimed else r"\sigma"


# ---------------------------------------------------------------- fragments


@dataclass(frozen=True)
class Fragment:
    """Printed LaTeX with what its parent needs to know to parenthesize it.

    `sign`: starts with `-` or `+`. `tail`: "big" for a prefix operator whose
    scope runs to the right (`\\sum_{c} x`), which a following factor or
    exponent would join; "cases" for a `cases` block, which nothing may follow.
    """

    text: str
    prec: int
    sign: bool = False
    tail: str | None = None


def paren(text: str) -> str:
    """`text` in stretchy parentheses."""
    return r"\left(" + text + r"\right)"


def tail_of(frag: Fragment, text: str) -> str | None:
    """The tail a parent inherits from its last operand, printed as `text` (none once parenthesized)."""
    return frag.tail if text == frag.text else None


def wrap(
    frag: Fragment,
    min_prec: int,
    *,
    force: bool = False,
    follow: str | None = None,
    sign_ok: bool = True,
) -> str:
    """The fragment's text, parenthesized only where its position needs it.

    Args:
        frag: the printed operand.
        min_prec: the loosest precedence that may stand here unparenthesized.
        force: parenthesize at `min_prec` too (the right operand of `-`).
        follow: what comes after it: None (a closing delimiter or the end),
            "mul" (a juxtaposed factor or an exponent), "op" (a binary operator).
        sign_ok: whether a leading sign may stand here (`a + -b` may not).
    """
    blocked = (frag.tail == "big" and follow == "mul") or (
        frag.tail == "cases" and follow is not None
    )
    if (
        frag.prec < min_prec
        or (force and frag.prec <= min_prec)
        or (frag.sign and not sign_ok)
        or blocked
    ):
        return paren(frag.text)
    return frag.text


# A name that reads as a function before parentheses: a Greek letter that names one in ML and
# analysis (`\sigma \left(x\right)` is the sigmoid's notation, `\theta \left(x\right)` the step's,
# `\Phi` the normal CDF, `\Gamma` the gamma function; `\varsigma`, `\vartheta` and `\varphi` as their
# plain forms) or an upright name, subscripted or not. Other
# letters keep the usual product, `\alpha \left(1 - p\right)^{\gamma}` (the focal loss's notation).
# (Primes, a subscript holding `\mathrm{...}` and a power count: `\sigma_{\mathrm{min}}`, `\mathrm{bce}'`,
# `\sigma^{2}` before parentheses read as calls too; a review.)
_BRACED = r"\{(?:[^{}]|\{[^{}]*\})*\}"
_NAMED = r"(\\(sigma|varsigma|theta|vartheta|phi|varphi|psi|Phi|Gamma)(?![A-Za-z])|\\mathrm\{[^{}]*\})"
FUNCTION_LIKE = re.compile(_NAMED + r"'*(_" + _BRACED + r")?(\^" + _BRACED + r")?$")


def juxtapose(left: str, right: str) -> str:
    """Two factors side by side: `\\cdot` before a digit, after one before a fraction, and after a
    Greek or upright name before parentheses (`\\sigma \\cdot \\left(1 - y\\right)`, not a call); a
    thin space between words."""
    if (
        right[:1].isdigit()
        or right[:1] == "."
        or (left[-1:].isdigit() and right.startswith(r"\frac"))
    ):
        return left + r" \cdot " + right
    if right.startswith(r"\left(") and FUNCTION_LIKE.search(left):
        return left + r" \cdot " + right
    if right.startswith(r"\mathrm{") or re.search(r"\\mathrm\{[^{}]*\}$", left):
        return left + r"\," + right
    return left + " " + right


def number_tex(text: str) -> Fragment:
    """A literal as written: `.5` -> `0.5`, `007` -> `7`, `1e-3` -> `10^{-3}`, `2.5E+2` -> `2.5 \\times 10^{2}`."""
    mantissa, _, exponent = text.lower().partition("e")
    whole, point, fraction = mantissa.partition(".")
    mantissa = (
        (whole.lstrip("0") or "0") + point + fraction
    )  # (`007` was printed so; a review)
    if mantissa.endswith("."):
        mantissa = mantissa[:-1]
    if not exponent:
        return Fragment(mantissa, PREC_ATOM)
    power = "10^{" + str(int(exponent)) + "}"
    if mantissa == "1":
        return Fragment(power, PREC_POW)
    return Fragment(mantissa + r" \times " + power, PREC_MUL)
