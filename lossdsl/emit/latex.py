"""Stage 5 (LaTeX): `Resolved` + `SymbolicLoss` -> LaTeX text.

Input: a resolved program (its nodes keep the user's order of terms and
operands) and its SymPy form (for the gradient). Output: one LaTeX string,
without `$` delimiters:

* inline (`display=False`): the loss on one line, bindings substituted. It
  uses only what matplotlib's mathtext understands as well as KaTeX: no
  environments (`where` prints as `[a if c else b]`), `\\leq`, `\\neq`,
  `\\wedge`, `\\vee`, `\\neg` (mathtext lacks `\\le`, `\\ne`, `\\land`, `\\lor`,
  `\\lnot`), `\\mathrm{if}` rather than `\\text`; `\\operatorname` is fine (mathtext
  has had it since matplotlib 1.1). So plots can use it.
* display (`display=True`): an `aligned` block, one line per binding, ending
  with `L(y, \\hat{y}) = ...`; `where` prints as a `cases` block. For KaTeX's
  display mode (or LaTeX with amsmath).
* gradient (`gradient=True`): `\\frac{\\partial L}{\\partial \\hat{y}} = ...`,
  printed by SymPy's `LatexPrinter` (which orders terms its own way) with
  the same name policy; inline it is mathtext-safe too.

Notation: `y_true` is `y`, `y_pred` is `\\hat{y}`, the builtin `e` is
`(y - \\hat{y})`, `eps` is `\\epsilon`; parameters and bindings named after
Greek letters print as Greek, other names upright or with subscripts.
Inside a reduction, per-element quantities carry the index of the last axis
(`\\sum_{c} y_{c} \\log\\left(\\hat{y}_{c}\\right)`; nested reductions use `c'`, `c''`).

Limits: the inline form of a program whose shared bindings expand a lot is
as long as the expanded loss (bounded by semantics.MAX_TREE_SIZE operations);
nesting beyond what Python's recursion allows raises `LossLimitError`.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from lossdsl import construct, nodes, rebuild
from lossdsl import symfuncs as sf
from lossdsl.emit.mathtext import within_mathtext_depth
from lossdsl.errors import LossError, LossLimitError
from lossdsl.functions import kind_of
from lossdsl.semantics import BUILTIN_CONSTANTS, ELEM, MAX_TREE_SIZE, VECTOR, Resolved
from lossdsl.symbolic import Y_PRED, Y_TRUE, SymbolicLoss

# ---------------------------------------------------------------- precedence

# Loosest to tightest. NEG is a leading sign (`-x`, `-a b`): tighter than a
# sum, looser than a product, so `a (-b)` and `-(-x)` get parentheses.
PREC_OR, PREC_AND, PREC_NOT, PREC_CMP, PREC_ADD, PREC_NEG, PREC_MUL, PREC_POW, PREC_ATOM = range(1, 10)

Y_TEX = "y"
Y_HAT_TEX = r"\hat{y}"
LOSS_LHS = r"L(y, \hat{y})"
GRADIENT_LHS = r"\frac{\partial L}{\partial \hat{y}}"

COMPARISONS = {"<": "<", "<=": r"\leq", ">": ">", ">=": r"\geq", "==": "=", "!=": r"\neq"}
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
REDUCTIONS = {"sum": r"\sum_{%s}", "mean": r"\frac{1}{C}\sum_{%s}", "max": r"\max_{%s}", "min": r"\min_{%s}"}

GREEK = {
    name: "\\" + name
    for name in (
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau"
        " upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
    ).split()
}
GREEK["eps"] = r"\epsilon"
# What the notation itself uses: a user name that would print as one of these
# prints upright instead (`y` -> `\mathrm{y}`); `e` is kept for Euler's number.
RESERVED = frozenset({Y_TEX, Y_HAT_TEX, "c", "C", "L", "e", r"\pi"})
# Nor may a user name print as one of these with subscripts (`y_c` -> `\mathrm{y\_c}`, not `y_{c}`,
# an element of y_true).
RESERVED_HEADS = frozenset({Y_TEX, "c", "C", "L"})


# ---------------------------------------------------------------- names


@dataclass(frozen=True)
class TexName:
    """A printed name: head (`w`, `\\alpha`, `\\mathrm{loss}`) and subscripts."""

    head: str
    subs: tuple[str, ...] = ()

    def tex(self, index: str | None = None) -> str:
        """The name, with the reduction index appended to its subscripts."""
        subs = self.subs + ((index,) if index else ())
        return self.head + ("_{" + ",".join(subs) + "}" if subs else "")


def _part_tex(part: str) -> str:
    if part in GREEK:
        return GREEK[part]
    if part.isdigit() or len(part) == 1:
        return part
    return r"\mathrm{" + part + "}"


def upright(name: str) -> TexName:
    """The whole name in upright letters: `\\mathrm{class\\_weight}`."""
    return TexName(r"\mathrm{" + name.replace("_", r"\_") + "}")


def preferred_name(name: str) -> TexName:
    """How a user name prints when nothing else claims that form.

    A letter or a Greek letter name takes the rest as subscripts: `alpha` ->
    `\\alpha`, `w_1` -> `w_{1}`, `w2` -> `w_{2}`, `p_t` -> `p_{t}`, `y_hat` ->
    `y_{\\mathrm{hat}}`, `alpha_pos` -> `\\alpha_{\\mathrm{pos}}`; a trailing
    underscore, as in Python, is dropped (`lambda_` -> `\\lambda`). Other names
    print upright as a whole: `bce` -> `\\mathrm{bce}`, `class_weight` ->
    `\\mathrm{class\\_weight}`.
    """
    core = name.rstrip("_") or name
    parts = core.split("_")
    head, subs = parts[0], parts[1:]
    digits = re.fullmatch(r"([A-Za-z]+?)(\d+)", head)
    if digits and not subs:
        head, subs = digits.group(1), [digits.group(2)]
    if any(not p for p in parts) or not (len(head) == 1 or head in GREEK):
        return upright(core)
    return TexName(_part_tex(head), tuple(_part_tex(s) for s in subs))


class NamePolicy:
    """How each parameter and binding prints, with no two names alike.

    A name whose preferred form is taken (by the notation or by an earlier
    name) or would read as the notation with subscripts (`y_{c}`) prints
    upright (`\\mathrm{name}`), then with primes.
    """

    def __init__(self, resolved: Resolved) -> None:
        self.names: dict[str, TexName] = {}
        taken = set(RESERVED)
        for st in resolved.program.statements:
            candidates = [preferred_name(st.name), upright(st.name)]
            free = (c for c in candidates if c.tex() not in taken and not (c.subs and c.head in RESERVED_HEADS))
            choice = next(free, None)
            while choice is None or choice.tex() in taken:
                base = choice or candidates[-1]
                choice = TexName(base.head + "'", base.subs)
            self.names[st.name] = choice
            taken.add(choice.tex())
        self.heads = {n.head for n in self.names.values() if not n.subs}

    def claims(self, tex: str) -> bool:
        """True when a user name prints as `tex` (so a builtin must print otherwise)."""
        return tex in self.heads


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


def wrap(frag: Fragment, min_prec: int, *, force: bool = False, follow: str | None = None, sign_ok: bool = True) -> str:
    """The fragment's text, parenthesized only where its position needs it.

    Args:
        frag: the printed operand.
        min_prec: the loosest precedence that may stand here unparenthesized.
        force: parenthesize at `min_prec` too (the right operand of `-`).
        follow: what comes after it: None (a closing delimiter or the end),
            "mul" (a juxtaposed factor or an exponent), "op" (a binary operator).
        sign_ok: whether a leading sign may stand here (`a + -b` may not).
    """
    blocked = (frag.tail == "big" and follow == "mul") or (frag.tail == "cases" and follow is not None)
    if frag.prec < min_prec or (force and frag.prec <= min_prec) or (frag.sign and not sign_ok) or blocked:
        return paren(frag.text)
    return frag.text


def juxtapose(left: str, right: str) -> str:
    """Two factors side by side: `\\cdot` before a digit or after one before a fraction, a thin space between words."""
    if right[:1].isdigit() or right[:1] == "." or (left[-1:].isdigit() and right.startswith(r"\frac")):
        return left + r" \cdot " + right
    if right.startswith(r"\mathrm{") or re.search(r"\\mathrm\{[^{}]*\}$", left):
        return left + r"\," + right
    return left + " " + right


def number_tex(text: str) -> Fragment:
    """A literal as written: `.5` -> `0.5`, `1e-3` -> `10^{-3}`, `2.5E+2` -> `2.5 \\times 10^{2}`."""
    mantissa, _, exponent = text.lower().partition("e")
    if mantissa.startswith("."):
        mantissa = "0" + mantissa
    if mantissa.endswith("."):
        mantissa = mantissa[:-1]
    if not exponent:
        return Fragment(mantissa, PREC_ATOM)
    power = "10^{" + str(int(exponent)) + "}"
    if mantissa == "1":
        return Fragment(power, PREC_POW)
    return Fragment(mantissa + r" \times " + power, PREC_MUL)


# ---------------------------------------------------------------- the AST printer


class LatexWriter:
    """Prints lossdsl nodes as LaTeX: one `visit_<Node>` per node kind.

    Args:
        resolved: the resolved program.
        display: bindings stay names (for an `aligned` block) and `where`
            prints as `cases`; otherwise bindings are substituted and the
            output is one mathtext-safe line.
    """

    def __init__(self, resolved: Resolved, *, display: bool) -> None:
        self.r = resolved
        self.display = display
        self.names = NamePolicy(resolved)
        self.sigmoid = r"\operatorname{sigmoid}" if self.names.claims(r"\sigma") else r"\sigma"
        # The builtin eps prints as its value when a user name is epsilon.
        self.eps = number_tex(repr(BUILTIN_CONSTANTS["eps"])) if self.names.claims(r"\epsilon") else None
        # The index of the last axis inside a reduction (None outside one) and the reduction depth.
        self.index: str | None = None
        self.depth = 0
        self._memo: dict[tuple, Fragment] = {}

    # ---- entry points

    def loss(self) -> str:
        """The whole program: one line, or an `aligned` block."""
        if not self.display:
            return self.visit(self.r.result).text
        lines = []
        for st in self.r.program.statements:
            if isinstance(st, nodes.Assign):
                relation = r"\iff" if self.r.of(st.value).kind == "condition" else "="
                lines.append(f"{self.names.names[st.name].tex()} &{relation} {self.visit(st.value).text}")
        lines.append(f"{LOSS_LHS} &= {self.visit(self.r.result).text}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def visit(self, node: nodes.Node) -> Fragment:
        """The LaTeX of one node."""
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.gap(f"a {type(node).__name__} node", node)
        return method(node)

    def gap(self, what: str, node: nodes.Node) -> LossError:
        """The error for something this printer does not know (a gap in lossdsl, not a user mistake)."""
        return LossError(
            f"lossdsl cannot print {what} as LaTeX (a gap in lossdsl)",
            span=getattr(node, "span", None),
            source=self.r.source,
        )

    # ---- leaves

    def visit_Number(self, node: nodes.Number) -> Fragment:
        return number_tex(node.text)

    def visit_Name(self, node: nodes.Name) -> Fragment:
        kind, name = self.r.refs[id(node)]
        if kind == "input":
            return Fragment(self.indexed(Y_TEX if name == "y_true" else Y_HAT_TEX), PREC_ATOM)
        if kind == "builtin":
            if name == "e":
                return Fragment(f"{self.indexed(Y_TEX)} - {self.indexed(Y_HAT_TEX)}", PREC_ADD)
            if name == "pi":
                return Fragment(r"\pi", PREC_ATOM)
            return self.eps or Fragment(r"\epsilon", PREC_ATOM)
        if kind == "binding" and not self.display:
            key = (name, self.index, self.depth)
            if key not in self._memo:
                self._memo[key] = self.visit(self.r.bindings[name].value)
            return self._memo[key]
        per_element = kind == "binding" and self.r.of(self.r.bindings[name].value).shape in (ELEM, VECTOR)
        return Fragment(self.names.names[name].tex(self.index if per_element else None), PREC_ATOM)

    def indexed(self, tex: str) -> str:
        """`tex` with the current reduction index as a subscript (if any)."""
        return f"{tex}_{{{self.index}}}" if self.index else tex

    def unindexed(self, node: nodes.Node) -> Fragment:
        """A node that stands for a whole vector (an argument of softmax, the items of a list)."""
        saved, self.index = self.index, None
        try:
            return self.visit(node)
        finally:
            self.index = saved

    def visit_Vector(self, node: nodes.Vector) -> Fragment:
        items = ", ".join(self.unindexed(item).text for item in node.items)
        return Fragment(self.indexed(r"\left[" + items + r"\right]"), PREC_ATOM)

    # ---- arithmetic

    def visit_Unary(self, node: nodes.Unary) -> Fragment:
        operand = self.visit(node.operand)
        text = wrap(operand, PREC_MUL, sign_ok=False)
        return Fragment(node.op + text, PREC_NEG, sign=True, tail=tail_of(operand, text))

    def visit_Chain(self, node: nodes.Chain) -> Fragment:
        parts = [self.visit(o) for o in node.operands]
        if node.kind == "add":
            return self.sum_chain(parts, node.ops)
        return self.product_chain(parts, node.ops)

    def sum_chain(self, parts: list[Fragment], ops: tuple[str, ...]) -> Fragment:
        """`a + b - c` in the user's order; `-` forces parentheses on a sum to its right."""
        first = wrap(parts[0], PREC_ADD, follow="op")
        text, last = first, first
        for i, (op, part) in enumerate(zip(ops, parts[1:], strict=True), start=2):
            follow = None if i == len(parts) else "op"
            last = wrap(part, PREC_ADD, force=op == "-", follow=follow, sign_ok=False)
            text += f" {op} {last}"
        signed = parts[0].sign and first == parts[0].text
        return Fragment(text, PREC_ADD, sign=signed, tail=tail_of(parts[-1], last))

    def product_chain(self, parts: list[Fragment], ops: tuple[str, ...]) -> Fragment:
        """`a * b / c * d` as `\\frac{a b}{c} d`: a `*` after a `/` starts a new fraction.

        Each segment is (product of the `*` operands) / (product of the `/`
        operands), so the value is that of the left-to-right chain.
        """
        segments: list[tuple[list[Fragment], list[Fragment]]] = [([parts[0]], [])]
        for op, part in zip(ops, parts[1:], strict=True):
            numerator, denominator = segments[-1]
            if op == "/":
                denominator.append(part)
            elif denominator:
                segments.append(([part], []))
            else:
                numerator.append(part)
        pieces: list[Fragment] = []
        for s, (numerator, denominator) in enumerate(segments):
            lead = s == 0
            if denominator:
                top = self.factors(numerator, lead, follow=None, braced=True)
                bottom = self.factors(denominator, False, follow=None, braced=True)
                pieces.append(Fragment(r"\frac{" + top.text + "}{" + bottom.text + "}", PREC_MUL))
            else:
                pieces.append(self.factors(numerator, lead, follow="mul" if s < len(segments) - 1 else None))
        text = pieces[0].text
        for piece in pieces[1:]:
            text = juxtapose(text, piece.text)
        signed = pieces[0].sign
        return Fragment(text, PREC_NEG if signed else PREC_MUL, sign=signed, tail=pieces[-1].tail)

    def factors(self, parts: list[Fragment], lead: bool, *, follow: str | None, braced: bool = False) -> Fragment:
        """Factors side by side.

        Args:
            parts: the printed factors.
            lead: the first factor leads the whole chain, so it may keep a sign.
            follow: what comes after the last factor (see `wrap`).
            braced: inside `\\frac{}{}` braces, where a lone factor needs no parentheses.
        """
        if braced and len(parts) == 1:
            return Fragment(parts[0].text, PREC_MUL)
        texts = []
        for i, part in enumerate(parts):
            signed = lead and i == 0
            after = follow if i == len(parts) - 1 else "mul"
            texts.append(wrap(part, PREC_NEG if signed else PREC_MUL, follow=after, sign_ok=signed))
        text = texts[0]
        for t in texts[1:]:
            text = juxtapose(text, t)
        sign = lead and parts[0].sign and texts[0] == parts[0].text
        return Fragment(text, PREC_MUL, sign=sign, tail=tail_of(parts[-1], texts[-1]))

    def visit_Power(self, node: nodes.Power) -> Fragment:
        return self.power(self.visit(node.base), self.visit(node.exponent).text)

    @staticmethod
    def power(base: Fragment, exponent: str) -> Fragment:
        """`base^{exponent}`; the base is parenthesized unless it is an atom."""
        return Fragment(f"{wrap(base, PREC_ATOM, follow='mul', sign_ok=False)}^{{{exponent}}}", PREC_POW)

    # ---- conditions

    def visit_Compare(self, node: nodes.Compare) -> Fragment:
        left = wrap(self.visit(node.left), PREC_ADD, follow="op")
        right_frag = self.visit(node.right)
        right = wrap(right_frag, PREC_ADD)
        return Fragment(f"{left} {COMPARISONS[node.op]} {right}", PREC_CMP, tail=tail_of(right_frag, right))

    def visit_BoolOp(self, node: nodes.BoolOp) -> Fragment:
        prec = PREC_AND if node.op == "and" else PREC_OR
        parts = [self.visit(o) for o in node.operands]
        texts = [wrap(p, prec, follow=None if i == len(parts) - 1 else "op") for i, p in enumerate(parts)]
        return Fragment(f" {BOOL_OPS[node.op]} ".join(texts), prec, tail=tail_of(parts[-1], texts[-1]))

    def visit_Not(self, node: nodes.Not) -> Fragment:
        operand = self.visit(node.operand)
        # `\neg(a > b)`, not `\neg a > b`, although precedence would allow it.
        text = operand.text if isinstance(node.operand, nodes.Not) else paren(operand.text)
        return Fragment(r"\neg " + text, PREC_NOT)

    # ---- calls

    def visit_Call(self, node: nodes.Call) -> Fragment:
        name, args = node.func, node.args
        kind = kind_of(name, len(args))
        if kind == "where":
            return self.where(node)
        if kind == "reduction":
            return self.reduction(name, args[0])
        if name in VECTOR_FUNCTIONS:
            text = self.indexed(VECTOR_FUNCTIONS[name] + paren(self.unindexed(args[0]).text))
            if name == "log_softmax":
                # `\log` runs to the right: `\log\operatorname{softmax}(x)^{2}` or `... y` would read as
                # the log of a square or of a product.
                return Fragment(text, PREC_POW, tail="big")
            return Fragment(text, PREC_ATOM)
        frags = [self.visit(a) for a in args]
        if name in SPECIAL_FUNCTIONS:
            return SPECIAL_FUNCTIONS[name](self, frags)
        if name in NAMED_FUNCTIONS:
            return Fragment(NAMED_FUNCTIONS[name] + paren(", ".join(f.text for f in frags)), PREC_ATOM)
        raise self.gap(f"the function `{name}`", node)

    def reduction(self, name: str, arg: nodes.Node) -> Fragment:
        """`\\sum_{c} x`, `\\frac{1}{C}\\sum_{c} x`, `\\max_{c} x` or `\\log\\sum_{c}\\exp(x)`; `x` indexed by `c`."""
        index = "c" + "'" * self.depth
        saved = self.index
        self.index, self.depth = index, self.depth + 1
        try:
            operand = self.visit(arg)
        finally:
            self.index, self.depth = saved, self.depth - 1
        if name == "logsumexp":
            return Fragment(r"\log\sum_{" + index + r"}\exp" + paren(operand.text), PREC_MUL, tail="big")
        body = wrap(operand, PREC_MUL, sign_ok=False)
        # A `cases` block at the end keeps its stricter tail: nothing may follow it.
        tail = "cases" if tail_of(operand, body) == "cases" else "big"
        return Fragment(REDUCTIONS[name] % index + " " + body, PREC_MUL, tail=tail)

    def where(self, node: nodes.Call) -> Fragment:
        """A chain `where(c1, a, where(c2, b, d))` as one `cases` block, or `[a if c1 else ...]` inline."""
        rows: list[tuple[str, str]] = []
        current: nodes.Node = node
        while isinstance(current, nodes.Call) and current.func == "where":
            cond, then, other = current.args
            rows.append((self.visit(then).text, self.visit(cond).text))
            current = other
        otherwise = self.visit(current).text
        if self.display:
            lines = [f"{value} & \\text{{if }} {cond}" for value, cond in rows]
            lines.append(f"{otherwise} & \\text{{otherwise}}")
            return Fragment("\\begin{cases}\n" + " \\\\\n".join(lines) + "\n\\end{cases}", PREC_ATOM, tail="cases")
        chain = "".join(rf"{value} \;\mathrm{{if}}\; {cond} \;\mathrm{{else}}\; " for value, cond in rows)
        return Fragment(r"\left[" + chain + otherwise + r"\right]", PREC_ATOM)


