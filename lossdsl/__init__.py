"""lossdsl: a symbolic loss compiler for Keras.

Write a loss as math, get a checked SymPy expression, a Keras 3 `Loss`
subclass (live and as a standalone module) and the formula's LaTeX.

    import lossdsl
    spec = lossdsl.compile("abs(e)*0.5*(1+abs(e))", name="PenalizedMAE")
    spec.expr, spec.diagnostics, spec.latex(), spec.python_source()
"""

import atexit as _atexit
import functools as _functools
import sys as _sys

from lossdsl import keras_hook as _keras_hook

__version__ = "0.1.0"

_ERRORS = [
    "Diagnostic",
    "LossArgumentError",
    "LossDomainError",
    "LossError",
    "LossInternalError",
    "LossLimitError",
    "LossNameError",
    "LossSyntaxError",
    "LossTypeError",
    "LossWarning",
    "NoPredictionDependenceError",
    "NotDifferentiableError",
    "UnknownLossError",
]

__all__ = sorted(
    [
        *_ERRORS,
        "CompiledLoss",
        "FormulaLoss",
        "FormulaMetric",
        "check",
        "compile",
        "library",
        "loss",
        "metric",
    ]
)


def _checked(function):
    """`function`, its arguments checked as `api_arguments.checked_arguments` does (`loss()` was
    Python's bare TypeError; a review), that module imported and the check made at the first call."""

    @_functools.cache
    def check():
        from lossdsl.api_arguments import checked_arguments

        return checked_arguments(function)

    @_functools.wraps(function)
    def checked(*args, **kwargs):
        return check()(*args, **kwargs)

    return checked


@_checked
def loss(source: str, name: str | None = None, *args, **kwargs):
    """Shortcut: `compile(source, name).keras_loss(...)`; `name` names the class and the Keras object."""
    _positional("loss", args)
    from lossdsl.runtime import build_loss

    return build_loss(source, name, **kwargs)


@_checked
def metric(source: str, name: str | None = None, *args, **kwargs):
    """Shortcut: `compile(source, name).keras_metric(...)`; `name` names the class and the Keras object."""
    _positional("metric", args)
    from lossdsl.runtime import build_metric

    return build_metric(source, name, **kwargs)


def _positional(function: str, args: tuple) -> None:
    """A LossArgumentError for positional arguments past `source` and `name` (Python's TypeError
    before; fuzzing): parameters and Keras's arguments are keywords."""
    if args:
        raise _errors().LossArgumentError(
            f"{function}() takes 2 positional arguments (source, name), not {2 + len(args)}:"
            " give parameters and Keras's arguments as keywords"
        )


# Everything is imported when first asked for, so that `import lossdsl` costs next to nothing
# (the compiler, SymPy and Lark, takes half a second to import, Keras seconds).


def _errors():
    from lossdsl import errors

    return errors


def _pipeline():
    from lossdsl import pipeline

    return pipeline


def _compiled():
    from lossdsl import compiled

    return compiled


def _runtime():  # Keras is imported only when a Keras object is asked for
    from lossdsl import runtime

    return runtime


_LAZY = {
    **dict.fromkeys(_ERRORS, _errors),
    "check": _pipeline,
    "compile": _pipeline,
    "CompiledLoss": _compiled,
    "FormulaLoss": _runtime,
    "FormulaMetric": _runtime,
}


def __getattr__(attr: str):
    if attr in _LAZY:
        value = getattr(_LAZY[attr](), attr)
        globals()[attr] = value
        return value
    if attr == "library":
        # `from lossdsl import library` would ask this very hook for the attribute first.
        import lossdsl.library as library

        return library
    raise AttributeError(f"module 'lossdsl' has no attribute {attr!r}")


# Keras finds FormulaLoss in its registry only once lossdsl.runtime has run: register it now if
# Keras is loaded, or as soon as it is (see keras_hook), so `import lossdsl` is enough to load a
# saved model in either import order, while Keras stays unimported until someone imports it.
_keras_hook.install()


def _sweep_at_exit() -> None:
    """Remove the folders of generated modules that processes killed before their exit handlers
    left behind (a `multiprocessing.Pool`'s workers, terminated as `with Pool(...)` ends): at the
    exit of a process that imported lossdsl (see module_folder; `keras_hook.install_at_startup`,
    which imports this package at every start-up, takes the registration back). Only where
    `multiprocessing` was imported: other processes' leftovers go when a process makes its folder."""
    if "multiprocessing" not in _sys.modules:
        return
    try:
        from lossdsl import module_folder

        module_folder.sweep_at_exit()
    except Exception:  # noqa: BLE001 - nothing of this is the user's business at exit
        pass


_atexit.register(_sweep_at_exit)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
