"""Numerically stable rewrites: `SymbolicLoss` -> bindings and result ready for code generation.

Input: the SymPy form of a program (`SymbolicLoss.bindings` and `.result`,
elementwise heads such as `Sigmoid` kept whole). Output: the same bindings
and result with the forms of LANGUAGE.md's table replaced by stable ones:

    log(sigmoid(x))       -> -softplus(-x)
    log(1 - sigmoid(x))   -> -softplus(x)
    log(softmax(x))       -> log_softmax(x)
    log(sum(exp(x)))      -> logsumexp(x)
    log(k mean(exp(x)))   -> logsumexp(x) + log(k) - log(C)   (k > 0, a number, x free of y_true and
                                                     lists; also log(k sum(exp(x))): additions)
    log(1 + exp(x))       -> softplus(x)          (an addition to the table; also log1p(exp(x)),
                                                     log(c + k exp(x)) and log(k exp(a) + m exp(b)))
    a softplus(-x) + b softplus(x) -> where(x >= 0, b, -a) x + (a + b) softplus(-|x|)
                                               (one softplus; an addition)
    c relu(x) + c softplus(-|x|) -> c softplus(x)   (an addition: the stable binary cross-
                                                     entropy as TensorFlow's docs write it; beside
                                                     a term -k x, the pair form above)
    log(1 + x)            -> log1p(x)
    log(k u p^a)          -> log(k u) + a log(p)   for p a sigmoid, softmax or exp (an addition;
                                                     u the other factors, in one log)
    exp(x) - 1            -> expm1(x)          (k exp(x) - k -> k expm1(x), as SymPy orders and distributes it)
    log(cosh(x))          -> x + softplus(-2 x) - log(2)
    log(where(c, a, b))   -> where(c, log(a), log(b))  where each branch's log has a stable form
                                                     free of `log` (sigmoids, softmaxes, numbers > 0)

    1 - sigmoid(x)        -> sigmoid(-x)          (additions: forms that lose their precision
    1 / (1 + exp(-x))     -> sigmoid(x)            or overflow in float32; the log rules then
    exp(x) / (1 + exp(x)) -> sigmoid(x)            apply to what they make, so that a
    exp(x) / sum(exp(x))  -> softmax(x)            written-out cross-entropy becomes Keras's;
                                                   also their powers, as SymPy multiplies them
                                                   out: `exp(2 x) / sum(exp(x))^2`, and
    exp(x) / (1 + exp(x))^2 -> sigmoid(x) sigmoid(-x); `sigmoid(x) - 1` -> `-sigmoid(-x)`,
    log1p(-sigmoid(x))    -> -softplus(x))

    x^2.0, pow(x, 0.5)    -> x^2, x^(1/2)       (an exponent written as a decimal that is
                                                  exactly a whole number or a fraction over 2, 4,
                                                  8 or 16, of at most MAX_EXACT: one form for one
                                                  power, so that `pow(x, 0.5)` and `sqrt(x)` are
                                                  computed once)

    log1p(a) - log1p(b)   -> log1p_difference(a, b)   for a, b >= 0 (an addition: the
                             printer writes it as the two log1p, except where the code is
                             traced for XLA, where it takes one log1p of a quotient >= 0;
                             see `symfuncs.Log1pDiff` and `emit.xla_forms`)

Only code generation sees the result: `CompiledLoss.expr` and the LaTeX keep
what the user wrote.

Bindings: a pattern looks through binding symbols. With `p = sigmoid(y_pred)`,
`log(p)` is rewritten to `-softplus(-y_pred)` although `p` is a separate
binding; the binding itself is left as it is (it stays a named local if
anything else still reads it, and the emitter drops it when nothing does).
Bindings are not inlined wholesale, so the user's names survive in the
generated code.

Limits: the patterns match the forms of the table up to SymPy's canonical
ordering (`1 - sigmoid(x)`, `-sigmoid(x) + 1` and `1 + -sigmoid(x)` are one
form) and through any chain of bindings; they do not look for algebraically
equal forms that SymPy does not produce by itself (`(1 + exp(-x))^-1` is
matched, `2 / (2 + 2 exp(-x))` is not).
`log(1 + x)` becomes `log1p(x)` for any `x`, including `log(1 - p)` for a
probability `p`; this is at least as accurate as what Keras computes.
"""

from __future__ import annotations

import math

import sympy as sp

from lossdsl import construct, hyperbolic, rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss

Binding = tuple[str, "sp.Symbol | None", sp.Basic]


def stable_form(symbolic: SymbolicLoss) -> tuple[list[Binding], sp.Basic]:
    """The bindings and result of `symbolic` with the stable rewrites applied (computed once per
    `SymbolicLoss`, which the front end's cache shares between compiles of one program).

    Returns:
        (bindings, result): bindings as `(name, symbol or None, value)`, in order.
    """
    if symbolic.stable is None:
        symbolic.stable = _rewritten(symbolic)
    bindings, result = symbolic.stable
    return list(bindings), result


# What a binding written out may become, which the rules then look through its name at.
_HEADS = (sf.Sigmoid, sf.Softmax)


def _rewritten(symbolic: SymbolicLoss) -> tuple[tuple[Binding, ...], sp.Basic]:
    exact = [
        (name, symbol, exact_exponents(value))
        for name, symbol, value in symbolic.bindings
    ]
    definitions = {symbol: value for _, symbol, value in exact if symbol is not None}
    rewriter = Rewriter(definitions)
    bindings: list[Binding] = []
    for name, symbol, value in exact:
        value = rewriter.rewrite(value)
        if symbol is not None and (isinstance(value, _HEADS) or _power_of_head(value)):
            # A sigmoid or a softmax, written or written out: later rules look through the name at
            # it as rewritten (`log(p)` of `p = 1 / (1 + exp(-y_pred))` stayed `log(p)`, inf in
            # float32 from y_pred of about 17; and the argument they copied in was the one written,
            # its own logs unrewritten; a review). Its argument is a local of its own, which they
            # read: copied into each, a chain of such bindings doubled at every link (a review of
            # the first version: minutes to emit twelve).
            # (A power of one, `p = 1 / (1 + exp(-x))^2`, as a sigmoid squared: `log(p)` is 2 log(sigmoid).)
            head = value.base if value.is_Pow else value
            head = head.func(*(rewriter.shared(argument) for argument in head.args))
            value = head**value.exp if value.is_Pow else head
            definitions[symbol] = value
        if symbol is not None:
            rewriter.rewritten[symbol] = value
        bindings += rewriter.take_introduced()
        bindings.append((name, symbol, value))
    result = rewriter.rewrite(exact_exponents(symbolic.result))
    return tuple(bindings + rewriter.take_introduced()), result


# How many `where`s deep, written or bound, `branch_complement_rule` pushes a constant.
MAX_PUSHED = 3

# The largest whole exponent written as a number (`x^3.0`) that is taken as a whole number.
MAX_EXACT = 64


def exact_exponents(expr: sp.Basic) -> sp.Basic:
    """`expr` with each power whose exponent is a Float equal to a whole number or a fraction
    over 2, 4, 8 or 16 (of size at most MAX_EXACT) raised to that Integer or Rational: `x^2.0` and
    `x^2`, `pow(x, 0.5)` and `sqrt(x)` are then one SymPy form, which the code computes once. The
    values are the same: such a float is exactly that number (`0.1` is not, and stays).

    Each pass goes once from the leaves up, each distinct power once: the checks take each of a
    program's nested powers exact in turn (97 nested `(... + 1)^-0.5` of the hostile corpus took
    2.7 s when each call rebuilt the whole tree once for each level it reached). Another pass
    follows where SymPy made a new one (`(x y^0.2)^5` is `x^5 y^1.0`; the change review)."""
    for _ in range(8):
        powers = subtrees.atoms(expr, sp.Pow)
        chained = {q for p in powers if _power_of_power(p) for q in (p, p.base)}
        if not any(
            _exact_exponent(power) is not None
            for power in powers
            if power not in chained
        ):
            break
        expr = rebuild.changed_bottom_up(expr, _exact_power, kept=chained)
    return expr