def one_plus(frag: Fragment) -> str:
    """`1 + x`, or `1 - x` for a negated product such as `-a b` (not for `-a + b`)."""
    if frag.prec == PREC_NEG and frag.text.startswith("-"):
        return "1 - " + frag.text[1:]
    return "1 + " + wrap(frag, PREC_ADD, sign_ok=False)


# Elementwise functions with their own notation.
SPECIAL_FUNCTIONS = {
    "abs": lambda w, f: Fragment(r"\left|" + f[0].text + r"\right|", PREC_ATOM),
    "sqrt": lambda w, f: Fragment(r"\sqrt{" + f[0].text + "}", PREC_ATOM),
    "square": lambda w, f: w.power(f[0], "2"),
    "pow": lambda w, f: w.power(f[0], f[1].text),
    "log1p": lambda w, f: Fragment(r"\log" + paren(one_plus(f[0])), PREC_ATOM),
    "expm1": lambda w, f: Fragment(r"\exp" + paren(f[0].text) + " - 1", PREC_ADD),
    "floor": lambda w, f: Fragment(r"\left\lfloor " + f[0].text + r" \right\rfloor", PREC_ATOM),
    "ceil": lambda w, f: Fragment(r"\left\lceil " + f[0].text + r" \right\rceil", PREC_ATOM),
    "sigmoid": lambda w, f: Fragment(w.sigmoid + paren(f[0].text), PREC_ATOM),
}


