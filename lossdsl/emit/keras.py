"""Stage 5 (Keras): `CompiledLoss` -> the source text of a standalone Keras module.

Input: a compiled program (its SymPy core form, with elementwise heads such as
`Sigmoid` kept whole). Output: a module that imports only `keras` and defines
one class, `spec.name`, a `keras.losses.Loss` subclass whose `call()` uses
`keras.ops` only (directly, or through the functions of `xla_forms` that the
module defines above the class where it calls them). The class is registered
with Keras under the package `GENERATED_PACKAGE` ("lossdsl_generated", never "lossdsl", where
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
* `log1p`, `softplus`, a `sigmoid` sharing a softplus's argument and a
  difference of two `log1p` (`Log1pDiff`) are calls of functions defined above
  the class (`xla_forms`) that take cheaper, equally accurate forms while
  TensorFlow traces the code for XLA, `keras.ops`'s own functions elsewhere;
* spelled for XLA (`xla=True`), what saves a transcendental under XLA is
  written out, whatever runs it (see `emit_keras`).

The stage's modules, data flowing one way: `plan` (what call() computes:
the stable form, fused idioms, the symbolic gradient, locals in order) ->
`call_body` (the statements of call(), the fused backward pass around them)
-> `keras_printer` (each expression as `keras.ops` calls, one `_print_<Class>`
method per node kind); `pytext` (printed Python, line layout) and `names`
(the class's and the locals' names) serve them; this module assembles the
module text. No user text reaches the code: the description and the LaTeX go
into a docstring only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import unicodedata

from lossdsl.emit.call_body import CallBody
from lossdsl.emit.names import MODULE_NAMES, param_attributes, snake_case
from lossdsl.emit.pytext import BODY_INDENT, LINE_LENGTH, float_literal
from lossdsl.emit.xla_forms import module_functions
from lossdsl.errors import LossTypeError
from lossdsl.source_text import split_description

GENERATED_PACKAGE = "lossdsl_generated"


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
            and arithmetic that share one exponential (`shared_exponentials`); one log for a
            difference of two log1p (`rewrites`); every log1p as a log and the rounding error
            of its argument (`KerasPrinter._log1p_of_negated`). As accurate; faster under XLA, and not
            the default because the rewrite table's function names then no longer appear in
            the code and the log1p forms cost kernels without XLA. (The default code's `log1p`
            and `softplus` take these forms while TensorFlow traces for XLA: `xla_forms`.)

    Raises:
        KerasEmitError: the program holds an operation the printer cannot express.
        LossTypeError: the class name would shadow a name the module needs.
    """
    if spec.name in MODULE_NAMES:
        raise LossTypeError(
            f"{spec.name!r} cannot name the generated class: the module needs that name"
        )
    lines = None
    fast = fast or xla
    if fast:
        try:
            body = CallBody(spec, fast=True, xla=xla)
            lines = body.lines()
        except Exception:  # noqa: BLE001 - the speed-ups are optional: any failure (a gradient the
            # printer cannot write, a SymPy gap while differentiating) leaves the loss to autodiff
            lines = None
    if lines is None:
        body = CallBody(spec, xla=xla)
        lines = body.lines()
    return _module(
        spec, lines, registered_name(spec, fast, xla), module_functions(body.helpers)
    )


def registered_name(spec, fast: bool = True, xla: bool = False) -> str:
    """The name the generated class is registered under in `GENERATED_PACKAGE`.

    The class name and a digest of the program: of its syntax tree, so that comments, spacing and
    line breaks do not change it (a module written again after its comment was edited still loads
    the models saved with the one before), and any change to what it computes does. The
    autodiff-only class (`fast=False`) and the class spelled for XLA (`xla=True`) have names of
    their own, so that loading one does not replace the default class in Keras's registry.
    """
    program = dataclasses.replace(
        spec.resolved.program, description=""
    )  # (a repr holds no positions)
    digest = hashlib.sha256(repr(program).encode("utf-8", "surrogatepass")).hexdigest()[
        :8
    ]
    if xla:
        return f"{spec.name}_{digest}_xla"
    return f"{spec.name}_{digest}" if fast else f"{spec.name}_{digest}_autodiff"


# --------------------------------------------------------------------- the module


