"""Stage 5 (Keras): `CompiledLoss` -> the source text of a standalone Keras module.

Input: a compiled program (its SymPy core form, with elementwise heads such as
`Sigmoid` kept whole). Output: a module that imports only `keras` and defines
one class, `spec.name`, a `keras.losses.Loss` subclass whose `call()` uses
`keras.ops` only. The class is registered with Keras under the package
`GENERATED_PACKAGE` ("lossdsl_generated", never "lossdsl", where
`lossdsl.FormulaLoss` lives) and the name `<class name>_<digest of the program>`,
so two different programs that both default to the class name "FormulaLoss"
do not replace each other in Keras's registry.

How `call()` is printed:

* the stable rewrites of `lossdsl.rewrites` are applied first;
* bindings stay named locals (names that are Python keywords or that clash
  with `keras`, `self`, `y_true`, `y_pred` get a trailing `_`); a binding that
  nothing reads any more is left out;
* common subexpressions are computed once (`sympy.cse`), as locals `t0, t1, ...`;
* parameters are read from `self` and cast to `y_pred`'s dtype once; numbers
  are printed from floats (`repr`), which Keras treats as weakly typed;
* reductions work over `axis=-1`, with `keepdims=True` where their result meets
  an elementwise value; an elementwise loss ends with the mean over the last axis;
* `abs` of a difference is printed in `e`'s orientation, `abs(y_true - y_pred)`, as
  Keras writes its own losses (SymPy keeps the other): the value is the same, but
  JAX's gradient of abs at 0 is 1, so the orientation decides the sign there;
* every line fits in 88 columns (long expressions are split into temporaries),
  so the module passes `ruff check` and `ruff format --check` as printed;
* spelled for XLA (`xla=True`), what saves a transcendental under XLA is
  written out (see `emit_keras`).

The printer is SymPy's `Printer`, dispatching `_print_<Class>` along the MRO,
with one table (`KERAS_OPS`) from SymPy class to `keras.ops` name. It is
strict: a node it does not know raises `KerasEmitError`; no expression is ever
turned into code through `str()`, and no user text reaches the code (the
description and the LaTeX go into a docstring only).
"""

from __future__ import annotations

import hashlib
import keyword
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp
from sympy.printing.printer import Printer

from lossdsl import symfuncs as sf
from lossdsl.emit.fused import cross_entropy_parts, dependent_symbols, element_gradient
from lossdsl.errors import LossError, LossTypeError
from lossdsl.rewrites import equals_number, stable_form
from lossdsl.symbolic import Y_PRED, Y_TRUE

GENERATED_PACKAGE = "lossdsl_generated"
LINE_LENGTH = 88
_BODY_INDENT = " " * 8
# The extra indentation of a fused call(): its forward and backward functions.
_NESTED_INDENT = " " * 4
# Longest expression text a node may print before its children move to temporaries:
# `t123 = <text>` indented by 8 must still fit in LINE_LENGTH.
_INNER = LINE_LENGTH - len(_BODY_INDENT) - len("t123 = ")
_MAX_LOCAL_NAME = 30

# One table: SymPy class -> keras.ops function.
KERAS_OPS: dict[type, str] = {
    sp.Abs: "abs",
    sp.exp: "exp",
    sp.log: "log",
    sf.Log1p: "log1p",
    sf.Expm1: "expm1",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.tanh: "tanh",
    sp.asin: "arcsin",
    sp.acos: "arccos",
    sp.atan: "arctan",
    sp.erf: "erf",
    sf.Sigmoid: "sigmoid",
    # keras.ops.softplus is the stable log(1 + exp(x)) on every backend.
    sf.Softplus: "softplus",
    sf.Relu: "relu",
    sf.Clip: "clip",
    sp.sign: "sign",
    sp.floor: "floor",
    sp.ceiling: "ceil",
    sf.Round: "round",
    sp.Max: "maximum",
    sp.Min: "minimum",
    sf.ReduceSum: "sum",
    sf.ReduceMean: "mean",
    sf.ReduceMax: "max",
    sf.ReduceMin: "min",
    sf.LogSumExp: "logsumexp",
    sf.Softmax: "softmax",
    sf.LogSoftmax: "log_softmax",
    sf.Normalize: "normalize",
    sp.StrictLessThan: "less",
    sp.LessThan: "less_equal",
    sp.StrictGreaterThan: "greater",
    sp.GreaterThan: "greater_equal",
    sp.Equality: "equal",
    sp.Unequality: "not_equal",
    sp.And: "logical_and",
    sp.Or: "logical_or",
    sp.Not: "logical_not",
    sp.Xor: "logical_xor",
    # SymPy turns a comparison with a piecewise operand into ITE(condition, then, else).
    sp.ITE: "where",
}
# Functions with more than two arguments in SymPy but two in keras.ops: nested.
_BINARY_FOLDS = (sp.Max, sp.Min, sp.And, sp.Or)
_AXIS_FUNCTIONS = (sf.Softmax, sf.LogSoftmax, sf.Normalize)

# Module-level names the generated code reads: the class cannot take one of them.
MODULE_NAMES = frozenset({"keras", "super", "len"})
# Names the generated call() cannot use for its locals.
_RESERVED = frozenset(keyword.kwlist) | {"keras", "self", "y_true", "y_pred", "len", "super", "l", "O", "I"}
# ... and the names a fused call() defines around them.
_RESERVED |= {"forward", "backward", "args", "upstream", "variables", "classes", "gradient", "target"}
# Loss attributes a parameter must not overwrite; such parameters are stored as `self.param_<name>`.
_LOSS_ATTRIBUTES = frozenset({"call", "get_config", "from_config", "dtype", "name", "reduction"})

# Shapes of values, as in semantics: constant, constant vector, per sample, per element.
CONST, VECTOR, SAMPLE, ELEM = "const", "vector", "sample", "elem"
# How a per-sample value is held: with its last axis kept (size 1) or dropped.
KEPT, DROPPED = "kept", "dropped"

# Python operator precedence, loosest to tightest.
_ADD, _MUL, _UNARY, _ATOM = 10, 20, 30, 100


class KerasEmitError(LossError):
    """A program the Keras printer cannot express (a gap in lossdsl, not a user mistake)."""

    code = "emit"


def emit_keras(spec, fast: bool = True, xla: bool = False) -> str:
    """The source text of a standalone module defining the Keras loss class `spec.name`.

    Args:
        spec: a `CompiledLoss`.
        fast: apply the measured speed-ups: fused kernels for idioms (`-sum(onehot(y_true) *
            log_softmax(x))` -> `keras.ops.categorical_crossentropy`), and the backward pass written as the
            symbolic gradient (`keras.ops.custom_gradient`) where `lossdsl.emit.fused` allows it.
            False: the stable form as the rewrites leave it, differentiated by autodiff.
        xla: spell for XLA (implies `fast`): where a fused gradient reads `softplus` and `sigmoid`,
            or `log_softmax` and `softmax`, of one tensor, both are written out in `exp`, `log`
            and arithmetic that share one exponential (`_shared_exponentials`); one log for a
            difference of two log1p (`rewrites`); every log1p as a log and the rounding error
            of its argument (`KerasPrinter._log1p_of_negated`). As accurate; faster under XLA, and not
            the default because the rewrite table's function names then no longer appear in
            the code and the log1p forms cost kernels without XLA.

    Raises:
        KerasEmitError: the program holds an operation the printer cannot express.
        LossTypeError: the class name would shadow a name the module needs.
    """
    if spec.name in MODULE_NAMES:
        raise LossTypeError(f"{spec.name!r} cannot name the generated class: the module needs that name")
    body = None
    fast = fast or xla
    if fast:
        try:
            body = _CallBody(spec, fast=True, xla=xla).lines()
        except Exception:  # noqa: BLE001 - the speed-ups are optional: any failure (a gradient the
            # printer cannot write, a SymPy gap while differentiating) leaves the loss to autodiff
            body = None
    if body is None:
        body = _CallBody(spec, xla=xla).lines()
    return _module(spec, body, registered_name(spec, fast, xla))


def snake_case(name: str) -> str:
    """`FormulaLoss` -> `formula_loss`, as Keras names its own objects."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def camel_case(name: str) -> str:
    """`my_mae` -> `MyMae`; a name without separators keeps its letters (`MyMAE` stays)."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    if len(parts) == 1 and name == parts[0] and name[:1].isupper():
        return name
    return "".join(p[:1].upper() + p[1:] for p in parts)


