"""Check: a logarithm, divisor or negative power of a value that float32 rounds to 0 where it saturates
(and an `arcsin` or `arccos` of one that it rounds to -1 or 1).

The domain check reasons over the real numbers, where `sigmoid`, `exp`,
`softplus` and `softmax` never reach 0. In float32 they do: `exp(x)` is 0
below x of about -87 (and `softplus(x)` with it), `sigmoid(x)` below about
-88.7, a `softmax` entry where its logit is about 88 below the largest. So
`1 / sigmoid(y_pred)` is inf at y_pred = -200, and `log(sigmoid(y_pred)^2)`
is -inf there. Each `log`, divisor and negative power is judged in the form
the code computes, the stable rewrites applied (so `log(sigmoid(x))`, printed
`-softplus(-x)`, passes, and so does what SymPy simplified away:
`log(1 / exp(x)^2)` is `-2 x`), and warned of where what must not be 0 is
a product or positive power of one of those functions whose argument reaches
the saturating side at some probe point (for a softmax: logits further apart
than that). Probe points: y_pred at +-200 and +-1e4, y_true at 0, 1, -1 and
5, parameters at their defaults.

Not warned of: a `where` in the argument (a guard such as `log(where(y_pred >
0, sigmoid(y_pred), 1))` is finite), a hazard inside a condition (no
gradient goes through it), roots and positive fractional powers (their value
at 0 is 0; the fused gradient is finite where SymPy simplifies it, as in
`sqrt(sigmoid(x))`, and autodiff's is NaN: backend by backend, not the
program's) unless their base is 0 at a probe in float64 too and their
derivative as SymPy writes it is not finite there (`sqrt(1 - tanh(x)^2)`,
`sqrt(softplus(x))`: 0 over 0). A warning
the domain check already gives at the same place is not repeated
(checks/__init__).
"""

from __future__ import annotations

import math
import re

import sympy as sp

from lossdsl import construct, hyperbolic, nodes, subtrees
from lossdsl import symfuncs as sf
from lossdsl.checks.domain import logits_spelling
from lossdsl.checks.numeric import Unsupported, compiled, evaluate
from lossdsl.errors import Diagnostic
from lossdsl.rewrites import Rewriter, exact_exponents, inlined_code_form
from lossdsl.semantics import Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss, node_expr

# Each function's name, and the argument below which float32 rounds it to 0 (exp: its smallest
# normal number, e^-87.3; sigmoid: 1 / (1 + exp(-x)) once exp(-x) overflows, x < -88.72).
_SATURATING = {
    sp.exp: ("exp", -87.3),
    sf.Softplus: ("softplus", -87.3),
    sf.Sigmoid: ("sigmoid", -88.7),
}
_EXP_RANGE = (
    87.3  # logits further apart than this: the smaller one's softmax entry is 0
)
# What a float evaluation of a part at a probe may raise: the part is then passed over.
_UNEVALUATED = (Unsupported, TypeError, ValueError, ArithmeticError, RecursionError)
_PROBES = [(t, p) for p in (-200.0, 200.0, -1e4, 1e4) for t in (0.0, 1.0, -1.0, 5.0)]
# At most this many operations are evaluated at the probe points in all (hostile programs hold
# thousands of divisions, each over the ones inside it); past it the check stops.
MAX_PROBED = 100_000
# At most this many roots' derivatives are taken (about 20 ms each); past it a root is not warned of.
MAX_ROOT_DERIVATIVES = 25


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_PROBED
        self.derivatives = MAX_ROOT_DERIVATIVES

    def spend(self, expr: sp.Basic) -> bool:
        """Whether the probes of `expr` fit in what is left (and if so, count them)."""
        cost = len(_PROBES) * min(subtrees.size(expr, MAX_PROBED), MAX_PROBED)
        self.left -= cost
        return self.left >= 0


