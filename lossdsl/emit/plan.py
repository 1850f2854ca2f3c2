"""Stage 5 (Keras), the plan: what call() computes, before any text is printed.

Input: the stable form of a program (`lossdsl.rewrites`). Output: its bindings
and common subexpressions as `Local`s in an order that defines each before use
(`plan`), with the idioms that have a fused `keras.ops` kernel replaced by heads
for them (`idioms`), `abs` and `sign` of differences in `e`'s orientation
(`oriented`), and, for code spelled for XLA, the exponentials both passes share
(`shared_exponentials`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from lossdsl import rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.construct import folded_condition
from lossdsl.emit.fused import cross_entropy_parts, live_symbols
from lossdsl.errors import LossLimitError
from lossdsl.rewrites import equals_number, reshared
from lossdsl.symbolic import Y_PRED, Y_TRUE
from lossdsl.symfuncs import is_literal

# Shapes of values, as in semantics: constant, constant vector, per sample, per element.
CONST, VECTOR, SAMPLE, ELEM = "const", "vector", "sample", "elem"
# How a per-sample value is held: with its last axis kept (size 1) or dropped.
KEPT, DROPPED = "kept", "dropped"
AXIS_FUNCTIONS = (sf.Softmax, sf.LogSoftmax, sf.Normalize)


@dataclass
class Local:
    """A local variable of call(): a binding or a common subexpression."""

    symbol: sp.Symbol
    value: sp.Basic
    hint: str  # the binding's name, or "" for a temporary
    name: str = ""
    form: str = DROPPED


@dataclass(frozen=True)
class Plan:
    """What call() computes, in order: `locals[:forward_count]` is what the result needs;
    up to `gradient_count`, what y_pred's gradient needs besides (None when not fused); the
    rest, what only y_true's gradient (`target`: None when it is not printed on its own) needs,
    in the backward pass."""

    locals: list[Local]
    result: sp.Basic
    gradient: sp.Basic | None
    target: sp.Basic | None
    forward_count: int
    gradient_count: int


# The heads below keep their leading underscore although other modules read them: SymPy
# orders a product's factors by class name, so the name decides the printed order.


class _SoftmaxCrossEntropy(sp.Function):
    """`-sum(onehot(y_true) * log_softmax(x))` over the last axis: `keras.ops.categorical_crossentropy(
    onehot, x, from_logits=True)`, the backend's fused kernel (TensorFlow's softmax cross-entropy),
    which XLA compiles to faster code than log_softmax, a product and a sum (bench/run.py)."""

    nargs = 2
    is_real = True


class _OrientedAbs(sp.Function):
    """`abs(y_true - ...)` kept in that orientation through common subexpression elimination.

    In a fused call() the gradient holds `sign(y_pred - y_true)`, and CSE would hand the forward
    pass's `abs` the same temporary, `y_pred - y_true`: the value is the same, but on JAX, which
    differentiates the forward pass, the gradient of abs at 0 is a convention that follows the
    orientation (see `KerasPrinter._print_Abs`).
    """

    nargs = 1
    is_real = True


class _OrientedSign(sp.Function):
    """`sign(y_true - ...)`, kept in that orientation (SymPy writes `-sign(y_pred - y_true)`), so
    that the gradient of `abs(e)` shares `y_true - y_pred` with the forward pass."""

    nargs = 1
    is_real = True


def oriented(expr: sp.Basic) -> sp.Basic:
    """`expr` with `abs` and `sign` of differences in `e`'s orientation, `y_true - y_pred`."""

    def flips(node: sp.Basic) -> bool:
        return (
            isinstance(node, (sp.Abs, sp.sign))
            and e_oriented(node.args[0]) is not node.args[0]
        )

    def flipped(node: sp.Basic) -> sp.Basic:
        if isinstance(node, sp.Abs):
            return _OrientedAbs(-node.args[0])
        return -_OrientedSign(-node.args[0])

    return rebuild.replaced(expr, flips, flipped) if expr.has(sp.Abs, sp.sign) else expr