def registered_name(spec, fast: bool = True, xla: bool = False) -> str:
    """The name the generated class is registered under in `GENERATED_PACKAGE`.

    The autodiff-only class (`fast=False`) and the class spelled for XLA (`xla=True`) have names
    of their own, so that loading one does not replace the default class in Keras's registry.
    """
    digest = hashlib.sha256(spec.source.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if xla:
        return f"{spec.name}_{digest}_xla"
    return f"{spec.name}_{digest}" if fast else f"{spec.name}_{digest}_autodiff"


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


# --------------------------------------------------------------------- the module


def _module(spec, body: list[str], registered: str) -> str:
    name = spec.name
    params = spec.params
    attributes = param_attributes(params)
    out = [
        '"""A Keras loss generated by lossdsl; this module imports only keras."""',
        "",
        "import keras",
        "",
        "",
        "@keras.saving.register_keras_serializable(",
        f'    package="{GENERATED_PACKAGE}",',
        f'    name="{registered}",',
        ")",
        *_class_line(name),
        *_docstring(spec),
        "",
        "    def __init__(",
        "        self,",
        *(f"        {p}={_float(v)},{_E741 if p in ('l', 'O', 'I') else ''}" for p, v in params.items()),
        '        reduction="sum_over_batch_size",',
        f'        name="{snake_case(name)}",',
        "        dtype=None,",
        "    ):",
    ]
    base = "keras.losses.Loss" if "super" in params else None
    if base:
        out.append(f"        {base}.__init__(self, name=name, reduction=reduction, dtype=dtype)")
    else:
        out.append("        super().__init__(name=name, reduction=reduction, dtype=dtype)")
    for p in params:
        out += _assignment(f"self.{attributes[p]}", p)
    out += [
        "",
        "    def get_config(self):",
        f"        config = {base}.get_config(self)" if base else "        config = super().get_config()",
        *(line for p in params for line in _assignment(f'config["{p}"]', f"self.{attributes[p]}")),
        '        config["dtype"] = self.dtype',
        "        return config",
        "",
        "    def call(self, y_true, y_pred):",
        *(_BODY_INDENT + line if line else "" for line in body),
    ]
    return "\n".join(out) + "\n"


# E741 (an ambiguous name) is on in some configurations, off in ruff 0.17's defaults, which
# report the directive itself as unused (RUF100) there: the directive names both.
_E741 = "  # noqa: E741, RUF100"


def _assignment(target: str, value: str) -> list[str]:
    """`target = value` in a method body, laid out as `ruff format` lays it out.

    On one line if it fits; else the value parenthesised over three lines if `target = (`
    fits; else a subscript target split at its brackets; else (a long attribute) one line.
    """
    line = f"        {target} = {value}"
    if len(line) <= LINE_LENGTH:
        return [line]
    if len(f"        {target} = (") <= LINE_LENGTH:
        return [f"        {target} = (", f"            {value}", "        )"]
    if target.endswith("]"):
        container, key = target[:-1].split("[", 1)
        return [f"        {container}[", f"            {key}", f"        ] = {value}"]
    return [line]


def _class_line(name: str) -> list[str]:
    """The class statement, its base on a line of its own where the statement is too long (ruff format)."""
    line = f"class {name}(keras.losses.Loss):"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"class {name}(", "    keras.losses.Loss", "):"]


def _docstring(spec) -> list[str]:
    """The class docstring (description, LaTeX, arguments) as a raw string, so backslashes stay."""
    description = [_clean(line) for line in (spec.description or "").splitlines()]
    while description and not description[0]:
        description.pop(0)
    lines = description or [f"The loss `{spec.name}`, compiled by lossdsl."]
    latex = [line for line in (_clean(raw) for raw in _latex(spec).splitlines()) if line]
    if latex:
        lines += ["", "Formula (LaTeX):", ""] + ["    " + line for line in latex]
    lines += ["", "Args:"]
    lines += [f"    {p}: a parameter of the formula (default {_float(v)})." for p, v in spec.params.items()]
    lines += [
        "    reduction: the batch reduction, as in `keras.losses.Loss`.",
        "    name: the name of the loss object.",
        "    dtype: the dtype the loss computes in (default: Keras's floatx).",
    ]
    body = [("    " + line).rstrip() for line in lines]
    body[0] = '    r"""' + (" " if lines[0].startswith('"') else "") + lines[0]  # as `ruff format` writes it
    return [*body, '    """']


def _latex(spec) -> str:
    try:
        return spec.latex()
    except Exception:  # noqa: BLE001 - the LaTeX is documentation: failing to print it must not block the code
        return ""


def _clean(line: str) -> str:
    """One docstring line: printable characters only, never three double quotes, no outer whitespace."""
    text = "".join(ch if ch.isprintable() else " " for ch in line.replace("\t", "    "))
    while '"""' in text:
        text = text.replace('"""', "'''")
    return text.strip()


# --------------------------------------------------------------------- the body of call()


@dataclass(frozen=True)
class Code:
    """Printed Python: its text and the precedence of its outermost operator."""

    text: str
    prec: int = _ATOM


@dataclass
class _Local:
    """A local variable of call(): a binding or a common subexpression."""

    symbol: sp.Symbol
    value: sp.Basic
    hint: str  # the binding's name, or "" for a temporary
    name: str = ""
    form: str = DROPPED