# ---------------------------------------------------------------- the gradient


class GradientPrinter(LatexPrinter):
    """SymPy's LaTeX printer with lossdsl's names and functions.

    Inputs and parameters print as in the loss; the tensor functions of
    `symfuncs` print as in the loss; `Piecewise` prints as `cases` (display)
    or `[a if c else b]` (inline); sums put positive terms first.
    """

    def __init__(self, policy: NamePolicy, params: dict[str, sp.Symbol], *, display: bool) -> None:
        names = {Y_TRUE: Y_TEX, Y_PRED: Y_HAT_TEX}
        names.update({symbol: policy.names[name].tex() for name, symbol in params.items()})
        super().__init__({"symbol_names": names, "inv_trig_style": "full"})
        self.display = display
        self.sigmoid = r"\operatorname{sigmoid}" if policy.claims(r"\sigma") else r"\sigma"
        self.heaviside = r"\operatorname{H}" if policy.claims(r"\theta") else r"\theta"
        self.dirac = r"\delta_{\mathrm{D}}" if policy.claims(r"\delta") else r"\delta"
        self.taken = set(names.values())
        self.index: str | None = None
        self.depth = 0

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        # A reduction, a derivative or `\log\operatorname{softmax}` runs to the right: `(\sum_{c} x) y`,
        # not `\sum_{c} x y`.
        if not last and isinstance(expr, (*sf.REDUCTIONS, sf.LogSoftmax, sp.Derivative, sp.Subs)):
            return True
        if isinstance(expr, sp.Piecewise) and not self.display:
            return False  # `[a if c else b]` is closed
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_Mul(self, expr):
        # `-\left(a + b\right)` with stretchy parentheses (SymPy writes `- (a + b)`).
        if expr.could_extract_minus_sign() and (-expr).is_Add:
            return "-" + paren(self._print(-expr))
        return super()._print_Mul(expr)

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
            lines.append(f"{last_value} & " + ("\\text{otherwise}" if last_cond_true else f"\\text{{if }} {last_cond}"))
            cases = "\\begin{cases}\n" + " \\\\\n".join(lines) + "\n\\end{cases}"
            return self._power(cases, exp, closed=False)  # a power of a `where` (symfuncs.Where)
        chain = "".join(rf"{v} \;\mathrm{{if}}\; {c} \;\mathrm{{else}}\; " for v, c in conditional)
        tail = last_value if last_cond_true else rf"{last_value} \;\mathrm{{if}}\; {last_cond}"
        return self._power(r"\left[" + chain + tail + r"\right]", exp)

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
        return rf"\left[{then} \;\mathrm{{if}}\; {cond} \;\mathrm{{else}}\; {other}\right]"

    def _print_Heaviside(self, expr, exp=None):
        return self._power(self.heaviside + paren(self._print(expr.args[0])), exp)

    def _print_DiracDelta(self, expr, exp=None):
        return self._power(self.dirac + paren(self._print(expr.args[0])), exp)

    def _print_sign(self, expr, exp=None):
        return self._power(r"\operatorname{sign}" + paren(self._print(expr.args[0])), exp)

    @staticmethod
    def _power(tex: str, exp, *, closed: bool = True) -> str:
        """`tex` raised to `exp` (SymPy passes the exponent of a function's power); open forms get parentheses."""
        if exp is None:
            return tex
        return (tex if closed else paren(tex)) + "^{" + str(exp) + "}"

    def _dummy(self) -> str:
        """The name of a `Subs` point: the first of u, v, s, t, \\xi, u', u'', ... that nothing else prints as."""
        primed = ("u" + "'" * k for k in itertools.count(1))
        return next(n for n in itertools.chain(("u", "v", "s", "t", r"\xi"), primed) if n not in self.taken)

    def _print_Subs(self, subs):
        expr, old, new = subs.args
        dummy = self._dummy()
        fresh = {o: sp.Symbol(f"lossdsl_dummy_{i}") for i, o in enumerate(old)}
        self._settings["symbol_names"].update({s: dummy for s in fresh.values()})
        body = self._print(expr.xreplace(fresh))
        points = ", ".join(f"{dummy} = {self._print(n)}" for n in new)
        return r"\left. " + body + r" \right|_{" + points + "}"

    def _reduce(self, template: str, expr, closed: bool = False) -> str:
        index = "c" + "'" * self.depth
        saved = self.index
        self.index, self.depth = index, self.depth + 1
        operand = expr.args[0]
        arg = self._print(operand)
        if not closed and (operand.is_Add or operand.could_extract_minus_sign() or isinstance(operand, sp.Piecewise)):
            arg = paren(arg)
        self.index, self.depth = saved, self.depth - 1
        return template.replace("INDEX", index) + (paren(arg) if closed else " " + arg)

    def _print_reduction(self, template: str, expr, exp, closed: bool = False) -> str:
        return self._power(self._reduce(template, expr, closed), exp, closed=False)

    def _print_ReduceSum(self, expr, exp=None):
        return self._print_reduction(r"\sum_{INDEX}", expr, exp)

    def _print_ReduceMean(self, expr, exp=None):
        return self._print_reduction(r"\frac{1}{C}\sum_{INDEX}", expr, exp)

    def _print_ReduceMax(self, expr, exp=None):
        return self._print_reduction(r"\max_{INDEX}", expr, exp)

    def _print_ReduceMin(self, expr, exp=None):
        return self._print_reduction(r"\min_{INDEX}", expr, exp)

    def _print_LogSumExp(self, expr, exp=None):
        return self._print_reduction(r"\log\sum_{INDEX}\exp", expr, exp, closed=True)

    def _vector(self, name: str, expr, exp=None) -> str:
        index, self.index = self.index, None
        text = VECTOR_FUNCTIONS[name] + paren(", ".join(self._print(a) for a in expr.args))
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
        text = r"\left[" + ", ".join(self._print(a) for a in expr.args) + r"\right]"
        self.index = index
        return self._power(text + (f"_{{{index}}}" if index else ""), exp)

    def _print_Round(self, expr, exp=None):
        return self._power(r"\operatorname{round}" + paren(self._print(expr.args[0])), exp)

    # ---- the elementwise heads the loss keeps whole (their derivatives are heads too)

    def _named(self, name: str, expr, exp=None) -> str:
        return self._power(name + paren(", ".join(self._print(a) for a in expr.args)), exp)

    def _print_Sigmoid(self, expr, exp=None):
        return self._named(self.sigmoid, expr, exp)

    def _print_Softplus(self, expr, exp=None):
        return self._named(r"\operatorname{softplus}", expr, exp)

    def _print_Relu(self, expr, exp=None):
        return self._named(r"\operatorname{relu}", expr, exp)

    def _print_Clip(self, expr, exp=None):
        return self._named(r"\operatorname{clip}", expr, exp)

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
        return self._power(self._print(sp.exp(expr.args[0], evaluate=False)), exp, closed=False)

    def _print_PowerOf(self, expr, exp=None):
        return self._power(self._print(sp.Pow(*expr.args, evaluate=False)), exp, closed=False)

    def _print_Pow(self, expr, *args, **kwargs):
        if expr.base.is_Float:
            return paren(self._print(expr.base)) + "^{" + self._print(expr.exp) + "}"
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
        expr = expr.replace(lambda e: isinstance(e, sp.exp) and not e.args[0].is_number, lambda e: ExpOf(e.args[0]))
        return expr.replace(lambda e: e.is_Pow and not e.exp.is_number, lambda e: PowerOf(e.base, e.exp))

    return rebuild.with_inert_steps(lambda e: rebuild.with_inert_minmax(shielded, e), expr)


