"""Hints for an unknown name or function (`semantics`): the closest known name ("did you mean
`y_pred`?"), or what a reader of Python, NumPy, SymPy or the LaTeX most likely meant."""

from __future__ import annotations

import difflib
import keyword
import os

from lossdsl.errors import shorten
from lossdsl.syntax_errors import NO_IF_HINT


def suggest(name: str, known, parameter: bool = False) -> str:
    """`; did you mean `k`?` with the known name `k` closest to `name` (LANGUAGE.md: an unknown name
    names the closest known one): a close spelling, in any case; else one that `name` begins
    (`y` -> `y_pred`) or holds (`reduce_sum` -> `sum`; names of three letters or more); else the
    fewest edits (`x` -> `e`). With `parameter`, a name with no close spelling is offered as a
    parameter too."""
    known = sorted(
        known, key=lambda k: k != "y_pred"
    )  # the input a loss must read, first of equals
    if not known:
        return ""
    close = close_spelling(name, known)
    if close is not None:
        return f"; did you mean `{close}`?"
    nearest = _nearest(name.lower(), known)
    if parameter:
        # (no close spelling: most likely a parameter used without its declaration)
        if keyword.iskeyword(
            name
        ):  # (a parameter so named is refused: `lambda`, a regularizer's weight)
            return (
                f"; did you mean `{nearest}`, or a parameter, declared before its use under a name that is not"
                f" a Python keyword (`param {shorten(name)}_ = 1.0`, read as `{shorten(name)}_`)?"
            )
        return f"; did you mean `{nearest}`, or a parameter, declared before its use (`param {shorten(name)} = 1.0`)?"
    return f"; did you mean `{nearest}`?"


def close_spelling(name: str, known) -> str | None:
    """The known name spelled closest to `name`, in its case or any (difflib's ratio 0.6 or more);
    of equals, the one that begins most as `name` does, then `y_pred`, then the first in
    alphabetical order (difflib's own choice, the last: `cosine` was offered `sin` before `cos`,
    `sigma` the step function `sign` before `sigmoid`); None if none is that close."""
    close = _closest(name, list(known))
    if close is None:
        lowered = {
            k.lower(): k
            for k in sorted(known, key=lambda k: k != "y_pred", reverse=True)
        }
        close = _closest(name.lower(), list(lowered))
        close = lowered[close] if close is not None else None
    return close


def _closest(name: str, known: list[str], cutoff: float = 0.6) -> str | None:
    def rank(candidate: str):
        matcher = difflib.SequenceMatcher(None, candidate, name)
        begun = len(os.path.commonprefix([candidate, name]))
        return (-matcher.ratio(), -begun, candidate != "y_pred", candidate)

    if not known:
        return None
    best = min(known, key=rank)
    return best if -rank(best)[0] >= cutoff else None


# Names a reader of the LaTeX or of other libraries reaches for (a new-user trial: `y` was offered
# `y_pred`, the LaTeX's y being `y_true`; `C` was offered `e`).
NAME_HABITS = {
    "y": "; did you mean `y_true` (the LaTeX's y), or `y_pred` (its ŷ)?",
    "y_hat": "; did you mean `y_pred` (the LaTeX's ŷ)?",
    "yhat": "; did you mean `y_pred` (the LaTeX's ŷ)?",
    "C": "; the number of classes has no name: `mean(x)` is `sum(x)` divided by it"
    " (or, for a parameter, declare it before its use: `param C = 1.0`)",
    # Python's conditional alone (it was offered `param if = 1.0`, which is refused: a keyword)
    **dict.fromkeys(("if", "elif", "else"), NO_IF_HINT),
}