def check_saturation(resolved: Resolved, symbolic: SymbolicLoss) -> list[Diagnostic]:
    """A warning at each `log`, divisor or negative power whose argument float32 rounds to 0 where a
    sigmoid, exp, softplus or softmax in it saturates, and which the code computes."""
    env = symbolic.defaults()
    rewriter = Rewriter(
        {}, share=False
    )  # one for all: nested hazards share their rewritten parts
    code = inlined_code_form(
        symbolic
    )  # the loss as the code computes it (None where too large)
    budget = _Budget()
    found: list[Diagnostic] = []
    for node in resolved.outside_conditions():
        for target, kind in _hazards(node):
            if not resolved.of(target).pred:
                continue  # (a value free of y_pred: no gradient through it, and the data's own NaN)
            try:
                # (its exponents exact, as the code's: `sigmoid(x)^0.5` is `exp(-softplus(-x) / 2)`
                # there, and `exp(-0.5 softplus(-x))` was not found in it; the change review)
                stable = rewriter.rewrite(exact_exponents(node_expr(symbolic, target)))
                saturates = stable.has(*_SATURATING, sf.Softmax)
                if not saturates and not stable.has(*_BOUNDED):
                    # nothing in it saturates (what `_saturated` looks for is inside `stable`); and
                    # SymPy's `1 / stable` of 95 nested fractions took 2 s (the hostile corpus)
                    continue
                hazard, argument = _hazard(
                    stable, kind, env, rewriter, symbolic, target
                )
                if argument is None or (
                    code is not None and not _computes(code, hazard)
                ):
                    continue  # nothing to fear, or the code does not compute it (`log(1 / exp(x))` is -x)
                point = _saturated(argument, env, budget) if saturates else None
                if point is None and (
                    hazard is not stable
                    or not saturates
                    or isinstance(argument, sp.Add)
                ):
                    # (a log of a product, taken apart; a tanh or erf that rounds to -1 or 1; a sum of
                    # sigmoids that all saturate, `log(sigmoid(x) + sigmoid(x - 1))`, inf from x of
                    # about -104 in float32, where `_saturated` reads products alone; a review)
                    point = _vanishes(argument, env, budget)
            except _UNEVALUATED:
                continue
            if budget.left < 0:
                break
            if point is not None and kind == "power" and evaluate(hazard.exp, env) > 0:
                # (a root or fractional power: its value at 0 is 0; warned of where its gradient is not finite)
                try:
                    zero = (
                        _root_at_zero(argument, env) if budget.spend(argument) else None
                    )
                    if zero is None or budget.derivatives <= 0:
                        continue
                    budget.derivatives -= 1
                    if _finite_derivative(symbolic, target, env, zero):
                        continue  # (the focal loss's `(1 - p)^0.5`: SymPy's derivative is `p^0.5 ...`)
                except _UNEVALUATED:
                    continue
                kind, point = "root", (point[0], *zero)
            if point is not None:
                complement = kind in ("log", "log1p") and (
                    isinstance(hazard, sf.Log1p) or _cancels(argument, env, point)
                )
                found.append(
                    _warning(resolved, target, kind, point, complement=complement)
                )
    return found


def _cancels(argument: sp.Basic, env: dict, point: tuple[str, float, float]) -> bool:
    """Whether `argument`, a sum, is 0 at `point` because its terms cancel (`1 - sigmoid(x)^2`, one
    term rounding to 1), not because each rounds to 0 (`sigmoid(x) + sigmoid(x - 1)`): a log of it
    is taken apart as `log(1 - p)` is (`log(0.5 - 0.5 sigmoid(x)^2)` was given the cross-entropy's
    advice; the change review)."""
    terms = sp.Add.make_args(
        argument.as_coeff_Mul()[1]
    )  # (`2 (1 - p^2)`: the sum; not expanded)
    if len(terms) < 2:
        return False
    at = {**env, Y_TRUE: point[1], Y_PRED: point[2]}
    try:
        return any(compiled(term)(at) != 0.0 for term in terms)
    except (Unsupported, TypeError, ValueError, ArithmeticError):
        return False


def _computes(code: sp.Basic, hazard: sp.Basic) -> bool:
    """Whether the code's form `code` computes `hazard`: holds it, or for a negative power of `b`,
    any negative power of `b` (`1 / sigmoid(x)` is in `sigmoid(x)^-2`)."""
    if code.has(hazard):
        return True
    if isinstance(hazard, sp.Pow) and hazard.exp.is_negative:
        return any(
            p.base == hazard.base and p.exp.is_negative for p in code.atoms(sp.Pow)
        )
    return False