def reads_a_reduction(expr: sp.Basic, bindings) -> bool:
    """`expr` reads a reduction over the last axis, directly or through the bindings.

    (Binding by binding: inlined, a binding read twice at each of n levels is 2^n copies.)
    """
    reads: dict[sp.Basic, bool] = {}
    for _, symbol, value in bindings:
        if symbol is not None:
            reads[symbol] = value.has(*sf.REDUCTIONS) or any(
                reads.get(s, False) for s in value.free_symbols
            )
    return expr.has(*sf.REDUCTIONS) or any(
        reads.get(s, False) for s in expr.free_symbols
    )


def numeric_factor(expr: sp.Basic) -> tuple[sp.Number, sp.Basic]:
    """`(c, rest)` with `expr = c * rest` and the number `c` taken out, `rest` in `e`'s orientation.

    SymPy distributes a number over a sum (`-2 (y_true - y_pred)` is `2 y_pred - 2 y_true`);
    printed so, each element takes two products, where the factor belongs to the upstream
    gradient (one value per sample) and the difference is `e`, which the forward pass has
    computed already. MSE's step under XLA: 1.17 ms -> 0.87 ms (Keras 0.94 ms). Not taken
    for a gradient that reads a reduction (`reads_a_reduction`): there the factor was on
    per-sample terms already, and moving it cost the Dice loss kernels (0.99x -> 1.1x Keras
    under tf.function).
    """
    if isinstance(expr, sp.Mul):
        factor, rest = expr.as_coeff_Mul()
        return (
            (factor, rest)
            if factor.is_Number and not equals_number(factor, 1.0)
            else (sp.Integer(1), expr)
        )
    if not isinstance(expr, sp.Add):
        return sp.Integer(1), expr
    terms = [term.as_coeff_Mul() for term in expr.args]
    size = abs(terms[0][0])
    if equals_number(size, 1.0) or any(
        abs(c) != size or rest.is_Number for c, rest in terms
    ):
        return sp.Integer(1), expr
    rest = sp.Add(*(r if c > 0 else -r for c, r in terms))
    oriented = e_oriented(rest)
    return (-size, oriented) if oriented is not rest else (size, rest)


def e_oriented(arg: sp.Basic) -> sp.Basic:
    """`-arg` where `arg` is a difference with y_true subtracted (`y_pred - y_true`), else `arg`.

    The value of `abs` or `sign` does not care, but the gradient at 0 is a backend convention,
    so the printed difference keeps `e`'s orientation, `y_true - y_pred`, as Keras writes it.
    """
    if (
        isinstance(arg, sp.Add)
        and has_negative_coefficient(arg.coeff(Y_TRUE))
        and isinstance(-arg, sp.Add)
    ):
        return -arg
    return arg


def idioms(expr: sp.Basic, bound: dict[sp.Symbol, sp.Basic] | None = None) -> sp.Basic:
    """`expr` with the idioms that have a fused `keras.ops` function replaced by a head for it.
    `bound`: each binding's symbol and value, for what `expr` reads through them."""
    if not expr.has(
        sf.LogSoftmax
    ):  # a `has` walk costs less than a `replace`, which finds none
        return expr
    bound = bound or {}
    return rebuild.replaced(
        expr,
        lambda e: _cross_entropy_parts(e, bound) is not None,
        lambda e: -_SoftmaxCrossEntropy(*_cross_entropy_parts(e, bound)),
    )


def _cross_entropy_parts(
    expr: sp.Basic, bound: dict
) -> tuple[sp.Basic, sp.Basic] | None:
    """(t, x) where `expr` is `sum(t * log_softmax(x))` with `t = onehot(y_true)` and `x` one
    logit per class."""
    found = cross_entropy_parts(expr)
    if found is None:
        return None
    labels, logits = found
    # One-hot labels only: the fused kernel's gradient, softmax(x) - t, is the gradient of the
    # formula only where each row of t sums to 1 (for t = 0 it is softmax(x), not 0), and that
    # is known of `onehot(y_true)` (of a valid class id), not of labels in general.
    if labels != sf.OneHot(Y_TRUE):
        return None
    # Logits of y_pred's shape only: one value per sample (`mean(y_pred) + 0*y_pred`, which SymPy
    # folds to the mean) is C equal logits to the formula and one to the kernel, which took it for
    # one class (a wrong value, or an error for a class id above 0; a review).
    if not _per_element(logits, bound):
        return None
    return labels, logits