# Functions a Python user reaches for, where lossdsl has another way (a user test: `sum(e^2) /
# len(e)` was offered `log`).
HABITS = {
    "len": "; the number of classes is not a value: `mean(x)` is `sum(x)` divided by it",
    # what a NumPy user reaches for over the last axis (a review: `cumsum` was offered `sum`, `sort`
    # `sqrt`, `std` `sin`)
    **dict.fromkeys(
        (
            "cumsum",
            "cumprod",
            "sort",
            "argsort",
            "top_k",
            "topk",
            "median",
            "quantile",
            "percentile",
            "gather",
        ),
        "; lossdsl has no such function: over the last axis it has the reductions `sum`, `mean`, `max`, `min`"
        " and `logsumexp`, and `softmax`, `log_softmax` and `normalize`; each other function is elementwise",
    ),
    **dict.fromkeys(
        ("argmax", "argmin"),
        "; lossdsl has no such function (an index has no gradient): `max(x)` and `min(x)` are the values",
    ),
    "std": "; write it out: `sqrt(mean((x - mean(x))^2))` over the last axis",
    "var": "; write it out: `mean((x - mean(x))^2)` over the last axis",
    "prod": "; write it out for x > 0: `exp(sum(log(x)))` over the last axis",
    "norm": "; write it out: `sqrt(sum(x^2))` over the last axis (`normalize(x)` divides x by it)",
    # Python's conditional, read as a call (`if(e > 0)`)
    **dict.fromkeys(("if", "elif"), NO_IF_HINT),
    # a step, as SymPy and NumPy name it (`heaviside` was offered `arcsin`): the function closest in kind
    **dict.fromkeys(
        ("heaviside", "step", "unit_step"),
        "; did you mean `sign` (-1, 0 or 1)? A step is `where(x > 0, 1, 0)`",
    ),
    # (a user test: offered `sigmoid` alone)
    **dict.fromkeys(
        ("log_sigmoid", "logsigmoid"),
        "; did you mean `sigmoid`? Write `log(sigmoid(x))`: the code computes it as `-softplus(-x)`, stable for any x",
    ),
}


def bundled_hint(name: str) -> str:
    """For a call of a bundled loss's name or initials (`huber(e)`, `mse(...)`): where its program is.
    Losses are programs, not functions."""
    from lossdsl import library  # (reads the package's file names only; cached)

    loss = library.expand(name)
    if loss is not None:
        return f" (`{loss}` is a bundled loss, a program, not a function: `lossdsl library {loss}` prints it)"
    # the start of a bundled loss's name (`kl_div`; a user test was offered `clip` alone)
    lowered = name.lower()
    near = sorted(
        loss
        for loss in library.names()
        if len(lowered) >= 4 and loss.startswith(lowered)
    )
    if not near:
        return ""
    return f" (or the bundled loss `{near[0]}`, a program, not a function: `lossdsl library {near[0]}` prints it)"


def bundled_name_hint(name: str, whole: bool) -> str:
    """For a bundled loss's name, initials or Keras alias as a name (`mse`, `huber`; a review: a Keras
    user writes `lossdsl.loss("mse")` as `keras.losses.get("mse")`): how to compile it where it is the
    whole loss, where its formula is where it is a part (`mse + 0.1 * mae`). Not for one or two
    letters (`h`, `p`: a parameter's name far more often than a loss's initial)."""
    from lossdsl import library  # (reads the package's file names only; cached)

    loss = library.expand(name) if len(name) >= 3 else None
    if loss is None:
        return ""
    if not whole:
        return (
            f"; `{name}` is a bundled loss, a program, not a name in one: write its formula out"
            f" (`lossdsl library {loss}` prints it), or declare a parameter (`param {name} = 1.0`)"
        )
    return (
        f"; `{name}` is a bundled loss, a program, not a name in one:"
        f' `lossdsl.library.compile("{loss}")` compiles it (`lossdsl library {loss}` prints it)'
    )


# Names are compared on this many characters at most (an edit distance costs their product).
_COMPARED = 64


def _nearest(name: str, known: list[str]) -> str:
    name = name[:_COMPARED]
    begun = [k for k in known if k.lower().startswith(name)]
    if begun:
        return min(begun, key=len)
    held = [k for k in known if len(k) >= 3 and k.lower() in name]
    if held:
        return max(held, key=len)
    return min(known, key=lambda k: _edits(name, k.lower()[:_COMPARED]))


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions that turn `a` into `b`."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            )
        previous = current
    return previous[-1]
