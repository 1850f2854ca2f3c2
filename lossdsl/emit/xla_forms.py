"""Stage 5 (Keras), trace-time forms: module-level functions of the generated code that compute
`log1p`, `softplus`, `sigmoid` and a difference of two `log1p`s the cheaper way when TensorFlow
traces for XLA.

Input: the names the printer called (`KerasPrinter._xla_form`). Output: the source text of those
functions and of the ones they call, in a fixed order, for `keras._module` to put above the class.

Why: XLA's CPU `log1p` costs about two `log`s (a log and a rational function, then a select), and
its `softplus` is a `log1p` of an `exp`. LANGUAGE.md's rewrite table names `log1p` and `softplus`
as what is emitted, and without XLA (eager, `tf.function`, JAX, PyTorch) they are the right
kernels: each written-out operation would be a kernel of its own. So the generated code calls
`_log1p(x)`, which is `keras.ops.log1p(x)` except while TensorFlow traces for XLA
(`tf.function(jit_compile=True)`, a Keras model compiled with `jit_compile=True`), where it is a
`log` and the rounding error of its argument, as accurate (see `_log_one_minus`). The choice is
made once per trace, in Python: the traced graph holds one form or the other, never a branch.

`_traced_for_xla(x)` asks the graph that holds `x` (and the graphs around it) for the XLA
context TensorFlow enters while tracing a function compiled with XLA. It reads attributes only
(the module still imports nothing but `keras`); where anything is missing (eager tensors, other
backends, another TensorFlow) the answer is False and the plain `keras.ops` call is made.

`_logits(x)` hands the softmax cross-entropy kernel its logits as a tensor of their own on
TensorFlow (a copy, which TensorFlow's graph optimizer and XLA remove): Keras's TensorFlow
cross-entropy otherwise computes from the input of the softmax or sigmoid that made them, so
`log_softmax(softmax(y_pred))`, or a `y_pred` from a softmax layer, lost that softmax.

`_sigmoid` is called only where the program also takes the `softplus` of the same argument (the
fused binary cross-entropy on logits: `softplus` forward, `sigmoid` backward): both are written
with `exp(-|x|)`, which XLA's CSE computes once. A `sigmoid` alone is faster as XLA's own.
"""

from __future__ import annotations

_TRACED_FOR_XLA = '''
def _traced_for_xla(*tensors):
    """Whether TensorFlow traces these tensors for XLA (`jit_compile=True`).

    The functions below then take forms that XLA's CPU backend computes faster, as
    accurate: there `log1p` costs about two logs. It looks for the XLA context that
    TensorFlow enters around such a trace, in the tensor's graph and the graphs
    around it. Eager tensors and the other backends have no graph: False. Either
    answer gives the same values; it decides the speed only.
    """
    if keras.backend.backend() != "tensorflow":
        return False
    try:
        for tensor in tensors:
            graph = getattr(tensor, "graph", None)
            while graph is not None:
                context = graph._control_flow_context
                while context is not None:
                    if context.IsXLAContext():
                        return True
                    context = context.outer_context
                graph = getattr(graph, "outer_graph", None)
    except AttributeError:  # a TensorFlow that keeps them elsewhere: keras.ops's own
        return False
    return False
'''

_LOG_ONE_MINUS = '''
def _log_one_minus(a):
    """`log1p(-a)` as a `log` and the rounding error of `u = 1 - a`.

    For `-1 <= a <= 1`, `(1 - u) - a` is exactly what rounding `1 - a` lost, at
    most half a unit in the last place of `u`, and 0 unless `1/2 < u <= 2`; added
    without its division by `u` it leaves `log(u)` within about two units in the
    last place of log1p. Above `u = 2` rounding moves `log(u)` by less than its own
    last place. Its derivative is 0: stop_gradient keeps autodiff from computing
    `g - g` (NaN where log1p's gradient is infinite).
    """
    u = 1.0 - a
    lost = keras.ops.where(keras.ops.less_equal(u, 2.0), (1.0 - u) - a, 0.0)
    return keras.ops.log(u) + keras.ops.stop_gradient(lost)
'''

_LOG1P = '''
def _log1p(x):
    """`keras.ops.log1p(x)`; under XLA, `_log_one_minus(x * -1.0)`.

    `x * -1.0`, not `-x`: TensorFlow's graph optimizer turns `1 - (-x)` into `1 + x`,
    then `log(1 + x)` into `log1p(x)`, and the correction would count twice.
    """
    if not _traced_for_xla(x):
        return keras.ops.log1p(x)
    return _log_one_minus(x * -1.0)
'''

