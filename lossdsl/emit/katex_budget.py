"""The KaTeX expansion budget: LaTeX -> the same LaTeX, or a cheaper spelling of it.

KaTeX expands at most KATEX_MAX_EXPAND macros in one string and fails past
that. `within_katex_budget` counts what the printers write that KaTeX expands
(`\\operatorname`, `\\neq`, `\\;` ...) and, over the budget, spells those
macros cheaply (`\\mathrm`, `\\not=`, plain spaces), which mathtext reads
too. Limits: a string still over the budget when cheap (too many `!=`)
raises `LossLimitError`.
"""

from __future__ import annotations

import re

from lossdsl.errors import LossLimitError

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