def _power_of_power(power: sp.Pow) -> bool:
    """A fractional power of a fractional power, which SymPy leaves as it is where it cannot tell
    the sign of the base (`(e^1.5)^1.5`; with whole exponents, or a base it knows is not negative,
    it multiplies them out). Its exponents stay as written: raised to a Rational, SymPy works out
    a branch factor for a power of a power, asking of the power below questions that build more
    of the tree below at each level (12 levels of `^1.5`, 72 characters, took 40 s to compile and
    emit; a review of slow compiles). Written with Floats, as the program was first built, it
    asks none of them."""
    return power.base.is_Pow and _fractional(power) and _fractional(power.base)


def _fractional(power: sp.Pow) -> bool:
    exponent = _exact_exponent(power)
    return not (exponent if exponent is not None else power.exp).is_Integer


def _exact_exponent(power: sp.Pow) -> sp.Rational | None:
    exponent = power.exp
    if exponent.is_Float and math.isfinite(exponent) and abs(exponent) <= MAX_EXACT:
        exact = sp.Rational(float(exponent))
        if exact.q <= 16:
            return exact
    return None


def _exact_power(node: sp.Basic) -> sp.Basic | None:
    exact = _exact_exponent(node) if node.is_Pow else None
    return None if exact is None else construct.power(node.base, exact)


def _power_of_head(value: sp.Basic) -> bool:
    return value.is_Pow and value.exp.is_Number and isinstance(value.base, _HEADS)


def reshared_stable_form(symbolic: SymbolicLoss) -> tuple[list[Binding], sp.Basic]:
    """`reshared(*stable_form(symbolic))` as (statements, result): the program as its code computes
    it, computed once per `SymbolicLoss` (seconds for hundreds of bindings, and three checks read it)."""
    if symbolic.reshared is None:
        statements, (result,) = reshared(*stable_form(symbolic))
        symbolic.reshared = (tuple(statements), result)
    statements, result = symbolic.reshared
    return list(statements), result


def reshared(
    bindings: list[Binding], *exprs: sp.Basic | None
) -> tuple[list[Binding], list]:
    """The bindings and `exprs` where each later expression that holds an earlier binding's value
    verbatim reads the binding instead (conditions are inlined by the front half, users repeat
    themselves, and two spellings of one function are one in the stable forms). Condition
    bindings get a symbol of their own, so that they can be named locals too. The emitter
    (emit/plan.py) prints this; the checks judge it (checks/dependence.py, code_constants.py).
    """
    statements = [
        (name, symbol if symbol is not None else sp.Dummy(name), value)
        for name, symbol, value in bindings
    ]
    shared: list[tuple[sp.Basic, sp.Symbol]] = []
    out = []
    for name, symbol, value in statements:
        # Through `substitute`: a large Max or Min is rebuilt without comparing all its arguments again.
        out.append((name, symbol, rebuild.substitute_in_turn(value, shared)))
        if not value.is_Atom:
            shared.insert(0, (value, symbol))
    return out, [
        None if expr is None else rebuild.substitute_in_turn(expr, shared)
        for expr in exprs
    ]


# Nested `log(cosh(x))` rewrites read `x` twice each: written out (`inlined_code_form`), more than
# this many would double the expression too often.
MAX_INLINED_COSH = 6
# The reductions that give 0 over zeros (a logsumexp gives log C).
_OF_ZEROS_ZERO = (sf.ReduceSum, sf.ReduceMean, sf.ReduceMax, sf.ReduceMin)


def inlined_code_form(symbolic: SymbolicLoss) -> sp.Basic | None:
    """The inlined loss (`symbolic.core`) in the stable forms the code computes, or None where
    writing it out would be too large: more than `MAX_INLINED_COSH` `cosh`s, each rewritten into a
    form that reads its argument twice (computed once per `SymbolicLoss`).

    For the checks: two spellings of one function (`log(1 + x)` and `log1p(x)`, through any
    bindings) are one function here, as in the code, where the emitter reads the second from the
    first's local, so a difference of them is 0 here as there.
    """
    if symbolic.inlined is None:
        symbolic.inlined = (_inlined(symbolic),)
    return symbolic.inlined[0]


def _inlined(symbolic: SymbolicLoss) -> sp.Basic | None:
    if len(subtrees.atoms(symbolic.core, sp.cosh)) > MAX_INLINED_COSH:
        return None
    # (with the exponents the code takes: `a = y_pred^2.0`, `b = square(y_pred)`, `a - b` is 0 there; a review)
    form = Rewriter({}, share=False).rewrite(exact_exponents(symbolic.core))
    # A sum, mean, max or min of a difference that cancelled is one of zeros: 0 (SymPy keeps it whole)
    zeros = {
        node: sp.S.Zero
        for node in subtrees.atoms(form, *_OF_ZEROS_ZERO)
        if node.args[0] == 0
    }
    return rebuild.substitute(form, zeros) if zeros else form