_LOG1P_DIFFERENCE = '''
def _log1p_difference(a, b):
    """`log1p(a) - log1p(b)` for `a, b >= 0`; under XLA with one log1p.

    With `d = a - b`: `log1p(d / (1 + b))` where `d >= 0`, `-log1p(-d / (1 + a))`
    where `d < 0`. The quotient is >= 0 on both sides, so no digits are lost however
    far apart `a` and `b` are, and each side is smooth, so autodiff through it is
    right at `a = b` too.
    """
    if not _traced_for_xla(a, b):
        return keras.ops.log1p(a) - keras.ops.log1p(b)
    d = a - b
    up = keras.ops.greater_equal(d, 0.0)
    below = keras.ops.where(up, b, a) + 1.0
    r = _log_one_minus(keras.ops.where(up, -d, d) / below)
    return keras.ops.where(up, r, -r)
'''

_SOFTPLUS = '''
def _softplus(x):
    """`keras.ops.softplus(x)`; under XLA, `relu(x) + log1p(exp(-|x|))`.

    `relu` and `-|x|` are selections on `x >= 0`, so that autodiff through them gives
    softplus'(0) = 1/2 whatever a backend takes for relu'(0) and abs'(0).
    """
    if not _traced_for_xla(x):
        return keras.ops.softplus(x)
    up = keras.ops.greater_equal(x, 0.0)
    u = keras.ops.exp(keras.ops.where(up, -x, x))
    return keras.ops.where(up, x, 0.0) + _log_one_minus(u * -1.0)
'''

_SIGMOID = '''
def _sigmoid(x):
    """`keras.ops.sigmoid(x)`; under XLA, from the `exp(-|x|)` of `_softplus(x)`.

    XLA computes that exponential once for both (CSE), where its own sigmoid would
    compute another.
    """
    if not _traced_for_xla(x):
        return keras.ops.sigmoid(x)
    up = keras.ops.greater_equal(x, 0.0)
    u = keras.ops.exp(keras.ops.where(up, -x, x))
    return keras.ops.where(up, 1.0, u) / (1.0 + u)
'''

_LOGITS = '''
def _logits(x):
    """`x`, as a tensor of its own on TensorFlow, for Keras's softmax cross-entropy.

    On TensorFlow, Keras's cross-entropies compute from the input of the softmax or
    sigmoid that made their argument (kept on the tensor, or the graph's Softmax op)
    in place of the argument. A copy is the value the formula names; the graph
    optimizer and XLA drop it. The other backends read the argument as it is.
    """
    if keras.backend.backend() != "tensorflow":
        return x
    return keras.ops.copy(x)
'''

# name -> (source, the functions it calls), in the order they are printed.
_FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "_traced_for_xla": (_TRACED_FOR_XLA, ()),
    "_log_one_minus": (_LOG_ONE_MINUS, ()),
    "_log1p": (_LOG1P, ("_traced_for_xla", "_log_one_minus")),
    "_log1p_difference": (_LOG1P_DIFFERENCE, ("_traced_for_xla", "_log_one_minus")),
    "_softplus": (_SOFTPLUS, ("_traced_for_xla", "_log_one_minus")),
    "_sigmoid": (_SIGMOID, ("_traced_for_xla",)),
    "_logits": (_LOGITS, ()),
}

# What the printer may call, and the names no local or class may take.
FUNCTION_NAMES = frozenset(_FUNCTIONS)
FUNCTION_NAMES_IN_ORDER = tuple(_FUNCTIONS)


def function_source(name: str) -> str:
    """The source text of the module-level function `name` (one of `FUNCTION_NAMES`)."""
    return _FUNCTIONS[name][0].strip("\n") + "\n"


def module_functions(called: set[str]) -> list[str]:
    """The source lines of the functions in `called` and of those they call, each preceded by
    two blank lines (as `ruff format` separates top-level definitions)."""
    needed = set(called)
    for name in called:
        needed.update(_FUNCTIONS[name][1])
    lines: list[str] = []
    for name, (source, _) in _FUNCTIONS.items():
        if name in needed:
            lines += ["", "", *source.strip("\n").split("\n")]
    return lines