def _per_element(expr: sp.Basic, bound: dict) -> bool:
    """Whether `expr` reads y_pred outside every reduction (directly, through a function along the
    last axis, or through a binding): its code then has y_pred's shape."""
    return any(
        node == Y_PRED for node in subtrees.outside(expr, sf.REDUCTIONS, follow=bound)
    )


def plan(bindings, result, gradient=None, target=None) -> Plan:
    """Bindings and common subexpressions as locals, in an order that defines each before use
    (`Plan`)."""
    # Re-share: where a later expression holds a binding's value verbatim, read the binding.
    statements, (result, gradient, target) = reshared(
        bindings, result, gradient, target
    )
    outputs = [result] if gradient is None else [result, gradient]
    # Keep only the bindings that the result (or its gradients) reads, directly or through others.
    read = [*outputs, *([target] if target is not None else [])]
    live = live_symbols(
        statements, set().union(*(output.free_symbols for output in read))
    )
    forward_live = live_symbols(statements, set(result.free_symbols))
    kept = [
        (name, symbol, value) for name, symbol, value in statements if symbol in live
    ]
    temporaries = sp.numbered_symbols("t", cls=sp.Dummy)
    # Max and Min come back from cse unevaluated (SymPy would compare all their arguments again).
    replacements, reduced = rebuild.cse(
        [value for _, _, value in kept] + outputs, symbols=temporaries
    )
    # A repeated constant (`cos(1)`, `-pi`) is no subexpression worth a local: put it back as a number.
    numbers = {symbol: value for symbol, value in replacements if is_literal(value)}
    if numbers:
        replacements = [
            (s, rebuild.substitute(value, numbers))
            for s, value in replacements
            if s not in numbers
        ]
        reduced = [rebuild.substitute(value, numbers) for value in reduced]
    kept, replacements, reduced, aliases = _without_aliases(kept, replacements, reduced)
    if target is not None:
        target = rebuild.substitute(target, aliases)
    if gradient is not None:
        bound = {
            symbol: value for (_, symbol, _), value in zip(kept, reduced, strict=False)
        }
        replacements, reduced = _share_denominators(replacements, reduced, bound)
        replacements, reduced = _divided_in_forward(
            replacements, reduced, bound, kept, forward_live
        )
        # What the forward pass reads keeps its locals (a loss written with `1 / d^2` computes it so).
        forward = [
            value
            for (_, symbol, _), value in zip(kept, reduced, strict=False)
            if symbol in forward_live
        ]
        reads = set().union(
            *(value.free_symbols for value in [*forward, reduced[len(kept)]])
        )
        keep = live_symbols(
            [(None, symbol, value) for symbol, value in replacements], reads
        )
        replacements, reduced = _divided_at_each_use(replacements, reduced, keep)
    definitions = {symbol: value for symbol, value in replacements}
    ordered: list[Local] = []
    done: set[sp.Basic] = set()

    def symbols_in_order(expr: sp.Basic) -> list[sp.Basic]:
        # Preorder along `.args`: `sympy.preorder_traversal` walks Max, Min, And and Or in the order
        # of their argument sets, a hash order that changed the locals' order from compile to compile.
        found: dict[sp.Basic, None] = {}
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, sp.Symbol):
                found.setdefault(node, None)
            stack.extend(reversed(node.args))
        return list(found)

    def need(expr: sp.Basic) -> None:
        for symbol in symbols_in_order(expr):
            if symbol in definitions and symbol not in done:
                need(definitions[symbol])
                done.add(symbol)
                ordered.append(Local(symbol, definitions[symbol], ""))

    def define(forward: bool) -> None:
        # The forward pass defines what the result reads; the backward pass, the rest.
        for (name, symbol, _), value in zip(kept, reduced[: len(kept)], strict=True):
            if (symbol in forward_live) == forward:
                need(value)
                done.add(symbol)
                ordered.append(Local(symbol, value, name))

    define(forward=True)
    result = reduced[len(kept)]
    need(result)
    forward_count = len(ordered)
    if gradient is None:
        need = define = (
            None  # `need` calls itself through its closure: cleared, as in `derivative`
        )
        return Plan(ordered, result, None, None, forward_count, forward_count)
    define(forward=False)
    gradient = reduced[len(kept) + 1]
    if target is not None:
        # Planned after the forward pass, so that it is what it is without the target (their common
        # subexpressions would change it: MAPE's `100 |e|` taken out of its mean); it reads the
        # temporaries where it holds their values, and shares what it can with y_pred's gradient.
        target = _reuse_temporaries(target, replacements)
        extra, (gradient, target) = rebuild.cse([gradient, target], symbols=temporaries)
        extra, (gradient, target) = _divided_at_each_use(
            extra, [gradient, target], set()
        )
        definitions.update(extra)
    need(gradient)
    gradient_count = len(ordered)
    if target is not None:
        need(target)
    need = define = (
        None  # `need` calls itself through its closure: cleared, as in `derivative`
    )
    return Plan(ordered, result, gradient, target, forward_count, gradient_count)


