"""The KaTeX expansion budget: LaTeX -> the same LaTeX, or a cheaper spelling of it.

KaTeX expands at most KATEX_MAX_EXPAND macros in one string and fails past
that. `within_katex_budget` counts what the printers write that KaTeX expands
(`\\operatorname`, `\\neq`, `\\;` ...) and, over the budget, spells those
macros cheaply (`\\mathrm`, `\\not=`, plain spaces), which mathtext reads
too. `within_katex_groups` refuses a string with a group of more tokens
than KaTeX reads in one argument (MAX_GROUP_TOKENS). Limits: a string still
over the budget when cheap (too many `!=`), or with such a group, raises
`LossLimitError`.
"""

from __future__ import annotations

import bisect
import re

from lossdsl.errors import LossLimitError

# KaTeX expands at most 1,000 macros in one string (its `maxExpand`; past it "Too many
# expansions"). Of what the printers write, these are macros, with what each costs (measured with
# KaTeX 0.16); everything else (`\\frac`, `\\left`, `\\mathrm`, `\\ `, symbols) costs nothing.
KATEX_MAX_EXPAND = 1000
_MACRO = re.compile(r"\\(operatorname|neq|not|quad|iff)(?![a-zA-Z])|\\[;,!]")
_MACRO_COST = {
    r"\operatorname": 3,
    r"\neq": 4,
    r"\not": 2,
    r"\quad": 1,
    r"\iff": 8,
    r"\;": 3,
    r"\,": 3,
    r"\!": 3,
}
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


# KaTeX (0.16, on Node 20's default stack) reads a macro's argument by spreading its tokens into
# one call (`MacroExpander.pushTokens`): a `\frac` numerator of about 125,000 tokens overflows the
# stack ("Maximum call stack size exceeded").
MAX_GROUP_TOKENS = 100_000
# KaTeX's tokens: a control word or symbol, a run of white space, any other character.
_TOKEN = re.compile(r"\\[a-zA-Z]+|\\.|\s+|.", re.S)
_BRACE = re.compile(r"\\.|[{}]", re.S)


def longest_group(tex: str) -> int:
    """The number of KaTeX tokens in the longest `{...}` group of `tex` (braces escaped as `\\{`
    are text, not groups). Linear in the text: the tokens are found once, and a group's count is
    the difference of two positions among them."""
    starts = [m.start() for m in _TOKEN.finditer(tex)]
    longest, opened = 0, []
    for m in _BRACE.finditer(tex):
        if m.group() == "{":
            opened.append(m.start() + 1)
        elif m.group() == "}" and opened:
            inside = bisect.bisect_left(starts, m.start()) - bisect.bisect_left(
                starts, opened.pop()
            )
            longest = max(longest, inside)
    return longest


def within_katex_budget(tex: str) -> str:
    r"""`tex`, or where KaTeX would expand more than KATEX_MAX_EXPAND macros, its cheap spelling.

    A long program (334 `relu`s), or bindings that double (`a1 = a * a` ... `a9`, 512 copies of `a`
    once substituted), passed the limit with `\operatorname` alone.
    """
    if katex_expansions(tex) > KATEX_MAX_EXPAND:
        tex = _MACRO.sub(lambda m: _CHEAP.get(m.group(0), m.group(0)), tex)
        needed = katex_expansions(tex)
        if needed > KATEX_MAX_EXPAND:
            raise LossLimitError(
                f"this loss's LaTeX would need {needed:,} macro expansions in KaTeX, which makes at most"
                f" {KATEX_MAX_EXPAND:,} (it holds too many `!=` comparisons)"
            )
    return tex


def within_katex_groups(tex: str) -> str:
    """`tex`, where no group is longer than KaTeX reads (MAX_GROUP_TOKENS): the gradient of 145
    chained `erf`s, a `\\frac` of 280,000 characters, overflowed KaTeX's stack (found by fuzzing).

    Raises:
        LossLimitError: a longer group.
    """
    if len(tex) <= MAX_GROUP_TOKENS:  # no more tokens than characters
        return tex
    group = longest_group(tex)
    if group > MAX_GROUP_TOKENS:
        raise LossLimitError(
            f"this LaTeX would hold a group of {group:,} tokens; the limit is {MAX_GROUP_TOKENS:,} (KaTeX"
            " overflows its stack reading a \\frac argument of about 125,000)"
        )
    return tex