def _module(spec, body: list[str], registered: str, functions: list[str]) -> str:
    name = spec.name
    params = spec.params
    attributes = param_attributes(params)
    out = [
        '"""A Keras loss generated by lossdsl; this module imports only keras."""',
        "",
        "import keras",
        *functions,
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
        *(
            f"        {p}={float_literal(v)},{_E741 if p in ('l', 'O', 'I') else ''}"
            for p, v in params.items()
        ),
        '        reduction="sum_over_batch_size",',
        f'        name="{snake_case(name)}",',
        "        dtype=None,",
        "    ):",
    ]
    base = "keras.losses.Loss" if "super" in params else None
    if base:
        out.append(
            f"        {base}.__init__(self, name=name, reduction=reduction, dtype=dtype)"
        )
    else:
        out.append(
            "        super().__init__(name=name, reduction=reduction, dtype=dtype)"
        )
    for p in params:
        out += _assignment(f"self.{attributes[p]}", p)
    out += [
        "",
        "    def get_config(self):",
        f"        config = {base}.get_config(self)"
        if base
        else "        config = super().get_config()",
        *(
            line
            for p in params
            for line in _assignment(f'config["{p}"]', f"self.{attributes[p]}")
        ),
        '        config["dtype"] = self.dtype',
        "        return config",
        "",
        "    def call(self, y_true, y_pred):",
        *(BODY_INDENT + line if line else "" for line in body),
    ]
    if any(_width(line) > LINE_LENGTH for line in out):
        out[1:1] = ["", _LONG_LINES]
    return "\n".join(out) + "\n"


# A line of the docstring's LaTeX (a binding's, or a long formula's), or of the description as the
# program's comments wrote it, is not wrapped: a team whose ruff selects E501 (as `select = ["E"]`
# does) would see it reported. The file's directive names RUF100 too, which reports it as unused
# where E501 is off (ruff 0.17's defaults). Only where a line is wider than ruff's default line
# length: the code itself is laid out within it.
_LONG_LINES = (
    "# ruff: noqa: E501, RUF100 - the docstring keeps its LaTeX and comments unwrapped"
)


def _width(line: str) -> int:
    """The columns `line` takes, as ruff counts them for E501: a wide character (CJK) takes two (a
    description of 88 such characters is 114 columns wide; the change review). Combining marks
    count one here, where ruff counts none: the directive is then written where it was not needed."""
    if (
        line.isascii()
    ):  # (each character one column; the per-character count was a tenth of a compile)
        return len(line)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


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
    latex = [
        line for line in (_clean(raw) for raw in _latex(spec).splitlines()) if line
    ]
    if latex:
        lines += [
            "",
            "Formula (LaTeX):",
            "",
            *latex,
        ]  # at the docstring's own indent: `inspect.getdoc` holds it verbatim
    program = _program(spec)
    if program:
        lines += [
            "",
            "Program (lossdsl):",
            "",
            *(f"    {line}" if line else "" for line in program),
        ]
    lines += ["", "Args:"]
    lines += [
        f"    {p}: a parameter of the formula (default {float_literal(v)})."
        for p, v in spec.params.items()
    ]
    lines += [
        "    reduction: the batch reduction, as in `keras.losses.Loss`.",
        "    name: the name of the loss object.",
        "    dtype: the dtype the loss computes in (default: Keras's floatx).",
    ]
    body = [("    " + line).rstrip() for line in lines]
    body[0] = (
        '    r"""' + (" " if lines[0].startswith('"') else "") + lines[0]
    )  # as `ruff format` writes it
    return [*body, '    """']


def _program(spec) -> list[str]:
    """The program's statements as written, below its description (the comment lines at its top),
    each cleaned as a docstring line but for its indent: what `lossdsl compile` reads again to make
    this module (a review of shipping: the module named no source to regenerate it from)."""
    body = [
        _clean(line, strip=False) for line in split_description(spec.source or "")[1]
    ]
    while body and not body[0]:
        body.pop(0)
    while body and not body[-1]:
        body.pop()
    return body


def _latex(spec) -> str:
    try:
        return spec.latex()
    except Exception:  # noqa: BLE001 - the LaTeX is documentation: failing to print it must not block the code
        return ""


def _clean(line: str, strip: bool = True) -> str:
    """One docstring line: printable characters only, never three double quotes, no outer whitespace
    (with `strip`; else no trailing whitespace)."""
    text = line.replace("\t", "    ")
    if not text.isprintable():  # (each character in turn only where one is not)
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    while '"""' in text:
        text = text.replace('"""', "'''")
    return text.strip() if strip else text.rstrip()