def _hazards(node: nodes.Node):
    """(node, kind) for each place in `node` where a value of 0 is infinite: the `log` call, the
    divisor, the power (kept where its exponent is negative)."""
    if (
        isinstance(node, nodes.Call)
        and node.func in ("log", "log1p")
        and len(node.args) == 1
    ):
        yield node, node.func
    elif isinstance(node, nodes.Chain) and node.kind == "mul":
        for op, operand in zip(node.ops, node.operands[1:], strict=True):
            if op == "/":
                yield operand, "divisor"
    elif isinstance(node, nodes.Power) or (
        isinstance(node, nodes.Call) and node.func == "pow" and len(node.args) == 2
    ):
        yield node, "power"
    elif (
        isinstance(node, nodes.Call)
        and node.func in ("arcsin", "arccos")
        and len(node.args) == 1
    ):
        yield node, "arc"
    elif isinstance(node, nodes.Call) and node.func == "sqrt" and len(node.args) == 1:
        yield node, "power"


def _hazard(
    stable: sp.Basic,
    kind: str,
    defaults: dict,
    rewriter: Rewriter,
    symbolic: SymbolicLoss,
    target,
):
    """(what the code computes, what must not be 0 in it) for a hazard whose computed form is
    `stable`; (None, None) where nothing must be (the rewrites took the `log` away, the exponent is
    not negative at the parameters' defaults, the power is not of the base as written: SymPy's
    `sigmoid(x)^-2` for `(1 / sigmoid(x))^2`, whose divisor is warned of)."""
    if kind == "divisor":
        return construct.reciprocal(stable), stable
    if kind == "arc":
        # (its gradient divides by sqrt(1 - x^2): `arcsin(sigmoid(x))` is NaN there from x of about 17;
        # SymPy's `arcsin(-x)` is `-asin(x)`, its `arccos(-x)` `pi - acos(x)`: the change review)
        # (the arc at the top, not one inside its argument: `arcsin(0.5 * arcsin(sigmoid(x)))` was
        # warned of twice, as the set of atoms came; the second review)
        terms = [
            t.as_coeff_Mul()[1] for t in sp.Add.make_args(stable) if not t.is_number
        ]
        if len(terms) == 1 and isinstance(terms[0], (sp.asin, sp.acos)):
            return terms[0], 1 - terms[0].args[0] ** 2
        return None, None
    if kind in ("log", "log1p"):
        # (a log of a product is a sum of logs, the factors other than sigmoids, softmaxes and exps in
        # one of them: `log(sigmoid(x) * softplus(2 x))` is `log(softplus(2 x)) - softplus(-x)`)
        # (and that log in its stable form, a `log1p(u)` whose 1 + u must not be 0: `log(sigmoid(-x)
        # * (1 - tanh(x)))` is `log1p(-tanh(x)) - softplus(x)`)
        for term in (t.as_coeff_Mul()[1] for t in sp.Add.make_args(stable)):
            if isinstance(term, sp.log):
                return term, term.args[0]
            if isinstance(term, sf.Log1p) and (
                stable is not term or stable.has(*_BOUNDED, *_SATURATING)
            ):
                return term, 1 + term.args[0]
        return None, None
    if not isinstance(stable, sp.Pow):
        return None, None
    # (in floats: SymPy took `sin(cosh(m))` at m = 1e20 to the precision of its argument, a hang; a review)
    exponent = evaluate(stable.exp, defaults)
    base = target.base if isinstance(target, nodes.Power) else target.args[0]
    if (exponent < 0 or 0 < exponent < 1) and rewriter.rewrite(
        node_expr(symbolic, base)
    ) == stable.base:
        return stable, stable.base
    return None, None


def _root_at_zero(argument: sp.Basic, env: dict) -> tuple[float, float] | None:
    """(y_true, y_pred) of a probe where the base `argument` of a root or fractional power is 0 even
    in float64, where the derivative of the root, `u' / (2 sqrt(u))`, may be 0 over 0 (or u' over
    0): NaN (`sqrt(1 - tanh(x)^2)` from x of about 10, `sqrt(softplus(x))` from -90; unwarned, two
    reviews), unless SymPy's form of it cancels (`_finite_derivative`);
    else None. A root's value at 0 is 0, and `sqrt(sigmoid(x))`, computed as `exp(-softplus(-x) /
    2)`, is not a power at all."""
    value = compiled(argument)
    return next(
        ((t, p) for t, p in _PROBES if value({**env, Y_TRUE: t, Y_PRED: p}) == 0.0),
        None,
    )


