"""Generated-code audit: the Keras modules lossdsl writes hold only what its emitter writes.

For every bundled loss, for programs drawn by the fuzzer (tests/fuzzgen.py) and
for programs with hostile names and descriptions, `python_source()` is parsed
with `ast` and checked by `codeaudit.audit` (tests/codeaudit.py): node kinds from
a fixed whitelist, names only `keras`, `self`, the function's arguments and
locals (plus `super` and `len`, called), calls only of `keras.ops` and the base
class, no attribute that starts with `_` but `__init__`, finite numbers, and
strings only in the docstrings, the registration, the defaults of `reduction`
and `name` and the config keys. The whitelist is tight: every kind in it occurs
in what the emitter wrote here. And the audit is shown to fail when a forbidden
construct is put into a real generated module (a lambda, an `eval` call, an
`__import__` attribute, an f-string, ...).
"""

from __future__ import annotations

import ast
import re

import pytest
from codeaudit import KERAS_OPS, NODE_KINDS, audit, without_xla_forms
from fuzzgen import Fuzzer

import lossdsl

FUZZED = 300
# Programs that reach every corner of the emitter, with names and descriptions that try to break out.
CRAFTED = [
    "param delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))",
    "-sum(onehot(y_true) * log_softmax(y_pred))",
    "x = y_pred > 0 and y_true < 1 or not e == 0\nwhere(x, y_pred^2, [1, 2, 3] * y_pred)",
    "param w0 = 0.3\nparam w1 = 0.7\n[w0, w1] * e^2",
    "max(y_pred) * y_pred + min(y_pred, y_true, 0.5) + mean(softmax(y_pred)) + logsumexp(y_pred)",
    "clip(y_pred, eps, 1 - eps) + normalize(y_pred) + relu(-y_pred) + sigmoid(y_pred) * softplus(y_pred)",
    "param super = 1\nparam call = 2\nparam l = 3\nparam _x = 4\nsuper * call * l * _x * y_pred",
    "param eval = 1\nparam exec = 2\nparam len = 3\nparam get_config = 4\neval * exec * len * get_config * e^2",
    "param from_config = 1\nparam cls = 2\nparam t0 = 3\nfrom_config * cls * t0 * y_pred^2 + t0",
    "lambda_ = y_pred\nself_ = 2 * lambda_\nkeras_ = self_ + 1\nt0 = keras_ * keras_\nt0 + sin(t0) * t0",
    "__class__ = y_pred\n__x = 2 * __class__\n__import__ = __x + 1\n__import__ * __import__",
    "eval = y_pred\nexec = eval * 2\nopen = exec + 1\nprint = open * open\nprint + sin(print)",
    '# """ + __import__("os").system("echo pwned") + """\nabs(e)',
    "# '''\n# \"\"\"\n# \\\nabs(e)",
    "# a description that ends with a backslash \\\nabs(e)",
    '#"\n#""\n#"""\n#""""\nabs(e)',
    "# \x00\x1b[31m\x07 control \u202e characters \u2028 and \udcff\nabs(e)",
    "# \\N{BULLET} \\u0041 \\x41 {y_pred} {0} %s\nabs(e)",
    "# `rm -rf /` $(id) ${HOME}\n# y_pred.__class__.__mro__\nabs(e)",
    "param p = -1e-300\nparam q = 1e300\np * q * y_pred + 1e300 * y_pred - 1e-300",
    "y_pred * 1.7976931348623157e308 + 4.9e-324 * y_true",
    "where(y_pred > 0, pi^2 * y_pred, exp(1) * y_pred)",
    "max(" + ", ".join(f"e^{k}" for k in range(1, 8)) + ")",
]


def _specs() -> list:
    specs = [lossdsl.library.compile(name) for name in lossdsl.library.names()]
    specs += [
        lossdsl.compile(source, name=f"Crafted{i}") for i, source in enumerate(CRAFTED)
    ]
    fuzzer = Fuzzer(777)
    fuzzed = []
    while len(fuzzed) < FUZZED:
        try:
            fuzzed.append(lossdsl.compile(fuzzer.valid()))
        except lossdsl.LossError:
            continue
    return specs + fuzzed