class _CallBody:
    """Plans and prints the statements of call()."""

    def __init__(self, spec, fast: bool = False, xla: bool = False) -> None:
        self.spec = spec
        self.xla = xla
        self.indent = len(_BODY_INDENT)
        symbolic = spec.symbolic
        self.params = dict(symbolic.params)  # name -> Symbol
        self.param_symbols = {s: n for n, s in self.params.items()}
        self.attributes = param_attributes(spec.params)
        self.taken: set[str] = set(_RESERVED)
        self.param_locals = {name: self._allocate(name) for name in self.params}
        bindings, result = stable_form(symbolic, xla=xla)
        gradient = target = None
        if fast:
            bindings = [(name, symbol, _idioms(value)) for name, symbol, value in bindings]
            result = _idioms(result)
            gradient = element_gradient(bindings, result, elementwise=not spec.per_sample)
            if gradient is not None and result.free_symbols & {Y_TRUE, *dependent_symbols(bindings, Y_TRUE)}:
                # y_true gets its gradient too (a target computed from trainable weights needs
                # it); where it cannot be fused, neither is y_pred's: autodiff gives both.
                target = element_gradient(bindings, result, elementwise=not spec.per_sample, wrt=Y_TRUE)
                gradient = None if target is None else gradient
            if gradient is not None:
                bindings = [(name, symbol, _oriented(value)) for name, symbol, value in bindings]
                result, gradient = _oriented(result), _oriented(gradient)
                target = None if target is None else _oriented(target)
                if xla:
                    bindings, result, gradient, target = _shared_exponentials(bindings, result, gradient, target)
        self.gradient_factor = sp.Integer(1)
        if gradient is not None and not _reads_a_reduction(gradient, bindings):
            self.gradient_factor, gradient = _numeric_factor(gradient)
        # The target's gradient, as a multiple of the prediction's where it is one (a loss of `e`
        # alone: `-gradient`, one negation), else its own expression.
        self.target_factor = None
        if target is not None and target + self.gradient_factor * gradient == 0:
            # Compared as built, not expanded: expanding a power of a sum took seconds.
            self.target_factor, target = sp.Integer(-1), None
        if gradient is not None:
            self.indent += 2 * len(_NESTED_INDENT)  # backward() sits inside forward()
        self.fused_target = target is not None or self.target_factor is not None
        planned = _plan(bindings, result, gradient, target)
        self.locals, self.result, self.gradient, self.target, self.forward_count, self.gradient_count = planned
        self.by_symbol = {local.symbol: local for local in self.locals}
        for local in self.locals:  # the user's names first; temporaries take what is left
            if local.hint:
                local.name = self._allocate(local.hint)
        self.shapes: dict[sp.Basic, str] = {}
        self._choose_forms()
        self.used_params: set[str] = set()
        self.uses_y_true = False
        self.uses_onehot = False
        # Printing `_SoftmaxCrossEntropy` as the sparse kernel, which reads the class ids.
        self.class_ids = False
        self.pending: list[str] = []
        # A number as a tensor of y_pred's dtype, converted once: its text -> the local holding it.
        self.constants: dict[str, str] = {}
        self._temp_count = 0
        self.printer = KerasPrinter(self)

    # names -----------------------------------------------------------------

    @property
    def inner(self) -> int:
        """Longest expression text a node may print before its children move to temporaries:
        `t123 = <text>` at the body's indentation must still fit in LINE_LENGTH."""
        return LINE_LENGTH - self.indent - len("t123 = ")

    def _allocate(self, hint: str) -> str:
        if hint:
            # A reserved name gets a trailing underscore (`lambda_`); names cut to the length
            # limit that meet an earlier one get a number.
            name = hint[:_MAX_LOCAL_NAME]
            candidates = [name, name + "_"] + [f"{name}_{n}" for n in range(2, len(self.taken) + 3)]
            name = next(c for c in candidates if c not in self.taken)
            self.taken.add(name)
            return name
        while f"t{self._temp_count}" in self.taken:
            self._temp_count += 1
        name = f"t{self._temp_count}"
        self.taken.add(name)
        return name

    def temporary(self, text: str) -> Code:
        """A new local holding `text`, emitted before the statement being printed."""
        name = self._allocate("")
        self.pending += self._assignment_lines(name, text)
        return Code(name)

    def typed(self, code: Code) -> Code:
        """The number `code` as a tensor of y_pred's dtype (`_typed`), in a local that every
        later statement in scope shares: one conversion however often the passes read it."""
        text = _typed(code).text
        if text not in self.constants:
            self.constants[text] = self.temporary(text).text
        return Code(self.constants[text])

    # shapes and forms ------------------------------------------------------

    def positive(self, expr: sp.Basic) -> bool:
        """`expr` is known to be > 0 (SymPy's assumptions, through the locals it reads)."""
        return bool(sf.inlined(expr, {s: local.value for s, local in self.by_symbol.items()}).is_positive)

    def shape(self, expr: sp.Basic) -> str:
        """CONST, VECTOR, SAMPLE or ELEM: the shape of `expr`'s value."""
        if expr in self.shapes:
            return self.shapes[expr]
        if expr in self.by_symbol:
            shape = self.shape(self.by_symbol[expr].value)
        elif expr in (Y_TRUE, Y_PRED) or isinstance(expr, (sf.OneHot, *_AXIS_FUNCTIONS)):
            shape = ELEM
        elif isinstance(expr, sf.Vector):
            shape = VECTOR
        elif isinstance(expr, _SoftmaxCrossEntropy):
            shape = SAMPLE
        elif isinstance(expr, sf.REDUCTIONS):
            # A constant argument (SymPy may fold `y_pred - y_pred` to 0) is spread over y_pred's shape.
            shape = CONST if self.shape(expr.args[0]) == VECTOR else SAMPLE
        elif not expr.args:
            shape = CONST
        else:
            shapes = {self.shape(a) for a in expr.args}
            if ELEM in shapes or {SAMPLE, VECTOR} <= shapes:
                shape = ELEM
            elif SAMPLE in shapes:
                shape = SAMPLE
            else:
                shape = VECTOR if VECTOR in shapes else CONST
        self.shapes[expr] = shape
        return shape

    def child_form(self, expr: sp.Basic, form: str) -> str:
        """The form in which the per-sample children of `expr` are needed."""
        if self.shape(expr) == ELEM or isinstance(expr, (*sf.REDUCTIONS, *_AXIS_FUNCTIONS, _SoftmaxCrossEntropy)):
            return KEPT
        return form

    def _choose_forms(self) -> None:
        # Walk from the result back to the first statement; a per-sample local is
        # kept (keepdims) when any use meets elementwise values, dropped otherwise.
        needs: dict[sp.Basic, set[str]] = {local.symbol: set() for local in self.locals}
        seen: set[tuple[sp.Basic, str]] = set()

        def collect(expr: sp.Basic, form: str) -> None:
            if (expr, form) in seen:
                return
            seen.add((expr, form))
            if expr in needs:
                needs[expr].add(form)
                return
            inner = self.child_form(expr, form)
            for arg in expr.args:
                collect(arg, inner)

        collect(self.result, DROPPED if self.shape(self.result) == SAMPLE else KEPT)
        if self.gradient is not None:
            collect(self.gradient, KEPT)
        if self.target is not None:
            collect(self.target, KEPT)
        for local in reversed(self.locals):
            if self.shape(local.symbol) == SAMPLE and KEPT in needs[local.symbol]:
                local.form = KEPT
            collect(local.value, local.form)

    # printing --------------------------------------------------------------

    def lines(self) -> list[str]:
        """The statements of call(), unindented."""
        forward = self._statements(self.locals[: self.forward_count])
        shape = self.shape(self.result)
        if shape in (CONST, VECTOR):
            raise KerasEmitError(f"the loss simplifies to {self.result}, which does not depend on y_pred")
        if self.spec.per_sample and shape != SAMPLE:
            raise KerasEmitError(f"the loss has shape {shape!r} but per_sample is {self.spec.per_sample}")
        tail = "" if self.gradient is None else ", backward"
        # Printed before the value, whose temporaries may read the one-hot labels built after it.
        sparse = self._sparse_branch(shape) if self.gradient is None and self._class_ids_suffice() else []
        value = self._value(shape, tail)
        # The return line (in forward() where fused) too long with a name in it that cannot be
        # split: the value to a local first, as `ruff format` would otherwise split the call.
        depth = len(_BODY_INDENT) + (len(_NESTED_INDENT) if tail else 0)
        if depth + len(f"return {value}{tail}") > LINE_LENGTH:
            value = self.temporary(value).text
        if sparse:
            return self.prelude(one_hot=False) + forward + sparse + self._one_hot() + self.pending + [f"return {value}"]
        forward += self.pending
        self.pending = []
        if self.gradient is None:
            return self.prelude() + forward + [f"return {value}"]
        backward = self._statements(self.locals[self.forward_count : self.gradient_count])
        # A numeric factor of the gradient, its sign included, scales the upstream (one value
        # per sample), not the elements.
        factor, elements = self.gradient_factor, self.gradient
        if _negative(elements):
            factor, elements = -factor, -elements
        scale = f"{_wrap(self.printer.code(factor), _MUL)} * "
        if equals_number(factor, 1.0) or equals_number(factor, -1.0):
            scale = "" if factor > 0 else "-"
        code = self.statement(elements, KEPT, len("gradient = upstream * ()") + len(scale))
        backward += self.pending
        self.pending = []
        gradient = [f"gradient = {scale}upstream * {_wrap(code, _MUL)}"]
        target: list[str] = []
        if self.target is not None:
            target = self._statements(self.locals[self.gradient_count :])  # what only the target reads
            code = self.statement(self.target, KEPT, len("target = upstream * ()"))
            target += [*self.pending, f"target = upstream * {_wrap(code, _MUL)}"]
            self.pending = []
        elif self.fused_target:
            target = ["target = -gradient"]
        if target:
            # PyTorch (which fuses elementwise losses only) hands backward() the inputs and takes a
            # gradient for each: none for a y_true that needs none, rather than computing it for nothing.
            skip = [
                'if keras.backend.backend() == "torch" and not args[0].requires_grad:',
                "    return None, gradient",
            ]
            target = [
                *(skip if shape == ELEM else []),
                *target,
                "if target.shape != y_true.shape:",
                "    target = keras.ops.broadcast_to(target, keras.ops.shape(y_true))",
            ]
        returned = "target, gradient" if target else "gradient"
        # call() takes this path only where y_pred's last axis is known and is the loss's own (y_true's,
        # a list's): the gradient then has y_pred's shape, or broadcasts to it (one value per sample,
        # a constant, y_true of one row).
        reshaped = [
            "if gradient.shape != y_pred.shape:",
            "    gradient = keras.ops.broadcast_to(gradient, keras.ops.shape(y_pred))",
        ]
        # The upstream gradient is per sample; an elementwise loss's mean over the last axis
        # scales it by 1/C.
        scale = []
        if shape == ELEM:
            scale = [
                "classes = keras.ops.cast(keras.ops.shape(y_pred)[-1], y_pred.dtype)",
                "upstream = upstream / classes",
            ]
        nested = [
            "def backward(*args, upstream=None, variables=None):",
            *_indent(
                [
                    "if upstream is None:",
                    "    (upstream,) = args",
                    "upstream = keras.ops.expand_dims(upstream, axis=-1)",
                    *scale,
                    *backward,
                    *gradient,
                    *reshaped,
                    *target,
                    # TensorFlow passes `variables` when the forward pass reads a tf.Variable
                    # that is not one of its inputs: no gradient for it.
                    "if variables:",
                    f"    return {f'({returned})' if target else returned}, [None] * len(variables)",
                    f"return {returned}",
                ]
            ),
        ]
        # JAX keeps autodiff: jax.jit fuses the elementwise chain by itself, and JAX's autodiff
        # has its own conventions at kinks (abs'(0) = 1), which Keras's losses on JAX follow.
        # PyTorch keeps it for a loss with reductions: its eager backward kernels (a softmax's,
        # a sum's) beat the several keras.ops calls of the fused gradient (bench/run.py).
        switch = '== "jax"' if shape == ELEM else 'in ("jax", "torch")'
        # Autodiff, too, where y_pred's last axis is not known while tracing, or is not the loss's
        # own: one column broadcast against y_true's or a list's several, whose gradient sums back.
        columns = self._allocate("columns")
        widths = [f"{columns} is None"]
        if self.uses_y_true:
            widths.append(f"{columns} != y_true.shape[-1]")
        widths += [f"{columns} != {n}" for n in sorted(self._list_lengths())]
        # With y_true an input of its own (its gradient fused too), the two have one shape.
        inputs = "y_true, y_pred" if target else "y_pred"
        if target:
            widths.append("y_true.shape != y_pred.shape")
        return [
            *self.prelude(),
            "",
            f"def forward({inputs}):",
            *_indent([*forward, *([""] if forward else []), *nested, "", f"return {value}, backward"]),
            "",
            f"if keras.backend.backend() {switch}:",
            f"    return forward({inputs})[0]",
            f"{columns} = y_pred.shape[-1]",
            *_condition(" or ".join(widths), self.indent - 2 * len(_NESTED_INDENT)),
            f"    return forward({inputs})[0]",
            f"return keras.ops.custom_gradient(forward)({inputs})",
        ]

    def _list_lengths(self) -> set[int]:
        """The lengths of the list literals the loss reads (one per program)."""
        exprs = [self.result, self.gradient, self.target, *(local.value for local in self.locals)]
        return {len(vector.args) for expr in exprs if expr is not None for vector in expr.atoms(sf.Vector)}

    def _value(self, shape: str, tail: str) -> str:
        """The per-sample loss, printed to follow `return ` (and precede `tail`)."""
        # An elementwise program that SymPy simplified to one value per sample (`cos(e/e) * max(y_pred)`)
        # is returned as is: its mean over the last axis, where it is constant, is itself.
        if shape == SAMPLE:
            return self.statement(self.result, DROPPED, len("return ") + len(tail)).text
        # A constant factor scales the mean (one product per sample, not per element).
        factor, elements = self.result.as_coeff_Mul()
        if not factor.is_Number or elements.is_Number or self.shape(elements) != ELEM:
            factor, elements = sp.Integer(1), self.result
        scale = "" if factor == 1 else ("-" if factor == -1 else f"{_wrap(self.printer.code(factor), _MUL)} * ")
        overhead = len("return  * keras.ops.mean(, axis=-1)") + len(scale) + len(tail)
        return f"{scale}keras.ops.mean({self.statement(elements, KEPT, overhead).text}, axis=-1)"

    def _statements(self, locals_: list[_Local]) -> list[str]:
        statements: list[str] = []
        for local in locals_:
            local.name = local.name or self._allocate("")
            code = self.statement(local.value, local.form, len(local.name) + len(" = "))
            if _is_literal(local.value):  # a constant binding: a tensor of y_pred's dtype, as every local is
                code = _typed(code)
            if self._adopt(local.name, code):
                statements += self.pending
            else:
                statements += self.pending + self._assignment_lines(local.name, code.text)
                self.constants.setdefault(code.text, local.name)
            self.pending = []
        return statements

    def _assignment_lines(self, name: str, text: str) -> list[str]:
        """`name = text`; a typed constant too long for the line split as `ruff format` splits it."""
        line = f"{name} = {_unwrap(text)}"
        typed = _TYPED.fullmatch(text)
        if typed is None or self.indent + len(line) <= LINE_LENGTH:
            return [line]
        return [f"{name} = keras.ops.convert_to_tensor(", f"    {typed.group(1)}, dtype=y_pred.dtype", ")"]

    def _adopt(self, name: str, code: Code) -> bool:
        """Where `code` is a temporary that the pending lines open (a list or call too long for
        one line, one item per line), let `name` open them instead of `name = t1` after them."""
        opening = f"{code.text} = "
        if not _is_name(code.text) or not self.pending or code.text in self.constants.values():
            return False
        starts = [i for i, line in enumerate(self.pending) if line.startswith(opening)]
        if not starts:
            return False
        line = f"{name} = {self.pending[starts[-1]][len(opening) :]}"
        if self.indent + len(line) > LINE_LENGTH:
            return False
        self.pending[starts[-1]] = line
        return True

    def statement(self, expr: sp.Basic, form: str, overhead: int) -> Code:
        """`expr` printed to fit on one line after `overhead` characters."""
        code = self.printer.code(expr, form)
        if self.indent + overhead + len(code.text) > LINE_LENGTH and not _is_short(code.text):
            code = self.temporary(code.text)
        return code

    def _class_ids_suffice(self) -> bool:
        """`onehot(y_true)` is read only as the labels of softmax cross-entropies in the result."""
        if any(local.value.has(sf.OneHot) for local in self.locals):
            return False
        found = self.result.atoms(_SoftmaxCrossEntropy)
        rest = self.result.xreplace({node: sp.Dummy() for node in found})
        return bool(found) and not rest.has(sf.OneHot)

    def _sparse_branch(self, shape: str) -> list[str]:
        """On PyTorch, the result with each softmax cross-entropy as the sparse kernel.

        Printed after the locals (which do not read the labels) and before the one-hot labels.

        PyTorch's `cross_entropy` reads the class ids; the one-hot matrix and the dense
        cross-entropy cost it 2.8x the step at 8192 x 128 (bench/run.py). TensorFlow's sparse
        kernel is slower than its dense one without XLA, JAX's builds the one-hot matrix itself:
        they keep the dense form.
        """
        self.class_ids = True
        self.indent += len(_NESTED_INDENT)
        constants = dict(self.constants)  # the branch's locals are not defined after it
        try:
            value = self._value(shape, "")
        finally:
            self.class_ids = False
            self.indent -= len(_NESTED_INDENT)
            self.constants = constants
        branch, self.pending = self.pending, []
        # `t0 = <call>` as the last statement (one line, or one argument per line): return the
        # call, where `return ` (longer than `t0 = `) still fits.
        starts = [i for i, line in enumerate(branch) if not line.startswith((" ", ")"))]
        last = branch[starts[-1]] if starts else ""
        returned = "return " + last[len(f"{value} = ") :]
        if last.startswith(f"{value} = ") and self.indent + len(_NESTED_INDENT) + len(returned) <= LINE_LENGTH:
            branch[starts[-1]] = returned
        else:
            branch.append(f"return {value}")
        return ['if keras.backend.backend() == "torch":', *_indent(branch)]

    def _one_hot(self) -> list[str]:
        return [
            "y_true = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1])",
            "y_true = keras.ops.cast(y_true, y_pred.dtype)",
        ]

    def prelude(self, one_hot: bool = True) -> list[str]:
        lines = ["y_pred = keras.ops.convert_to_tensor(y_pred)"]
        if self.uses_onehot:
            lines += [
                "y_true = keras.ops.convert_to_tensor(y_true)",
                "if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:",
                "    y_true = keras.ops.squeeze(y_true, axis=-1)",
                'y_true = keras.ops.cast(y_true, "int32")',
                *(self._one_hot() if one_hot else []),
            ]
        else:
            # also where the loss does not read y_true: its shape tells y_pred's (a (N, 1)
            # target against a (N,) prediction makes the prediction (N, 1), as in Keras's losses)
            lines += ["y_true = keras.ops.cast(y_true, y_pred.dtype)", *_SAME_RANK]
        for name in self.params:
            if name not in self.used_params:
                continue
            local, attribute = self.param_locals[name], self.attributes[name]
            # convert_to_tensor, not cast: a value past float32's range becomes inf, as in
            # Keras's own losses (`Huber(delta=1e39)`), where TensorFlow refuses to cast it.
            line = f"{local} = keras.ops.convert_to_tensor(self.{attribute}, dtype=y_pred.dtype)"
            if len(_BODY_INDENT) + len(line) <= LINE_LENGTH:
                lines.append(line)
            else:
                lines += [
                    f"{local} = keras.ops.convert_to_tensor(",
                    f"    self.{attribute},",
                    "    dtype=y_pred.dtype,",
                    ")",
                ]
        return lines


