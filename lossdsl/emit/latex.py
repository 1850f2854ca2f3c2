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
`(y - \\hat{y})`, `eps` is `\\epsilon`; parameters and bindings print as
`tex_names.NamePolicy` decides (Greek, upright or with subscripts).
Inside a reduction, per-element quantities carry the index of the last axis
(`\\sum_{c} y_{c} \\log\\left(\\hat{y}_{c}\\right)`; nested reductions use `c'`, `c''`).

The pieces: `tex_notation` (what inputs, operators and functions print as;
fragments and their precedence), `tex_names` (how the user's names print),
`latex_gradient` (the gradient, through SymPy's printer) and `katex_budget`
(a cheaper spelling where KaTeX would expand too many macros). This module
prints the loss as written (`LatexWriter`) and holds the entry point.

Limits: the inline form of a program whose shared bindings expand a lot is
as long as the expanded loss (bounded by semantics.MAX_TREE_SIZE operations);
nesting beyond what Python's recursion allows raises `LossLimitError`.
"""

from __future__ import annotations

from lossdsl import nodes
from lossdsl.emit.katex_budget import within_katex_budget, within_katex_groups
from lossdsl.emit.latex_gradient import gradient_latex
from lossdsl.emit.mathtext import within_mathtext_depth
from lossdsl.emit.tex_names import NamePolicy
from lossdsl.emit.tex_notation import (
    BOOL_OPS,
    COMPARISONS,
    LOSS_LHS,
    NAMED_FUNCTIONS,
    PREC_ADD,
    PREC_AND,
    PREC_ATOM,
    PREC_CMP,
    PREC_MUL,
    PREC_NEG,
    PREC_NOT,
    PREC_OR,
    PREC_POW,
    REDUCTIONS,
    VECTOR_FUNCTIONS,
    Y_HAT_TEX,
    Y_TEX,
    Fragment,
    juxtapose,
    number_tex,
    paren,
    reduction_index,
    sigmoid_tex,
    tail_of,
    wrap,
)
from lossdsl.errors import LossInternalError, LossLimitError
from lossdsl.functions import kind_of
from lossdsl.semantics import BUILTIN_CONSTANTS, ELEM, VECTOR, Resolved
from lossdsl.symbolic import SymbolicLoss

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
        self.sigmoid = sigmoid_tex(self.names.claims(r"\sigma"))
        # The builtin eps prints as its value when a user name is epsilon.
        self.eps = (
            number_tex(repr(BUILTIN_CONSTANTS["eps"]))
            if self.names.claims(r"\epsilon")
            else None
        )
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
                lines.append(
                    f"{self.names.names[st.name].tex()} &{relation} {self.visit(st.value).text}"
                )
        lines.append(f"{LOSS_LHS} &= {self.visit(self.r.result).text}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def visit(self, node: nodes.Node) -> Fragment:
        """The LaTeX of one node."""
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.gap(f"a {type(node).__name__} node", node)
        return method(node)

    def gap(self, what: str, node: nodes.Node) -> LossInternalError:
        """The error for something this printer does not know (a gap in lossdsl, not a user mistake)."""
        return LossInternalError(
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
            return Fragment(
                self.indexed(Y_TEX if name == "y_true" else Y_HAT_TEX), PREC_ATOM
            )
        if kind == "builtin":
            if name == "e":
                return Fragment(
                    f"{self.indexed(Y_TEX)} - {self.indexed(Y_HAT_TEX)}", PREC_ADD
                )
            if name == "pi":
                return Fragment(r"\pi", PREC_ATOM)
            return self.eps or Fragment(r"\epsilon", PREC_ATOM)
        if kind == "binding" and not self.display:
            key = (name, self.index, self.depth)
            if key not in self._memo:
                self._memo[key] = self.visit(self.r.bindings[name].value)
            return self._memo[key]
        per_element = kind == "binding" and self.r.of(
            self.r.bindings[name].value
        ).shape in (ELEM, VECTOR)
        return Fragment(
            self.names.names[name].tex(self.index if per_element else None), PREC_ATOM
        )

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
        return Fragment(
            node.op + text, PREC_NEG, sign=True, tail=tail_of(operand, text)
        )

    def visit_Chain(self, node: nodes.Chain) -> Fragment:
        parts = [self.visit(o) for o in node.operands]
        if node.kind == "add":
            return self.sum_chain(parts, node.ops)
        lead = node.operands[0]
        if "/" in node.ops and isinstance(lead, nodes.Unary):
            # the lead's sign before the fraction it heads: `-y_pred/2` as `-\frac{\hat{y}}{2}`, as an
            # author writes it, not `\frac{-\hat{y}}{2}` (a LaTeX review)
            chain = self.product_chain([self.visit(lead.operand), *parts[1:]], node.ops)
            text = lead.op + wrap(chain, PREC_MUL, sign_ok=False)
            return Fragment(text, PREC_NEG, sign=True, tail=tail_of(chain, text[1:]))
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
                pieces.append(
                    Fragment(r"\frac{" + top.text + "}{" + bottom.text + "}", PREC_MUL)
                )
            else:
                pieces.append(
                    self.factors(
                        numerator, lead, follow="mul" if s < len(segments) - 1 else None
                    )
                )
        text = pieces[0].text
        for piece in pieces[1:]:
            text = juxtapose(text, piece.text)
        signed = pieces[0].sign
        return Fragment(
            text, PREC_NEG if signed else PREC_MUL, sign=signed, tail=pieces[-1].tail
        )

    def factors(
        self,
        parts: list[Fragment],
        lead: bool,
        *,
        follow: str | None,
        braced: bool = False,
    ) -> Fragment:
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
            texts.append(
                wrap(
                    part, PREC_NEG if signed else PREC_MUL, follow=after, sign_ok=signed
                )
            )
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
        return Fragment(
            f"{wrap(base, PREC_ATOM, follow='mul', sign_ok=False)}^{{{exponent}}}",
            PREC_POW,
        )

    # ---- conditions

    def visit_Compare(self, node: nodes.Compare) -> Fragment:
        left = wrap(self.visit(node.left), PREC_ADD, follow="op")
        right_frag = self.visit(node.right)
        right = wrap(right_frag, PREC_ADD)
        return Fragment(
            f"{left} {COMPARISONS[node.op]} {right}",
            PREC_CMP,
            tail=tail_of(right_frag, right),
        )

    def visit_BoolOp(self, node: nodes.BoolOp) -> Fragment:
        prec = PREC_AND if node.op == "and" else PREC_OR
        parts = [self.visit(o) for o in node.operands]
        # (an `and` inside an `or` keeps its parentheses: no convention binds one tighter; a review)
        force = [node.op == "or" and p.prec == PREC_AND for p in parts]
        texts = [
            paren(p.text)
            if force[i]
            else wrap(p, prec, follow=None if i == len(parts) - 1 else "op")
            for i, p in enumerate(parts)
        ]
        return Fragment(
            f" {BOOL_OPS[node.op]} ".join(texts),
            prec,
            tail=tail_of(parts[-1], texts[-1]),
        )

    def visit_Not(self, node: nodes.Not) -> Fragment:
        operand = self.visit(node.operand)
        # `\neg(a > b)`, not `\neg a > b`, although precedence would allow it.
        text = (
            operand.text if isinstance(node.operand, nodes.Not) else paren(operand.text)
        )
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
            text = self.indexed(
                VECTOR_FUNCTIONS[name] + paren(self.unindexed(args[0]).text)
            )
            if name == "log_softmax":
                # `\log` runs to the right: `\log\operatorname{softmax}(x)^{2}` or `... y` would read as
                # the log of a square or of a product.
                return Fragment(text, PREC_POW, tail="big")
            return Fragment(text, PREC_ATOM)
        frags = [self.visit(a) for a in args]
        if name in SPECIAL_FUNCTIONS:
            return SPECIAL_FUNCTIONS[name](self, frags)
        if name in NAMED_FUNCTIONS:
            return Fragment(
                NAMED_FUNCTIONS[name] + paren(", ".join(f.text for f in frags)),
                PREC_ATOM,
            )
        raise self.gap(f"the function `{name}`", node)

    def reduction(self, name: str, arg: nodes.Node) -> Fragment:
        """`\\sum_{c} x`, `\\frac{1}{C}\\sum_{c} x`, `\\max_{c} x` or `\\log\\sum_{c}\\exp(x)`; `x` indexed by `c`."""
        index = reduction_index(self.depth)
        saved = self.index
        self.index, self.depth = index, self.depth + 1
        try:
            operand = self.visit(arg)
        finally:
            self.index, self.depth = saved, self.depth - 1
        if name == "logsumexp":
            return Fragment(
                REDUCTIONS[name] % index + paren(operand.text), PREC_MUL, tail="big"
            )
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
            return Fragment(
                "\\begin{cases}\n" + " \\\\\n".join(lines) + "\n\\end{cases}",
                PREC_ATOM,
                tail="cases",
            )
        chain = "".join(
            rf"{value} \;\mathrm{{if}}\; {cond} \;\mathrm{{else}}\; "
            for value, cond in rows
        )
        return Fragment(r"\left[" + chain + otherwise + r"\right]", PREC_ATOM)


def one_plus(frag: Fragment) -> str:
    """`1 + x`, with x's own leading sign where it has one: `1 - a b` for `-a b`, and `1 - a + b` for
    `-a + b` (it was `1 + (-a + b)`; a LaTeX review)."""
    if frag.sign and frag.prec in (PREC_NEG, PREC_ADD) and frag.text[:1] in ("-", "+"):
        return f"1 {frag.text[0]} {frag.text[1:]}"
    return "1 + " + wrap(frag, PREC_ADD, sign_ok=False)


# Elementwise functions with their own notation.
SPECIAL_FUNCTIONS = {
    "abs": lambda w, f: Fragment(r"\left|" + f[0].text + r"\right|", PREC_ATOM),
    "sqrt": lambda w, f: Fragment(r"\sqrt{" + f[0].text + "}", PREC_ATOM),
    "square": lambda w, f: w.power(f[0], "2"),
    "pow": lambda w, f: w.power(f[0], f[1].text),
    "log1p": lambda w, f: Fragment(r"\log" + paren(one_plus(f[0])), PREC_ATOM),
    "expm1": lambda w, f: Fragment(r"\exp" + paren(f[0].text) + " - 1", PREC_ADD),
    "floor": lambda w, f: Fragment(
        r"\left\lfloor " + f[0].text + r" \right\rfloor", PREC_ATOM
    ),
    "ceil": lambda w, f: Fragment(
        r"\left\lceil " + f[0].text + r" \right\rceil", PREC_ATOM
    ),
    "sigmoid": lambda w, f: Fragment(w.sigmoid + paren(f[0].text), PREC_ATOM),
}


# ---------------------------------------------------------------- entry


def emit_latex(
    resolved: Resolved,
    symbolic: SymbolicLoss,
    *,
    gradient: bool = False,
    display: bool = False,
) -> str:
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
        raise LossLimitError(
            "the program is nested too deeply to print as LaTeX", source=resolved.source
        ) from None
    tex = within_katex_budget(tex)
    # Any string of one line, display or not (a display gradient with no `cases` is one: 70
    # nested `sin`s under a binding nested 141 groups deep, past mathtext's recursion; a review)
    one_line = "\n" not in tex and r"\begin{" not in tex
    return within_katex_groups(within_mathtext_depth(tex) if one_line else tex)