def _without_aliases(
    kept: list, replacements: list, reduced: list
) -> tuple[list, list, list, dict]:
    """A binding made by a rewrite whose value is, after CSE, a symbol (a local, an input, a
    parameter) is that symbol.

    (`softplus(x) + softplus(-x)`: the pair's binding holds its coefficient, `2 step(x) - 1`, and
    CSE gives that to a temporary, which the softplus's `-|x|` reads too; printed, the binding was
    `t3 = t1`.) A binding the user wrote keeps its name, whatever it holds. Returns the locals
    without them, and the map from each such binding to the symbol that stands for it.
    """
    aliases: dict[sp.Basic, sp.Basic] = {}
    for (name, symbol, _), value in zip(kept, reduced, strict=False):
        if not name and isinstance(value, sp.Symbol):
            aliases[symbol] = aliases.get(value, value)
    if not aliases:
        return kept, replacements, reduced, aliases
    rest = [
        (binding, value)
        for binding, value in zip(kept, reduced, strict=False)
        if binding[1] not in aliases
    ]
    outputs = [rebuild.substitute(value, aliases) for value in reduced[len(kept) :]]
    replacements = [
        (symbol, rebuild.substitute(value, aliases)) for symbol, value in replacements
    ]
    return (
        [binding for binding, _ in rest],
        replacements,
        [rebuild.substitute(value, aliases) for _, value in rest] + outputs,
        aliases,
    )


def repeated_divisor(factor: sp.Basic) -> bool:
    """`d^-n` for n from 2 to 4 and a `d` that is not a number: in the backward pass, divided by `d`
    n times rather than by `d^n` (keras_printer's `_divided_before_squaring`)."""
    return (
        factor.is_Pow
        and factor.exp.is_Integer
        and -4 <= factor.exp <= -2
        and not factor.base.is_number
    )


def _divided_at_each_use(
    replacements: list, outputs: list, keep: set
) -> tuple[list, list]:
    """The temporaries of `replacements` that hold `d^-n` (`repeated_divisor`) put back into their
    uses, except those in `keep` (what the forward pass reads).

    cse shares the quotient rule's `1 / d^2` between the terms of a gradient, or between y_pred's
    and y_true's, as a local; written so it overflows where `d` does not (`1 / square(t1)` at
    y_pred = 45 for `exp(y_pred) / (1 + exp(y_pred) + y_true)` in float32: NaN where autodiff,
    which divides twice, is finite). Put back, each use divides by `d` in turn.
    """
    inline = {
        s: value
        for s, value in replacements
        if s not in keep and repeated_divisor(value)
    }
    if not inline:
        return replacements, outputs
    replacements = [
        (s, rebuild.substitute(value, inline))
        for s, value in replacements
        if s not in inline
    ]
    return replacements, [rebuild.substitute(value, inline) for value in outputs]


def _reuse_temporaries(expr: sp.Basic, replacements: list) -> sp.Basic:
    """`expr` reading the temporaries of `replacements` (cse's, in order) where it holds their values."""
    full: dict[sp.Basic, sp.Basic] = {}
    for symbol, value in replacements:
        full[symbol] = rebuild.substitute(value, full)
    largest_first = sorted(full.items(), key=lambda item: -sp.count_ops(item[1]))
    return rebuild.substitute_in_turn(
        expr, [(value, symbol) for symbol, value in largest_first if not value.is_Atom]
    )