class Rewriter:
    """Applies the rewrite rules bottom-up, looking through binding symbols."""

    def __init__(
        self, definitions: dict[sp.Symbol, sp.Basic], share: bool = True
    ) -> None:
        self.definitions = definitions
        self.share = share
        self._done: dict[sp.Basic, sp.Basic] = {}
        self._introduced: list[Binding] = []
        self._shared: dict[sp.Basic, sp.Symbol] = {}
        self._pushing = 0  # how deep within `branch_complement_rule`
        # each binding's value as rewritten (`definitions` holds them as written, but for the
        # sigmoid and softmax bindings `_rewritten` puts there as rewritten)
        self.rewritten: dict[sp.Symbol, sp.Basic] = {}

    def shared(self, expr: sp.Basic) -> sp.Basic:
        """`expr`, or where it is an expression, the symbol of a new binding that holds it.

        For a rewrite that reads its argument twice (`log(cosh(x))`): nested, the copies would
        double the expression at each level (2^22 copies of `e` for 22 levels, which every later
        pass walks), where a binding is written once and read twice.
        """
        if expr.is_Atom or not self.share:
            return expr
        if expr not in self._shared:
            symbol = sp.Dummy("shared", real=True)
            self._shared[expr] = symbol
            self.definitions[symbol] = expr
            self._introduced.append(("", symbol, expr))
        return self._shared[expr]

    def take_introduced(self) -> list[Binding]:
        """The bindings `shared` made since the last call, in order (each reads only earlier ones)."""
        introduced, self._introduced = self._introduced, []
        return introduced

    def rewrite(self, expr: sp.Basic) -> sp.Basic:
        """`expr`, rewritten (children first)."""
        if expr in self._done:
            return self._done[expr]
        if expr.is_Atom or not expr.args:
            result = expr
        else:
            args = [self.rewrite(a) for a in expr.args]
            # Changed means unequal, not another object: the tree may hold equal copies of a part
            # (SymPy's cache hands back an equal object that an earlier program built), and
            # `_done` answers every copy with the first one's result; rebuilt with evaluation, the
            # node was then put into SymPy's canonical form, by what the process compiled before.
            rebuilt = (
                expr if rebuild.unchanged(args, expr.args) else _rebuilt(expr, args)
            )
            if isinstance(expr, sp.Pow) and isinstance(rebuilt, sp.Mul):
                # a power of a product the rules made, which SymPy distributes (`(1 + tanh(x))^-0.5`
                # is `2^-0.5 sigmoid(2 x)^-0.5`): its powers take the power rules (the change review)
                rebuilt = _rebuilt(
                    rebuilt,
                    [
                        self.rule(a) if isinstance(a, sp.Pow) else a
                        for a in rebuilt.args
                    ],
                )
            result = self.rule(rebuilt)
        self._done[expr] = result
        return result

    def resolve(self, expr: sp.Basic) -> sp.Basic:
        """`expr`, or the value of the binding it names (followed through chains of bindings)."""
        seen = 0
        while expr in self.definitions and seen < len(self.definitions):
            expr = self.definitions[expr]
            seen += 1
        return expr

    def computed(self, expr: sp.Basic) -> sp.Basic:
        """`expr`, or the value of the binding it names as the code computes it (rewritten),
        followed through chains of bindings; a binding not yet rewritten, as written."""
        for _ in range(len(self.definitions) + 1):
            if expr in self.rewritten:
                expr = self.rewritten[expr]
            elif expr in self.definitions:
                expr = self.definitions[expr]
            else:
                break
        return expr

    def rule(self, expr: sp.Basic) -> sp.Basic:
        """One rewrite at the top of `expr`, or `expr` itself."""
        if isinstance(expr, sp.log) and len(expr.args) == 1:
            return self.log_rule(expr)
        if isinstance(expr, sf.Log1p):
            if isinstance(
                self.resolve(-expr.args[0]), sf.Sigmoid
            ):  # log1p(-sigmoid(x)) = -softplus(x)
                return -sf.Softplus(self.resolve(-expr.args[0]).args[0])
            return self.softplus_rule(sp.S.One, expr.args[0]) or expr
        if isinstance(expr, sp.Add):
            expr = self.expm1_rule(expr)
            expr = self.exp_rule(expr) if isinstance(expr, sp.Add) else expr
            expr = self.branch_complement_rule(expr)
            expr = self.tanh_rule(expr) if isinstance(expr, sp.Add) else expr
            expr = (
                self.mixed_complement_rule(expr) if isinstance(expr, sp.Add) else expr
            )
            expr = (
                self.sigmoid_complement_rule(expr) if isinstance(expr, sp.Add) else expr
            )
            expr = self.smooth_relu_rule(expr) if isinstance(expr, sp.Add) else expr
            expr = self.softplus_pair_rule(expr) if isinstance(expr, sp.Add) else expr
            return (
                self.log1p_difference_rule(expr) if isinstance(expr, sp.Add) else expr
            )
        if isinstance(expr, sp.Pow):
            expr = self.logistic_rule(expr)
            return (
                self.fractional_power_rule(expr) if isinstance(expr, sp.Pow) else expr
            )
        if isinstance(expr, sp.Mul):
            expr = self.normalized_exp_rule(expr)
            return self.quotient_power_rule(expr) if isinstance(expr, sp.Mul) else expr
        return expr

    def smooth_relu_rule(self, expr: sp.Add) -> sp.Basic:
        """`c relu(x) + c softplus(-|x|)` -> `c softplus(x)` (an addition, the same value; `relu(x)` as
        `maximum(x, 0)` too, and `-minimum(x, 0)` as `relu(-x)`): the binary cross-entropy on
        logits as TensorFlow's documentation writes it, `max(x, 0) - x y + log(1 + exp(-abs(x)))`,
        is smooth, but its code had two kinks, and at x = 0 TensorFlow's rule for a tie gave the
        gradient 1 - y or -y where it is 1/2 - y (a review). Beside a term `-k x`, as there, the
        three are `k softplus(-x) + (c - k) softplus(x)` in `softplus_pair`'s form, in which nothing
        cancels (`softplus(x) - x` lost every digit at x = 15; the change review)."""
        terms = list(expr.args)
        for i, term in enumerate(terms):
            found = self.relu_term(term)
            if found is None:
                continue
            coefficient, x = found
            for j, other in enumerate(terms):
                softplus = self.factor_of(other, sf.Softplus)
                if (
                    j == i
                    or softplus is None
                    or not (softplus[0] - coefficient).is_zero
                ):
                    continue
                magnitude = self.resolve(
                    -softplus[1].args[0]
                )  # (`a = abs(x)`, `softplus(-a)`)
                if magnitude not in (
                    sp.Abs(x),
                    sp.Abs(self.resolve(x)),
                ):  # (|2 x| is 2 |x| to SymPy)
                    continue
                rest = [t for n, t in enumerate(terms) if n not in (i, j)]
                slope, others = _slopes(rest, x)
                if slope is None or x.has(
                    sp.Piecewise
                ):  # (see `softplus_pair_rule` for a `where` in x)
                    return sp.Add(coefficient * sf.Softplus(x), *rest)
                return sp.Add(
                    sf.softplus_pair(x, -slope, coefficient + slope, bind=self.shared),
                    *others,
                )
        return expr

    def relu_term(self, term: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
        """(c, x) where `term` is `c relu(x)`, `c maximum(x, 0)` or `-c minimum(-x, 0)`, else None."""
        for head in (sf.Relu, sp.Max, sp.Min):
            found = self.factor_of(term, head)
            if found is None:
                continue
            coefficient, call = found
            if isinstance(call, sf.Relu):
                return coefficient, call.args[0]
            if len(call.args) == 2 and any(equals_number(a, 0.0) for a in call.args):
                x = next(a for a in call.args if not equals_number(a, 0.0))
                return (
                    (coefficient, x) if isinstance(call, sp.Max) else (-coefficient, -x)
                )
        return None

    def factor_of(self, term: sp.Basic, head: type) -> tuple[sp.Basic, sp.Basic] | None:
        """(the other factors' product, the factor) where one factor of `term` is a `head` (through
        bindings), else None."""
        factors = sp.Mul.make_args(term)
        for n, factor in enumerate(factors):
            resolved = self.resolve(factor)
            if isinstance(resolved, head):
                return sp.Mul(*factors[:n], *factors[n + 1 :]), resolved
        return None

    def branch_complement_rule(self, expr: sp.Add) -> sp.Basic:
        """`c + k where(q, a, b)` -> `where(q, c + k a, c + k b)` where the rules rewrite a branch so
        made (an addition, the same value): a binary focal loss's `1 - pt` with `pt = where(y_true >
        0.5, p, 1 - p)` of `p = sigmoid(x)` rounded to 0 where `p` rounds to 1, a logit of 17, and
        its power `(1 - pt)^gamma` with gamma < 1 (or set to 0) had a NaN gradient there (a review);
        it is `where(y_true > 0.5, sigmoid(-x), p)`. Where no rule takes a branch, as written."""
        if not isinstance(expr, sp.Add):
            return expr
        constant, rest = expr.as_coeff_Add()
        k, factor = rest.as_coeff_Mul()
        branches = self.rewritten.get(
            factor, factor
        )  # (a binding, as the code computes it)
        if not (
            constant.is_Number
            and constant != 0
            and k.is_Number
            and isinstance(branches, sp.Piecewise)
        ):
            return expr
        if self._pushing >= MAX_PUSHED:
            # (pushed into chained bindings without end, each copied the one before, and the code
            # grew 1.5 times a level; the change review)
            return expr
        outer, self._pushing = self._pushing, self._pushing + 1
        try:
            pushed, changed = [], False
            for value, condition in branches.args:
                written = (
                    constant + k * value
                )  # (its parts rewritten: the rules at its top only)
                rewritten = (
                    self.rule(written) if isinstance(written, sp.Add) else written
                )
                if (
                    isinstance(written, sp.Add)
                    and rewritten == written
                    and self.reads_pred(written)
                ):
                    # a branch left a difference in y_pred, which `log1p` of the whole computed
                    # better (`1 - y_pred` at y_pred = 1e-7, 19% off; the change review)
                    return expr
                changed = changed or rewritten != written
                pushed.append((rewritten, condition))
        finally:
            self._pushing = outer
        return construct.piecewise(pushed) if changed else expr

    def reads_pred(self, expr: sp.Basic) -> bool:
        """Whether `expr` reads y_pred (bindings followed)."""
        stack, seen = [expr], set()
        while stack:
            for symbol in stack.pop().free_symbols:
                if symbol == Y_PRED:
                    return True
                if symbol in self.definitions and symbol not in seen:
                    seen.add(symbol)
                    stack.append(self.definitions[symbol])
        return False

    def tanh_rule(self, expr: sp.Add) -> sp.Basic:
        """`c + c tanh(x)` -> `2c sigmoid(2x)` and `c - c tanh(x)` -> `2c sigmoid(-2x)` (an addition,
        the same value): a probability written with tanh, `p = 0.5 (1 + tanh(x))`, rounded to 1 from
        x of about 8 in float32, and a cross-entropy of it was NaN there, as `log(1 - tanh(x))` was
        -inf from x of about 9 (a review); as a sigmoid it takes the sigmoid's rules."""
        for constant, rest, term, k, tanh in self.headed_terms(expr, hyperbolic.tanh):
            if abs(float(k)) == abs(
                float(constant)
            ):  # (as floats: `1.0 - tanh(x)`, `0.5 - tanh(x)/2`)
                sign = 1 if float(k) == float(constant) else -1
                scale = 2 * float(constant)
                scale = (
                    int(scale) if abs(scale) == 1.0 else 2 * constant
                )  # (`p = 0.5 (1 + tanh(x))` is a sigmoid)
                return scale * sf.Sigmoid(sign * 2 * tanh.args[0]) + (rest - term)
        return expr

    def mixed_complement_rule(self, expr: sp.Add) -> sp.Basic:
        """`1 - (a sigmoid(x) + b sigmoid(-x))` -> `a sigmoid(-x) + b sigmoid(x)` where `a + b = 1`
        (and `c - (...)` -> that plus `c - 1`, for a constant c near 1: `1 + eps - pt`)
        (an addition, the same value): a focal loss's `1 - pt` with `pt = y p + (1 - y) (1 - p)`
        rounded to 0 where `p` rounds to 1, a logit of 17, and its power `(1 - pt)^gamma` with
        gamma < 1 had a NaN gradient there (a review; Keras's own focal loss on logits too)."""
        constant, rest = expr.as_coeff_Add()
        if not constant.is_Number or constant == 0:
            return expr
        # (`1 + eps - pt`, as `sigmoid_complement_rule` takes `1 - sigmoid(x) + eps`: the rest of the
        # constant is added back to the digits the fold kept)
        shifted = float(constant) - 1.0
        if abs(shifted) >= abs(float(constant)):
            return expr
        # `1 - pt` of a binding `pt`, or written inline, which SymPy distributes: `1 - y p - (1 - y)(1 - p)`
        inner = -rest
        terms = sp.Add.make_args(
            self.rewritten.get(inner, inner)
        )  # (a binding, as rewritten)
        if len(terms) != 2:
            return expr
        parts = []  # (coefficient, the sigmoid's argument) of each term
        for term in terms:
            heads = [
                f
                for f in sp.Mul.make_args(term)
                if isinstance(self.resolve(f), sf.Sigmoid)
            ]
            if len(heads) != 1:
                return expr
            parts.append((term / heads[0], self.resolve(heads[0]).args[0]))
        (a, x), (b, z) = parts
        # (as SymPy adds them, no `expand`: of a power of a long sum it took minutes; the change review)
        if sp.Add(x, z) != 0 or sp.Add(a, b) != 1:
            return expr
        complement = a * sf.Sigmoid(z) + b * sf.Sigmoid(x)
        return (
            complement
            if shifted == 0
            else complement + _difference(constant, sp.S.NegativeOne, shifted)
        )

    def sigmoid_complement_rule(self, expr: sp.Add) -> sp.Basic:
        """`1 - sigmoid(x)` -> `sigmoid(-x)` (an addition to the table), and in general
        `c + k sigmoid(x)` -> `(c + k) - k sigmoid(-x)` where that constant is smaller than c.

        In float32 `1 - sigmoid(x)` is 0 for x above about 17, where `sigmoid(-x)` is still
        about 1e-8: a power of it (`(1 - p)^gamma` of a focal loss on logits, gamma < 1) had an
        infinite derivative there, and its gradient was NaN (found by a user test). With an eps,
        `1 - sigmoid(x) + eps` (SymPy folds `1 + eps` to 1.0000001, which float32 reads as
        1 + 1.19e-7) was 1.19e-7 from x of about 17 up, and its gradient 0 (a user test): now
        `sigmoid(-x) + 1e-7`."""
        # `sigmoid(x) - 1` -> `-sigmoid(-x)` too: SymPy writes `abs(-log(1 - sigmoid(x)))` as
        # `abs(log(-(sigmoid(x) - 1)))`, and the log rule did not see its `1 - sigmoid(x)` (fuzzing)
        for constant, rest, term, k, resolved in self.headed_terms(expr, sf.Sigmoid):
            shifted = float(constant) + float(k)
            if abs(shifted) >= abs(float(constant)):
                continue
            coefficient = -int(float(k)) if abs(float(k)) == 1.0 else -k
            complement = coefficient * sf.Sigmoid(-resolved.args[0]) + (rest - term)
            return (
                complement
                if shifted == 0
                else complement + _difference(constant, k, shifted)
            )
        return expr

    def logistic_rule(self, expr: sp.Pow) -> sp.Basic:
        """`1 / (1 + exp(-x))` -> `sigmoid(x)` (an addition: the logistic function written out,
        whose exponential overflows for x below about -88, and its gradient with it); and a
        power of it, `(1 + exp(-x))^-n` -> `sigmoid(x)^n` for any n > 0, as SymPy writes
        `(1 / (1 + exp(-x)))^3` (found by fuzzing)."""
        base, exponent = expr.args
        base = self.resolve(
            base
        )  # `p = 1 / d` of `d = 1 + exp(-x)`: the textbook sigmoid in steps
        if not (exponent.is_Number and exponent < 0 and isinstance(base, sp.Add)):
            return expr
        constant, rest = base.as_coeff_Add()
        resolved = self.resolve(rest)
        if (
            equals_number(constant, 1.0)
            and isinstance(resolved, sp.exp)
            and not resolved.args[0].is_number
        ):
            logistic = sf.Sigmoid(-resolved.args[0])
            return (
                logistic if equals_number(exponent, -1.0) else logistic ** (-exponent)
            )
        return expr

    def fractional_power_rule(self, expr: sp.Pow) -> sp.Basic:
        """`sigmoid(x)^c` -> `exp(-c softplus(-x))` and `softmax(x)^c` -> `exp(c log_softmax(x))`
        for a number c < 1 that is not whole (an addition, the same value): `sqrt(softmax(x))` has
        an infinite slope where the softmax rounds to 0, and its gradient was NaN for logits 200
        apart (the Hellinger distance; a review), where the exponential of the log is 0 and its
        gradient too. A softmax's power whose exponent is not a number (a parameter) too: its
        gradient is autodiff's through a `power`, whose exponent's gradient TensorFlow computes
        too, a `log` (11 ms a step against 3.4 at 8192 x 128). A sigmoid's stays a power there:
        its fused gradient is elementwise, and the exponential of a softplus cost more (a focal
        loss on logits, 9.2 -> 11.3 ms). (A negative c too: `1 / sqrt(sigmoid(x))` is `sigmoid(x)^-0.5`, whose divisor
        the float32-zero check sees rewritten so, and judged the code not to compute it.)"""
        base, exponent = expr.args
        head = self.resolve(base)
        label = self.label_probability(self.computed(base))
        if label is not None and not (
            exponent.is_Number and (exponent >= 1 or exponent <= 0)
        ):
            # `sum(onehot(y) softmax(x))^q`, the generalized cross-entropy on logits: the label's
            # probability rounds to 0 for logits 88 apart, and `q p^(q - 1) p'` was NaN there (a
            # review) -> `exp(q sum(onehot(y) log_softmax(x)))`, for any q but a number outside (0, 1)
            onehot, softmax = label
            return sp.exp(
                exponent * sf.ReduceSum(onehot * sf.LogSoftmax(*softmax.args))
            )
        constant = not exponent.free_symbols
        if constant and not _fractional_below_one(exponent):
            return expr
        if isinstance(head, sf.Sigmoid) and constant:
            return sp.exp(-exponent * sf.Softplus(-head.args[0]))
        if isinstance(head, sf.Softmax):
            return sp.exp(exponent * sf.LogSoftmax(*head.args))
        return expr

    def label_probability(self, expr: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
        """(the one-hot labels, the softmax) of `sum(onehot(y) softmax(x))`, the label's
        probability (through bindings), else None."""
        if not (isinstance(expr, sf.ReduceSum) and isinstance(expr.args[0], sp.Mul)):
            return None
        factors = [self.computed(f) for f in expr.args[0].args]
        labels = [f for f in factors if isinstance(f, sf.OneHot)]
        softmaxes = [f for f in factors if isinstance(f, sf.Softmax)]
        if len(factors) == 2 and len(labels) == 1 and len(softmaxes) == 1:
            return labels[0], softmaxes[0]
        return None

    def normalized_exp_rule(self, expr: sp.Mul) -> sp.Basic:
        """`exp(x) / sum(exp(x))` -> `softmax(x)` (`x` has a value per element: the semantics
        rejects a sum of one value per sample), and `exp(x) sigmoid(-x)` (`exp(x) / (1 + exp(x))`,
        once `logistic_rule` has run) -> `sigmoid(x)` (additions: the softmax and the logistic
        function written out, whose exponentials overflow; `log` of the first then becomes `log_softmax(x)`)."""
        factors = list(expr.args)
        exps = {}
        for index, factor in enumerate(factors):
            resolved = self.resolve(factor)
            if isinstance(resolved, sp.exp):
                exps.setdefault(resolved.args[0], index)
        if not exps:
            return expr
        for index, factor in enumerate(factors):
            # a power n of either, as SymPy writes `(exp(x) / (1 + exp(x)))^2`: `exp(2 x)
            # sigmoid(-x)^2` -> `sigmoid(x)^2`, and `exp(2 x) / sum(exp(x))^2` -> `softmax(x)^2`
            # (found by fuzzing)
            head, n = (
                (factor.args[0], factor.args[1])
                if factor.is_Pow
                else (factor, sp.S.One)
            )
            if isinstance(head, sf.Sigmoid) and n.is_Number and n > 0:
                # `exp(m x) sigmoid(-x)^n` -> `sigmoid(x)^m sigmoid(-x)^(n - m)` (`exp(x) / (1 +
                # exp(x))^2`, the logistic function's derivative written out), for m >= 1 and n - m
                # 0 or at least 1: a power in (0, 1) of a sigmoid that rounds to 0 has an infinite
                # slope there (and its value loses what exp kept; a review)
                x = -head.args[0]
                m = next(
                    (
                        m
                        for m in _multiples(x, exps)
                        if 1 <= m <= n and (m == n or n - m >= 1)
                    ),
                    None,
                )
                if m is not None:
                    rest = [
                        f
                        for i, f in enumerate(factors)
                        if i not in (exps[m * x], index)
                    ]
                    return sp.Mul(_power(sf.Sigmoid(x), m), _power(head, n - m), *rest)
            elif (
                factor.is_Pow and n.is_Number and n <= -1
            ):  # `sqrt(softmax(x))`: NaN where it is 0
                total = self.resolve(head)
                summed = (
                    self.resolve(total.args[0])
                    if isinstance(total, sf.ReduceSum)
                    else None
                )
                if isinstance(summed, sp.exp) and -n * summed.args[0] in exps:
                    x = summed.args[0]
                    rest = [
                        f
                        for i, f in enumerate(factors)
                        if i not in (exps[-n * x], index)
                    ]
                    return sp.Mul(_power(sf.Softmax(x), -n), *rest)
        return expr

    def quotient_power_rule(self, expr: sp.Mul) -> sp.Basic:
        """`a^m b^-n` (integers m, n >= 2; `a` and `b` read the inputs) -> `q^n` with `q = a^(m/n) / b`
        a local where n divides m, else `q^k a^(m - k) b^(k - n)` with `q = a / b` and k = min(m, n)
        (an addition to the table).

        SymPy distributes an integer power over a product: `(e / (1 + |e|))^8` is
        `e^8 / (1 + |e|)^8`, whose parts overflow float32 where the quotient does not (NaN from
        |e| of about 6.5e4; a user test); bound to a name, as `r = e / (1 + |e|)` then `r^8`, it
        was finite. Here it is bound so.
        """
        if not self.share:
            return expr
        above = next((f for f in expr.args if self._varying_power(f, 2)), None)
        below = next((f for f in expr.args if self._varying_power(f, -2)), None)
        if above is None or below is None:
            return expr
        m, n = int(above.exp), int(-below.exp)
        rest = [f for f in expr.args if f is not above and f is not below]
        if m % n == 0:
            return sp.Mul(self.shared(above.base ** (m // n) / below.base) ** n, *rest)
        k = min(m, n)
        quotient = self.shared(above.base / below.base)
        return sp.Mul(quotient**k, above.base ** (m - k), below.base ** (k - n), *rest)

    def _varying_power(self, factor: sp.Basic, least: int) -> bool:
        """`factor` is `x^n` for an integer n >= `least` (<= it, for a negative `least`), of an `x`
        that reads the inputs (directly or through bindings: not a number, nor parameters alone)."""
        if not (factor.is_Pow and factor.exp.is_Integer):
            return False
        if factor.exp < least if least > 0 else factor.exp > least:
            return False
        return bool(
            factor.base.free_symbols & ({Y_PRED, Y_TRUE} | set(self.definitions))
        )

    def softplus_pair_rule(self, expr: sp.Add) -> sp.Basic:
        """`a softplus(-x) + b softplus(x)` -> `where(x >= 0, b, -a) x + (a + b) softplus(-|x|)`
        (softplus(x) = relu(x) + softplus(-|x|)).

        The binary cross-entropy on logits, `y softplus(-x) + (1 - y) softplus(x)`, becomes
        `where(x >= 0, 1 - y, -y) x + softplus(-|x|)`, Keras's formula: one softplus instead of
        two, and no cancellation (`symfuncs.softplus_pair`).
        """
        found: dict[sp.Basic, dict[bool, list[sp.Basic]]] = {}
        for term in expr.args:
            heads = [f for f in sp.Mul.make_args(term) if isinstance(f, sf.Softplus)]
            if len(heads) == 1:
                arg = heads[0].args[0]
                negated = arg.could_extract_minus_sign()
                found.setdefault(-arg if negated else arg, {True: [], False: []})[
                    negated
                ].append(term)
        for x, sides in found.items():
            if len(sides[True]) == 1 and len(sides[False]) == 1:
                (negative,), (positive,) = sides[True], sides[False]
                a = negative / sf.Softplus(-x)
                b = positive / sf.Softplus(x)
                rest = [t for t in expr.args if t is not negative and t is not positive]
                if x.has(sp.Piecewise):
                    # A `where` in `x` would land in the condition of the pair's `where`, and SymPy
                    # folds the two, simplifying every condition: nested pairs took 9 s at five
                    # levels (`a{k+1} = softplus(a{k}) + softplus(-a{k})` written out, as the
                    # checks write it), minutes at eight. The code reads `x` from a local; written
                    # out, the pair stays as it is (the same value; the other terms are rewritten).
                    if not self.share:
                        return expr
                    x = self.shared(x)
                return sp.Add(sf.softplus_pair(x, a, b, bind=self.shared), *rest)
        return self.softplus_slope_rule(expr)

    def softplus_slope_rule(self, expr: sp.Add) -> sp.Basic:
        """`c softplus(x) + m x` -> `(-m) softplus(-x) + (c + m) softplus(x)` in `softplus_pair`'s form
        (`c softplus(-x) + m x` likewise, with `(c - m) softplus(-x) + m softplus(x)`), for `m` free of
        x: the binary cross-entropy on logits as textbooks write it, `softplus(x) - y x`, lost every
        digit from x of about 15 at y = 1 (0 for 4.1e-8 at 17, where Keras's is right; a review)."""
        terms = list(expr.args)
        for i, term in enumerate(terms):
            # (through a binding, `z = softplus(x)` then `z - y x`: the softplus is computed again)
            heads = [
                f
                for f in sp.Mul.make_args(term)
                if isinstance(self.computed(f), sf.Softplus)
            ]
            if len(heads) != 1:
                continue
            c, arg = term / heads[0], self.computed(heads[0]).args[0]
            negated = arg.could_extract_minus_sign()
            x = -arg if negated else arg
            m, others = _slopes(terms[:i] + terms[i + 1 :], x)
            if m is None or x.has(
                sp.Piecewise
            ):  # (see `softplus_pair_rule` for a `where` in x)
                continue
            a, b = (c - m, m) if negated else (-m, c + m)
            return sp.Add(sf.softplus_pair(x, a, b, bind=self.shared), *others)
        return expr

    def log1p_difference_rule(self, expr: sp.Add) -> sp.Basic:
        """`c log1p(a) - c log1p(b)` -> `c Log1pDiff(a, b)` where `a` and `b` are known >= 0.

        (Outside them a NaN of the formula could become a number.) The mean squared logarithmic
        error, `(log1p(max(y_pred, eps)) - log1p(max(y_true, eps)))^2`, then takes one log1p per
        element, which XLA's CPU backend computes at about twice the cost of Keras's `log(x + 1)`.
        """
        logs = [(term.as_coeff_Mul(), term) for term in expr.args]
        logs = [
            (c, f.args[0], term) for (c, f), term in logs if isinstance(f, sf.Log1p)
        ]
        for c, a, first in logs:
            for d, b, second in logs:
                if (
                    d == -c
                    and first is not second
                    and self.nonnegative(a)
                    and self.nonnegative(b)
                ):
                    rest = [t for t in expr.args if t is not first and t is not second]
                    return sp.Add(c * sf.Log1pDiff(a, b), *rest)
        return expr

    def along_y_pred(self, expr: sp.Basic) -> bool:
        """The last axis of `expr` is y_pred's: it reads no y_true, list or one-hot labels, which may
        broadcast a y_pred of one column to more (the code's `C` is y_pred's last axis)."""
        inlined = rebuild.inlined(expr, self.definitions)
        return not inlined.has(Y_TRUE, sf.Vector, sf.OneHot)

    def nonnegative(self, expr: sp.Basic) -> bool:
        """`expr` is known to be >= 0 (SymPy's assumptions, through the bindings it reads)."""
        return bool(rebuild.inlined(expr, self.definitions).is_nonnegative)

    def log_rule(self, expr: sp.log) -> sp.Basic:
        inner = self.resolve(expr.args[0])
        # (what the code computes where the argument is bound: the rules below copy parts of it
        # into the code, and a binding's written value holds what its rewrite took away, as
        # `log(1 + exp(x))`: NaN at x = 100 where the bound softplus was finite; the change review)
        k, factor = self.computed(expr.args[0]).as_coeff_Mul()
        if k.is_Number and k > 0 and isinstance(factor, (sf.ReduceSum, sf.ReduceMean)):
            # log(k sum(exp(x))) and log(k mean(exp(x))) (a log-mean-exp): exp(x) overflowed past
            # x = 88 in float32 (found by fuzzing). Also where each element is a product of heads,
            # whose log is a sum: log(sum(softmax(x) exp(z))), a mixture's likelihood, and
            # log(sum(sqrt(p q))) of two softmaxes, the Bhattacharyya distance; the product rounded
            # to 0 where its factors did (inf, and NaN gradients; a numerics review of per-sample
            # losses, 2026-12-05)
            elements = self.computed(factor.args[0])
            x = (
                elements.args[0]
                if isinstance(elements, sp.exp)
                else self.log_of_heads(elements)
            )
            if x is not None:
                if not isinstance(factor, sf.ReduceMean):
                    return sf.LogSumExp(x) + sp.log(k)
                if self.along_y_pred(x):
                    return sf.LogSumExp(x) + sp.log(k) - sp.log(sf.C)
                # A mean over x's own last axis, which y_true or a list may make wider than
                # y_pred's (whose length C is): shifted by x's largest element, as logsumexp is
                # computed, the mean is of values at most 1, one of them 1. (Left as written, a
                # log-mean-exp of `e` was inf from e of about 88 in float32; a review.)
                top = sf.ReduceMax(x)
                return top + sp.log(k) + sp.log(sf.ReduceMean(sp.exp(x - top)))
        if (single := self.exponential_term(inner)) is not None:
            # log(k exp(x)) = x + log(k): `log(u + u)` of `u = exp(y_pred)` overflowed (a review)
            return single[1] + sp.log(single[0])
        if isinstance(inner, sf.Sigmoid):
            return -sf.Softplus(-inner.args[0])
        if isinstance(inner, sf.Softmax):
            return sf.LogSoftmax(inner.args[0])
        if (label := self.label_probability(self.computed(expr.args[0]))) is not None:
            # `log(sum(onehot(y) softmax(x)))`, the sparse cross-entropy with the log outside: the
            # label's probability rounded to 0 for logits about 90 apart, inf and a NaN gradient
            # (a review) -> `sum(onehot(y) log_softmax(x))`, as the power rule takes its powers
            onehot, softmax = label
            return sf.ReduceSum(onehot * sf.LogSoftmax(*softmax.args))
        if (
            inner.is_Pow
            and inner.exp.is_Number
            and isinstance(self.resolve(inner.base), (sf.Sigmoid, sf.Softmax))
        ):
            # log(p^n) = n log(p) for p > 0: `log(sigmoid(x)^2)`, as SymPy keeps it, was -inf where
            # the sigmoid rounds to 0 (found by fuzzing)
            return inner.exp * self.log_rule(sp.log(self.resolve(inner.base)))
        code = self.rewritten.get(
            expr.args[0], inner
        )  # a bound product as the code computes it
        for product in dict.fromkeys((code, inner)):
            if (
                isinstance(product, sp.Mul)
                and (logs := self.log_of_product(product)) is not None
            ):
                return logs
        if (
            isinstance(inner, sp.Piecewise)
            and (pushed := self.log_of_branches(inner)) is not None
        ):
            return pushed
        if isinstance(inner, sp.cosh):
            x = self.shared(inner.args[0])
            return x + sf.Softplus(-2 * x) - sp.log(2)
        if isinstance(inner, sp.Add):
            constant, rest = inner.as_coeff_Add()
            softplus = self.softplus_rule(constant, rest) or self.logaddexp_rule(inner)
            flat = self.flattened(inner) if softplus is None else None
            if isinstance(flat, sp.Add):
                # a sum that holds a bound sum (`log(d + 1)` of `d = 1 + exp(-x)`: inf from x of
                # about -88; differential fuzzing), read as one sum
                softplus = self.softplus_rule(
                    *flat.as_coeff_Add()
                ) or self.logaddexp_rule(flat)
            elif flat is not None:
                # ... whose terms cancelled to one: `log(1 - p)` of `p = 1 - exp(-exp(x))`, a
                # complementary log-log link, is `-exp(x)` (it was `log1p(-p)`, inf from x of about
                # 3; written inline, SymPy cancels it so; a review). SymPy may take the log itself
                # (`log(exp(u))` is u, `log(1)` 0), or leave one the rules may take.
                if (logged := self.log_taken(flat)) is not None:
                    return logged
            if softplus is not None:
                return softplus
            if equals_number(constant, 1.0) and rest != 0:
                if isinstance(self.resolve(-rest), sf.Sigmoid):
                    return -sf.Softplus(self.resolve(-rest).args[0])
                code = self.rewritten.get(expr.args[0])
                if code is not None and not isinstance(code, sp.Add):
                    # a bound `1 - exp(u)` that the code computes as `-expm1(u)`: the log of that,
                    # as written inline (`log1p(-exp(u))` of the terms was -inf where exp(u) rounds
                    # to 1: `log(p)` of that `p` from x of about -17; a review)
                    logged = self.log_taken(code)
                    return expr if logged is None else logged
                return sf.Log1p(rest)
        return expr

    def log_taken(self, value: sp.Basic) -> sp.Basic | None:
        """The log of `value` as SymPy (`log(exp(u))` is u, `log(1)` 0) or the rules take it; None
        where it stays `log(value)`."""
        plain = sp.log(value)
        if not isinstance(plain, sp.log):
            return plain
        logged = self.log_rule(plain)
        return None if logged == plain else logged

    def flattened(self, total: sp.Add) -> sp.Basic | None:
        """`total` with each term `k s` whose binding `s` holds a sum written as `k` times that sum
        (SymPy adds them up), or None where no term is such."""
        terms = []
        for term in total.args:
            k, factor = term.as_coeff_Mul()
            value = self.rewritten.get(
                factor, self.resolve(factor)
            )  # (as the code computes it)
            if not isinstance(
                value, sp.Add
            ):  # (as written: `1 - exp(u)`, which the code computes as `-expm1(u)`)
                value = self.resolve(factor)
            terms.append(
                k * value if factor.is_Symbol and isinstance(value, sp.Add) else None
            )
        if all(t is None for t in terms):
            return None
        return sp.Add(
            *(
                t if t is not None else term
                for t, term in zip(terms, total.args, strict=True)
            )
        )

    def log_of_heads(self, product: sp.Basic) -> sp.Basic | None:
        """The log of `product` as `log_of_product` takes it, where every factor is a power of a
        sigmoid, a softmax or an exp, or a number > 0 (a power of such a product too: `sqrt(p q)`);
        else None."""
        if (
            product.is_Pow
            and product.exp.is_Number
            and isinstance(product.base, sp.Mul)
        ):
            product = sp.Mul(*(factor**product.exp for factor in product.base.args))
        if not isinstance(product, sp.Mul):
            return None
        k, rest = product.as_coeff_Mul()
        if not (k.is_Number and k > 0) or any(
            self.power_of_head(f)[0] is None for f in sp.Mul.make_args(rest)
        ):
            return None
        return self.log_of_product(product)

    def log_of_product(self, inner: sp.Mul) -> sp.Basic | None:
        """`log(k p^a q^b ...)` -> `log(k) + a log(p) + b log(q) + ...` where k > 0 is a number and
        each of p, q, ... is a sigmoid, a softmax or an exp (positive: the logs add): `log(p (1 - p))`
        of `p = sigmoid(x)` was -inf in float32 from |x| of about 88, where the product rounds to
        0 (an addition to the table), and is `-softplus(-x) - softplus(x)`. Other factors stay in
        one log of their product and k: `log(k u p^a)` -> `log(k u) + a log(p)`. None where no
        factor is such a head."""
        k, rest = inner.as_coeff_Mul()
        if not k.is_Number:
            return None
        terms, others = [], [k]
        for factor in sp.Mul.make_args(rest):
            head, exponent = self.power_of_head(factor)
            if head is None:
                others.append(factor)
            elif isinstance(head, sp.exp):
                terms.append(
                    exponent * self.rewrite(head.args[0])
                )  # (as the code computes it)
            else:
                terms.append(exponent * self.log_rule(sp.log(head)))
        if not terms:
            return None
        if len(others) > 1:
            # The other factors keep one log, whose sign is the product's (the heads are positive):
            # `log(y_true * exp(-y_pred))` was NaN from |y_pred| of about 88 in float32 (inf times
            # 0), and is `log(y_true) - y_pred` (a review).
            return sp.Add(self.log_rule(sp.log(sp.Mul(*others))), *terms)
        if not k > 0:  # (one factor beside a number too: `log(0.5 sigmoid(x))`)
            return None
        return sp.Add(sp.log(k), *terms)

    def power_of_head(self, factor: sp.Basic) -> tuple[sp.Basic | None, sp.Basic]:
        """(h, n) where `factor` is `h^n` for a number n and a sigmoid, softmax or exp h, through
        bindings (as the code computes them: `r = p * (1 - p)` is `p sigmoid(-x)`; a review) and
        powers of powers; (None, 0) else."""
        exponent = sp.S.One
        for _ in range(len(self.definitions) + 2):
            if isinstance(factor, (*_HEADS, sp.exp)):
                return factor, exponent
            if factor.is_Pow and factor.exp.is_Number:
                exponent, factor = exponent * factor.exp, factor.base
            elif factor in self.rewritten or factor in self.definitions:
                factor = self.rewritten.get(factor, self.definitions.get(factor))
            else:
                break
        return None, sp.S.Zero

    def log_of_branches(self, inner: sp.Piecewise) -> sp.Basic | None:
        """`log(where(c, a, b))` -> `where(c, log(a), log(b))` where the log of every branch has a
        stable form free of `log` (a sigmoid, a softmax, a power of either, a positive number):
        the focal loss's `log(where(y_true > 0.5, p, 1 - p))` of `p = sigmoid(y_pred)` was inf
        from |y_pred| = 88 in float32 (found by fuzzing). A branch whose log stays a `log` keeps
        the `where` outside it: the branch not taken may be 0 there, and the gradient of its
        `log` (inf times the 0 the `where` passes it) NaN."""
        branches = []
        for value, condition in inner.args:
            logged = sp.log(
                value
            )  # a number where SymPy folds it (`log(1)` is 0, `log(0)` zoo)
            logged = self.log_rule(logged) if isinstance(logged, sp.log) else logged
            stable = (
                logged.is_finite and logged.is_real
                if logged.is_number
                else not logged.has(sp.log, sf.Log1p)
            )
            if not stable:
                return None
            branches.append((logged, condition))
        return construct.piecewise(branches)

    def exponential_term(self, term: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
        """`(k, x)` where `term` is `k exp(x)` (through bindings) for a number `k > 0`; else None."""
        k, factor = term.as_coeff_Mul()
        exponential = self.resolve(factor)
        if (
            k.is_Number
            and k > 0
            and isinstance(exponential, sp.exp)
            and not exponential.args[0].is_number
        ):
            return k, exponential.args[0]
        return None

    def softplus_rule(self, constant: sp.Basic, rest: sp.Basic) -> sp.Basic | None:
        """`log(1 + k exp(x))` -> `softplus(x + log(k))` (`log1p(exp(x))` and `log(1 + exp(x))` ->
        `softplus(x)`), and `log(c + k exp(x))` for another `c` -> `logaddexp(log(c), x + log(k))`,
        for numbers `c, k > 0`; else None.

        Written out, `exp(x)` overflows float32 past x = 88 and the loss was inf with no word
        (`log1p(exp(y_pred))`, `log(0.5 + 0.5 exp(y_pred))`; found by fuzzing)."""
        found = self.exponential_term(rest)
        if found is None or not (constant.is_Number and constant > 0):
            return None
        k, x = found
        if equals_number(constant, 1.0):
            return sf.Softplus(x + sp.log(k))
        # `softplus(x + log(k/c)) + log(c)` cancels two large terms where c is small and x is not:
        # `log(exp(y_pred) + eps)` was 0.0156 for 0.01 in float16 (a review). As a log of two
        # exponentials, `c = exp(log c)`, nothing cancels.
        return self.logaddexp(sp.log(constant), x + sp.log(k))

    def logaddexp_rule(self, inner: sp.Add) -> sp.Basic | None:
        """`log(k exp(a) + m exp(b))` -> `max(a', b') + softplus(-|d|)` with `a' = a + log(k)`,
        `b' = b + log(m)`, `d = a' - b'`; else None. Written out, either exponential overflowed
        past 88 (`log(exp(y_pred) + exp(y_true))`; found by fuzzing).

        The maximum is a select, `where(d >= 0, a', b')`, and `-|d|` is `(1 - 2 step) d` with
        `step = where(d >= 0, 1, 0)`, as `softplus_pair` writes it: no large terms cancel in the
        value (`b' + softplus(d)` computed 0.1 as 0.0996 at b' = -1e4 in float32; a review), the
        smaller side's gradient is `sigmoid(-|d|)`, not `1 - sigmoid(d)` (0 past d = 17), and at a
        tie autodiff gives each side 1/2."""
        if len(inner.args) != 2:
            return None
        first, second = (self.exponential_term(term) for term in inner.args)
        if first is None or second is None:
            return None
        return self.logaddexp(
            first[1] + sp.log(first[0]), second[1] + sp.log(second[0])
        )

    def logaddexp(self, a: sp.Basic, b: sp.Basic) -> sp.Basic | None:
        """`log(exp(a) + exp(b))` as `logaddexp_rule` writes it; None where `a - b` holds a `where`
        that the checks' written-out form would fold."""
        d = a - b
        if d.has(sp.Piecewise):
            # As in `softplus_pair_rule`: a `where` in `d` would be folded into the pair's condition.
            if not self.share:
                return None
            d = self.shared(d)
        return sf.Where((a, d >= 0), (b, True)) + sf.Softplus(sf.negative_abs(d))

    def expm1_rule(self, expr: sp.Add) -> sp.Basic:
        """`k exp(x) - k` -> `k expm1(x)`: `exp(x) - 1`, and as SymPy orders or distributes it,
        `1 - exp(x)` (its negation) and `2 exp(x) - 2` (`2 (exp(x) - 1)`)."""
        for constant, rest, term, k, resolved in self.headed_terms(expr, sp.exp):
            if float(k) == -float(constant):
                return k * sf.Expm1(resolved.args[0]) + (rest - term)
        return expr

    def exp_rule(self, expr: sp.Add) -> sp.Basic:
        """`c + c expm1(x)` -> `c exp(x)` (an addition, the same value): where a constant meets an
        expm1 the rules made (`1 - p` of a branch `p = 1 - exp(u)`, computed `-expm1(u)`: the change
        review), and as written: `1 + expm1(x)` rounded to 0 from x of about -17 (a fourth review).
        Its log is x (`log_rule`), exact near 0 too."""
        for constant, rest, term, k, resolved in self.headed_terms(expr, sf.Expm1):
            if float(k) == float(constant):
                return k * sp.exp(resolved.args[0]) + (rest - term)
        return expr

    def headed_terms(self, expr: sp.Add, head: type):
        """(c, rest, term, k, call) for each term `k call` of `expr = c + rest`, c a nonzero number,
        whose factor is a `head` (through bindings) and `k` a number."""
        constant, rest = expr.as_coeff_Add()
        if not constant.is_Number or constant == 0:
            return
        for term in sp.Add.make_args(rest):
            k, factor = term.as_coeff_Mul()
            resolved = self.resolve(factor)
            if isinstance(resolved, head) and k.is_Number:
                yield constant, rest, term, k, resolved


def _difference(constant: sp.Number, k: sp.Number, difference: float) -> sp.Basic:
    """`constant + k` (= `difference`, nonzero) to the digits that survive the cancellation: SymPy
    folds `1 + 1e-7` into 1.0000001, and `1.0000001 - 1` is 1.0000000005838672e-07 in float64, of
    which the first 8 digits are the eps that was written."""
    if constant.is_Rational and k.is_Rational:
        return constant + k
    lost = max(0, math.ceil(math.log10(abs(float(constant)) / abs(difference))))
    return sp.Float(float(f"{difference:.{max(1, 15 - lost)}g}"))


def _multiples(x: sp.Basic, exps: dict[sp.Basic, int]) -> list[sp.Basic]:
    """The numbers m for which `m x` is one of the arguments in `exps` (`2 y_pred`, and `2 y_true -
    2 y_pred` for `x = y_true - y_pred`, whose common factor `as_coeff_Mul` does not see)."""
    found = []
    for argument in exps:
        for m in {
            argument.as_coeff_Mul()[0] / x.as_coeff_Mul()[0],
            argument.primitive()[0] / x.primitive()[0],
        }:
            if m.is_Number and argument == m * x:
                found.append(m)
    return found


def _power(base: sp.Basic, exponent: sp.Basic) -> sp.Basic:
    return base if equals_number(exponent, 1.0) else base**exponent


def _rebuilt(expr: sp.Basic, args: list) -> sp.Basic:
    """`expr.func(*args)`; Max and Min without evaluation.

    A rewrite keeps the value of what it rewrites, so a Max or Min has no more to simplify
    than when it was built, and evaluating it again compares every pair of its arguments
    (minutes for `max` of 300 terms).
    """
    if isinstance(expr, (sp.Max, sp.Min)):
        return expr.func(*args, evaluate=False)
    # (a power of a sum, and a number times one, as SymPy's evaluation would leave them, without its
    # sign questions: 22 levels of `(1 + ...)^-2 * 3` over `exp(y_pred)` took 7 s; `construct.power`)
    if type(expr) is sp.Pow:
        return construct.power(*args)
    if type(expr) is sp.Mul and len(args) == 2:
        return construct.scaled(*args)
    if isinstance(expr, sp.functions.elementary.piecewise.ExprCondPair):
        # A condition that came to hold a `where` is folded as `rebuild.substitute` folds it: SymPy's
        # own fold of `not (abs(c) != y_pred and sum(c) <= 0.5)`, `c` a cross-entropy, ran to the
        # recursion limit, 4 s a time (20 s to check; found by a differential review).
        return expr.func(args[0], construct.folded_condition(args[1]))
    return expr.func(*args)


def equals_number(number: sp.Basic, value: float) -> bool:
    """`number` equals `value` (SymPy's `Float(1.0) == 1` is False, so compare as floats)."""
    return bool(number.is_Number) and float(number) == value


def _fractional_below_one(constant: sp.Basic) -> bool:
    """Whether a constant (`0.5`, `pi / 4`; not a list) is a real number below 1 that is not whole."""
    try:
        value = float(constant)
    except (TypeError, ValueError):  # a list, a complex number
        return False
    return math.isfinite(value) and value < 1 and not value.is_integer()


def _slopes(terms: list, x: sp.Basic) -> tuple[sp.Basic | None, list]:
    """(the sum of the slopes in x of the terms that are `m x`, the other terms); (None, terms) where
    none is. All of them: `x - x y` is one slope `1 - y`, which cancels exactly at y = 1 where `x`
    alone beside the pair would not (a test)."""
    slopes = [_slope(t, x) for t in terms]
    if all(slope is None for slope in slopes):
        return None, terms
    return sp.Add(*(s for s in slopes if s is not None)), [
        t for t, s in zip(terms, slopes, strict=True) if s is None
    ]


def _slope(term: sp.Basic, x: sp.Basic) -> sp.Basic | None:
    """m where `term` is `m x` with m free of x (`-y_true y_pred` of x = y_pred: -y_true), else None."""
    if term == x:
        return sp.S.One
    if not term.is_Mul:
        return None
    slope, rest = term.as_independent(x, as_Add=False)
    return slope if rest == x else None