# Past this many nodes the gradient is printed as SymPy gives it (factoring costs time).
TIDY_LIMIT = 2_000


def tidy(expr: sp.Basic) -> sp.Basic:
    """The gradient in a form that reads better, with the same value.

    Floats with integer values become integers (`1.0 \\hat{y}` -> `\\hat{y}`), and
    common factors come out of sums (`2 \\hat{y} - 2 y` -> `2 (\\hat{y} - y)`).
    """
    return rebuild.with_inert_steps(_tidied, expr)


def _tidied(expr: sp.Basic) -> sp.Basic:
    floats = {f: sp.Integer(int(f)) for f in expr.atoms(sp.Float) if float(f).is_integer() and abs(f) < 2**53}
    if floats:
        expr = expr.xreplace(floats)
    if sum(1 for _ in sp.preorder_traversal(expr)) <= TIDY_LIMIT:
        try:
            expr = sp.factor_terms(expr)
        except (TypeError, ValueError):
            # SymPy rebuilds what it factors with evaluation, and refuses to compare a value it
            # knows is not real: `maximum(log(-exp(y_pred)), 3 y_pred)`'s steps, or `(-1 -
            # y_pred^2)^0.5` once factored as `I (1 + y_pred^2)^0.5`. Printed as it is.
            pass
    return expr


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
    printer = GradientPrinter(NamePolicy(resolved), symbolic.params, display=display)
    text = printer.doprint(gradient)
    # SymPy writes `\left(x \right)`; drop the space before `\right`.
    text = text.replace(r" \right", r"\right")
    return f"{GRADIENT_LHS} = {text}"