def shared_exponentials(bindings, result, gradient, target=None):
    """Spelled for XLA: the forward and backward passes of fused code share one exponential.

    * `softplus(x)` forward and `sigmoid(x)` backward: with `u = exp(-|x|)`, softplus is
      `relu(x) + log1p(u)` and sigmoid is `where(x >= 0, 1, u) / (1 + u)`, both stable for any x
      (the binary cross-entropy on logits); `relu` and `|x|` as selections on `x >= 0`;
    * `log_softmax(x)` forward and `softmax(x)` (as `exp(log_softmax(x))`) backward: with
      `z = x - max(x)` and `s = sum(exp(z))`, they are `z - log(s)` and `exp(z) / s` (the
      categorical cross-entropy on logits, any labels).

    `keras.ops.softplus`, `sigmoid`, `log_softmax` and `softmax` each compute their own
    exponential; written out, one `exp` serves both passes. Measured (bench/run.py, 8192 x 128):
    the binary cross-entropy on logits 1.25 -> 1.04 of Keras's time under XLA, the categorical
    one 1.10 -> 0.89; faster without XLA too. Not the default only because LANGUAGE.md's rewrite
    table names `softplus` and `log_softmax` as what is emitted.
    """
    forward = [value for _, _, value in bindings] + [result]
    softplus = {f.args[0] for value in forward for f in value.atoms(sf.Softplus)}
    log_softmax = {f.args[0] for value in forward for f in value.atoms(sf.LogSoftmax)}
    gradients = [gradient] if target is None else [gradient, target]
    logistic = {f.args[0] for g in gradients for f in g.atoms(sf.Sigmoid)} & softplus
    normalized = {
        f.args[0].args[0]
        for g in gradients
        for f in g.atoms(sp.exp)
        if isinstance(f.args[0], sf.LogSoftmax)
    }
    normalized &= log_softmax
    if not logistic and not normalized:
        return bindings, result, gradient, target
    rules: dict[sp.Basic, sp.Basic] = {}
    for x in logistic:
        if (
            sf.negative_abs_argument(x) is not None
        ):  # `softplus_pair`'s softplus(-|x|): x <= 0
            u = sp.exp(x)
            rules[sf.Softplus(x)] = sf.Log1p(u)
            rules[sf.Sigmoid(x)] = u / (1 + u)
            continue
        # Both kinks on the side x >= 0, so that autodiff through the written-out form (JAX;
        # PyTorch for per-sample losses) gives softplus'(0) = 1/2 whatever the backend takes
        # for relu'(0) and abs'(0) (JAX: 0 and 1, which made it -1/2).
        # (The condition folded here, as a `where`'s own: SymPy's pair would search a `where` in x
        # for a condition that always holds, solving its comparisons: a minute for periodic ones.)
        try:
            up = folded_condition(x >= 0, exact=True)
        except (
            LossLimitError
        ):  # (x sums more `where`s than a condition may fold: left to Keras's own)
            continue
        u = sp.exp(sf.Where((-x, up), (x, True)))
        rules[sf.Softplus(x)] = sf.Where((x, up), (0, True)) + sf.Log1p(u)
        rules[sf.Sigmoid(x)] = sf.Where((1, up), (u, True)) / (1 + u)
    for x in normalized:
        z = x - sf.ReduceMax(x)
        total = sf.ReduceSum(sp.exp(z))
        rules[sp.exp(sf.LogSoftmax(x))] = sp.exp(z) / total
        rules[sf.LogSoftmax(x)] = z - sp.log(total)
    bindings = [
        (name, symbol, rebuild.substitute(value, rules))
        for name, symbol, value in bindings
    ]
    target = None if target is None else rebuild.substitute(target, rules)
    return (
        bindings,
        rebuild.substitute(result, rules),
        rebuild.substitute(gradient, rules),
        target,
    )