@pytest.fixture(scope="module")
def generated() -> list[tuple[object, str]]:
    """(spec, python_source()) for the bundled losses, the crafted programs and FUZZED fuzzed ones."""
    return [(spec, spec.python_source()) for spec in _specs()]


def test_every_generated_module_passes_the_audit(generated):
    failures = {}
    for spec, source in generated:
        findings = audit(source, spec)
        if findings:
            failures[spec.source[:120]] = findings[:3]
    assert not failures, failures
    assert len(generated) >= len(lossdsl.library.names()) + len(CRAFTED) + FUZZED


def test_the_other_spellings_pass_the_audit(generated):
    """The code spelled for XLA and the code left to autodiff, of the bundled and crafted programs."""
    failures = {}
    for spec, _ in generated[: len(lossdsl.library.names()) + len(CRAFTED)]:
        for spelling in ({"xla": True}, {"fast": False}):
            findings = audit(spec.python_source(**spelling), spec)
            if findings:
                failures[(spec.source[:120], str(spelling))] = findings[:3]
    assert not failures, failures


ALIAS_PROGRAMS = [
    # `1 / min(...)` shared by both passes: its denominator is already a local.
    "log(maximum(y_pred, y_true) / minimum(y_pred, y_true))^2",
    "a = y_pred + 1\nb = y_true + 1\nwhere(a >= b, log(a / b), log(b / a))^2",
    # A list too long for one line, the whole value of a local.
    "[0.0, 0.5, 0.5, 0.0, 250.0, 1717.95, 3.25, 4.5, 1.125, 7.0625, 10.5, 11.75] * abs(e)",
]


def _aliases(spec, source: str) -> list[str]:
    """Assignments `t1 = t0` of one local to another that the user did not write (`a = b` is kept)."""
    bound = {
        name.rstrip("_")
        for name in re.findall(r"(?:^|;)\s*([A-Za-z_]\w*)\s*=(?!=)", spec.source, re.M)
    }
    found = []
    for node in ast.walk(ast.parse(source)):
        local = isinstance(node, ast.Assign) and all(
            isinstance(target, ast.Name) for target in node.targets
        )
        if (
            local
            and isinstance(node.value, ast.Name)
            and node.targets[0].id.rstrip("_") not in bound
        ):
            found.append(ast.unparse(node))
    return found


def test_no_local_is_a_second_name_for_another(generated):
    pairs = list(generated)
    for program in ALIAS_PROGRAMS:
        spec = lossdsl.compile(program)
        pairs += [(spec, spec.python_source()), (spec, spec.python_source(xla=True))]
    aliases = {
        spec.source: found
        for spec, source in pairs
        if (found := _aliases(spec, source))
    }
    assert not aliases, aliases
    # The shared denominator is divided by at each use; a list too long for a line opens its local.
    body = lossdsl.compile(ALIAS_PROGRAMS[0]).python_source()
    assert (
        "t0 = keras.ops.minimum(y_pred, y_true)" in body
        and "keras.ops.log(t1 / t0)" in body
    )
    body = lossdsl.compile(ALIAS_PROGRAMS[2]).python_source()
    assert "t0 = keras.ops.convert_to_tensor(\n" in body and "upstream * t0" in body


def test_the_whitelist_is_what_the_emitter_writes(generated):
    # Outside the functions of xla_forms, which the audit compares with that module's text.
    trees = [without_xla_forms(ast.parse(source))[0] for _, source in generated]
    kinds = {type(node) for tree in trees for node in ast.walk(tree)}
    assert kinds == NODE_KINDS, {
        "unused": sorted(k.__name__ for k in NODE_KINDS - kinds)
    }


def test_every_allowed_op_is_a_keras_op():
    keras = pytest.importorskip("keras")
    assert all(callable(getattr(keras.ops, op, None)) for op in KERAS_OPS)