# ---------------------------------------------------------------- entry


def emit_latex(resolved: Resolved, symbolic: SymbolicLoss, *, gradient: bool = False, display: bool = False) -> str:
    """The LaTeX of a checked program.

    Args:
        resolved: the resolved program (for the loss as written).
        symbolic: its SymPy form (for the gradient).
        gradient: the gradient with respect to `y_pred` instead of the loss.
        display: an `aligned` block with a line per binding and `cases` for
            `where` (KaTeX display mode); otherwise one mathtext-safe line.

    Raises:
        LossLimitError: the program is nested too deeply to print.
    """
    try:
        if gradient:
            tex = gradient_latex(resolved, symbolic, display=display)
        else:
            tex = LatexWriter(resolved, display=display).loss()
    except RecursionError:
        raise LossLimitError("the program is nested too deeply to print as LaTeX", source=resolved.source) from None
    tex = within_katex_budget(tex)
    return tex if display else within_mathtext_depth(tex)


# KaTeX expands at most 1,000 macros in one string (its `maxExpand`; past it "Too many
# expansions"). Of what the printers write, these are macros, with what each costs (measured with
# KaTeX 0.16); everything else (`\\frac`, `\\left`, `\\mathrm`, `\\ `, symbols) costs nothing.
KATEX_MAX_EXPAND = 1000
_MACRO = re.compile(r"\\(operatorname|neq|not|quad|iff)(?![a-zA-Z])|\\[;,!]")
_MACRO_COST = {r"\operatorname": 3, r"\neq": 4, r"\not": 2, r"\quad": 1, r"\iff": 8, r"\;": 3, r"\,": 3, r"\!": 3}
# The spelling for a string past the budget, which mathtext reads too: upright names without an
# operator's spacing, plain spaces, `\not=` for `\neq`.
_CHEAP = {
    r"\operatorname": r"\mathrm",
    r"\neq": r"\not=",
    r"\quad": r"\ \ ",
    r"\iff": r"\ \Longleftrightarrow\ ",  # display only (a condition binding's line)
    r"\;": r"\ ",
    r"\,": r"\ ",
    r"\!": "",
}


def katex_expansions(tex: str) -> int:
    """How many macro expansions KaTeX makes rendering `tex` (of what the printers write)."""
    return sum(_MACRO_COST[m.group(0)] for m in _MACRO.finditer(tex))


def within_katex_budget(tex: str) -> str:
    r"""`tex`, or where KaTeX would expand more than KATEX_MAX_EXPAND macros, its cheap spelling.

    A long program (334 `relu`s), or bindings that double (`a1 = a * a` ... `a9`, 512 copies of `a`
    once substituted), passed the limit with `\operatorname` alone.
    """
    if katex_expansions(tex) <= KATEX_MAX_EXPAND:
        return tex
    cheap = _MACRO.sub(lambda m: _CHEAP.get(m.group(0), m.group(0)), tex)
    needed = katex_expansions(cheap)
    if needed > KATEX_MAX_EXPAND:
        raise LossLimitError(
            f"this loss's LaTeX would need {needed:,} macro expansions in KaTeX, which makes at most"
            f" {KATEX_MAX_EXPAND:,} (it holds too many `!=` comparisons)"
        )
    return cheap