def _share_denominators(
    replacements: list, reduced: list, bound: dict
) -> tuple[list, list]:
    """Fused code: a shared `c / d` (c a number, d a full tensor) becomes a shared `d`, divided at each use.

    Under XLA a value that both the forward and the backward pass read is written to memory
    and read back when it is costly to compute, and a division is (XLA does not repeat it in
    each pass); a maximum, an absolute value or a sum it repeats for free. The mean absolute
    percentage error's `100 / max(|y_true|, eps)` so cost 30-40% more than Keras's loss under
    XLA; dividing by the shared `max(|y_true|, eps)` at each use costs the same number of
    operations without XLA, and nothing extra with it. A per-sample `d` (Dice's sums) keeps its
    reciprocal: one value per row costs nothing to keep, and a product is cheaper than a division
    of every element. `bound`: the binding symbols and their values, for the shapes.
    """
    definitions = {**bound, **dict(replacements)}
    scaled = {}
    for symbol, value in replacements:
        if (quotient := _number_over(value)) is None:
            continue
        # Not a power with a symbolic exponent (`2^(-x)`, whose `1 / 2^x` overflows where it is 0).
        powers = [
            f for f in sp.Mul.make_args(quotient[1]) if f.is_Pow and not f.exp.is_Number
        ]
        if not powers and _elementwise(quotient[1], definitions):
            scaled[symbol] = quotient
    if not scaled:
        return replacements, reduced
    # A denominator that is already a name (`1 / t0`) is divided by at each use: a local for it
    # would be a second name for the same value (`t1 = t0`).
    uses = {
        symbol: numerator / (denominator if denominator.is_Symbol else symbol)
        for symbol, (numerator, denominator) in scaled.items()
    }
    replacements = [
        (
            symbol,
            rebuild.substitute(scaled[symbol][1] if symbol in scaled else value, uses),
        )
        for symbol, value in replacements
        if not (symbol in scaled and scaled[symbol][1].is_Symbol)
    ]
    return replacements, [rebuild.substitute(value, uses) for value in reduced]


def _divided_in_forward(
    replacements: list, reduced: list, bound: dict, kept: list, forward_live: set
):
    """Fused code: the forward pass divides by a per-sample `d` where cse shared `c / d` with the backward.

    The backward pass multiplies every element by the reciprocal (`_share_denominators` keeps it);
    the forward pass, which reads it a few times per row, divides as the loss is written: `t0 * (2 / t1)`
    is `0 * inf = nan` where `2 / t1` overflows and `2 t0 / t1` is 0 (Dice and Tversky in float16 on a
    row of zeros, `2 / eps`; Keras's give 1). `reduced`: the bindings' values (as `kept`), the result,
    the gradients.
    """
    definitions = {**bound, **dict(replacements)}
    reciprocals = {}
    for symbol, value in replacements:
        quotient = _number_over(value)
        if quotient is not None and not _elementwise(quotient[1], definitions):
            reciprocals[symbol] = value
    forward = [i for i, (_, symbol, _) in enumerate(kept) if symbol in forward_live] + [
        len(kept)
    ]
    reads = set().union(*(reduced[i].free_symbols for i in forward))
    temporaries = live_symbols(
        [(None, symbol, value) for symbol, value in replacements], reads
    )
    put_back = {
        symbol: value for symbol, value in reciprocals.items() if symbol in temporaries
    }
    if not put_back:
        return replacements, reduced
    replacements = [
        (
            symbol,
            rebuild.substitute(value, put_back) if symbol in temporaries else value,
        )
        for symbol, value in replacements
    ]
    forward = set(forward)
    return replacements, [
        rebuild.substitute(value, put_back) if i in forward else value
        for i, value in enumerate(reduced)
    ]


def _number_over(value: sp.Basic) -> tuple[sp.Number, sp.Basic] | None:
    """(c, d) for a value `c / d`, c a number and d not; None for any other value."""
    if not isinstance(value, (sp.Mul, sp.Pow)):
        return None
    numerator, denominator = value.as_numer_denom()
    return (
        (numerator, denominator)
        if numerator.is_Number and not denominator.is_number
        else None
    )


def _elementwise(expr: sp.Basic, definitions: dict) -> bool:
    """`expr` has a value per element: it reads y_true or y_pred outside a reduction over the last axis."""
    stack = [expr]
    seen: set[sp.Basic] = set()
    while stack:
        node = stack.pop()
        if node in seen or isinstance(node, sf.REDUCTIONS):
            continue
        seen.add(node)
        if node in (Y_TRUE, Y_PRED):
            return True
        if node in definitions:
            stack.append(definitions[node])
        stack.extend(node.args)
    return False


def has_negative_coefficient(expr: sp.Basic) -> bool:
    coefficient, _ = expr.as_coeff_Mul()
    return bool(coefficient.is_negative)
