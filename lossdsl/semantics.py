"""Stage 2: `nodes.Program` -> `Resolved`.

Resolves names (inputs, builtin constants, parameters, bindings: each bound
once and before use), checks arity, keeps conditions where conditions belong,
follows shapes (constant, constant vector, per element, per sample) through
reductions and vector functions over the last axis, enforces the `onehot`
rules, and records for every node whether it depends on `y_pred` and whether
it does so through a differentiable path ("live").

Errors are collected (several per program where they are independent) and
returned with the result; the pipeline raises them.

Limits: the loss with its bindings substituted may hold at most MAX_TREE_SIZE
operations and be nested at most MAX_DEPTH levels deep (the parser's limit,
which bindings would otherwise get around), so that later stages cannot blow
up on shared or chained bindings. Powers may nest at most MAX_TOWER deep in
exponents (`a^b^c^...`): SymPy's canonical form of such towers costs time
cubic in their height (seconds at a height of 50).
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field

from lossdsl import nodes
from lossdsl.errors import (
    LossError,
    LossLimitError,
    LossNameError,
    LossTypeError,
    shorten,
)
from lossdsl.functions import FUNCTIONS, kind_of
from lossdsl.parse import MAX_DEPTH
from lossdsl.suggestions import (
    HABITS,
    NAME_HABITS,
    bundled_hint,
    bundled_name_hint,
    close_spelling,
    suggest,
)

MAX_TREE_SIZE = 50_000
MAX_TOWER = 8

# Names that always exist, with what they are.
INPUTS = ("y_true", "y_pred")
BUILTIN_CONSTANTS = {"eps": 1e-7, "pi": 3.141592653589793}
REBINDABLE = ("e", "eps")
# Parameter names the generated constructor already uses.
RESERVED_PARAMS = ("reduction", "name", "dtype", "self", "keras", "config")
# Arguments of the API's own beside the generated class's: name -> what takes it.
FORMULA_ARGUMENTS = {
    "formula": "FormulaLoss and lossdsl.metric()",
    "class_name": "FormulaLoss and lossdsl.metric()",
    "source": "lossdsl.loss() and lossdsl.metric()",
}

CONST, VECTOR, ELEM, SAMPLE = "const", "vector", "elem", "sample"
_SHAPE_ORDER = {CONST: 0, VECTOR: 1, SAMPLE: 2, ELEM: 3}


@dataclass(frozen=True)
class Info:
    """What semantics knows of one node."""

    kind: str = "number"  # "number" or "condition"
    shape: str = CONST
    length: int | None = None  # for constant vectors
    pred: bool = False  # mentions y_pred
    true: bool = False  # mentions y_true
    live: bool = False  # y_pred reaches it through a differentiable path
    ok: bool = True  # False after an error below it (suppresses follow-on errors)


UNKNOWN = Info(ok=False, shape=ELEM)


@dataclass
class Resolved:
    """A program with its names resolved and every node described."""

    program: nodes.Program
    source: str
    params: dict[str, float] = field(default_factory=dict)
    bindings: dict[str, nodes.Assign] = field(default_factory=dict)
    info: dict[int, Info] = field(default_factory=dict)
    # id(Name node) -> ("input" | "builtin" | "param" | "binding", name)
    refs: dict[int, tuple[str, str]] = field(default_factory=dict)
    uses_onehot: bool = False
    # the length of the last axis that the list literals fix, where one meets y_true or y_pred
    axis_length: int | None = None
    # the names of the bindings the loss reads, directly or through others (the code holds no other)
    read: set[str] = field(default_factory=set)
    errors: list[LossError] = field(default_factory=list)

    def of(self, node: nodes.Node) -> Info:
        """The `Info` of a node."""
        return self.info.get(id(node), UNKNOWN)

    @property
    def result(self) -> nodes.Node:
        return self.program.result

    @property
    def per_sample(self) -> bool:
        """True when the loss is already one value per sample."""
        return self.of(self.result).shape == SAMPLE

    def binding_value(self, name_node: nodes.Name) -> nodes.Node | None:
        """The value a binding reference stands for, or None for other names."""
        ref = self.refs.get(id(name_node))
        if ref and ref[0] == "binding":
            return self.bindings[ref[1]].value
        return None

    def parts_reading_pred(self, node: nodes.Node):
        """`node` and the parts of it that read y_pred, through bindings, left to right, each once."""
        stack, seen = [node], set()
        while stack:
            current = stack.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            yield current
            if isinstance(current, nodes.Name):
                value = self.binding_value(current)
                if value is not None and self.of(value).pred:
                    stack.append(value)
                continue
            stack.extend(reversed([c for c in current.children if self.of(c).pred]))

    def outside_conditions(self):
        """The nodes of the result and of the bindings' values that no condition holds (a comparison,
        `and`, `or`, `not`: no gradient goes through one, and a comparison of inf is no hazard),
        each once, parents before children."""
        stack, seen = [self.result, *(st.value for st in self.bindings.values())], set()
        while stack:
            current = stack.pop()
            if id(current) in seen or isinstance(
                current, (nodes.Compare, nodes.BoolOp, nodes.Not)
            ):
                continue
            seen.add(id(current))
            yield current
            stack.extend(current.children)

    def text(self, node: nodes.Node) -> str:
        """The source text of a node for a message: `whole_text`, cut in the middle beyond
        MAX_EXCERPT characters."""
        return shorten(self.whole_text(node))

    def whole_text(self, node: nodes.Node) -> str:
        """The source text of a node on one line (comments dropped, runs of white space as one
        space), whole: to tell whether two nodes are written alike (`text`, cut short, makes two
        long ones that differ in the middle alike)."""
        raw = self.source[node.span.start : node.span.end]
        lines = [line.split("#", 1)[0].strip() for line in raw.splitlines()]
        return " ".join(line for line in lines if line)


def analyze(program: nodes.Program, source: str) -> Resolved:
    """Resolve and describe a parsed program; errors are in `Resolved.errors`."""
    return _Analyzer(program, source).run()


class _Analyzer:
    def __init__(self, program: nodes.Program, source: str) -> None:
        self.r = Resolved(program, source)
        self.scope: dict[str, Info] = {
            "y_true": Info(shape=ELEM, true=True),
            "y_pred": Info(shape=ELEM, pred=True, live=True),
            "e": Info(shape=ELEM, pred=True, true=True, live=True),
            "eps": Info(),
            "pi": Info(),
        }
        self.kinds: dict[str, str] = {
            "y_true": "input",
            "y_pred": "input",
            "e": "builtin",
            "eps": "builtin",
        }
        self.kinds["pi"] = "builtin"
        self.bound_at: dict[str, nodes.Node] = {}
        self.used: dict[str, nodes.Name] = {}
        self.later: dict[str, nodes.Node] = {}
        for st in program.statements:
            self.later.setdefault(st.name, st)
        self.true_uses: list[nodes.Name] = []
        self.onehot_calls: list[nodes.Call] = []
        self.sizes: dict[str, int] = {}
        # binding name -> (depth, exponent tower height) of its value, bindings substituted
        self.measures: dict[str, tuple[int, int]] = {}
        self.over_limit = False
        # The length of the last axis, once a list literal meets per-element data, and where.
        self.axis_length: tuple[int, nodes.Node] | None = None
        # The statement being read (a binding's name; None for the loss), and the length each fixes.
        self.reading: str | None = None
        self.fixed_by: dict[str | None, int] = {}

    def error(self, cls, message: str, node_or_span) -> None:
        span = getattr(node_or_span, "span", node_or_span)
        self.r.errors.append(cls(message, span=span, source=self.r.source))

    def run(self) -> Resolved:
        for statement in self.r.program.statements:
            self.reading = statement.name
            self.statement(statement)
        self.reading = None
        result = self.r.program.result
        info = self.visit(result)
        if info.ok and info.kind == "condition":
            self.error(
                LossTypeError,
                "the loss is a condition, not a number; use where(condition, a, b) to choose a value",
                result,
            )
        self.check_onehot()
        self.check_size(result)
        self.check_nesting(result)
        # The generated code checks the last axis against a length only a binding the loss reads
        # fixes (`a = [1, 2] * e` unused, the check refused every input of 3 classes; fuzzing).
        used = self.r.read = self.used_bindings(result)
        lengths = [
            length
            for owner, length in self.fixed_by.items()
            if owner is None or owner in used
        ]
        self.r.axis_length = lengths[0] if lengths else None
        return self.r

    def used_bindings(self, result: nodes.Node) -> set[str]:
        """The names of the bindings the loss reads, directly or through other bindings."""
        used: set[str] = set()
        stack = [result]
        while stack:
            for node in nodes.walk(stack.pop()):
                ref = (
                    self.r.refs.get(id(node)) if isinstance(node, nodes.Name) else None
                )
                if (
                    ref
                    and ref[0] == "binding"
                    and ref[1] not in used
                    and ref[1] in self.r.bindings
                ):
                    used.add(ref[1])
                    stack.append(self.r.bindings[ref[1]].value)
        return used

    # ---------------------------------------------------------- statements

    def statement(self, st: nodes.Assign | nodes.Param) -> None:
        self.later.pop(st.name, None)
        if isinstance(st, nodes.Param):
            info = Info()
            self.check_param_name(st)
        else:
            info = self.visit(st.value)
        if not self.can_bind(st):
            return
        self.scope[st.name] = info
        self.bound_at[st.name] = st
        if isinstance(st, nodes.Param):
            self.kinds[st.name] = "param"
            self.r.params[st.name] = st.default
        else:
            self.kinds[st.name] = "binding"
            self.r.bindings[st.name] = st
            self.sizes[st.name] = self.tree_size(st.value)
            self.measures[st.name] = self.check_nesting(st.value)

    def check_param_name(self, st: nodes.Param) -> None:
        if (
            keyword.iskeyword(st.name)
            or st.name in RESERVED_PARAMS
            or st.name in FORMULA_ARGUMENTS
        ):
            reason = (
                "it is a Python keyword"
                if keyword.iskeyword(st.name)
                else f"{FORMULA_ARGUMENTS[st.name]} take an argument of that name"
                if st.name in FORMULA_ARGUMENTS
                else "the generated loss class uses it"
            )
            self.error(
                LossTypeError,
                f"`{st.name}` cannot be a parameter name: {reason} (a parameter is a keyword argument"
                f" of the generated class); call it `{st.name}_` or another name",
                st.name_span,
            )
        elif st.name.startswith("__"):
            # Inside a class, Python renames `__x` (the constructor would take `_Name__x`, not `__x`),
            # and `__class__` is the cell that `super()` needs.
            self.error(
                LossTypeError,
                f"`{shorten(st.name)}` cannot be a parameter name: Python reserves names that start with `__`"
                f" inside a class; call it `{shorten(st.name.lstrip('_') or 'p')}` or another name",
                st.name_span,
            )

    def can_bind(self, st: nodes.Assign | nodes.Param) -> bool:
        name = st.name
        what = "parameter" if isinstance(st, nodes.Param) else "name"
        if name in INPUTS or name == "pi":
            self.error(
                LossNameError,
                f"`{name}` is built in and cannot be rebound",
                st.name_span,
            )
            return False
        if name in FUNCTIONS:
            self.error(
                LossNameError,
                f"`{name}` is a function and cannot be bound as a {what}",
                st.name_span,
            )
            return False
        if name in self.bound_at:
            first = self.bound_at[name].span
            self.error(
                LossNameError,
                f"`{shorten(name)}` is already bound on line {first.line}; a name is bound only once",
                st.name_span,
            )
            return False
        if name in REBINDABLE and name in self.used:
            use = self.used[name].span
            if (
                isinstance(st, nodes.Assign)
                and st.value.span.start <= use.start
                and use.end <= st.value.span.end
            ):
                # (`e = 2*e` was told it rebinds `e` after its use on line 1, the use in itself; a review)
                taken = {
                    s.name
                    for s in self.r.program.statements
                    if isinstance(s, (nodes.Assign, nodes.Param))
                }
                other = next(
                    f"{name}{k}"
                    for k in range(2, len(taken) + 3)
                    if f"{name}{k}" not in taken
                )
                self.error(
                    LossNameError,
                    f"`{name}` is read in its own rebinding, where it is still the builtin;"
                    f" bind the new value to another name (`{other} = ...`)",
                    use,
                )
                return False
            self.error(
                LossNameError,
                f"`{name}` is rebound after its use on line {use.line} as the builtin; rebind it before its first use",
                st.name_span,
            )
            return False
        return True

    # ---------------------------------------------------------- expressions

    def visit(self, node: nodes.Node) -> Info:
        info = getattr(self, "visit_" + type(node).__name__)(node)
        self.r.info[id(node)] = info
        return info

    def visit_Number(self, node: nodes.Number) -> Info:
        return Info()

    def visit_Name(self, node: nodes.Name) -> Info:
        name = node.id
        if name in self.scope:
            self.used.setdefault(name, node)
            kind = self.kinds[name]
            self.r.refs[id(node)] = (kind, name)
            if name == "y_true" or (name == "e" and kind == "builtin"):
                self.true_uses.append(node)
            return self.scope[name]
        if name in self.later:
            line = self.later[name].span.line
            self.error(
                LossNameError,
                f"`{shorten(name)}` is used before its binding on line {line}",
                node,
            )
        elif name in FUNCTIONS:
            self.error(
                LossNameError, f"`{name}` is a function; call it as `{name}(...)`", node
            )
        elif (
            name == self.reading
        ):  # `a = a + 1`: not unknown, but not bound yet (a spec audit)
            self.error(
                LossNameError,
                f"`{shorten(name)}` is used in its own binding, before it has a value; a binding reads"
                f" only names bound before it (a parameter: declare it first, `param {shorten(name)} = 1.0`)",
                node,
            )
        else:
            # (a habit gives way to a close spelling: `C` where `c` is bound, `y_hat` where `yhat` is)
            unclose = close_spelling(name, self.scope) is None
            whole = (
                node is self.r.program.result
            )  # (the name is the whole loss: `lossdsl.loss("mse")`)
            habit = unclose and (
                NAME_HABITS.get(name) or bundled_name_hint(name, whole)
            )
            suggestion = habit or suggest(
                name, self.scope, parameter=name.isidentifier()
            )
            self.error(
                LossNameError, f"unknown name `{shorten(name)}`{suggestion}", node
            )
        return UNKNOWN

    def visit_Unary(self, node: nodes.Unary) -> Info:
        return self.numbers(node, [node.operand])

    def visit_Chain(self, node: nodes.Chain) -> Info:
        return self.numbers(node, list(node.operands))

    def visit_Power(self, node: nodes.Power) -> Info:
        return self.numbers(node, [node.base, node.exponent])

    def visit_Compare(self, node: nodes.Compare) -> Info:
        info = self.numbers(node, [node.left, node.right])
        return Info(
            "condition", info.shape, info.length, info.pred, info.true, False, info.ok
        )

    def visit_BoolOp(self, node: nodes.BoolOp) -> Info:
        return self.conditions(node, node.operands, f"`{node.op}`")

    def visit_Not(self, node: nodes.Not) -> Info:
        return self.conditions(node, (node.operand,), "`not`")

    def conditions(self, node, operands, what: str) -> Info:
        infos = [self.visit(o) for o in operands]
        numbers = False
        for operand, info in zip(operands, infos, strict=True):
            if info.ok and info.kind != "condition":
                self.error(
                    LossTypeError,
                    f"{what} joins conditions such as `a > b`, not numbers",
                    operand,
                )
                numbers = True
        merged = _merge(infos)
        # The shape of `a and b` is that of its operands (`_merge` keeps no shape).
        shape, length = (
            self.broadcast(node, operands, infos) if merged.ok else (ELEM, None)
        )
        # (not ok where it joined numbers: `not y_pred` was also "the loss is a condition", first; a review)
        return Info(
            "condition",
            shape,
            length,
            merged.pred,
            merged.true,
            False,
            merged.ok and not numbers,
        )

    def visit_Vector(self, node: nodes.Vector) -> Info:
        if not node.items:
            self.error(LossTypeError, "a list literal needs at least one number", node)
            return UNKNOWN
        infos = [self.visit(item) for item in node.items]
        ok = all(i.ok for i in infos)
        for item, info in zip(node.items, infos, strict=True):
            if not info.ok:
                continue
            if info.kind == "condition":
                self.error(LossTypeError, _CONDITION_AS_NUMBER, item)
                ok = False
            elif info.shape != CONST:
                self.error(
                    LossTypeError,
                    "a list literal holds constants (numbers and parameters), one per entry of the last axis",
                    item,
                )
                ok = False
        # A list of one value fixes no length: it broadcasts against any, as in NumPy.
        return Info(
            shape=VECTOR, length=len(node.items) if len(node.items) > 1 else None, ok=ok
        )

    def visit_Call(self, node: nodes.Call) -> Info:
        name = node.func
        if name not in FUNCTIONS:
            if name in self.scope or name in self.later:
                self.error(
                    LossNameError,
                    f"`{shorten(name)}` is not a function",
                    node.name_span,
                )
            else:
                # (a function's name in other capitals, `Mean(e)`, is that function: no bundled loss)
                known = name.lower() in FUNCTIONS
                habit = HABITS.get(name) or HABITS.get(name.lower())  # (`Std(e)` too)
                hint = (
                    habit
                    or f"{suggest(name, FUNCTIONS)}{'' if known else bundled_hint(name)}"
                )
                self.error(
                    LossNameError,
                    f"unknown function `{shorten(name)}`{hint}",
                    node.name_span,
                )
            for arg in node.args:
                self.visit(arg)
            return UNKNOWN
        fn = FUNCTIONS[name]
        n = len(node.args)
        if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
            self.error(
                LossTypeError,
                f"`{name}` takes {fn.arity_text()}; {n} given",
                node.name_span,
            )
            for arg in node.args:
                self.visit(arg)
            return UNKNOWN
        kind = kind_of(name, n)
        if kind == "where":
            return self.where(node)
        if kind == "labels":
            return self.onehot(node)
        infos = self.number_args(node.args, node)
        merged = _merge(infos)
        if not merged.ok:
            return UNKNOWN
        live = merged.live and fn.smooth != "step"
        if kind == "elementwise":
            shape, length = self.broadcast(node, node.args, infos)
            return Info(
                shape=shape,
                length=length,
                pred=merged.pred,
                true=merged.true,
                live=live,
                ok=True,
            )
        arg = infos[0]
        if kind == "reduction":
            if arg.shape == SAMPLE:
                self.error(
                    LossTypeError,
                    f"`{name}` reduces over the last axis, but its argument is already one value per sample",
                    node.args[0],
                )
                return UNKNOWN
            if arg.shape == CONST:
                self.error(
                    LossTypeError,
                    f"`{name}` reduces over the last axis; its argument must depend on y_true, y_pred or a list",
                    node.args[0],
                )
                return UNKNOWN
            shape = SAMPLE if arg.shape == ELEM else CONST
            return Info(shape=shape, pred=arg.pred, true=arg.true, live=arg.live)
        # vector functions
        if (
            arg.shape == VECTOR
        ):  # of a list: a constant vector (`softmax([1, 2, 3])`, NumPy's reading)
            return Info(
                shape=VECTOR,
                length=arg.length,
                pred=arg.pred,
                true=arg.true,
                live=arg.live,
            )
        if arg.shape != ELEM:
            need = (
                "must have a value per element, reading y_true or y_pred outside every reduction (this one is"
                " one value per sample)"
                if arg.shape == SAMPLE
                else "must depend on y_true, y_pred or a list"
            )
            self.error(
                LossTypeError,
                f"`{name}` works along the last axis of a tensor; its argument {need}",
                node.args[0],
            )
            return UNKNOWN
        return Info(shape=ELEM, pred=arg.pred, true=arg.true, live=arg.live)

    def where(self, node: nodes.Call) -> Info:
        cond, a, b = node.args
        ci = self.visit(cond)
        if ci.ok and ci.kind != "condition":
            self.error(
                LossTypeError,
                "the first argument of `where` must be a condition such as `a > b`",
                cond,
            )
        ai, bi = self.number_args((a, b), node)
        merged = _merge([ci, ai, bi])
        if not merged.ok:
            return UNKNOWN
        shape, length = self.broadcast(node, node.args, [ci, ai, bi])
        return Info(
            shape=shape,
            length=length,
            pred=merged.pred,
            true=merged.true,
            live=ai.live or bi.live,
        )

    def onehot(self, node: nodes.Call) -> Info:
        arg = node.args[0]
        self.r.uses_onehot = True
        if not (
            isinstance(arg, nodes.Name)
            and arg.id == "y_true"
            and self.kinds.get("y_true") == "input"
        ):
            self.visit(arg)
            # (a binding of y_true is a name for it, but not y_true itself: say so; a review)
            value = arg
            while (
                isinstance(value, nodes.Name)
                and self.r.binding_value(value) is not None
            ):
                value = self.r.binding_value(value)
            bound = (
                value is not arg
                and isinstance(value, nodes.Name)
                and value.id == "y_true"
            )
            also = ", not a name bound to it" if bound else ""
            self.error(
                LossTypeError,
                f"`onehot` takes `y_true` itself{also}: onehot(y_true)",
                arg,
            )
            return UNKNOWN
        # (only a well-formed onehot makes y_true class ids: `onehot(y_true + 1)` is one error, not two)
        self.onehot_calls.append(node)
        self.r.refs[id(arg)] = ("input", "y_true")
        self.r.info[id(arg)] = Info(shape=ELEM, true=True)
        return Info(shape=ELEM, true=True)

    def number_args(self, args, call: nodes.Call | None = None) -> list[Info]:
        """The infos of `args`, each a number; a condition among them is an error at `call`, the
        function that takes it (LANGUAGE.md: "... or a condition where a number belongs is an error
        at the call"), its message quoting the argument, once for the call (`max(y_pred > 0, y_pred
        < 1)` had two errors at one place); an operator's operand, at the condition."""
        infos = []
        told = False
        for arg in args:
            info = self.visit(arg)
            if info.ok and info.kind == "condition":
                if call is None:
                    self.error(LossTypeError, _CONDITION_AS_NUMBER, arg)
                elif not told:
                    told = True
                    head, tail = _CONDITION_AS_NUMBER.split("; ", 1)
                    message = (
                        f"{head}: `{call.func}` is given `{self.r.text(arg)}`; {tail}"
                    )
                    self.error(LossTypeError, message, call.name_span)
                info = UNKNOWN
            infos.append(info)
        return infos

    def numbers(self, node, operands) -> Info:
        infos = self.number_args(operands)
        merged = _merge(infos)
        if not merged.ok:
            return UNKNOWN
        shape, length = self.broadcast(node, operands, infos)
        return Info(
            shape=shape,
            length=length,
            pred=merged.pred,
            true=merged.true,
            live=merged.live,
        )

    def broadcast(self, node, operands, infos) -> tuple[str, int | None]:
        """The shape of combining `infos`, and the last-axis length a list literal in them fixes.

        The length travels with per-element values too (`[1, 2] * y_pred` has
        a last axis of 2), so that `[1, 2] + [1, 2, 3] * y_pred` is caught; and
        as every per-element value shares one last axis, two list literals that
        meet per-element values anywhere in the program must agree as well.
        """
        shapes = [i.shape for i in infos]
        lengths = {
            i.length
            for i in infos
            if i.shape in (VECTOR, ELEM) and i.length is not None
        }
        if len(lengths) > 1:
            # at the first operand whose length differs from an earlier one's (it was the whole sum; a
            # review)
            listed = [
                (i.length, operand)
                for i, operand in zip(infos, operands, strict=True)
                if i.length in lengths
            ]
            culprit = next(
                operand for length, operand in listed if length != listed[0][0]
            )
            self.error(
                LossTypeError,
                f"list literals of different lengths {sorted(lengths)} combined",
                culprit,
            )
            return max(shapes, key=_SHAPE_ORDER.__getitem__), None
        shape = max(shapes, key=_SHAPE_ORDER.__getitem__)
        if shape == SAMPLE and VECTOR in shapes:
            shape = ELEM
        length = next(iter(lengths)) if shape in (VECTOR, ELEM) and lengths else None
        if shape == ELEM and length is not None:
            self.fixed_by.setdefault(self.reading, length)
            if self.axis_length is None:
                self.axis_length = (length, node)
            elif self.axis_length[0] != length:
                first_length, first = self.axis_length
                self.error(
                    LossTypeError,
                    f"a list literal of {length} entries meets y_true or y_pred here, but one of {first_length}"
                    f" does at {first.span.line}:{first.span.column}: the last axis has one length",
                    node,
                )
                # Reported once: the nodes around it carry no length on (each was a second error, `exp`
                # of it another conflict, a sum of it and the first "list literals of different lengths
                # combined"; a review). Another list that disagrees with the first is its own error.
                return shape, None
        return shape, length

    # ---------------------------------------------------------- whole-program rules

    def check_onehot(self) -> None:
        if not self.onehot_calls:
            return
        for use in self.true_uses:
            what = "`e` (y_true - y_pred)" if use.id == "e" else "`y_true`"
            self.error(
                LossTypeError,
                f"with onehot(y_true), y_true holds integer class ids, so {what} cannot appear elsewhere",
                use,
            )

    def tree_size(self, node: nodes.Node) -> int:
        """The operations under `node` with the bindings substituted, as code generation sees them:
        the stable rewrite of `log(cosh(x))`, `x + softplus(-2 x) - log(2)`, holds `x` twice
        (nested, that doubles at each level). Without recursion."""
        sizes: dict[int, int] = {}
        stack: list[tuple[nodes.Node, bool]] = [(node, False)]
        while stack:
            current, ready = stack.pop()
            if id(current) in sizes:
                continue
            if isinstance(current, nodes.Name):
                ref = self.r.refs.get(id(current))
                sizes[id(current)] = (
                    self.sizes.get(ref[1], 1) if ref and ref[0] == "binding" else 1
                )
                continue
            if not ready:
                stack.append((current, True))
                stack.extend((child, False) for child in current.children)
                continue
            size = 1 + sum(sizes[id(child)] for child in current.children)
            cosh = self._cosh_under_log(current)
            if cosh is not None:
                argument = cosh.args[0]
                size += (
                    sizes[id(argument)]
                    if id(argument) in sizes
                    else self.tree_size(argument)
                )
            sizes[id(current)] = size
        return sizes[id(node)]

    def _cosh_under_log(self, node: nodes.Node) -> nodes.Call | None:
        """The `cosh(x)` of `log(cosh(x))` at `node`, looking through bindings, or None."""
        if not (
            isinstance(node, nodes.Call) and node.func == "log" and len(node.args) == 1
        ):
            return None
        inner = node.args[0]
        for _ in range(len(self.r.bindings) + 1):
            ref = self.r.refs.get(id(inner)) if isinstance(inner, nodes.Name) else None
            if not (ref and ref[0] == "binding" and ref[1] in self.r.bindings):
                break
            inner = self.r.bindings[ref[1]].value
        if (
            isinstance(inner, nodes.Call)
            and inner.func == "cosh"
            and len(inner.args) == 1
        ):
            return inner
        return None

    def measure(self, node: nodes.Node) -> tuple[int, int]:
        """(nesting depth, height of the tower of exponents) of `node`, bindings substituted; no recursion."""
        memo: dict[int, tuple[int, int]] = {}
        stack: list[tuple[nodes.Node, bool]] = [(node, False)]
        while stack:
            current, ready = stack.pop()
            if id(current) in memo:
                continue
            if isinstance(current, nodes.Name):
                ref = self.r.refs.get(id(current))
                binding = ref is not None and ref[0] == "binding"
                memo[id(current)] = (
                    self.measures.get(ref[1], (0, 0)) if binding else (0, 0)
                )
                continue
            children = current.children
            if not ready:
                stack.append((current, True))
                stack.extend((child, False) for child in children)
                continue
            # Levels of operations, as the parser counts them: a name or a number is 0.
            depth = 1 + max((memo[id(c)][0] for c in children), default=-1)
            tower = max((memo[id(c)][1] for c in children), default=0)
            if isinstance(current, nodes.Power) or (
                isinstance(current, nodes.Call) and current.func == "pow"
            ):
                if len(children) == 2:
                    tower = max(tower, 1 + memo[id(children[1])][1])
            memo[id(current)] = (depth, tower)
        return memo[id(node)]

    def check_nesting(self, node: nodes.Node) -> tuple[int, int]:
        """The `measure` of `node`; a LossLimitError (the first only) when it is over a limit."""
        depth, tower = self.measure(node)
        if self.over_limit:
            return depth, tower
        if depth > MAX_DEPTH:
            self.over_limit = True
            self.error(
                LossLimitError,
                f"this expression is nested {depth} levels deep once its bindings are substituted;"
                f" the limit is {MAX_DEPTH}",
                node,
            )
        elif tower > MAX_TOWER:
            self.over_limit = True
            self.error(
                LossLimitError,
                f"powers are nested {tower} deep in exponents (a^b^c^...); the limit is {MAX_TOWER}",
                node,
            )
        return depth, tower

    def check_size(self, result: nodes.Node) -> None:
        size = self.tree_size(result)
        if size > MAX_TREE_SIZE:
            # Say what made it grow: bindings read more than once (one read once adds what it is
            # written with, no more), `log(cosh(x))` (see `tree_size`).
            roots = [result, *(st.value for st in self.r.bindings.values())]
            reads: dict[str, int] = {}
            stable_cosh = False
            for root in roots:
                for node in nodes.walk(root):
                    if isinstance(node, nodes.Name) and node.id in self.r.bindings:
                        reads[node.id] = reads.get(node.id, 0) + 1
                    stable_cosh = stable_cosh or self._cosh_under_log(node) is not None
            how = (
                ["its bindings are substituted"]
                if any(count > 1 for count in reads.values())
                else []
            )
            if stable_cosh:
                how.append(
                    "each `log(cosh(x))` is in its stable form, which reads x twice"
                )
            self.error(
                LossLimitError,
                f"the loss holds {_count(size)} operations once {' and '.join(how) or 'written out'};"
                f" the limit is {MAX_TREE_SIZE:,}",
                result,
            )


def _count(size: int) -> str:
    """`size` with thousands separators, or as a power of ten past 10^18 (150 doubling bindings
    count 2^151 operations, which the message wrote out in 46 digits; a review)."""
    if size < 10**18:
        return f"{size:,}"
    return f"more than 10^{len(str(size)) - 1}"


_CONDITION_AS_NUMBER = (
    "a condition cannot be used as a number; conditions stand only as the first"
    " argument of where(condition, a, b)"
)


def _merge(infos: list[Info]) -> Info:
    return Info(
        pred=any(i.pred for i in infos),
        true=any(i.true for i in infos),
        live=any(i.live for i in infos),
        ok=all(i.ok for i in infos),
    )