def _finite_derivative(
    symbolic: SymbolicLoss, target: nodes.Node, env: dict, at: tuple[float, float]
) -> bool:
    """Whether the derivative along y_pred of the root `target`, as SymPy writes it (the fused
    gradient's form), is finite at `at`, where its base is 0: that of the focal loss's `(1 -
    sigmoid(x))^0.5` keeps a power of the base, `-0.5 sigmoid(-x)^0.5 sigmoid(x)`, 0 there, while
    `sqrt(softplus(x))`'s is `sigmoid(x) / (2 sqrt(softplus(x)))`, 0 over 0 (the second review)."""
    derivative = sp.diff(node_expr(symbolic, target), Y_PRED)
    return math.isfinite(compiled(derivative)({**env, Y_TRUE: at[0], Y_PRED: at[1]}))


def _saturated(
    expr: sp.Basic | None, env: dict, budget: _Budget
) -> tuple[str, float, float] | None:
    """(function, y_true, y_pred) where `expr` is 0 in float32 because that function in it saturates:
    `expr` a product or positive power of such functions (either branch of a `where`); else None."""
    if expr is None:
        return None
    if isinstance(expr, sp.Mul):
        return next(
            (
                found
                for f in expr.args
                if (found := _saturated(f, env, budget)) is not None
            ),
            None,
        )
    if isinstance(expr, sp.Pow) and expr.exp.is_number and float(expr.exp) > 0:
        return _saturated(expr.base, env, budget)
    if isinstance(expr, sf.ReduceSum) and isinstance(expr.args[0], sp.Mul):
        # `sum(onehot(y_true) * x)` is x at the label: 0 where x is (the domain check no longer
        # takes such a sum for one that may reach 0 over the reals)
        factors = expr.args[0].args
        if any(isinstance(f, sf.OneHot) for f in factors):
            return _saturated(
                sp.Mul(*(f for f in factors if not isinstance(f, sf.OneHot))),
                env,
                budget,
            )
    if isinstance(expr, sf.Softmax):
        # its entries are 0 where the logits lie further apart than exp's range: the probe points
        # stand in for the columns of a row
        if not budget.spend(expr.args[0]):
            return None
        logit = compiled(expr.args[0])
        values = [
            v
            for t, p in _PROBES
            if math.isfinite(v := logit({**env, Y_TRUE: t, Y_PRED: p}))
        ]
        return (
            ("softmax", 0.0, 200.0)
            if values and max(values) - min(values) > _EXP_RANGE
            else None
        )
    if type(expr) not in _SATURATING:
        return None
    name, below = _SATURATING[type(expr)]
    if not budget.spend(expr.args[0]):
        return None
    argument = compiled(expr.args[0])
    for t, p in _PROBES:
        value = argument({**env, Y_TRUE: t, Y_PRED: p})
        if math.isfinite(value) and value < below or value == -math.inf:
            return (name, t, p)
    return None


# Functions that float32 rounds to -1 or 1 far from 0, so that `1 - tanh(x)` or `1 + erf(x)` is 0
# there: a log or divisor of a sum that holds one is probed as `_vanishes` says (`log(0.5 (1 +
# erf(x / sqrt(2))))`, a probit's log, was -inf from x of about -5.5, unwarned; a review).
_BOUNDED = (hyperbolic.tanh, sp.erf)

_BOUNDED_HINTS = {
    "tanh": "write `1 + tanh(x)` as `2*sigmoid(2*x)` (`1 - tanh(x)^2` as `4*sigmoid(2*x)*sigmoid(-2*x)`),"
    " whose log lossdsl computes stably, or add eps to it",
    "erf": "add eps to it, or use a logistic link (`sigmoid`), whose log lossdsl computes stably",
}

# The saturating functions a warning may name, as a program writes them.
_WRITTEN = ("sigmoid", "softmax", "softplus", "exp", "tanh", "erf")

# The functions that a factor left in a log beside the heads (`_vanishes`) is named after.
_NAMED = {
    sp.exp: "exp",
    sf.Sigmoid: "sigmoid",
    sf.Softplus: "softplus",
    hyperbolic.tanh: "tanh",
    sp.erf: "erf",
}