# Ranks that differ by a last axis of 1 are matched as Keras's own losses match them
# (`squeeze_or_expand_to_same_rank`): a target of shape (N,) against a Dense(1) output of
# (N, 1) would otherwise broadcast to (N, N).
_SAME_RANK = [
    "if len(y_true.shape) == 1 and len(y_pred.shape) == 2 and y_pred.shape[-1] == 1:",
    "    y_true = keras.ops.expand_dims(y_true, axis=-1)",
    "if len(y_pred.shape) == 1 and len(y_true.shape) == 2 and y_true.shape[-1] == 1:",
    "    y_pred = keras.ops.expand_dims(y_pred, axis=-1)",
    "if len(y_pred.shape) == len(y_true.shape) + 1 and y_pred.shape[-1] == 1:",
    "    y_pred = keras.ops.squeeze(y_pred, axis=-1)",
    "if len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] == 1:",
    "    y_true = keras.ops.squeeze(y_true, axis=-1)",
]


class _SoftmaxCrossEntropy(sp.Function):
    """`-sum(onehot(y_true) * log_softmax(x))` over the last axis: `keras.ops.categorical_crossentropy(
    onehot, x, from_logits=True)`, the backend's fused kernel (TensorFlow's softmax cross-entropy),
    which XLA compiles to faster code than log_softmax, a product and a sum (bench/run.py)."""

    nargs = 2
    is_real = True


class _OrientedAbs(sp.Function):
    """`abs(y_true - ...)` kept in that orientation through common subexpression elimination.

    In a fused call() the gradient holds `sign(y_pred - y_true)`, and CSE would hand the forward
    pass's `abs` the same temporary, `y_pred - y_true`: the value is the same, but on JAX, which
    differentiates the forward pass, the gradient of abs at 0 is a convention that follows the
    orientation (see `KerasPrinter._print_Abs`).
    """

    nargs = 1
    is_real = True


class _OrientedSign(sp.Function):
    """`sign(y_true - ...)`, kept in that orientation (SymPy writes `-sign(y_pred - y_true)`), so
    that the gradient of `abs(e)` shares `y_true - y_pred` with the forward pass."""

    nargs = 1
    is_real = True


def _oriented(expr: sp.Basic) -> sp.Basic:
    """`expr` with `abs` and `sign` of differences in `e`'s orientation, `y_true - y_pred`."""

    def flips(node: sp.Basic) -> bool:
        return isinstance(node, (sp.Abs, sp.sign)) and _e_oriented(node.args[0]) is not node.args[0]

    def flipped(node: sp.Basic) -> sp.Basic:
        if isinstance(node, sp.Abs):
            return _OrientedAbs(-node.args[0])
        return -_OrientedSign(-node.args[0])

    return expr.replace(flips, flipped)


def _reads_a_reduction(expr: sp.Basic, bindings) -> bool:
    """`expr` reads a reduction over the last axis, directly or through the bindings.

    (Binding by binding: inlined, a binding read twice at each of n levels is 2^n copies.)
    """
    reads: dict[sp.Basic, bool] = {}
    for _, symbol, value in bindings:
        if symbol is not None:
            reads[symbol] = value.has(*sf.REDUCTIONS) or any(reads.get(s, False) for s in value.free_symbols)
    return expr.has(*sf.REDUCTIONS) or any(reads.get(s, False) for s in expr.free_symbols)


