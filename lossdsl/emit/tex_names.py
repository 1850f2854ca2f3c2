"""How names print in LaTeX: the user's parameters and bindings, no two alike.

Input: a resolved program (its statements, in order). Output: a `TexName`
for each parameter and binding (`NamePolicy.names`), used by the loss
(`latex.LatexWriter`), the gradient (`latex_gradient.GradientPrinter`) and
the docs pages (`docs.py`).

Names after Greek letters print as Greek (`alpha` -> `\\alpha`), a letter or
a Greek letter with a suffix takes it as subscripts (`w_1` -> `w_{1}`), other
names print upright (`\\mathrm{bce}`). A name never prints as the notation
itself (`y`, `\\hat{y}`, `c`, `C`, `L`, `e`, `\\pi`; RESERVED) nor as an
element of it (`y_{c}`; RESERVED_HEADS), nor with the reduction's index as a
subscript (`w_c` -> `\\mathrm{w\\_c}`: `w_{c}` in a sum over c reads as one weight
per class) or the axis's length (`x_C`), nor as an earlier name: such a name prints upright, then with primes.
A name `e` prints as `\\tilde{e}`: upright, it would read as Euler's number (CONSTANT_LOOKALIKES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lossdsl.emit.tex_notation import Y_HAT_TEX, Y_TEX, reduction_index
from lossdsl.functions import FUNCTIONS
from lossdsl.semantics import Resolved

GREEK = {
    name: "\\" + name
    for name in (
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau"
        " upsilon phi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega"
        # the variant forms KaTeX and matplotlib's mathtext both print (a review: `varphi` printed
        # upright, `\mathrm{varphi}`)
        " varepsilon vartheta varkappa varpi varrho varsigma varphi"
    ).split()
}
GREEK["eps"] = r"\epsilon"
# A letter and the variant most readers take for it: a parameter `varepsilon` claims `\epsilon`
# from the builtin eps as a parameter `epsilon` does (a review: the two printed side by side).
LOOKALIKES = {r"\epsilon": r"\varepsilon"}
# What the notation itself uses: a user name that would print as one of these
# prints upright instead (`y` -> `\mathrm{y}`); `e` is kept for Euler's number.
RESERVED = frozenset({Y_TEX, Y_HAT_TEX, "c", "C", "L", "e", r"\pi"})
# An upright form that is itself a constant's notation prints otherwise: `\mathrm{e}` is Euler's
# number as ISO 80000-2 writes it (a parameter `e` of 2.0 printed `\mathrm{e}^{\hat{y}}`, which
# reads as exp(y_pred); a review).
CONSTANT_LOOKALIKES = {r"\mathrm{e}": r"\tilde{e}"}
# Nor may a user name print as one of these with subscripts (`y_c` -> `\mathrm{y\_c}`, not `y_{c}`,
# an element of y_true).
RESERVED_HEADS = frozenset({Y_TEX, "c", "C", "L"})
# The index a name takes in a reduction, which a user's name can hold only at the outer level.
REDUCTION_INDEX = reduction_index(0)
# Nor may a user name take as a subscript that index, or the axis's length (`x_C` -> `\mathrm{x\_C}`,
# not `x_{C}`, the last element of x; a review).
RESERVED_SUBS = frozenset({REDUCTION_INDEX, "C"})


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
    underscore, as in Python, is dropped (`lambda_` -> `\\lambda`), unless the rest is a
    function's name (`sin_` -> `\\mathrm{sin\\_}`, not `\\mathrm{sin}`). Other names
    print upright as a whole: `bce` -> `\\mathrm{bce}`, `class_weight` ->
    `\\mathrm{class\\_weight}`.
    """
    core = name.rstrip("_") or name
    if (
        core in FUNCTIONS
    ):  # `sin_` kept whole: `\mathrm{sin}` would read as the function
        core = name
    parts = core.split("_")
    head, subs = parts[0], parts[1:]
    digits = re.fullmatch(r"([A-Za-z]+?)(\d+)", head)
    if digits and not subs:
        head, subs = digits.group(1), [digits.group(2)]
    if any(not p for p in parts) or not (len(head) == 1 or head in GREEK):
        return upright(core)
    return TexName(_part_tex(head), tuple(_part_tex(s) for s in subs))


def respelled(name: str) -> bool:
    """True when a name's preferred form drops or adds an underscore (`alpha_` -> `\\alpha`,
    `w1` -> `w_{1}`): the name spelled as that form (`alpha`, `w_1`) has the first claim to it."""
    core = name.rstrip("_") or name
    return core != name or re.fullmatch(r"[A-Za-z]+?\d+", core) is not None


class NamePolicy:
    """How each parameter and binding prints, with no two names alike.

    A name whose preferred form is taken (by the notation or by another
    name) or would read as the notation with subscripts (`y_{c}`) prints
    upright (`\\mathrm{name}`), then with primes. Names claim their forms in
    the program's order, those spelled as their form first: `alpha` prints
    `\\alpha` and `alpha_` `\\mathrm{alpha\\_}`, whichever is declared first (a
    review: the first took the letter, and the parameter named `alpha` printed
    upright).
    """

    def __init__(self, resolved: Resolved) -> None:
        self.names: dict[str, TexName] = {}
        taken = set(RESERVED)
        # Nor as another name's element: `a_c` beside `a`, whose element in a sum is `a_{c}` (a review)
        preferred = {
            st.name: preferred_name(st.name) for st in resolved.program.statements
        }
        elements = {n.tex(REDUCTION_INDEX) for n in preferred.values()}
        statements = resolved.program.statements
        for st in sorted(statements, key=lambda st: respelled(st.name)):
            fallback = upright(st.name)
            candidates = [
                preferred[st.name],
                TexName(CONSTANT_LOOKALIKES.get(fallback.head, fallback.head)),
            ]
            free = (
                c
                for c in candidates
                if c.tex() not in taken
                and not (
                    c.subs
                    and (
                        c.head in RESERVED_HEADS
                        or c.tex() in elements
                        or RESERVED_SUBS & set(c.subs)
                    )
                )
            )
            choice = next(free, None)
            while choice is None or choice.tex() in taken:
                base = choice or candidates[-1]
                choice = TexName(base.head + "'", base.subs)
            self.names[st.name] = choice
            taken.add(choice.tex())
        self.names = {st.name: self.names[st.name] for st in statements}
        self.heads = {n.head for n in self.names.values() if not n.subs}

    def claims(self, tex: str) -> bool:
        """True when a user name prints as `tex`, or as a letter most readers take for it (so a
        builtin must print otherwise)."""
        return tex in self.heads or LOOKALIKES.get(tex) in self.heads