def _vanishes(
    expr: sp.Basic, env: dict, budget: _Budget
) -> tuple[str, float, float] | None:
    """(function, y_true, y_pred) where `expr`, the factors a log of a product keeps beside its
    sigmoids, softmaxes and exps, is 0 at a probe point though not at y_pred = 0, and holds one of
    `_NAMED` of y_pred (the first is named); else None. `log(sigmoid(-x) * (1 - tanh(x)))` is
    `log(1 - tanh(x)) - softplus(x)`, -inf from x of about 10 in float32: warned of through its
    sigmoid before the log was taken apart, and not after (the change review). (In float64: a zero
    of float32 only, `erf(exp(x))` at x = -200, is found at -1e4.)"""
    names = [
        name
        for f in sp.preorder_traversal(expr)
        if (name := _NAMED.get(type(f))) and f.has(Y_PRED)
    ]
    if not names or not budget.spend(expr):
        return None
    value = compiled(expr)
    for t, p in _PROBES:
        if (
            value({**env, Y_TRUE: t, Y_PRED: p}) == 0.0
            and value({**env, Y_TRUE: t, Y_PRED: 0.0}) != 0.0
        ):
            return names[0], t, p
    return None


# kind: (what must not be 0, what a 0 does, the advice)
_CONSEQUENCES = {
    "log": (
        "the argument",
        "giving -inf or NaN",
        "write it with `log_softmax` or `softplus` (`log(sigmoid(x))` is computed as `-softplus(-x)`),"
        " or add eps to it",
    ),
    "log1p": ("`1 + x` of its argument x", "giving -inf or NaN", "add eps to it"),
    "power": (
        "the base",
        "where the power or its gradient is infinite or NaN",
        "add eps to it",
    ),
    "root": (
        "the base",
        "where the gradient of the root is 0 over 0 (NaN)",
        "add eps to it",
    ),
    "divisor": (
        "the divisor",
        "dividing by 0 (inf or NaN)",
        "add eps to it or use maximum(..., eps)",
    ),
    "arc": (
        "`1 - x^2` of its argument x",
        "where its gradient divides by 0 (inf or NaN)",
        "keep the argument off -1 and 1, e.g. `(1 - eps) * x`",
    ),
}


# A log of `1 - u` whose u rounds to 1 where a sigmoid, exp or softplus in it saturates (`log(1 -
# sigmoid(x)^2)`, -inf from x of about 17 in float32, was not warned of; a review).
_COMPLEMENT_HINT = (
    "take the log of `1 - p` apart from the rest (`log(1 - p^2)` as `log(1 - p) + log(1 + p)`):"
    " `log(1 - sigmoid(x))` is computed as `-softplus(x)`, finite at any x"
)


def _warning(
    resolved: Resolved,
    node: nodes.Node,
    kind: str,
    point: tuple[str, float, float],
    *,
    complement: bool = False,
) -> Diagnostic:
    """The warning at `node`; `complement`: the log is of `1 + u`, a `log1p(u)` in the code."""
    function, t, p = point
    written = resolved.text(node)
    if function != "softmax" and not re.search(rf"\b{function}\(", written):
        # (not a softmax's: its warning speaks of logits apart, whatever spells it)
        # (named as the program writes it: the code's form of `arcsin(sqrt(sigmoid(x)))` holds an
        # `exp`, and the warning said its `exp` saturates; the second review)
        function = next(
            (f for f in _WRITTEN if re.search(rf"\b{f}\(", written)), function
        )
    what, consequence, hint = _CONSEQUENCES[kind]
    if kind == "root" and isinstance(node, nodes.Call):
        what = "the argument"  # (of `sqrt(x)`; the base of `x^0.5`)
    if complement and function in ("sigmoid", "exp", "softplus"):
        hint = _COMPLEMENT_HINT
    elif kind == "log" and function in ("sigmoid", "softmax"):
        hint = logits_spelling(resolved, function)  # (eps is no cure there)
    elif kind in ("log", "log1p") and function in _BOUNDED_HINTS:
        hint = _BOUNDED_HINTS[function]
    where = (
        "for logits about 200 apart"
        if function == "softmax"
        else f"(e.g. at y_true={t:g}, y_pred={p:g})"
    )
    message = (
        f"`{resolved.text(node)}`: in float32 {what} rounds to 0 where its `{function}` saturates {where},"
        f" {consequence}; {hint}"
    )
    span = node.span
    return Diagnostic.at("warning", "float32-zero", message, span, resolved.source)
