"""Checks of the Python API's arguments: a program that is not text, a flag that is not True or
False, an argument a function does not take; each is a `LossArgumentError`, not Python's bare
TypeError or a failure further on. (The command line's arguments are `arguments.py`'s.)
"""

from __future__ import annotations

import functools
import inspect

from lossdsl.errors import LossArgumentError


def require_text(source: object) -> str:
    """`source` as a plain str if it is a program's text (a str or a subclass, whose own methods
    do not run later: a `__hash__` that raised came out of the cache's look-up; a review);
    LossArgumentError otherwise."""
    if not isinstance(source, str):
        raise LossArgumentError(
            f"a lossdsl program is text (str), not {type(source).__name__}"
        )
    return source if type(source) is str else str.__str__(source)


def require_flag(name: str, value: object) -> bool:
    """`value` as a bool, for a keyword that takes True or False (an int, or a NumPy scalar of
    one, too); anything else is a LossArgumentError: `bool("no")` is True, and `bool()` of an
    array of two raises NumPy's ValueError."""
    scalar = (
        getattr(value, "shape", None) == ()
        and getattr(getattr(value, "dtype", None), "kind", "") in "bi"
    )
    if isinstance(value, int) or scalar:
        return bool(value)
    raise LossArgumentError(f"{name}= takes True or False, not {type(value).__name__}")


def checked_arguments(function):
    """`function`, where arguments it does not take (an unknown keyword, one positional too
    many) are a LossArgumentError, as the outputs' methods have it, not Python's bare TypeError
    (`compile("abs(e)", foo=1)`; fuzzing)."""
    signature = inspect.signature(function)
    # (a constructor by its class's name: `FormulaLoss(): missing a required argument: 'formula'`)
    label = (
        function.__qualname__.rsplit(".", 2)[-2]
        if function.__name__ == "__init__"
        else function.__name__
    )
    accepts = _binds(signature)

    @functools.wraps(function)
    def checked(*args, **kwargs):
        if accepts is None or not accepts(args, kwargs):
            try:
                signature.bind(*args, **kwargs)
            except TypeError as err:
                raise LossArgumentError(f"{label}(): {err}") from None
        return function(*args, **kwargs)

    return checked


def _binds(signature: inspect.Signature):
    """For a signature of named parameters only (no `*args`, `**kwargs` or positional-only ones), a
    test `(args, kwargs) -> bool` that is True where `signature.bind(*args, **kwargs)` succeeds, and
    False where it may not (it then says why); None for any other signature. (`bind` costs a few
    microseconds per call, several calls per compile, for arguments that are almost always right.)"""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = list(signature.parameters.values())
    if any(p.kind not in kinds for p in parameters):
        return None
    positional = tuple(
        p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )
    names = frozenset(p.name for p in parameters)
    required = tuple(p.name for p in parameters if p.default is inspect.Parameter.empty)

    def accepts(args: tuple, kwargs: dict) -> bool:
        if len(args) > len(positional):
            return False
        given = positional[: len(args)]
        if any(name not in names or name in given for name in kwargs):
            return False
        return all(name in given or name in kwargs for name in required)

    return accepts