def _numeric_factor(expr: sp.Basic) -> tuple[sp.Number, sp.Basic]:
    """`(c, rest)` with `expr = c * rest` and the number `c` taken out, `rest` in `e`'s orientation.

    SymPy distributes a number over a sum (`-2 (y_true - y_pred)` is `2 y_pred - 2 y_true`);
    printed so, each element takes two products, where the factor belongs to the upstream
    gradient (one value per sample) and the difference is `e`, which the forward pass has
    computed already. MSE's step under XLA: 1.17 ms -> 0.87 ms (Keras 0.94 ms). Not taken
    for a gradient that reads a reduction (`_reads_a_reduction`): there the factor was on
    per-sample terms already, and moving it cost the Dice loss kernels (0.99x -> 1.1x Keras
    under tf.function).
    """
    if isinstance(expr, sp.Mul):
        factor, rest = expr.as_coeff_Mul()
        return (factor, rest) if factor.is_Number and not equals_number(factor, 1.0) else (sp.Integer(1), expr)
    if not isinstance(expr, sp.Add):
        return sp.Integer(1), expr
    terms = [term.as_coeff_Mul() for term in expr.args]
    size = abs(terms[0][0])
    if equals_number(size, 1.0) or any(abs(c) != size or rest.is_Number for c, rest in terms):
        return sp.Integer(1), expr
    rest = sp.Add(*(r if c > 0 else -r for c, r in terms))
    oriented = _e_oriented(rest)
    return (-size, oriented) if oriented is not rest else (size, rest)


def _e_oriented(arg: sp.Basic) -> sp.Basic:
    """`-arg` where `arg` is a difference with y_true subtracted (`y_pred - y_true`), else `arg`.

    The value of `abs` or `sign` does not care, but the gradient at 0 is a backend convention,
    so the printed difference keeps `e`'s orientation, `y_true - y_pred`, as Keras writes it.
    """
    if isinstance(arg, sp.Add) and _negative(arg.coeff(Y_TRUE)) and isinstance(-arg, sp.Add):
        return -arg
    return arg


def _idioms(expr: sp.Basic) -> sp.Basic:
    """`expr` with the idioms that have a fused `keras.ops` function replaced by a head for it."""
    return expr.replace(
        lambda e: _cross_entropy_parts(e) is not None, lambda e: -_SoftmaxCrossEntropy(*_cross_entropy_parts(e))
    )


def _cross_entropy_parts(expr: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
    """(t, x) where `expr` is `sum(t * log_softmax(x))` with `t = onehot(y_true)`."""
    found = cross_entropy_parts(expr)
    if found is None:
        return None
    labels, logits = found
    # One-hot labels only: the fused kernel's gradient, softmax(x) - t, is the gradient of the
    # formula only where each row of t sums to 1 (for t = 0 it is softmax(x), not 0), and that
    # is known of `onehot(y_true)` (of a valid class id), not of labels in general.
    if labels != sf.OneHot(Y_TRUE):
        return None
    return labels, logits


def _plan(
    bindings, result, gradient=None, target=None
) -> tuple[list[_Local], sp.Basic, sp.Basic | None, sp.Basic | None, int, int]:
    """Bindings and common subexpressions as locals, in an order that defines each before use.

    Returns:
        (locals, result, gradient, target, n, m): the first `n` locals are what the result needs;
        up to `m`, what y_pred's gradient needs besides (None when not fused); the rest, what only
        y_true's (None when it is not printed on its own) needs, in the backward pass.
    """
    # Condition bindings get a symbol of their own so that they can be named locals too.
    statements = [(name, symbol if symbol is not None else sp.Dummy(name), value) for name, symbol, value in bindings]
    # Re-share: where a later expression holds a binding's value verbatim (conditions
    # are inlined by the front half, and users repeat themselves), read the binding.
    shared: list[tuple[sp.Basic, sp.Symbol]] = []
    reshared = []
    for name, symbol, value in statements:
        reshared.append((name, symbol, _reshare(value, shared)))
        if not value.is_Atom:
            shared.insert(0, (value, symbol))
    result = _reshare(result, shared)
    outputs = [result] if gradient is None else [result, _reshare(gradient, shared)]
    target = None if target is None else _reshare(target, shared)
    # Keep only the bindings that the result (or its gradients) reads, directly or through others.
    read = [*outputs, *([target] if target is not None else [])]
    live = _live(reshared, set().union(*(output.free_symbols for output in read)))
    forward_live = _live(reshared, set(result.free_symbols))
    kept = [(name, symbol, value) for name, symbol, value in reshared if symbol in live]
    temporaries = sp.numbered_symbols("t", cls=sp.Dummy)
    # Max and Min come back from cse unevaluated (SymPy would compare all their arguments again).
    replacements, reduced = sf.cse([value for _, _, value in kept] + outputs, symbols=temporaries)
    # A repeated constant (`cos(1)`, `-pi`) is no subexpression worth a local: put it back as a number.
    numbers = {symbol: value for symbol, value in replacements if _is_literal(value)}
    if numbers:
        replacements = [(s, sf.substitute(value, numbers)) for s, value in replacements if s not in numbers]
        reduced = [sf.substitute(value, numbers) for value in reduced]
    if gradient is not None:
        bound = {symbol: value for (_, symbol, _), value in zip(kept, reduced, strict=False)}
        replacements, reduced = _share_denominators(replacements, reduced, bound)
    definitions = {symbol: value for symbol, value in replacements}
    ordered: list[_Local] = []
    done: set[sp.Basic] = set()

    def symbols_in_order(expr: sp.Basic) -> list[sp.Basic]:
        # Preorder along `.args`: `sympy.preorder_traversal` walks Max, Min, And and Or in the order
        # of their argument sets, a hash order that changed the locals' order from compile to compile.
        found: dict[sp.Basic, None] = {}
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, sp.Symbol):
                found.setdefault(node, None)
            stack.extend(reversed(node.args))
        return list(found)

    def need(expr: sp.Basic) -> None:
        for symbol in symbols_in_order(expr):
            if symbol in definitions and symbol not in done:
                need(definitions[symbol])
                done.add(symbol)
                ordered.append(_Local(symbol, definitions[symbol], ""))

    def define(forward: bool) -> None:
        # The forward pass defines what the result reads; the backward pass, the rest.
        for (name, symbol, _), value in zip(kept, reduced[: len(kept)], strict=True):
            if (symbol in forward_live) == forward:
                need(value)
                done.add(symbol)
                ordered.append(_Local(symbol, value, name))

    define(forward=True)
    result = reduced[len(kept)]
    need(result)
    forward_count = len(ordered)
    if gradient is None:
        return ordered, result, None, None, forward_count, forward_count
    define(forward=False)
    gradient = reduced[len(kept) + 1]
    if target is not None:
        # Planned after the forward pass, so that it is what it is without the target (their common
        # subexpressions would change it: MAPE's `100 |e|` taken out of its mean); it reads the
        # temporaries where it holds their values, and shares what it can with y_pred's gradient.
        target = _reuse_temporaries(target, replacements)
        extra, (gradient, target) = sf.cse([gradient, target], symbols=temporaries)
        definitions.update(extra)
    need(gradient)
    gradient_count = len(ordered)
    if target is not None:
        need(target)
    return ordered, result, gradient, target, forward_count, gradient_count


def _reuse_temporaries(expr: sp.Basic, replacements: list) -> sp.Basic:
    """`expr` reading the temporaries of `replacements` (cse's, in order) where it holds their values."""
    full: dict[sp.Basic, sp.Basic] = {}
    for symbol, value in replacements:
        full[symbol] = sf.substitute(value, full)
    for symbol, value in sorted(full.items(), key=lambda item: -sp.count_ops(item[1])):
        if not value.is_Atom:
            expr = sf.substitute(expr, {value: symbol})
    return expr


def _shared_exponentials(bindings, result, gradient, target=None):
    """Spelled for XLA: the forward and backward passes of fused code share one exponential.

    * `softplus(x)` forward and `sigmoid(x)` backward: with `u = exp(-|x|)`, softplus is
      `relu(x) + log1p(u)` and sigmoid is `where(x >= 0, 1, u) / (1 + u)`, both stable for any x
      (the binary cross-entropy on logits); `relu` and `|x|` as selections on `x >= 0`;
    * `log_softmax(x)` forward and `softmax(x)` (as `exp(log_softmax(x))`) backward: with
      `z = x - max(x)` and `s = sum(exp(z))`, they are `z - log(s)` and `exp(z) / s` (the
      categorical cross-entropy on logits, any labels).

    `keras.ops.softplus`, `sigmoid`, `log_softmax` and `softmax` each compute their own
    exponential; written out, one `exp` serves both passes. Measured (bench/run.py, 8192 x 128):
    the binary cross-entropy on logits 1.25 -> 1.04 of Keras's time under XLA, the categorical
    one 1.10 -> 0.89; faster without XLA too. Not the default only because LANGUAGE.md's rewrite
    table names `softplus` and `log_softmax` as what is emitted.
    """
    forward = [value for _, _, value in bindings] + [result]
    softplus = {f.args[0] for value in forward for f in value.atoms(sf.Softplus)}
    log_softmax = {f.args[0] for value in forward for f in value.atoms(sf.LogSoftmax)}
    gradients = [gradient] if target is None else [gradient, target]
    logistic = {f.args[0] for g in gradients for f in g.atoms(sf.Sigmoid)} & softplus
    normalized = {f.args[0].args[0] for g in gradients for f in g.atoms(sp.exp) if isinstance(f.args[0], sf.LogSoftmax)}
    normalized &= log_softmax
    if not logistic and not normalized:
        return bindings, result, gradient, target
    rules: dict[sp.Basic, sp.Basic] = {}
    for x in logistic:
        # Both kinks on the side x >= 0, so that autodiff through the written-out form (JAX;
        # PyTorch for per-sample losses) gives softplus'(0) = 1/2 whatever the backend takes
        # for relu'(0) and abs'(0) (JAX: 0 and 1, which made it -1/2).
        u = sp.exp(sp.Piecewise((-x, x >= 0), (x, True)))
        rules[sf.Softplus(x)] = sp.Piecewise((x, x >= 0), (0, True)) + sf.Log1p(u)
        rules[sf.Sigmoid(x)] = sp.Piecewise((1, x >= 0), (u, True)) / (1 + u)
    for x in normalized:
        z = x - sf.ReduceMax(x)
        total = sf.ReduceSum(sp.exp(z))
        rules[sp.exp(sf.LogSoftmax(x))] = sp.exp(z) / total
        rules[sf.LogSoftmax(x)] = z - sp.log(total)
    bindings = [(name, symbol, sf.substitute(value, rules)) for name, symbol, value in bindings]
    target = None if target is None else sf.substitute(target, rules)
    return bindings, sf.substitute(result, rules), sf.substitute(gradient, rules), target


