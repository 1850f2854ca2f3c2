"""Stage 5 (Keras), the body: the statements of call().

`CallBody` plans a program (`plan`), then prints the planned locals in order
through `KerasPrinter`: the prelude (casts, rank matching, parameters), the
forward pass and, where the gradient is fused, the backward pass of a
`keras.ops.custom_gradient` around it, with the per-backend switches.
"""

from __future__ import annotations

import itertools

import sympy as sp

from lossdsl import rebuild, subtrees
from lossdsl import symfuncs as sf
from lossdsl.emit.fused import dependent_symbols, fused_gradient, through_the_error
from lossdsl.emit.keras_printer import KerasPrinter
from lossdsl.emit.names import MAX_LOCAL_NAME, RESERVED, param_attributes
from lossdsl.emit.plan import (
    AXIS_FUNCTIONS,
    CONST,
    DROPPED,
    ELEM,
    KEPT,
    SAMPLE,
    VECTOR,
    Local,
    _SoftmaxCrossEntropy,
    has_negative_coefficient,
    idioms,
    numeric_factor,
    oriented,
    plan,
    reads_a_reduction,
    shared_exponentials,
)
from lossdsl.emit.pytext import (
    BODY_INDENT,
    LINE_LENGTH,
    NESTED_INDENT,
    PREC_MUL,
    TYPED_NUMBER,
    Code,
    call_lines,
    if_lines,
    indented,
    is_name,
    is_short,
    typed_number,
    unwrap,
    wrap,
)
from lossdsl.errors import KerasEmitError
from lossdsl.rewrites import equals_number, stable_form
from lossdsl.symbolic import Y_PRED, Y_TRUE


