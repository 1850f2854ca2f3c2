"""`CompiledLoss`: a checked program and everything it can become.

The front half (SymPy expression, gradient, diagnostics) is computed by the
pipeline; the emitters (LaTeX, Keras source) and the Keras objects are
produced on demand and cached.
"""

from __future__ import annotations

import functools
import keyword

import sympy as sp

from lossdsl.api_arguments import checked_arguments, require_flag
from lossdsl.emit.names import MODULE_NAMES
from lossdsl.errors import Diagnostic, LossArgumentError, LossTypeError, contained
from lossdsl.semantics import Resolved
from lossdsl.symbolic import SYMPY_LOCK, SymbolicLoss


def _contained(what: str):
    """A method that raises LossErrors only (`errors.contained`); arguments it does not take are a
    LossArgumentError (a TypeError too, as Python's own), not a gap in lossdsl."""

    def wrap(method):
        @checked_arguments
        @functools.wraps(method)
        def contained_method(
            *args, **kwargs
        ):  # `self` too, so that `latex(self=1)` is bound here
            with SYMPY_LOCK, contained(what, args[0].source):
                return method(*args, **kwargs)

        return contained_method

    return wrap


def _keywords_only(method: str, args: tuple, keywords: str) -> None:
    """A LossArgumentError for positional arguments to a method that takes keywords only."""
    if args:
        raise LossArgumentError(
            f"{method}() takes keyword arguments only ({keywords}), not {len(args)} positional"
        )


def validate_class_name(name: object) -> str:
    """`name` if it can name the generated class; LossTypeError otherwise."""
    if (
        not isinstance(name, str)
        or not name.isidentifier()
        or keyword.iskeyword(name)
        or not name.isascii()
    ):
        raise LossTypeError(
            f"{name!r} cannot name a Python class: use an ASCII identifier that is not a keyword"
        )
    if name in MODULE_NAMES:
        raise LossTypeError(
            f"{name!r} cannot name the generated class: the module needs that name"
        )
    if name.startswith("__") and name.endswith("__"):
        # `__class__`, `__dict__`, ...: the generated module's own attributes, not its class
        raise LossTypeError(
            f"{name!r} cannot name the generated class: names of the form __x__ are Python's own"
        )
    return name