def _share_denominators(replacements: list, reduced: list, bound: dict) -> tuple[list, list]:
    """Fused code: a shared `c / d` (c a number, d a full tensor) becomes a shared `d`, divided at each use.

    Under XLA a value that both the forward and the backward pass read is written to memory
    and read back when it is costly to compute, and a division is (XLA does not repeat it in
    each pass); a maximum, an absolute value or a sum it repeats for free. The mean absolute
    percentage error's `100 / max(|y_true|, eps)` so cost 30-40% more than Keras's loss under
    XLA; dividing by the shared `max(|y_true|, eps)` at each use costs the same number of
    operations without XLA, and nothing extra with it. A per-sample `d` (Dice's sums) keeps its
    reciprocal: one value per row costs nothing to keep, and a product is cheaper than a division
    of every element. `bound`: the binding symbols and their values, for the shapes.
    """
    definitions = {**bound, **dict(replacements)}
    scaled = {}
    for symbol, value in replacements:
        if not isinstance(value, (sp.Mul, sp.Pow)):
            continue
        numerator, denominator = value.as_numer_denom()
        # Not a power with a symbolic exponent (`2^(-x)`, whose `1 / 2^x` overflows where it is 0).
        powers = [f for f in sp.Mul.make_args(denominator) if f.is_Pow and not f.exp.is_Number]
        if numerator.is_Number and not powers and _elementwise(denominator, definitions):
            scaled[symbol] = (numerator, denominator)
    if not scaled:
        return replacements, reduced
    # A denominator that is already a name (`1 / t0`) is divided by at each use: a local for it
    # would be a second name for the same value (`t1 = t0`).
    uses = {
        symbol: numerator / (denominator if denominator.is_Symbol else symbol)
        for symbol, (numerator, denominator) in scaled.items()
    }
    replacements = [
        (symbol, sf.substitute(scaled[symbol][1] if symbol in scaled else value, uses))
        for symbol, value in replacements
        if not (symbol in scaled and scaled[symbol][1].is_Symbol)
    ]
    return replacements, [sf.substitute(value, uses) for value in reduced]


def _elementwise(expr: sp.Basic, definitions: dict) -> bool:
    """`expr` has a value per element: it reads y_true or y_pred outside a reduction over the last axis."""
    stack = [expr]
    seen: set[sp.Basic] = set()
    while stack:
        node = stack.pop()
        if node in seen or isinstance(node, sf.REDUCTIONS):
            continue
        seen.add(node)
        if node in (Y_TRUE, Y_PRED):
            return True
        if node in definitions:
            stack.append(definitions[node])
        stack.extend(node.args)
    return False


def _live(statements, reads: set) -> set:
    """The symbols of `statements` that `reads` needs, directly or through other statements."""
    live = set(reads)
    for _, symbol, value in reversed(statements):
        if symbol in live:
            live |= value.free_symbols
    return live


def _reshare(expr: sp.Basic, shared: list[tuple[sp.Basic, sp.Symbol]]) -> sp.Basic:
    # Through `substitute`: a large Max or Min is rebuilt without comparing all its arguments again.
    for value, symbol in shared:
        expr = sf.substitute(expr, {value: symbol})
    return expr