class CallBody:
    """Plans and prints the statements of call()."""

    def __init__(self, spec, fast: bool = False, xla: bool = False) -> None:
        self.spec = spec
        self.xla = xla
        self.indent = len(BODY_INDENT)
        symbolic = spec.symbolic
        self.params = dict(symbolic.params)  # name -> Symbol
        self.param_symbols = {s: n for n, s in self.params.items()}
        self.attributes = param_attributes(spec.params)
        self.taken: set[str] = set(RESERVED)
        self.param_locals = {name: self._allocate(name) for name in self.params}
        bindings, result = stable_form(symbolic)
        gradient = target = None
        if fast:
            bound = {
                symbol: value for _, symbol, value in bindings if symbol is not None
            }
            bindings = [
                (name, symbol, idioms(value, bound)) for name, symbol, value in bindings
            ]
            result = idioms(result, bound)
            gradient = fused_gradient(bindings, result, elementwise=not spec.per_sample)
            if gradient is not None and result.free_symbols & {
                Y_TRUE,
                *dependent_symbols(bindings, Y_TRUE),
            }:
                # y_true gets its gradient too (a target computed from trainable weights needs
                # it); where it cannot be fused, neither is y_pred's: autodiff gives both. A loss of
                # `y_pred - y_true` alone has y_pred's negated (printed as one negation, below).
                if through_the_error(bindings, result):
                    target = -gradient
                else:
                    target = fused_gradient(
                        bindings, result, elementwise=not spec.per_sample, wrt=Y_TRUE
                    )
                gradient = None if target is None else gradient
            if gradient is not None:
                bindings = [
                    (name, symbol, oriented(value)) for name, symbol, value in bindings
                ]
                result, gradient = oriented(result), oriented(gradient)
                target = None if target is None else oriented(target)
                if xla:
                    bindings, result, gradient, target = shared_exponentials(
                        bindings, result, gradient, target
                    )
        self.gradient_factor = sp.Integer(1)
        if gradient is not None and not reads_a_reduction(gradient, bindings):
            self.gradient_factor, gradient = numeric_factor(gradient)
        # The target's gradient, as a multiple of the prediction's where it is one (a loss of `e`
        # alone: `-gradient`, one negation), else its own expression.
        self.target_factor = None
        if target is not None and target + self.gradient_factor * gradient == 0:
            # Compared as built, not expanded: expanding a power of a sum took seconds.
            self.target_factor, target = sp.Integer(-1), None
        if gradient is not None:
            self.indent += 2 * len(NESTED_INDENT)  # backward() sits inside forward()
        self.fused_target = target is not None or self.target_factor is not None
        planned = plan(bindings, result, gradient, target)
        self.locals, self.result = planned.locals, planned.result
        self.gradient, self.target = planned.gradient, planned.target
        self.forward_count = planned.forward_count
        self.gradient_count = planned.gradient_count
        self.by_symbol = {local.symbol: local for local in self.locals}
        # The values tie_order reads: the temporaries' definitions, and what it rebuilt of each node.
        self._temporaries: dict | None = None
        self._before_temporaries: dict = {}
        self._forward_values: dict[sp.Basic, sp.Basic] | None = None
        for (
            local
        ) in self.locals:  # the user's names first; temporaries take what is left
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
        self.in_backward = False  # printing backward()'s statements
        # A number as a tensor of y_pred's dtype, converted once: its text -> the local holding it.
        self.constants: dict[str, str] = {}
        self._temp_count = 0
        # The module's trace-time functions (`xla_forms`) the printed code calls, and the
        # arguments of its softplus (a sigmoid of one of them shares its exponential).
        self.helpers: set[str] = set()
        values = [local.value for local in self.locals] + [self.result]
        self.softplus_arguments = {
            f.args[0] for value in values for f in subtrees.atoms(value, sf.Softplus)
        }
        self.printer = KerasPrinter(self)

    # names -----------------------------------------------------------------

    @property
    def inner(self) -> int:
        """Longest expression text a node may print before its children move to temporaries:
        `t123 = <text>` at the body's indentation must still fit in LINE_LENGTH. (From `t1000` on,
        the name's own digits: 89 columns that `ruff format` wrapped, in an XLA spelling of 122
        nested softplus; a review. The margin of 100 covers the temporaries a node's parts take
        before its own.)"""
        return (
            LINE_LENGTH
            - self.indent
            - max(len("t123 = "), len(f"t{self._temp_count + 100} = "))
        )

    def _allocate(self, hint: str) -> str:
        if hint:
            # A reserved name gets a trailing underscore (`lambda_`); names cut to the length
            # limit that meet an earlier one get a number.
            name = hint[:MAX_LOCAL_NAME]
            numbered = (
                f"{name}_{n}" for n in range(2, len(self.taken) + 3)
            )  # (made as far as needed)
            name = next(
                c
                for c in itertools.chain((name, name + "_"), numbered)
                if c not in self.taken
            )
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
        """The number `code` as a tensor of y_pred's dtype (`typed_number`), in a local that every
        later statement in scope shares: one conversion however often the passes read it."""
        text = typed_number(code).text
        if text not in self.constants:
            self.constants[text] = self.temporary(text).text
        return Code(self.constants[text])

    def named(self, expr: sp.Basic) -> sp.Basic:
        """The forward pass's local whose value is `expr`, else `expr` (for what the printer builds
        after cse: the backward pass reads such a value rather than computing it again)."""
        if self._forward_values is None:
            self._forward_values = {
                local.value: local.symbol for local in self.locals[: self.forward_count]
            }
        return self._forward_values.get(expr, expr)

    def tie_order(self, args: list) -> list:
        """The arguments of a Max or Min in the order to print them: tensors first, and two tensors
        in SymPy's order (`sympy.ordered`, as Max orders its arguments) of what they were before
        the temporaries named their parts. That is the order in which the fused gradient gave a
        tie to the first (`fused._prepared`), as TensorFlow does. (Named, `maximum(e, -e)` is
        `Max(t0, -t0)` with `t0 = y_pred - y_true`, in the other order.)"""
        args = sorted(args, key=sf.is_literal)
        if len(args) != 2 or sf.is_literal(args[1]):
            return args
        if self._temporaries is None:
            self._temporaries = {
                s: local.value for s, local in self.by_symbol.items() if not local.hint
            }
        # (one memo for the body: a Max nested in a Max is rebuilt once, not again for each one
        # above it, which took 6 s for `maximum(e - k, minimum(e + k, ...))` nested 99 deep)
        before = [
            rebuild.inlined(arg, self._temporaries, self._before_temporaries)
            for arg in args
        ]
        return args if next(iter(sp.ordered(before))) == before[0] else args[::-1]

    # shapes and forms ------------------------------------------------------

    def positive(self, expr: sp.Basic) -> bool:
        """`expr` is known to be > 0 (SymPy's assumptions, through the locals it reads)."""
        return bool(
            rebuild.inlined(
                expr, {s: local.value for s, local in self.by_symbol.items()}
            ).is_positive
        )

    def shape(self, expr: sp.Basic) -> str:
        """CONST, VECTOR, SAMPLE or ELEM: the shape of `expr`'s value."""
        if expr in self.shapes:
            return self.shapes[expr]
        if expr in self.by_symbol:
            shape = self.shape(self.by_symbol[expr].value)
        elif expr in (Y_TRUE, Y_PRED) or isinstance(expr, (sf.OneHot, *AXIS_FUNCTIONS)):
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
        if self.shape(expr) == ELEM or isinstance(
            expr, (*sf.REDUCTIONS, *AXIS_FUNCTIONS, _SoftmaxCrossEntropy)
        ):
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
        collect = None  # a closure that calls itself: cleared, so that its cycle does not outlive the call

    # printing --------------------------------------------------------------

    def lines(self) -> list[str]:
        """The statements of call(), unindented."""
        forward = self._statements(self.locals[: self.forward_count])
        shape = self.shape(self.result)
        if shape in (CONST, VECTOR):
            raise KerasEmitError(
                f"the loss simplifies to {self.result}, which does not depend on y_pred"
            )
        if self.spec.per_sample and shape != SAMPLE:
            raise KerasEmitError(
                f"the loss has shape {shape!r} but per_sample is {self.spec.per_sample}"
            )
        tail = "" if self.gradient is None else ", backward"
        # Printed before the value, whose temporaries may read the one-hot labels built after it.
        sparse = (
            self._sparse_branch(shape)
            if self.gradient is None and self._class_ids_suffice()
            else []
        )
        value = self._value(shape, tail)
        # The return line (in forward() where fused) too long with a name in it that cannot be
        # split: the value to a local first, as `ruff format` would otherwise split the call.
        depth = len(BODY_INDENT) + (len(NESTED_INDENT) if tail else 0)
        if depth + len(f"return {value}{tail}") > LINE_LENGTH:
            value = self.temporary(value).text
        if sparse:
            return (
                self.prelude(one_hot=False)
                + forward
                + sparse
                + self._one_hot()
                + self.pending
                + [f"return {value}"]
            )
        forward += self.pending
        self.pending = []
        if self.gradient is None:
            return self.prelude() + forward + [f"return {value}"]
        return self._fused_lines(shape, forward, value)

    def _fused_lines(self, shape: str, forward: list[str], value: str) -> list[str]:
        """call() with a custom gradient: `forward()` returns the value and `backward()`, taken
        where the fused path can serve, autodiff of `forward()` elsewhere."""
        nested, fused_target = self._backward_def(shape)
        # With y_true an input of its own (its gradient fused too), the two have one shape.
        inputs = "y_true, y_pred" if fused_target else "y_pred"
        # JAX keeps autodiff: jax.jit fuses the elementwise chain by itself, and JAX's autodiff
        # has its own conventions at kinks (abs'(0) = 1), which Keras's losses on JAX follow.
        # PyTorch keeps it too: Keras runs a custom gradient's forward pass there as a
        # torch.autograd.Function, under no_grad, so its backward pass was not differentiable
        # (a Hessian of 0, a wrong gradient penalty; torch.func refused it; a review).
        # Keras's other backends (numpy, OpenVINO) compute no gradients, and the numpy one warns
        # at a custom gradient (a review): every backend but TensorFlow takes the forward pass.
        switch = '!= "tensorflow"'
        columns, widths = self._other_widths(fused_target)
        broadcast = self._broadcast_unknown_axes()
        outer = self.indent - 2 * len(NESTED_INDENT)
        return [
            *self.prelude(),
            "",
            f"def forward({inputs}):",
            *indented(
                [
                    *forward,
                    *([""] if forward else []),
                    *nested,
                    "",
                    f"return {value}, backward",
                ]
            ),
            "",
            f"if keras.backend.backend() {switch}:",
            f"    return forward({inputs})[0]",
            *if_lines(self._autodiff_inputs(), outer),
            f"    return forward({inputs})[0]",
            f"{columns} = y_pred.shape[-1]",
            *if_lines(" or ".join(widths), outer),
            f"    return forward({inputs})[0]",
            *broadcast,
            f"return keras.ops.custom_gradient(forward)({inputs})",
        ]

    def _backward_def(self, shape: str) -> tuple[list[str], bool]:
        """The lines of `def backward(...)`, and whether it returns y_true's gradient too."""
        self.in_backward = True
        backward = self._statements(
            self.locals[self.forward_count : self.gradient_count]
        )
        # A numeric factor of the gradient, its sign included, scales the upstream (one value
        # per sample), not the elements.
        factor, elements = self.gradient_factor, self.gradient
        if has_negative_coefficient(elements):
            factor, elements = -factor, -elements
        scale = f"{wrap(self.printer.code(factor), PREC_MUL)} * "
        if equals_number(factor, 1.0) or equals_number(factor, -1.0):
            scale = "" if factor > 0 else "-"
        code = self.statement(
            elements, KEPT, len("gradient = upstream * ()") + len(scale)
        )
        backward += self.pending
        self.pending = []
        gradient = [f"gradient = {scale}upstream * {wrap(code, PREC_MUL)}"]
        target = self._target_lines()
        returned = "target, gradient" if target else "gradient"
        # call() takes this path only where y_pred's last axis is known and is the loss's own (y_true's,
        # a list's): the gradient then has y_pred's shape, or broadcasts to it (one value per sample,
        # a constant, y_true of one row).
        reshaped = [
            "if gradient.shape != y_pred.shape:",
            "    gradient = keras.ops.broadcast_to(gradient, keras.ops.shape(y_pred))",
        ]
        # The upstream gradient is per sample; an elementwise loss's mean over the last axis
        # scales it by 1/C, divided in float32 at least, as `keras.ops.mean` computes: float16
        # holds no count past 65504 (C was inf, and every gradient 0, from C = 65520), and
        # bfloat16 rounds 257 to 256 (a review of dtypes).
        per_element = []
        if shape == ELEM:
            per_element = [
                'wide = keras.backend.result_type(y_pred.dtype, "float32")',
                "classes = keras.ops.cast(keras.ops.shape(y_pred)[-1], wide)",
                "share = keras.ops.cast(upstream, wide) / classes",
                "upstream = keras.ops.cast(share, y_pred.dtype)",
            ]
        nested = [
            "def backward(*args, upstream=None, variables=None):",
            *indented(
                [
                    "if upstream is None:",
                    "    (upstream,) = args",
                    "upstream = keras.ops.expand_dims(upstream, axis=-1)",
                    *per_element,
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
        return nested, bool(target)

    def _target_lines(self) -> list[str]:
        """The backward pass's lines for y_true's gradient, `target`; none where it has none."""
        target: list[str] = []
        if self.target is not None:
            target = self._statements(
                self.locals[self.gradient_count :]
            )  # what only the target reads
            code = self.statement(self.target, KEPT, len("target = upstream * ()"))
            target += [*self.pending, f"target = upstream * {wrap(code, PREC_MUL)}"]
            self.pending = []
        elif self.fused_target:
            target = ["target = -gradient"]
        if not target:
            return []
        return [
            *target,
            "if target.shape != y_true.shape:",
            "    target = keras.ops.broadcast_to(target, keras.ops.shape(y_true))",
        ]

    def _other_widths(self, fused_target: bool) -> tuple[str, list[str]]:
        """The local that holds y_pred's last axis, and the tests that it is not the loss's own.

        Autodiff, too, where y_pred's last axis is not known while tracing, or is not the loss's
        own: one column broadcast against y_true's or a list's several, whose gradient sums back.
        """
        columns = self._allocate("columns")
        # (an empty last axis: the backward pass's `1 / keras.ops.shape(y_pred)[-1]` of a mean
        # divided by a Python 0, a ZeroDivisionError; autodiff gives Keras's NaN. A review)
        widths = [f"{columns} is None", f"{columns} == 0"]
        if self.uses_y_true:
            widths.append(f"{columns} != y_true.shape[-1]")
        widths += [f"{columns} != {n}" for n in sorted(self._list_lengths())]
        # (A loss that reads y_true always has it: where y_true's gradient is not fused, neither
        # is y_pred's, above.)
        if fused_target:
            widths.append("y_true.shape != y_pred.shape")
        return columns, widths

    def _broadcast_unknown_axes(self) -> list[str]:
        """An axis unknown while tracing (the batch's, in `fit`) may still broadcast when it runs,
        (1, 3) against (4, 3): the fused gradient would have the wider shape, and TensorFlow took
        it for the narrower input's (a review). Both go in broadcast to their common shape, and
        TensorFlow's gradient of that broadcast sums each back to its own."""
        if not self.uses_y_true:
            return []
        ones, common = self._allocate("ones"), self._allocate("shape")
        shapes = [ones, "keras.ops.shape(y_pred)", "keras.ops.shape(y_true)"]
        indent = self.indent - len(
            NESTED_INDENT
        )  # (the statements inside call()'s `if`)
        return [
            "if None in y_true.shape or None in y_pred.shape:",
            *indented(
                [
                    f"{ones} = keras.ops.equal(keras.ops.shape(y_true), 1)",
                    *call_lines(common, "keras.ops.where", shapes, indent),
                    f"y_true = keras.ops.broadcast_to(y_true, {common})",
                    f"y_pred = keras.ops.broadcast_to(y_pred, {common})",
                ]
            ),
        ]

    def _autodiff_inputs(self) -> str:
        """The condition under which call() takes autodiff of `forward()` whatever the widths."""
        # A scalar input has no last axis to read: autodiff, which broadcasts it as Keras's own
        # losses do (`y_pred.shape[-1]` was an IndexError from here; fuzzing).
        scalar = "len(y_pred.shape) == 0"
        if self.uses_y_true:
            scalar += " or len(y_true.shape) == 0"
        # A symbolic input (`keras.Input`, a functional model's graph) has no values for a custom
        # gradient: autodiff, recorded as Keras ops (TensorFlow refused it, and the broadcast below
        # read an unknown axis; a review). Keras's own losses take such inputs.
        scalar += " or isinstance(y_pred, keras.KerasTensor)"
        if self.uses_y_true:
            scalar += " or isinstance(y_true, keras.KerasTensor)"
        # A parameter given as a tensor or a variable (a learnable `delta`, the class built with
        # `keras.Variable(0.5)`) takes autodiff too: the backward pass has no gradient for it, and
        # TensorFlow's was None where Keras's own Huber, and autodiff on JAX, gave one (a review).
        # Numbers, as a config gives them, are no tensors: the fused path, as before.
        return scalar + "".join(
            f" or keras.ops.is_tensor(self.{self.attributes[name]})"
            for name in self.params
            if name in self.used_params
        )

    def _list_lengths(self) -> set[int]:
        """The lengths of the list literals the loss reads (one per program), but 1: a list of
        one value broadcasts against any number of columns and the gradient keeps y_pred's shape."""
        exprs = [
            self.result,
            self.gradient,
            self.target,
            *(local.value for local in self.locals),
        ]
        lengths = {
            len(vector.args)
            for expr in exprs
            if expr is not None
            for vector in subtrees.atoms(expr, sf.Vector)
        }
        return lengths - {1}

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
        scale = (
            ""
            if factor == 1
            else (
                "-"
                if factor == -1
                else f"{wrap(self.printer.code(factor), PREC_MUL)} * "
            )
        )
        overhead = len("return  * keras.ops.mean(, axis=-1)") + len(scale) + len(tail)
        return f"{scale}keras.ops.mean({self.statement(elements, KEPT, overhead).text}, axis=-1)"

    def _statements(self, locals_: list[Local]) -> list[str]:
        statements: list[str] = []
        for local in locals_:
            if local.name:
                code = self.statement(
                    local.value, local.form, len(local.name) + len(" = ")
                )
            else:
                # Named once its value is printed: the temporaries that printing makes come before
                # it in the code, and take the lower numbers (`t1 = ...` above `t0 = ...` read oddly).
                code = self.statement(
                    local.value, local.form, len(f"t{self._temp_count} = ")
                )
                if not sf.is_literal(local.value) and self._opening(code) is not None:
                    local.name = (
                        code.text
                    )  # the temporary its printing opened (a long list) is the local
                    statements += self.pending
                    self.pending = []
                    continue
                # (its name may have a digit more than the one it was printed for, `t10` for `t9`: the
                # printer's text fits `inner`, which counts the digits of a hundred temporaries more)
                local.name = self._allocate("")
            if sf.is_literal(
                local.value
            ):  # a constant binding: a tensor of y_pred's dtype, as every local is
                code = typed_number(code)
            if self._adopt(local.name, code):
                statements += self.pending
            else:
                statements += self.pending + self._assignment_lines(
                    local.name, code.text
                )
                self.constants.setdefault(code.text, local.name)
            self.pending = []
        return statements

    def _assignment_lines(self, name: str, text: str) -> list[str]:
        """`name = text`; a typed constant too long for its line split one argument per line, with
        the trailing comma that keeps `ruff format` from joining it again at any indentation."""
        line = f"{name} = {unwrap(text)}"
        typed = TYPED_NUMBER.fullmatch(text)
        if typed is None or self.statement_indent + len(line) <= LINE_LENGTH:
            return [line]
        return [
            f"{name} = keras.ops.convert_to_tensor(",
            f"    {typed.group(1)},",
            "    dtype=y_pred.dtype,",
            ")",
        ]

    @property
    def statement_indent(self) -> int:
        """The indentation of the statement being printed: in a fused call(), forward()'s
        statements sit one level above backward()'s (`indent`, what every line must fit)."""
        fused_forward = self.gradient is not None and not self.in_backward
        return self.indent - (len(NESTED_INDENT) if fused_forward else 0)

    def _adopt(self, name: str, code: Code) -> bool:
        """Where `code` is a temporary that the pending lines open (a list or call too long for
        one line, one item per line), let `name` open them instead of `name = t1` after them."""
        start = self._opening(code)
        if start is None:
            return False
        line = f"{name} = {self.pending[start][len(code.text) + len(' = ') :]}"
        if self.indent + len(line) > LINE_LENGTH:
            return False
        self.pending[start] = line
        return True

    def _opening(self, code: Code) -> int | None:
        """The pending line that opens `code`, a temporary of the statement being printed (`t1 = [`);
        None where `code` is no such temporary."""
        if (
            not is_name(code.text)
            or not self.pending
            or code.text in self.constants.values()
        ):
            return None
        starts = [
            i
            for i, line in enumerate(self.pending)
            if line.startswith(f"{code.text} = ")
        ]
        return starts[-1] if starts else None

    def statement(self, expr: sp.Basic, form: str, overhead: int) -> Code:
        """`expr` printed to fit on one line after `overhead` characters."""
        code = self.printer.code(expr, form)
        if self.indent + overhead + len(code.text) > LINE_LENGTH and not is_short(
            code.text
        ):
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
        """On TensorFlow and PyTorch, the result with each softmax cross-entropy as the sparse kernel.

        Printed after the locals (which do not read the labels) and before the one-hot labels.

        Each reads the true class's column only, as Keras's own sparse cross-entropy does there: a
        logit of -inf on another class (a mask) gives a finite loss, where the dense form's
        `0 * -inf` is NaN. PyTorch's `cross_entropy` is also faster (the one-hot matrix and the
        dense cross-entropy cost it 2.8x the step at 8192 x 128, bench/run.py); TensorFlow's
        sparse kernel is slower than its dense one without XLA, as fast under XLA. JAX's own
        builds the one-hot matrix (NaN alike): it keeps the dense form.
        """
        self.class_ids = True
        self.indent += len(NESTED_INDENT)
        constants = dict(self.constants)  # the branch's locals are not defined after it
        try:
            value = self._value(shape, "")
        finally:
            self.class_ids = False
            self.indent -= len(NESTED_INDENT)
            self.constants = constants
        branch, self.pending = self.pending, []
        # `t0 = <call>` as the last statement (one line, or one argument per line): return the
        # call, where `return ` (longer than `t0 = `) still fits.
        starts = [i for i, line in enumerate(branch) if not line.startswith((" ", ")"))]
        last = branch[starts[-1]] if starts else ""
        returned = "return " + last[len(f"{value} = ") :]
        if (
            last.startswith(f"{value} = ")
            and self.indent + len(NESTED_INDENT) + len(returned) <= LINE_LENGTH
        ):
            branch[starts[-1]] = returned
        else:
            branch.append(f"return {value}")
        return [
            'if keras.backend.backend() in ("tensorflow", "torch"):',
            *indented(branch),
        ]

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
                # A scalar y_pred has no axis of classes (its shape's [-1] was an IndexError; a review)
                "if len(y_pred.shape) == 0:",
                '    raise ValueError("onehot(y_true) needs a y_pred with an axis of classes")',
                # Class ids of shape (N,), (N, 1) or (N, 1, 1) against (N, C), as Keras's loss
                # classes take them (`squeeze_or_expand_to_same_rank`, then the sparse loss's own);
                # a last axis unknown while tracing (None) too, which must be 1 when it runs (a
                # reshape: Keras's squeeze refuses an axis it cannot see is 1). Kept, it broadcast
                # the one-hot rows of (N, 1, C) against (N, C) (found by fuzzing).
                # A last axis of 1 is squeezed: a reshape to the shape read while tracing a
                # functional model (`keras.Input`) kept its unknown batch, (None,), which then
                # failed when the model ran (a review).
                "if len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] in (1, None):",
                *indented(_SQUEEZED),
                "if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] in (1, None):",
                *indented(_SQUEEZED),
                # One-hot labels, one column per class, were Keras's "target and output must
                # have the same rank" from inside its cross-entropy (a user test).
                "if len(y_true.shape) == len(y_pred.shape) > 1 and y_true.shape[-1]:",
                "    raise ValueError(",
                '        "onehot(y_true) reads class ids, one per sample; these labels have "',
                '        f"shape {tuple(y_true.shape)} against y_pred\'s {tuple(y_pred.shape)}: "',
                '        "for one-hot labels, write y_true in place of onehot(y_true)"',
                "    )",
                'y_true = keras.ops.cast(y_true, "int32")',
                *(self._one_hot() if one_hot else []),
            ]
        else:
            # also where the loss does not read y_true: its shape tells y_pred's (a (N, 1)
            # target against a (N,) prediction makes the prediction (N, 1), as in Keras's losses)
            lines += ["y_true = keras.ops.cast(y_true, y_pred.dtype)", *_SAME_RANK]
        resolved = self.spec.resolved
        if resolved.axis_length not in (None, 1):
            # A list of weights per class against another number of classes was TensorFlow's
            # "Incompatible shapes: [4,4] vs. [3]" (found by a user test). One column broadcasts,
            # and a list of one value broadcasts against any number of columns, as in NumPy.
            reads_targets = (
                not resolved.uses_onehot and resolved.of(resolved.result).true
            )
            inputs = ["y_pred", "y_true"] if reads_targets else ["y_pred"]
            for name in inputs:
                lines += [
                    # (a scalar input broadcasts: it has no last axis to read; a review)
                    f"if len({name}.shape) and {name}.shape[-1] not in (None, 1, {resolved.axis_length}):",
                    "    raise ValueError(",
                    f'        "the formula\'s lists need a last axis of {resolved.axis_length}"',
                    f'        f" in {name}, not {{{name}.shape[-1]}}"',
                    "    )",
                ]
        for name in self.params:
            if name not in self.used_params:
                continue
            local, attribute = self.param_locals[name], self.attributes[name]
            # convert_to_tensor, not cast: a value past float32's range becomes inf, as in
            # Keras's own losses (`Huber(delta=1e39)`), where TensorFlow refuses to cast it.
            line = f"{local} = keras.ops.convert_to_tensor(self.{attribute}, dtype=y_pred.dtype)"
            if len(BODY_INDENT) + len(line) <= LINE_LENGTH:
                lines.append(line)
            else:
                lines += [
                    f"{local} = keras.ops.convert_to_tensor(",
                    f"    self.{attribute},",
                    "    dtype=y_pred.dtype,",
                    ")",
                ]
        converted = [
            self.param_locals[name] for name in self.params if name in self.used_params
        ]
        if converted:
            # In a functional model's graph (`keras.Input`s) a parameter is a node of it too: on
            # JAX, an array times a symbolic tensor is an error (Keras's own Huber has it; a review).
            indent = len(BODY_INDENT) + len(NESTED_INDENT)
            filled = [
                call_lines(
                    local,
                    "keras.ops.full_like",
                    ["keras.ops.sum(y_pred)", local],
                    indent,
                )
                for local in converted
            ]
            lines += [
                "if isinstance(y_pred, keras.KerasTensor):",
                *indented([line for f in filled for line in f]),
            ]
        return lines


# Class ids' last axis of 1 dropped: squeezed where it is seen to be 1, else reshaped (Keras's
# squeeze refuses an axis it cannot see is 1).
_SQUEEZED = [
    "y_true = (",
    "    keras.ops.squeeze(y_true, axis=-1)",
    "    if y_true.shape[-1] == 1",
    "    else keras.ops.reshape(y_true, keras.ops.shape(y_true)[:-1])",
    ")",
]


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
