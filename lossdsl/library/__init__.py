"""The bundled losses: lossdsl programs shipped as `lossdsl/library/<name>.loss`.

Input: a loss name (Keras's snake_case names, e.g. "huber"). Output: the
program text (`source`), its description, or the compiled loss (`compile`,
whose class name is the CamelCase of the name, e.g. `Huber`).

Each file starts with comment lines that describe it: what it computes,
which Keras function it matches and where it differs. The set covers every
Keras 3 built-in loss except CTC and Circle (whose labels and shapes the
language cannot express), plus `penalized_absolute_error` (the seed formula),
`weighted_mean_squared_error` and `poly1`. The files are read with
`importlib.resources`, so they work from a wheel as well as from a checkout.
"""

from __future__ import annotations

import difflib
import functools
from importlib import resources

from lossdsl.api_arguments import checked_arguments
from lossdsl.errors import LossArgumentError, UnknownLossError

__all__ = [
    "class_name",
    "compile",
    "description",
    "expand",
    "names",
    "source",
    "suggest",
]

_SUFFIX = ".loss"


@functools.cache
@checked_arguments
def names() -> tuple[str, ...]:
    """The names of the bundled losses, sorted."""
    files = resources.files(__name__).iterdir()
    return tuple(
        sorted(f.name[: -len(_SUFFIX)] for f in files if f.name.endswith(_SUFFIX))
    )


# Short names that are not a bundled name's initials: Keras's own (`keras.losses.get("kld")`)
# and the cross-entropies' usual ones.
_ALIASES = {
    "kld": "kl_divergence",
    "kl": "kl_divergence",
    "logcosh": "log_cosh",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
    "scce": "sparse_categorical_crossentropy",
}


def _text(name) -> str:
    """`name`, checked to be text (`in` compares an array elementwise, pathlib refuses one and
    `.lower()` is an AttributeError: none of them a LossError; fuzzing)."""
    if not isinstance(name, str):
        raise LossArgumentError(
            f"a bundled loss's name is text (str), not {type(name).__name__}"
        )
    return name


@checked_arguments
def expand(name: str) -> str | None:
    """The bundled loss whose name, initials or Keras alias `name` is (`mse`, `bce`, `kld`,
    `logcosh`, `Huber`), else None.

    Raises:
        LossArgumentError: `name` is not text.
    """
    lowered = _text(name).strip().lower().replace("-", "_")
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for loss in names():
        if lowered in (
            loss,
            loss.replace("_", ""),
            "".join(w[0] for w in loss.split("_")),
        ):
            return loss
    return None


@checked_arguments
def suggest(name: str) -> list[str]:
    """The bundled losses a user most likely meant by `name`, best first (at most 3): the one
    `expand` finds, else those that hold it as a word (`focal`), as the start of one (`categ`) or
    anywhere (`entropy`), shortest first, else the closest spelling;
    [] if none is near.

    Raises:
        LossArgumentError: `name` is not text.
    """
    expanded = expand(name)
    if expanded is not None:
        return [expanded]
    lowered = name.strip().lower().replace("-", "_")
    if len(lowered) >= 3:
        words = {loss: loss.split("_") for loss in names()}
        for holds in (
            lambda loss: lowered in words[loss],  # a word: `hinge`, `focal`
            lambda loss: any(
                word.startswith(lowered) for word in words[loss]
            ),  # its start: `categ`
            lambda loss: len(lowered) >= 4 and lowered in loss,  # inside: `entropy`
        ):
            holding = [loss for loss in names() if holds(loss)]
            if holding:
                return sorted(holding, key=len)[:3]
    return difflib.get_close_matches(lowered, names(), n=1)


@checked_arguments
def source(name: str) -> str:
    """The program text of the bundled loss `name`.

    Raises:
        UnknownLossError: no bundled loss has that name (the message suggests the closest); a
            LossNameError and a KeyError.
        LossArgumentError: `name` is not text.
    """
    if _text(name) not in names():
        close = suggest(name)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise UnknownLossError(f"no bundled loss named {name!r}{hint}")
    return (
        resources.files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8")
    )


@checked_arguments
def description(name: str) -> str:
    """The leading comment lines of the bundled loss `name`, as text: its compiled
    `description`, read by the parser's one rule."""
    from lossdsl.source_text import description as program_description

    return program_description(source(name))


@checked_arguments
def class_name(name: str) -> str:
    """The class name of a bundled loss: `mean_squared_error` -> `MeanSquaredError`.

    Raises:
        LossArgumentError: `name` is not text.
    """
    return "".join(part[:1].upper() + part[1:] for part in _text(name).split("_"))


@checked_arguments
def compile(loss: str, /, **kwargs):  # noqa: A001 - mirrors lossdsl.compile
    """The bundled loss `loss`, compiled (`lossdsl.compile(source(loss), class_name(loss),
    ...)`); `name=` names the class, as `lossdsl.compile`'s does. (The loss's own argument is
    positional only: named `name`, it took `name=` for itself, and a class name given was
    "multiple values for argument 'name'"; a review.)"""
    from lossdsl.pipeline import compile as compile_program

    text = source(loss)  # (first: it checks `loss`)
    kwargs.setdefault("name", class_name(loss))
    return compile_program(text, **kwargs)