def _unwrap(text: str) -> str:
    """`text` without parentheses that enclose all of it (`(a - b)` -> `a - b`)."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(text) - 1:
            return text  # `(a) * (b)`: the first parenthesis closes early
    return text[1:-1]


def _indent(lines: list[str]) -> list[str]:
    return [_NESTED_INDENT + line if line else "" for line in lines]


def _is_name(text: str) -> bool:
    return text.isidentifier()


def _float(value) -> str:
    """A finite number as a Python float literal, in the form `ruff format` keeps."""
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise KerasEmitError(f"the constant {value} is not a finite number")
    return repr(number).replace("e+", "e")


def _typed(code: Code) -> Code:
    """A number as a tensor of y_pred's dtype, converted from the Python float itself.

    Not `keras.ops.cast(0.1, dtype)`, nor the number as an argument of `keras.ops.where`,
    `equal`, `maximum` (or PyTorch's `clip`): those make a float32 tensor of it first, so that
    in float64 `0.1` was 0.10000000149 (`where(y_true == 0.1, ...)` took the wrong branch; the
    binary cross-entropy's fused gradient was 0 just inside its clip bounds, where the forward
    pass's clip kept the exact bound and the backward pass's comparison did not). Every number
    that float32 does not hold exactly is passed so, so that the passes agree on every backend.
    """
    return Code(f"keras.ops.convert_to_tensor({code.text}, dtype=y_pred.dtype)", _ATOM)


_TYPED = re.compile(r"keras\.ops\.convert_to_tensor\(([-0-9.e]+), dtype=y_pred\.dtype\)")


def _exact_in_float32(text: str) -> bool:
    """Whether the float literal `text` is a float32 number (so no precision is lost through one)."""
    value = float(text)
    try:
        return struct.unpack("f", struct.pack("f", value))[0] == value
    except OverflowError:
        return False


def _is_literal(expr: sp.Basic) -> bool:
    return isinstance(expr, sp.Expr) and bool(expr.is_number) and not expr.has(sf.Vector, sf.TensorFunction)


# --------------------------------------------------------------------- the printer


class KerasPrinter(Printer):
    """Prints SymPy expressions as `keras.ops` calls; `code(expr, form)` returns a `Code`."""

    printmethod = "_lossdsl_keras"

    def __init__(self, body: _CallBody) -> None:
        super().__init__()
        self.body = body

    def code(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        """`expr` as Python, its per-sample parts in `form`."""
        return self._print(expr, form=form)

    def _print(self, expr, **kwargs) -> Code:
        form = kwargs.get("form", DROPPED)
        if expr in self.body.by_symbol:
            return self._local(self.body.by_symbol[expr], form)
        if _is_literal(expr):
            return self._literal(expr)
        return super()._print(expr, form=form)

    def emptyPrinter(self, expr):  # noqa: N802 - SymPy's name
        raise KerasEmitError(f"the Keras printer has no rule for {type(expr).__name__}")

    # leaves ----------------------------------------------------------------

    def _local(self, local: _Local, form: str) -> Code:
        if self.body.shape(local.symbol) != SAMPLE or local.form == form:
            return Code(local.name)
        if form == KEPT:
            return Code(f"keras.ops.expand_dims({local.name}, axis=-1)")
        return Code(f"keras.ops.squeeze({local.name}, axis=-1)")

    def _literal(self, expr: sp.Expr) -> Code:
        try:
            text = _float(sp.N(expr))
        except (TypeError, ValueError) as err:
            raise KerasEmitError(f"the constant {expr} is not a real number") from err
        return Code(text, _UNARY if text.startswith("-") else _ATOM)

    def _print_Symbol(self, expr: sp.Symbol, form: str = DROPPED) -> Code:
        if expr == Y_PRED:
            return Code("y_pred")
        if expr == Y_TRUE:
            self.body.uses_y_true = True
            return Code("y_true")
        if expr == sf.C:  # the size of the last axis (the gradient of `mean`)
            return Code("keras.ops.cast(keras.ops.shape(y_pred)[-1], y_pred.dtype)")
        if expr in self.body.param_symbols:
            name = self.body.param_symbols[expr]
            self.body.used_params.add(name)
            return Code(self.body.param_locals[name])
        raise KerasEmitError(f"the Keras printer does not know the symbol {expr.name!r}")

    # SymPy folds some conditions to constants (`ITE(c, x > y, False)`).
    def _print_BooleanTrue(self, expr, form: str = DROPPED) -> Code:
        return Code("True")

    def _print_BooleanFalse(self, expr, form: str = DROPPED) -> Code:
        return Code("False")

    def _print_OneHot(self, expr: sf.OneHot, form: str = DROPPED) -> Code:
        if expr.args[0] != Y_TRUE:
            raise KerasEmitError("onehot() takes y_true only")
        self.body.uses_onehot = True
        return Code("y_true")

    def _print_Vector(self, expr: sf.Vector, form: str = DROPPED) -> Code:
        items = [self.code(item) for item in expr.args]
        if all(_is_literal(item) for item in expr.args):
            head, tail = "keras.ops.convert_to_tensor(", "dtype=y_pred.dtype"
        else:
            items = [self._tensor(item, code) for item, code in zip(expr.args, items, strict=True)]
            head, tail = "keras.ops.stack(", ""
        inline = f"{head}[{', '.join(c.text for c in items)}]{', ' + tail if tail else ''})"
        if len(inline) <= self.body.inner:
            return Code(inline)
        # Too long for one line: a temporary, one item per line (the form `ruff format` keeps).
        name = self.body._allocate("")
        lines = [f"{name} = {head}", "    ["] + [f"        {c.text}," for c in items] + ["    ],"]
        lines += [f"    {tail},", ")"] if tail else [")"]
        self.body.pending += lines
        return Code(name)

    def _tensor(self, expr: sp.Basic, code: Code) -> Code:
        return self.body.typed(code) if _is_literal(expr) else code

    # arithmetic ------------------------------------------------------------

    def _print_Add(self, expr: sp.Add, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        terms = list(expr.as_ordered_terms())
        numbers = [t for t in terms if _is_literal(t)]
        others = [t for t in terms if not _is_literal(t)]
        terms = others + numbers  # numbers last, as Keras writes `x + ... - log2`
        positive = next((t for t in terms if not _negative(t)), None)
        if positive is not None and _negative(terms[0]):
            terms.remove(positive)  # `y_true - y_pred` and `1.0 - p`, not `-y_pred + y_true`
            terms.insert(0, positive)
        first = self.code(terms[0], inner)
        signed = []
        for term in terms[1:]:
            negative = _negative(term)
            signed.append((negative, self.code(-term if negative else term, inner)))
        text = _wrap(first, _ADD)
        for negative, code in signed:
            candidate = f"{text} {'-' if negative else '+'} {_wrap(code, _ADD + 1)}"
            if len(candidate) > self.body.inner and not _is_short(text):
                text = self.body.temporary(text).text
                candidate = f"{text} {'-' if negative else '+'} {_wrap(code, _ADD + 1)}"
            if len(candidate) > self.body.inner and not _is_short(code.text):
                code = self.body.temporary(code.text)
                candidate = f"{text} {'-' if negative else '+'} {code.text}"
            text = candidate
        return Code(text, _ADD)

    def _print_Mul(self, expr: sp.Mul, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        coefficient, factors = expr.as_coeff_mul()
        if factors and factors[0].is_Number and coefficient == 1:  # an unevaluated Mul(1.0, x)
            coefficient, factors = factors[0] * coefficient, factors[1:]
        negative = coefficient < 0
        coefficient = -coefficient if negative else coefficient
        numerator: list[Code] = []
        denominator: list[Code] = []
        if not equals_number(coefficient, 1.0):
            if coefficient.is_Rational and not coefficient.is_Integer:
                if coefficient.p != 1:
                    numerator.append(self._literal(sp.Integer(coefficient.p)))
                denominator.append(self._literal(sp.Integer(coefficient.q)))
            else:
                numerator.append(self._literal(coefficient))
        factors = self._quotient_inside_abs(list(factors), inner, numerator)
        for factor in factors:
            if factor.is_Pow and factor.exp.is_Number and factor.exp < 0:
                denominator.append(self.code(factor.base ** (-factor.exp), inner))
            else:
                numerator.append(self.code(factor, inner))
        if not numerator:
            numerator.append(Code("1.0"))
        num = self._product(numerator)
        if negative:
            if len(numerator) == 1 and not denominator:
                return Code("-" + _wrap(num, _UNARY), _UNARY)
            num = Code("-" + num.text, num.prec) if num.prec >= _MUL else Code("-" + _wrap(num, _UNARY), _UNARY)
        if not denominator:
            return num
        den = self._product(denominator)
        text = f"{_wrap(num, _MUL)} / {_wrap(den, _MUL + 1)}"
        while len(text) > self.body.inner and not (_is_short(num.text) and _is_short(den.text)):
            # The longer side to a temporary, then the other if it still does not fit.
            if not _is_short(den.text) and (len(den.text) > len(num.text) or _is_short(num.text)):
                den = self.body.temporary(den.text)
            else:
                num = self.body.temporary(num.text)
            text = f"{_wrap(num, _MUL)} / {_wrap(den, _MUL + 1)}"
        return Code(text, _MUL)

    def _quotient_inside_abs(self, factors: list, inner: str, numerator: list[Code]) -> list:
        """`|x| / d` with `d > 0` prints as `abs(x / d)`, as the user wrote it before SymPy took `d` out.

        (The mean absolute percentage error, `abs(e / maximum(abs(y_true), eps))`.) JAX's jit
        compiles the quotient inside faster, 2.1x -> 1.0x of Keras's loss, which writes it so, and
        TensorFlow's kernels do not mind. Returns the factors left to print; the abs is appended
        to `numerator`.
        """
        absolute = [f for f in factors if type(f) in (sp.Abs, _OrientedAbs)]
        below = [f for f in factors if f.is_Pow and f.exp.is_Number and f.exp < 0]
        if len(absolute) != 1 or not below or not all(self.body.positive(f.base) for f in below):
            return factors
        arg = absolute[0].args[0]
        if type(absolute[0]) is sp.Abs:
            arg = _e_oriented(arg)  # as `_print_Abs` prints it
        quotient = sp.Mul(arg, *below, evaluate=False)
        numerator.append(self._call("abs", [self.code(quotient, inner)]))
        return [f for f in factors if f is not absolute[0] and not any(f is b for b in below)]

    def _product(self, factors: list[Code]) -> Code:
        if len(factors) == 1:
            return factors[0]
        text = _wrap(factors[0], _MUL)
        for code in factors[1:]:
            candidate = f"{text} * {_wrap(code, _MUL)}"
            if len(candidate) > self.body.inner and not _is_short(text):
                text = self.body.temporary(text).text
                candidate = f"{text} * {_wrap(code, _MUL)}"
            if len(candidate) > self.body.inner and not _is_short(code.text):
                candidate = f"{text} * {self.body.temporary(code.text).text}"
            text = candidate
        return Code(text, _MUL)

    def _print_Pow(self, expr: sp.Pow, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        base, exponent = expr.base, expr.exp
        if exponent.is_Number and exponent < 0:
            den = self.code(base ** (-exponent), inner)
            return self._fit([den], lambda c: f"1.0 / {_wrap(c[0], _MUL + 1)}", _MUL)[0]
        if equals_number(exponent, 2.0):
            return self._call("square", [self.code(base, inner)])
        if equals_number(exponent, 0.5):
            return self._call("sqrt", [self.code(base, inner)])
        return self._call("power", [self.code(base, inner), self.code(exponent, inner)])

    # functions -------------------------------------------------------------

    def _print_Function(self, expr: sp.Function, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_Abs(self, expr: sp.Abs, form: str = DROPPED) -> Code:
        # SymPy keeps one orientation of a difference under Abs: `abs(e)` becomes
        # Abs(y_pred - y_true). The value is the same either way, but the gradient at 0 is
        # a convention of the backend (JAX takes abs'(0) = 1, TensorFlow and PyTorch 0), so
        # `e`'s orientation, y_true - y_pred (as Keras writes its own losses), is printed.
        oriented = _e_oriented(expr.args[0])
        if oriented is not expr.args[0]:
            return self._call("abs", [self.code(oriented, self.body.child_form(expr, form))])
        return self._generic(expr, form)

    def _print_Clip(self, expr: sf.Clip, form: str = DROPPED) -> Code:
        x, lo, hi = expr.args
        if self.body.shape(x) == ELEM and _is_literal(lo) and _is_literal(hi) and float(lo) <= float(hi):
            return self._generic(expr, form)
        # `clip(1, y_pred, 2)`, `clip([0.5, 2], y_pred, 1.5)`: keras.ops.clip takes its first
        # argument for a tensor (TensorFlow reads its dtype) of the result's shape (TensorFlow
        # checks it); a constant, a list or one value per sample is neither. And bounds that may
        # cross (`clip(eps, y_pred, y_true)`, a parameter): clip is `min(max(x, lo), hi)`, as
        # NumPy, JAX and PyTorch have it (the upper bound wins), where TensorFlow's keras.ops.clip
        # lets the lower bound win.
        # x first where it is not a number: TensorFlow's maximum and minimum pass the gradient of a
        # tie to their first argument, so x at a bound keeps it, as under keras.ops.clip.
        inner = self.body.child_form(expr, form)
        pair = [self.code(lo, inner), self.code(x, inner)]
        low = self._call("maximum", pair if _is_literal(x) else pair[::-1])
        return self._call("minimum", [low, self.code(hi, inner)])

    def _print_Log1p(self, expr: sf.Log1p, form: str = DROPPED) -> Code:
        if not self.body.xla:
            return self._generic(expr, form)
        x = expr.args[0]
        if x.could_extract_minus_sign():
            return self._log1p_of_negated(self.code(-x, self.body.child_form(expr, form)))
        # `x * -1.0`, not `-x`: TensorFlow's graph optimizer turns `1 - (-x)` into `1 + x`, then
        # `log(1 + x)` into `log1p(x)`, and the correction would count twice.
        x = self.code(x, self.body.child_form(expr, form))
        return self._log1p_of_negated(self.body.temporary(f"{_wrap(x, _MUL)} * -1.0"))

    def _log1p_of_negated(self, a: Code) -> Code:
        """`log1p(-a)`, spelled for XLA: `log(u) + (((1 - u) - a) if u <= 2 else 0)`, `u = 1 - a`.

        XLA's CPU log1p costs about two logs (a log and a rational function, then a select).
        For `-1 <= a <= 1` the subtraction `1 - u` is exact, so `(1 - u) - a` is what rounding
        `1 - a` lost, and `log(1 - a) = log(u) + ((1 - u) - a) / u`; the division is left out,
        as `u` is within a few units of the last place of 1 wherever the correction is not 0.
        Above `u = 2` rounding `u` moves log(u) by less than its own last place (and
        `(1 - u) - a` is not that error any more), so the correction is 0 there; at `a = -inf`
        it is NaN, and not selected. Accurate to about a unit in the last place, as log1p is.

        The spelling is what compilers leave alone: TensorFlow's graph optimizer turns
        `log(1 + x)` (and `log(1 - (-x))`) into `log1p(x)`, where the correction would count
        twice, and folds `(u - 1) - x` to 0; jax.jit's XLA folds `x - (u - 1)` to 0.
        """
        if not a.text.isidentifier():
            a = self.body.temporary(a.text)
        u = self.body.temporary(f"1.0 - {a.text}")
        small = self._call("less_equal", [u, Code("2.0")])
        correction = self._call("where", [small, Code(f"(1.0 - {u.text}) - {a.text}", _ADD), Code("0.0")])
        # The correction's derivative is 0, and autodiff would make it `g - g`: NaN for an
        # infinite upstream `g` (`sqrt(log1p(x))` at x = 0), where log1p's gradient is inf.
        correction = self._call("stop_gradient", [correction])
        terms = [self._call("log", [u]), correction]
        return self._fit(terms, lambda c: f"{c[0].text} + {c[1].text}", _ADD)[0]

    def _print_Log1pDiff(self, expr: sf.Log1pDiff, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        a, b = (self.code(arg, inner) for arg in expr.args)
        d = self.body.temporary(f"{_wrap(a, _ADD)} - {_wrap(b, _ADD + 1)}")
        up = self.body.temporary(self._call("greater_equal", [d, Code("0.0")]).text)
        negated = self._call("where", [up, Code(f"-{d.text}", _UNARY), d])
        denominator = self._call(
            "where", [up, Code(f"{_wrap(b, _ADD)} + 1.0", _ADD), Code(f"{_wrap(a, _ADD)} + 1.0", _ADD)]
        )
        # log1p(|d| / (1 + the smaller side)), as log1p(-(-|d| / ...))
        quotient, _ = self._fit([negated, denominator], lambda c: f"{c[0].text} / {c[1].text}", _MUL)
        r = self.body.temporary(self._log1p_of_negated(quotient).text)
        return self._call("where", [up, r, Code(f"-{r.text}", _UNARY)])

    def _print_re(self, expr: sp.re, form: str = DROPPED) -> Code:
        # SymPy writes `abs(c^x)` as `c^re(x)` when it cannot prove x real; every tensor here is.
        return self.code(expr.args[0], form)

    def _print__OrientedAbs(self, expr: _OrientedAbs, form: str = DROPPED) -> Code:
        return self._call("abs", [self.code(expr.args[0], self.body.child_form(expr, form))])

    def _print__OrientedSign(self, expr: _OrientedSign, form: str = DROPPED) -> Code:
        return self._call("sign", [self.code(expr.args[0], self.body.child_form(expr, form))])

    def _print__SoftmaxCrossEntropy(self, expr: _SoftmaxCrossEntropy, form: str = DROPPED) -> Code:
        logits = self.code(expr.args[1], KEPT)
        if self.body.class_ids:
            code = self._call("sparse_categorical_crossentropy", [Code("y_true"), logits], ["from_logits=True"])
        else:
            labels = self.code(expr.args[0], KEPT)
            code = self._call("categorical_crossentropy", [labels, logits], ["from_logits=True"])
        return self._call("expand_dims", [code], ["axis=-1"]) if form == KEPT else code

    def _print_Heaviside(self, expr: sp.Heaviside, form: str = DROPPED) -> Code:
        # Only fused gradients hold steps: `[z >= 0]` (`maximum`, `clip`: TensorFlow passes the
        # gradient at ties), or `[z > 0]` where the value at 0 is 0 (`relu`).
        inner = self.body.child_form(expr, form)
        strict = len(expr.args) > 1 and expr.args[1] == 0
        constant, rest = expr.args[0].as_coeff_Add()
        if _negative(rest):  # c - r >= 0: r <= c
            op, left, right = ("less" if strict else "less_equal"), -rest, constant
        else:
            op, left, right = ("greater" if strict else "greater_equal"), rest, -constant
        test = self._call(op, [self.code(left, inner), self.code(right, inner)])
        return self._call("cast", [test, Code("y_pred.dtype")])

    # Max and Min are not Functions in SymPy; relationals are not Applications.
    def _print_MinMaxBase(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_Relational(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _print_BooleanFunction(self, expr: sp.Basic, form: str = DROPPED) -> Code:
        return self._generic(expr, form)

    def _generic(self, expr: sp.Basic, form: str) -> Code:
        op = KERAS_OPS.get(type(expr))
        if op is None:
            raise KerasEmitError(f"the Keras printer has no rule for {type(expr).__name__}")
        inner = self.body.child_form(expr, form)
        args = list(expr.args)
        if isinstance(expr, (sp.Max, sp.Min)):
            args.sort(key=_is_literal)  # tensors first: `keras.ops.maximum(x, 0.0)`
        codes = [self.code(a, inner) for a in args]
        if isinstance(expr, (*sf.REDUCTIONS, *_AXIS_FUNCTIONS)) and self.body.shape(args[0]) == CONST:
            # Over the last axis a constant still has y_pred's shape: sum(0 * y_pred) folds to sum(0).
            codes[0] = Code(f"keras.ops.zeros_like(y_pred) + {_wrap(codes[0], _ADD + 1)}", _ADD)
        if isinstance(expr, _BINARY_FOLDS):
            result = codes[-1]
            for code in reversed(codes[:-1]):
                result = self._call(op, [code, result])
            return result
        keywords = []
        if isinstance(expr, sf.REDUCTIONS):
            keywords.append("axis=-1")
            if self.body.shape(expr) == SAMPLE and form == KEPT:
                keywords.append("keepdims=True")
        elif isinstance(expr, _AXIS_FUNCTIONS):
            keywords.append("axis=-1")
        return self._call(op, codes, keywords)

    def _print_Piecewise(self, expr: sp.Piecewise, form: str = DROPPED) -> Code:
        inner = self.body.child_form(expr, form)
        pieces = list(expr.args)
        if pieces[-1].cond != sp.true:
            raise KerasEmitError("a piecewise expression without a default branch")
        result = self.code(pieces[-1].expr, inner)
        numbers = _is_literal(pieces[-1].expr)
        for piece in reversed(pieces[:-1]):
            condition = self.code(piece.cond, inner)
            value = self.code(piece.expr, inner)
            if numbers and _is_literal(piece.expr):
                # `where(c, 1.0, 2.0)` of two numbers is a float32 tensor: y_pred's dtype instead,
                # or a float16 loss multiplies float16 by float32 (TensorFlow refuses).
                value = self.body.typed(value)
            numbers = False
            result = self._call("where", [condition, value, result])
        return result

    def _call(self, op: str, args: list[Code], keywords: list[str] | None = None) -> Code:
        keywords = keywords or []
        args = [self.body.typed(a) if _is_number(a.text) and not _exact_in_float32(a.text) else a for a in args]
        extra = "".join(", " + k for k in keywords)
        head = f"keras.ops.{op}("
        code, args = self._fit(args, lambda c: head + ", ".join(a.text for a in c) + extra + ")", _ATOM)
        if len(code.text) <= self.body.inner:
            return code
        # Only names are left and they still do not fit: one argument per line, with the
        # trailing comma that makes `ruff format` keep that layout.
        name = self.body._allocate("")
        lines = [f"{name} = {head}", *(f"    {a.text}," for a in args), *(f"    {k}," for k in keywords), ")"]
        self.body.pending += lines
        return Code(name)

    def _fit(self, codes: list[Code], assemble: Callable[[list[Code]], str], prec: int) -> tuple[Code, list[Code]]:
        """Assemble `codes`; while the text is too long, move the longest argument to a temporary."""
        codes = list(codes)
        text = assemble(codes)
        while len(text) > self.body.inner:
            candidates = [i for i, c in enumerate(codes) if not _is_name(c.text) and not _is_number(c.text)]
            if not candidates:
                break
            longest = max(candidates, key=lambda i: len(codes[i].text))
            codes[longest] = self.body.temporary(codes[longest].text)
            text = assemble(codes)
        return Code(text, prec), codes


def _condition(test: str, indent: int) -> list[str]:
    """`if <test>:` at `indent`, split over lines as `ruff format` splits it where it is too long."""
    line = f"if {test}:"
    if indent + len(line) <= LINE_LENGTH:
        return [line]
    first, *rest = test.split(" or ")
    return ["if (", f"    {first}", *(f"    or {part}" for part in rest), "):"]


def _negative(expr: sp.Basic) -> bool:
    coefficient, _ = expr.as_coeff_Mul()
    return bool(coefficient.is_negative)


def _wrap(code: Code, prec: int) -> str:
    return f"({code.text})" if code.prec < prec else code.text


def _is_short(text: str) -> bool:
    """A name or a number: moving it to a temporary would not shorten anything."""
    return _is_name(text) or _is_number(text)


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?[0-9][0-9.e-]*", text))