class CompiledLoss:
    """A compiled lossdsl program.

    Attributes:
        name: the generated class name.
        source: the program text as given.
        description: the leading comment lines ("" if none).
        params: declared parameters and their defaults.
        expr: the loss as SymPy, bindings inlined (for an elementwise program, the element).
        diagnostics: warnings and notes of the checks (errors were raised).
        strict: whether warnings were treated as errors.
    """

    def __init__(
        self,
        name: str,
        source: str,
        resolved: Resolved,
        symbolic: SymbolicLoss,
        diagnostics: list[Diagnostic],
        strict: bool = False,
    ) -> None:
        self.name = name
        self._source = source
        self.description = resolved.program.description
        self._params = dict(resolved.params)
        self.diagnostics = diagnostics
        self.strict = strict
        self.resolved = resolved
        self.symbolic = symbolic

    @property
    def name(self) -> str:
        """The generated class's name; set to another, it is checked as `compile()` checks it (a
        keyword or a name that is not an identifier made a module that did not import; a review)."""
        return self._name

    @name.setter
    def name(self, value: object) -> None:
        self._name = validate_class_name(value)

    @property
    def description(self) -> str:
        """The leading comment lines; the user's to set, as text, for the docstring and the docs."""
        return self._description

    @description.setter
    def description(self, value: object) -> None:
        if not isinstance(value, str):
            raise LossTypeError(
                f"a description is text (a str), not {type(value).__name__}"
            )
        self._description = value

    @property
    def source(self) -> str:
        """The program text as given: what was compiled, so it cannot be set (compile a new text)."""
        return self._source

    @source.setter
    def source(self, value: object) -> None:
        raise LossArgumentError(
            "source is the text that was compiled: compile another with lossdsl.compile()"
        )

    def __repr__(self) -> str:
        return (
            f"<CompiledLoss {self.name}: {self.source.strip().splitlines()[-1][:60]!r}>"
        )

    def __copy__(self) -> CompiledLoss:
        copied = object.__new__(
            type(self)
        )  # (a shallow copy shares the analysis: it stays whole)
        copied.__dict__.update(self.__dict__)
        return copied

    def __reduce__(self):
        # Copied or pickled, a compiled loss is compiled again from its text: the analysis keys its
        # facts by the syntax tree's nodes, which a copy would renew (`latex()` of a deep copy was
        # a LossInternalError; a review). The front end's cache makes it a look-up in one process.
        # A description set since goes along (it was lost; a review).
        return (
            _compiled_again,
            (self.source, self.name, self.strict, self.description),
        )

    @property
    def params(self) -> dict[str, float]:
        """The declared parameters and their defaults, a new dict at each read: the code, the LaTeX
        and the checks are of the defaults compiled (a changed dict changed what `python_source()`
        wrote next, and a value that was not a number made it a LossInternalError; a review)."""
        return dict(self._params)

    @property
    def per_sample(self) -> bool:
        """True when the loss is one value per sample as written (no implicit mean)."""
        return self.symbolic.per_sample

    @functools.cached_property
    @_contained("write as a SymPy expression")
    def expr(self) -> sp.Expr:
        """The loss as written in SymPy: bindings inlined, symbols `y_true`, `y_pred` and the params."""
        return self.symbolic.public(self.symbolic.plain())

    @checked_arguments
    def gradient(self) -> sp.Expr:
        """d(expr)/d(y_pred) for one element."""
        return self._gradient

    @functools.cached_property
    @_contained("differentiate")
    def _gradient(self) -> sp.Expr:
        return self.symbolic.public(self.symbolic.gradient())

    @_contained("write as LaTeX")
    def latex(
        self,
        gradient: bool = False,
        *,
        display: bool | None = None,
        inline: bool | None = None,
    ) -> str:
        """LaTeX of the loss as written (or of its gradient).

        Args:
            gradient: the gradient with respect to y_pred instead of the loss.
            display: bindings as lines of an `aligned` block (default when there are bindings).
            inline: one line, bindings substituted (the opposite of `display`).
        """
        from lossdsl.emit.latex import emit_latex

        gradient = require_flag("gradient", gradient)
        display = None if display is None else require_flag("display", display)
        inline = None if inline is None else require_flag("inline", inline)
        if display is not None and inline is not None and display == inline:
            raise LossArgumentError(
                f"display={display!r} and inline={inline!r} contradict: give one of them"
            )
        if display is None:
            display = (
                (not inline) if inline is not None else bool(self.resolved.bindings)
            )
        key = (gradient, display)
        written = self.symbolic.latex
        if key not in written:
            written[key] = emit_latex(
                self.resolved, self.symbolic, gradient=key[0], display=key[1]
            )
        return written[key]

    @_contained("write as Keras code")
    def python_source(self, fast: bool = True, *, xla: bool = False) -> str:
        """A standalone module (imports only keras) defining the loss class `name`.

        `fast=False` leaves out the speed-ups the benchmark measures (fused gradients, fused
        kernels for idioms): the stable form, differentiated by autodiff (see `emit.keras`).
        `xla=True` spells the code for XLA (`tf.function(jit_compile=True)`): `softplus` with
        `sigmoid`, and `log_softmax` with `softmax`, written out to share one exponential between
        the passes, and `log1p` written out as a log with its rounding error, equally accurate; it
        runs everywhere, and its class has a registered name of
        its own. (The default code takes the same `log1p` and `softplus` forms by itself while
        TensorFlow traces it for XLA: `emit.xla_forms`.)
        """
        fast, xla = require_flag("fast", fast), require_flag("xla", xla)
        # (the description too: it is an attribute of this object, which a user may set; the review)
        key = (self.name, self.description, fast or xla, xla)
        written = self.symbolic.python_sources
        if key not in written:
            from lossdsl.emit.keras import emit_keras

            written[key] = emit_keras(self, fast=key[2], xla=key[3])
        return written[key]

    def keras_loss(self, *args, **kwargs):
        """An instance of the generated class; kwargs: params and Loss's reduction, name, dtype."""
        from lossdsl.runtime import (
            keras_arguments,
            loss_class,
            parameter_value,
            unknown_arguments,
        )

        _keywords_only("keras_loss", args, "parameters, reduction, name, dtype")
        # The generated class stores what it is given, as Keras's own classes do; through
        # lossdsl a parameter is checked here, so that a bad one fails now, not at the first call.
        unknown_arguments(self, kwargs, ("reduction", "name", "dtype"))
        kwargs = {
            k: parameter_value(k, v) if k in self.params else v
            for k, v in kwargs.items()
        }
        keras_arguments(**{k: v for k, v in kwargs.items() if k not in self.params})
        return loss_class(self)(**kwargs)

    def keras_metric(self, *args, **kwargs):
        """A Keras metric averaging the same formula; kwargs: params and Metric's name, dtype."""
        from lossdsl.runtime import make_metric

        _keywords_only("keras_metric", args, "parameters, name, dtype")
        return make_metric(self, **kwargs)

    def _repr_latex_(self) -> str:
        return f"$${self.latex(display=True)}$$"

    def _repr_markdown_(self) -> str:
        from lossdsl.docs import paragraphs

        blocks = [
            f"**{self.name}**",
            *paragraphs(self.description),
            f"$${self.latex(display=True)}$$",
        ]
        return "\n\n".join(blocks) + "\n"


def _compiled_again(
    source: str, name: str, strict: bool, description: str | None = None
) -> CompiledLoss:
    """The compiled loss of `source`, with `description` where given (see
    `CompiledLoss.__reduce__`; a pickle from before it has none)."""
    from lossdsl.pipeline import compile as compile_program

    compiled = compile_program(source, name, strict=strict)
    if description is not None:
        compiled.description = description
    return compiled
