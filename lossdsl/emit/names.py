"""Names in the generated module: the class's (`snake_case`, `camel_case`), the
attributes that hold the parameters, and the names call()'s locals cannot take."""

from __future__ import annotations

import keyword
import re

from lossdsl.emit.xla_forms import FUNCTION_NAMES

# The builtins the generated code reads (tests/test_emit_keras.py checks the list against the code).
BUILTINS_READ = frozenset(
    {"super", "len", "tuple", "getattr", "isinstance", "ValueError", "AttributeError"}
)
# Module-level names the generated code reads: the class cannot take one of them.
MODULE_NAMES = frozenset({"keras"}) | BUILTINS_READ | FUNCTION_NAMES
# Names the generated call() cannot use for its locals.
# `__debug__` is no keyword, but Python cannot assign to it (found by fuzzing, 2026-12-01).
RESERVED = (
    frozenset(keyword.kwlist)
    | MODULE_NAMES
    | {"__debug__", "self", "y_true", "y_pred", "l", "O", "I"}
)
# ... and the names a fused call() defines around them.
RESERVED |= {
    "forward",
    "backward",
    "args",
    "upstream",
    "variables",
    "wide",
    "classes",
    "share",
    "gradient",
    "target",
}
MAX_LOCAL_NAME = 30
# Loss attributes a parameter must not overwrite; such parameters are stored as `self.param_<name>`.
_LOSS_ATTRIBUTES = frozenset(
    {"call", "get_config", "from_config", "dtype", "name", "reduction"}
)


def snake_case(name: str) -> str:
    """`FormulaLoss` -> `formula_loss`, as Keras names its own objects; without leading
    underscores (`_Private` -> `private`: TensorFlow refuses `__private` as a root name scope,
    and the default name failed at the first call under `tf.function`; a review)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    snake = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return snake.lstrip("_") or snake


def camel_case(name: str) -> str:
    """`my_mae` -> `MyMae`; a name without separators keeps its letters (`MyMAE` stays)."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    if len(parts) == 1 and name == parts[0] and name[:1].isupper():
        return name
    return "".join(p[:1].upper() + p[1:] for p in parts)


def param_attributes(params) -> dict[str, str]:
    """Parameter name -> the attribute of the loss object that holds it."""
    attributes: dict[str, str] = {}
    for name in params:
        attribute = name
        if name in _LOSS_ATTRIBUTES or name.startswith("_"):
            attribute = "param_" + name.lstrip("_")
            while attribute in params or attribute in attributes.values():
                attribute += "_"
        attributes[name] = attribute
    return attributes