def test_user_text_reaches_only_the_docstring(generated):
    """The description, however hostile, is in the class docstring and nowhere else."""
    marker = 'system("echo pwned")'
    spec, source = next((s, t) for s, t in generated if marker in s.source)
    tree = ast.parse(source)
    cls = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    assert marker in ast.get_docstring(cls, clean=False)
    assert source.count("pwned") == 1
    strings = [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    assert sum("pwned" in text for text in strings) == 1


# ------------------------------------------------------------------- the audit fails on forbidden code

FORBIDDEN = [
    ("f = lambda x: x", "Lambda"),
    ('eval("1 + 1")', "a call of eval()"),
    ('exec("import os")', "a call of exec()"),
    ("x = y_pred.__class__", "the attribute y_pred.__class__"),
    ('x = keras.ops.__import__("os")', "the attribute keras.ops.__import__"),
    ('x = __import__("os")', "a call of __import__()"),
    ('x = f"{y_pred}"', "JoinedStr"),
    ('x = open("/etc/passwd")', "a call of open()"),
    ('x = getattr(y_pred, "dtype")', "a call of getattr()"),
    ("x = os", "the name 'os'"),
    ("import os", "Import"),
    ("from os import system", "ImportFrom"),
    ('x = "rm -rf /"', "the string constant 'rm -rf /'"),
    ("x = keras.src.ops.abs(y_pred)", "keras.src"),
    ("x = keras.ops.numpy.abs(y_pred)", "keras.ops.numpy"),
    ("x = keras.ops.vectorized_map(y_pred, y_pred)", "keras.ops.vectorized_map"),
    ("x = self.call", "self.call"),
    ("x = [y for y in y_pred]", "ListComp"),
    ("x = y_pred[0:1]", "Slice"),
    ("x = y_pred ** 2", "Pow"),
    ("x = 1e999 * y_pred", "not finite"),
    ("assert y_pred", "Assert"),
    ("del y_pred", "Delete"),
    ("global keras", "Global"),
    ("while True:\n            pass", "While"),
    ("try:\n            pass\n        except Exception:\n            pass", "Try"),
    ("y_pred.dtype", "an expression statement"),
    ("x = y_pred if True else y_true", "IfExp"),
    ("x = (yield y_pred)", "Yield"),
    ("x = super().call(y_true, y_pred)", "super().call"),
    ("x = len.__self__", "the attribute len.__self__"),
    ("x = b'bytes'", "a constant of type bytes"),
]


def _insert_into_call(source: str, line: str) -> str:
    head = "    def call(self, y_true, y_pred):\n"
    assert head in source
    return source.replace(head, head + "        " + line + "\n", 1)


@pytest.fixture(scope="module")
def huber():
    spec = lossdsl.library.compile("huber")
    return spec, spec.python_source()


def test_the_untouched_module_passes(huber):
    assert audit(huber[1], huber[0]) == []


@pytest.mark.parametrize("line, what", FORBIDDEN, ids=[what for _, what in FORBIDDEN])
def test_the_audit_fails_on_a_forbidden_construct(huber, line, what):
    spec, source = huber
    findings = audit(_insert_into_call(source, line), spec)
    assert findings and any(what in finding for finding in findings), findings


@pytest.mark.parametrize(
    "old, new, what",
    [
        (
            "import keras\n",
            "import keras\nimport os\n",
            "not a docstring, `import keras` and one class",
        ),
        ("import keras\n", "import keras, os\n", "not keras alone"),
        ('package="lossdsl_generated"', 'package="evil"', "registration package"),
        (
            "class Huber(keras.losses.Loss):",
            "class Huber(keras.losses.Loss, object):",
            "derive",
        ),
        ('reduction="sum_over_batch_size"', 'reduction="none"', "default reduction"),
        ("        dtype=None,\n", '        dtype="float64",\n', "default dtype"),
        (
            "    def get_config(self):",
            "    x = 1\n\n    def get_config(self):",
            "the class body holds",
        ),
        (
            "delta=1.0,",
            "delta=__import__('os'),",
            "the default of delta is not a float",
        ),
        ('config["delta"]', 'config["__class__"]', "which is not a parameter"),
        (
            "self.delta = delta",
            "self.call = delta",
            "stores a parameter over self.call",
        ),
        (
            "    def call(self, y_true, y_pred):",
            "    @staticmethod\n    def call(self, y_true, y_pred):",
            "decorators",
        ),
        (
            "    def call(self, y_true, y_pred):",
            "    def call(self, y_true, y_pred, *args):",
            "starred",
        ),
        (
            '"""A Keras loss generated by lossdsl; this module imports only keras."""',
            '"""A Keras loss."""\nimport os',
            "the module holds",
        ),
        # the fused gradient's layout (huber's call() is fused)
        (
            "        def forward(y_true, y_pred):",
            "        @print\n        def forward(y_true, y_pred):",
            "is decorated",
        ),
        (
            "def forward(y_true, y_pred):",
            "def forward(y_true, y_pred, hook=print):",
            "does not take y_pred alone",
        ),
        (
            "                target = -gradient\n",
            "                target = gradient\n                print()\n",
            "a Expr",
        ),
        (
            "if target.shape != y_true.shape:",
            "if target.shape != y_pred.shape:",
            "give the target y_true's",
        ),
        (
            "return target, gradient",
            "return gradient, target",
            "does not end with `return (target, gradient)`",
        ),
        (  # PyTorch's skip of y_true's gradient, from when it took the fused gradient
            "                target = -gradient\n",
            '                if keras.backend.backend() == "torch" and not args[0].requires_grad:\n'
            "                    return None, gradient\n"
            "                target = -gradient\n",
            "a If statement in backward()",
        ),
        ("upstream=None, variables=None):", "upstream=print):", "backward(*args"),
        (
            "[None] * len(variables)",
            "[print] * len(variables)",
            "answer TensorFlow's variables",
        ),
        ("(upstream,) = args", "(upstream,) = args[::-1]", "upstream unpacking"),
        (
            "(forward)(y_true, y_pred)",
            "(forward)(y_pred, y_true)",
            "does not end as the emitter writes it",
        ),
        (
            "or y_true.shape != y_pred.shape",
            "or y_true.shape == y_pred.shape",
            "does not end as the emitter writes it",
        ),
        (
            '!= "tensorflow"',
            '== "jax"',
            "does not end as the emitter writes it",
        ),  # PyTorch fused
        (
            "columns = y_pred.shape[-1]",
            "columns = y_true.shape[-1]",
            "does not end as the emitter writes it",
        ),
        (
            "len(y_true.shape) == 0\n",
            "len(y_true.shape) == 1\n",
            "does not end as the emitter writes it",
        ),
        (
            "isinstance(y_true, keras.KerasTensor)\n",
            "isinstance(y_true, keras.Variable)\n",
            "does not end as the emitter writes it",
        ),
        (
            "columns is None\n",
            "columns is not None\n",
            "does not end as the emitter writes it",
        ),
        (
            "columns != y_true.shape[-1]",
            "columns != y_true.shape[-1] or print()",
            "does not end as the emitter",
        ),
        (
            "if gradient.shape != y_pred.shape:",
            "if gradient.shape is y_pred.shape:",
            "give the gradient y_pred's",
        ),
        (
            "keras.ops.shape(y_true), 1)",
            "keras.ops.shape(y_true), 2)",
            "does not end as the emitter writes it",
        ),
        (
            "y_pred = keras.ops.broadcast_to(y_pred, shape)",
            "y_pred = keras.ops.broadcast_to(y_true, shape)",
            "does not end as the emitter writes it",
        ),
        (
            "if None in y_true.shape or None",
            "if None in y_true.shape and None",
            "does not end as the emitter",
        ),
        (
            "            x = y_pred - y_true",
            "            x, _ = y_pred - y_true, 0",
            "assignment to a Tuple",
        ),
        (  # the parameters filled as nodes of a symbolic graph: that test, to the letter
            "if isinstance(y_pred, keras.KerasTensor):\n            delta",
            "if isinstance(y_pred, keras.Model):\n            delta",
            "a call of isinstance()",
        ),
        (
            "keras.ops.full_like(keras.ops.sum(y_pred), delta)",
            "keras.ops.full_like(print, delta)",
            "'print'",
        ),
        # the dtype that divides by the size of the last axis: that call, to the letter
        (
            'result_type(y_pred.dtype, "float32")',
            'result_type(y_pred.dtype, "int8")',
            "keras.backend.result_type",
        ),
    ],
    ids=[
        "second-import",
        "import-list",
        "package",
        "bases",
        "reduction",
        "dtype",
        "class-attribute",
        "default",
        "config-key",
        "self-store",
        "decorator",
        "varargs",
        "module-statement",
        "fused-decorator",
        "forward-arguments",
        "target-statement",
        "target-reshape",
        "target-return",
        "target-torch-skip",
        "backward-default",
        "backward-variables",
        "upstream-unpacking",
        "fused-return",
        "fused-shapes",
        "fused-backend",
        "fused-width-of-y-true",
        "fused-scalar-input",
        "fused-symbolic-input",
        "fused-width-is-not-none",
        "fused-width-call",
        "fused-reshape",
        "broadcast-ones",
        "broadcast-input",
        "broadcast-test",
        "stray-tuple",
        "symbolic-parameters",
        "symbolic-fill",
        "wide-dtype",
    ],
)
def test_the_audit_fails_on_a_changed_layout(huber, old, new, what):
    _assert_found(*huber, old, new, what)


def _assert_found(spec, source: str, old: str, new: str, what: str) -> None:
    """The audit of `source` with `old` changed to `new` reports `what`."""
    assert old in source
    findings = audit(source.replace(old, new, 1), spec)
    assert findings and any(what in finding for finding in findings), findings


@pytest.fixture(scope="module")
def sparse():
    spec = lossdsl.library.compile("sparse_categorical_crossentropy_from_logits")
    return spec, spec.python_source()


@pytest.mark.parametrize(
    "old, new",
    [
        (
            "keras.ops.squeeze(y_true, axis=-1)\n",
            "keras.ops.squeeze(y_true, axis=-2)\n",
        ),
        ("if y_true.shape[-1] == 1\n", "if print()\n"),
    ],
)
def test_the_squeeze_of_class_ids_passes_only_as_written(sparse, old, new):
    spec, source = sparse
    _assert_found(spec, source, old, new, "outside the check of the last axis")


def test_the_sparse_branch_passes_only_in_its_layout(sparse, huber):
    spec, source = sparse
    assert (
        'if keras.backend.backend() in ("tensorflow", "torch"):' in source
        and audit(source, spec) == []
    )
    # the sparse kernel outside its branch
    dense = re.search(
        r"return keras\.ops\.categorical_crossentropy\(y_true, \w+, from_logits=True\)",
        source,
    )
    assert dense
    dense = dense.group(0)
    moved = source.replace(dense, dense.replace("categorical", "sparse_categorical"))
    assert any(
        "a sparse cross-entropy outside its backend branch" in f
        for f in audit(moved, spec)
    )
    # the branch after the one-hot labels, or in a module without them
    one_hot = (
        "        y_true = keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1])\n"
    )
    late = source.replace(one_hot, "").replace(
        '        if keras.backend.backend() in ("tensorflow", "torch"):',
        one_hot + '        if keras.backend.backend() in ("tensorflow", "torch"):',
    )
    assert any(
        "a backend branch outside the sparse cross-entropy's layout" in f
        for f in audit(late, spec)
    )
    branch = 'if keras.backend.backend() in ("tensorflow", "torch"):\n            return y_pred'
    findings = audit(_insert_into_call(huber[1], branch), huber[0])
    assert any(
        "a backend branch outside the sparse cross-entropy's layout" in f
        for f in findings
    ), findings
    # anything but assignments before its return
    hooked = source.replace('"torch"):\n', '"torch"):\n            print(y_true)\n')
    assert hooked != source and any(
        "outside the sparse cross-entropy's layout" in f for f in audit(hooked, spec)
    )
    # another backend's test
    jax = source.replace('in ("tensorflow", "torch"):', 'in ("jax", "torch"):')
    assert jax != source and audit(jax, spec) != []


# ----------------------------------------------- the module's xla_forms functions, and only those


@pytest.fixture(scope="module")
def bce():
    """The binary cross-entropy on logits: its module defines xla_forms's _softplus and _sigmoid."""
    spec = lossdsl.library.compile("binary_crossentropy_from_logits")
    return spec, spec.python_source()


def test_a_module_with_xla_forms_passes(bce):
    spec, source = bce
    assert "\ndef _traced_for_xla(*tensors):\n" in source and "_softplus(t4)" in source
    assert audit(source, spec) == []


@pytest.mark.parametrize(
    "old, new, what",
    [
        # a changed statement, a changed name, a changed attribute read
        (
            "        return keras.ops.softplus(x)\n",
            "        return print(x)\n",
            "_softplus() is not xla_forms's",
        ),
        (
            "def _sigmoid(x):",
            "def _sigmoid_(x):",
            "a module-level function _sigmoid_()",
        ),
        (
            "context.IsXLAContext()",
            "context.__class__()",
            "_traced_for_xla() is not xla_forms's",
        ),
        # a function xla_forms does not hold (its text otherwise _sigmoid's)
        (
            "\n\ndef _sigmoid(x):",
            "\n\ndef _unused(x):",
            "a module-level function _unused()",
        ),
        # a call of a name the module does not define as one of them
        ("_softplus(t4)", "print(t4)", "a call of print()"),
        ("_softplus(t4)", "_softplus(*[t4])", "a call of _softplus()"),
        # a local of one of their names, or a reference other than a call
        (
            "            t0 = keras.ops.greater_equal(",
            "            _softplus = keras.ops.exp\n            t0 = keras.ops.greater_equal(",
            "the name '_softplus'",
        ),
        ("_softplus(t4)", "keras.ops.where(t1, _softplus, t4)", "the name '_softplus'"),
        ("[None] * len(variables)", "[None] * len", "the name 'len'"),
    ],
    ids=[
        "statement",
        "name",
        "attribute",
        "unknown",
        "undefined-call",
        "starred-call",
        "shadowed",
        "reference",
        "len",
    ],
)
def test_the_audit_fails_on_a_changed_xla_form(bce, old, new, what):
    _assert_found(*bce, old, new, what)


def test_the_audit_fails_on_an_xla_form_after_the_class(bce):
    spec, source = bce
    start = source.index("\n\ndef _sigmoid(x):")
    end = source.index("\n\n@keras.saving")
    moved = source[:start] + source[end:] + source[start:end] + "\n"
    findings = audit(moved, spec)
    assert any("_sigmoid() after the class" in finding for finding in findings), (
        findings
    )


# ----------------------------------------------- the check of the last axis against the lists


@pytest.fixture(scope="module")
def weighted():
    spec = lossdsl.compile("w = [0.2, 0.3, 0.5]\nsum(w * e^2)")
    return spec, spec.python_source()


def test_the_check_of_the_lists_axis_passes_only_as_written(weighted, huber):
    spec, source = weighted
    check = "        if len(y_pred.shape) and y_pred.shape[-1] not in (None, 1, 3):\n            raise ValueError(\n"
    assert check in source and audit(source, spec) == []
    # another length, another message, another exception, or the raise anywhere else
    for old, new in [
        ("(None, 1, 3)", "(None, 1, 4)"),
        ("need a last axis", "need an axis"),
        ("raise ValueError(", "raise KeyError("),
    ]:
        _assert_found(spec, source, old, new, "")
    raised = _insert_into_call(huber[1], 'raise ValueError(f"{y_pred}")')
    findings = audit(raised, huber[0])
    assert any(
        "a Raise node outside the check of the last axis" in f for f in findings
    ), findings
    # a program without lists has no such check
    assert "raise" not in huber[1]
