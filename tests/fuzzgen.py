"""Seeded generators of lossdsl programs, valid and hostile, and the outcome of compiling one.

Shared by the fuzz tests (tests/test_fuzz.py), the generated-code audit
(tests/test_generated_audit.py) and the nightly run (bench/fuzz.py). Not a
test module: pytest collects nothing from it.

`Fuzzer(seed)` draws programs from six families (`FAMILIES`), all from one
`random.Random`, so a seed names a sequence of programs exactly:

* `valid`: well-formed programs from the grammar's parts: numbers in every
  written form (huge, tiny, subnormal, long), every function at its arity,
  `where` with conditions, `onehot`, list literals, parameters and bindings,
  some of them named like Python keywords, builtins, dunders or the names the
  generated class uses (`self`, `keras`, `config`, `call`, `super`, `t0`).
* `near_valid`: a valid program with one to three token edits: a dropped,
  doubled or swapped token, an operator swapped for another, a name misspelt,
  a bracket lost, the text cut short.
* `hostile`: a valid program with something hostile spliced in at a token
  boundary or wrapped around it: unicode look-alikes, invisible and control
  characters, Python, shell, SQL and template injection (`__import__('os')`,
  `y_pred.__class__`, quotes, backticks, f-strings, lambdas).
* `extreme`: at and over the limits: nesting of every kind around 200 levels,
  power towers around 8, bindings that double, long flat sums, huge list
  literals, many bindings and parameters, inputs around 10,000 characters.
* `text`: random characters from ASCII, Latin, Greek, Cyrillic, symbols,
  control and invisible characters.
* `soup`: grammar tokens in random order.

`probe(source)` compiles and checks one program and says what happened
(`Outcome`); `failure(outcome)` says what is wrong with it, or None. Both take
an optional time limit: the tests give none (they guard against hangs only,
tests/hangguard.py); `bench/fuzz.py` gives TIME_LIMIT, its speed goal.
"""

from __future__ import annotations

import keyword
import random
import re
import time
import traceback
from dataclasses import dataclass

import sympy
from sympy.core.cache import clear_cache

import lossdsl
from lossdsl import pipeline
from lossdsl.functions import FUNCTIONS

TIME_LIMIT = 1.0  # bench/fuzz.py's goal: every program answered within a second

INPUTS = ["y_true", "y_pred", "e", "eps", "pi"]
COMPARE_OPS = ["<", "<=", ">", ">=", "==", "!="]
BINARY_OPS = ["+", "-", "*", "/", "^", "**"]
ONE_ARG = sorted(
    n
    for n, f in FUNCTIONS.items()
    if f.min_args <= 1 and (f.max_args is None or f.max_args >= 1)
)
ONE_ARG.remove("onehot")
FIXED = {
    n: f.min_args
    for n, f in FUNCTIONS.items()
    if f.min_args == f.max_args and f.min_args > 1 and n != "where"
}
SMOOTH = [
    "exp",
    "log",
    "log1p",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "softplus",
    "abs",
    "square",
    "erf",
]

# Names for bindings and parameters: plain ones, and ones that collide with Python or the generated class.
PLAIN_NAMES = [
    "a",
    "b",
    "c",
    "x",
    "z",
    "p",
    "q",
    "k",
    "w",
    "delta",
    "alpha",
    "gamma",
    "margin",
    "scale",
]
HOSTILE_NAMES = [
    *keyword.kwlist,
    *"eval exec compile open print len super object type getattr setattr globals locals vars input".split(),
    *"__import__ __builtins__ __class__ __init__ __dict__ __x __y_ _ _x _private".split(),
    *"self keras ops config call get_config from_config dtype name reduction cls".split(),
    *"t0 t1 t12 param_x param_call l O I C e eps pi y_pred_ y_true_ Y_PRED sp sympy np tf os sys".split(),
    "x" * 40,
    "a_very_long_binding_name_that_goes_on_and_on_for_a_while",
]

NUMBERS = [
    "0", "1", "2", "0.5", ".5", "1.", "3.14159", "1e-3", "2.5E+2", "1e-7", "007", "0.0", "00.00",
    "1e308", "1.7976931348623157e308", "1.8e308", "1e309", "1e-300", "1e-320", "4.9e-324", "1e-400",
    "123456789012345678901234567890", "9007199254740993", "0." + "3" * 60, "1" + "0" * 40, "1e+0", "1E-0",
]  # fmt: skip

# Hostile fragments spliced into programs.
LOOKALIKES = [
    "\u0443", "\u0435", "\u0430", "\u03b1", "\u2212", "\u2013", "\u2014", "\uff12", "\uff59", "\u0663", "\u00b2",
    "\u00d7", "\u00f7", "\u2264", "\u2265", "\u2260", "\u221a", "\u03c0", "\u212e", "\u0131", "\u017f",
]  # fmt: skip
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202e", "\u2066", "\ufeff", "\u00a0", "\u2028",
             "\u2029", "\u0301", "\u180e", "\u3000"]  # fmt: skip
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1b[31m", "\x1c", "\x7f", "\x85", "\r", "\t",
           "\udcff", "\ud800"]  # fmt: skip
INJECTIONS = [
    "__import__('os')", "__import__('os').system('x')", "y_pred.__class__", ".__class__.__mro__[1]",
    ".__subclasses__()", "__builtins__", "__class__", "'", '"', "`", "`id`", "'''", '"""', "f'{y_pred}'",
    'f"{__import__(\'os\')}"', "lambda: 0", "(lambda x: x)(y_pred)", "eval('1')", "exec('x')", "open('/etc/passwd')",
    "globals()", "getattr(y_pred, 'x')", "y_pred[0]", "y_pred[:, 0]", "{}", "{0}", "{{7*7}}", "${7*7}", "%s",
    "$(whoami)", "; rm -rf /", "| cat", "&&", "||", "\\", "\\n", "@", ":=", "->", "...", "!", "~", "&", "|", "%",
    "//", "<<", ">>", "?", ":", "import os", "from os import system", "if", "else", "for x in y_pred", "def f():",
    "' OR 1=1 --", "DROP TABLE x", "/* */", "<script>", "\\x00", "\\u0041", "sympify('x')", "Symbol('x')", "oo",
    "zoo", "nan", "inf", "None", "True", "b'x'", "0x1F", "0b101", "0o17", "1_000", "1j", "1e", "1e+", ".",
]  # fmt: skip
OPERATOR_TOKENS = [
    "+",
    "-",
    "*",
    "/",
    "^",
    "**",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "=",
    "and",
    "or",
    "not",
]
SOUP_TOKENS = [
    *"y_true y_pred e eps pi x alpha param and or not where onehot".split(),
    *OPERATOR_TOKENS, "(", ")", "[", "]", ",", ";", "\n", "#", " ", "\t",
    *"1 0.5 .5 1e-3 2.5E+2 1e309 0".split(), *sorted(FUNCTIONS),
]  # fmt: skip
DESCRIPTIONS = [
    "", "# A loss.\n", "# Two\n# lines\n", "#\n", "\n# After a blank line\n", '# """ quotes """\n',
    "# a backslash at the end \\\n", "# '''\n", "# \\N{BULLET} \\u0041 \\x00\n", "# \x00\x1b[31m\x7f\n",
    "# unicode: \u03b1\u03b2 \u2212 \U0001f525 \u202e\n", '# "\n# ""\n', "# r\"\"\"\n", '#"""\n',
]  # fmt: skip

_TOKEN = re.compile(
    r"\s+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[A-Za-z_]\w*|\*\*|<=|>=|==|!=|.", re.S
)
_ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz_ABCXYZ0123456789",
    "+-*/^()[],;=<>!#. \n\t",
    "\u00e9\u00fc\u00df\u0103\u0142",
    "\u03b1\u03b2\u03b3\u03c0\u03a3",
    "\u0430\u0435\u043e\u0440\u0443",
    "\u2212\u2013\u00d7\u00f7\u221a\u2264\u2260\u00b2\u2070",
    "\x00\x01\x07\x0b\x0c\x1b\x7f\x85\u2028\u2029",
    "\u200b\u200d\u200f\u202e\ufeff\u00a0",
    "'\"`\\$@%&|~?:{}",
    "\U0001f525\U0001d465\udcff",
]


@dataclass
class Outcome:
    """What compiling and checking one program gave."""

    source: str
    result: object  # a CompiledLoss, a LossError, or another exception (a bug)
    diagnostics: object  # a list of Diagnostic, or the exception check() raised (a bug)
    seconds: float
    trace: str = ""

    @property
    def compiled(self) -> bool:
        return isinstance(self.result, lossdsl.CompiledLoss)


def probe(source: str, time_limit: float | None = None) -> Outcome:
    """Compile and check `source`; over `time_limit`, once more with every cache cleared (the best time counts)."""
    outcome = _probe_once(source)
    if time_limit is not None and outcome.seconds >= time_limit:
        pipeline._front_end_cached.cache_clear()
        clear_cache()
        again = _probe_once(source)
        if again.seconds < outcome.seconds:
            outcome = again
    return outcome


def _probe_once(source: str) -> Outcome:
    trace = ""
    start = time.perf_counter()
    try:
        result = lossdsl.compile(source)
    except lossdsl.LossError as err:
        result = err
    except Exception as err:  # noqa: BLE001 - what the fuzzer hunts for
        result, trace = err, traceback.format_exc()
    try:
        diagnostics = lossdsl.check(source)
    except Exception as err:  # noqa: BLE001
        diagnostics, trace = err, trace or traceback.format_exc()
    return Outcome(source, result, diagnostics, time.perf_counter() - start, trace)


def failure(outcome: Outcome, time_limit: float | None = None) -> str | None:
    """What is wrong with an outcome, in one line; None when it is as the contract says (and within `time_limit`)."""
    result, diagnostics = outcome.result, outcome.diagnostics
    if not isinstance(result, (lossdsl.CompiledLoss, lossdsl.LossError)):
        return f"compile raised {type(result).__name__}: {result}"
    if not isinstance(diagnostics, list):
        return f"check raised {type(diagnostics).__name__}: {diagnostics}"
    if time_limit is not None and outcome.seconds >= time_limit:
        return f"took {outcome.seconds:.2f}s"
    if isinstance(result, lossdsl.LossError):
        if not isinstance(result.message, str) or not result.message.strip():
            return f"{type(result).__name__} with an empty message"
        for value in (result.line, result.column):
            if value is not None and not (type(value) is int and value >= 1):
                return f"{type(result).__name__} with a bad position {result.line!r}:{result.column!r}"
        try:
            str(result)
        except Exception as err:  # noqa: BLE001
            return (
                f"str() of {type(result).__name__} raised {type(err).__name__}: {err}"
            )
    elif not isinstance(result.expr, sympy.Expr):
        return f"compiled, but expr is a {type(result.expr).__name__}"
    for d in diagnostics:
        if (
            not isinstance(d, lossdsl.Diagnostic)
            or d.level not in ("error", "warning", "note")
            or not d.message
        ):
            return f"check returned {d!r}"
    if any(d.level == "error" for d in diagnostics) != isinstance(
        result, lossdsl.LossError
    ):
        return "check() and compile() disagree on whether the program has errors"
    return None


# ----------------------------------------------------------------------------- generators


class Fuzzer:
    """Programs drawn from one seeded `random.Random`; `draw(family)` or `next()` (the families in turn)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._turn = 0

    def draw(self, family: str) -> str:
        return getattr(self, family)()

    def next(self) -> tuple[str, str]:
        """(family, program), cycling through FAMILIES."""
        family = FAMILIES[self._turn % len(FAMILIES)]
        self._turn += 1
        return family, self.draw(family)

    # -------------------------------------------------------------- valid programs

    def number(self) -> str:
        r = self.rng
        pick = r.random()
        if pick < 0.5:
            return r.choice(
                [
                    "0",
                    "1",
                    "2",
                    "3",
                    "0.5",
                    "0.1",
                    ".5",
                    "1.",
                    "10",
                    "0.25",
                    "1e-3",
                    "2.5E+2",
                    "1e-7",
                ]
            )
        if pick < 0.8:
            return r.choice(
                [
                    str(r.randint(0, 1000)),
                    f"{r.uniform(0, 1e4):.3f}",
                    f"{r.uniform(0, 1e4):.2e}",
                ]
            )
        return r.choice(NUMBERS)

    def name_for(self, index: int) -> str:
        r = self.rng
        if r.random() < 0.35:
            return r.choice(HOSTILE_NAMES)
        return f"{r.choice(PLAIN_NAMES)}{index}"

    def expression(self, names: list[str], budget: int = 4) -> str:
        r = self.rng
        if budget <= 0 or r.random() < 0.25:
            pick = r.random()
            if pick < 0.3:
                return self.number()
            if pick < 0.75:
                return r.choice(self.inputs)
            return r.choice(names)
        sub = lambda: self.expression(names, budget - 1)  # noqa: E731
        form = r.choice(["binary", "binary", "binary", "unary", "paren", "call", "call", "fixed", "maxmin", "where",
                         "list", "reduce"])  # fmt: skip
        if form == "binary":
            return f"{sub()} {r.choice(BINARY_OPS)} {sub()}"
        if form == "unary":
            return f"{r.choice(['-', '+', '- ', '--'])}{sub()}"
        if form == "paren":
            return f"({sub()})"
        if form == "call":
            return f"{r.choice(ONE_ARG)}({sub()})"
        if form == "fixed":
            name = r.choice(sorted(FIXED))
            return f"{name}({', '.join(sub() for _ in range(FIXED[name]))})"
        if form == "maxmin":
            return f"{r.choice(['max', 'min'])}({', '.join(sub() for _ in range(r.randint(2, 4)))})"
        if form == "where":
            return f"where({self.condition(names, budget - 1)}, {sub()}, {sub()})"
        if form == "reduce":
            return f"{r.choice(['sum', 'mean', 'max', 'min', 'logsumexp'])}({sub()} * {r.choice(['y_pred', 'e'])})"
        # One length per program mostly (the last axis has one length); parameters are constants too.
        length = self.length if r.random() < 0.9 else r.choice([1, 2, 3, 4])
        items = [
            self.number()
            if not self.params or r.random() < 0.6
            else r.choice(self.params)
            for _ in range(length)
        ]
        return f"[{', '.join(items)}]"

    def condition(self, names: list[str], budget: int) -> str:
        r = self.rng
        form = r.choice(["compare", "compare", "compare", "and", "or", "not", "paren"])
        if form == "compare" or budget <= 0:
            return f"{self.expression(names, budget)} {r.choice(COMPARE_OPS)} {self.expression(names, budget)}"
        if form in ("and", "or"):
            return f"{self.condition(names, budget - 1)} {form} {self.condition(names, budget - 1)}"
        if form == "not":
            return f"not {self.condition(names, budget - 1)}"
        return f"({self.condition(names, budget - 1)})"

    def valid(self) -> str:
        r = self.rng
        # A program that reads labels with onehot(y_true) may not use y_true (or e) anywhere else.
        labels = r.random() < 0.08
        self.inputs = (
            ["y_pred", "y_pred", "onehot(y_true)", "eps", "pi"]
            if labels
            else ["y_pred", "e", "y_true"]
        )
        self.params: list[str] = []
        self.length = r.choice([2, 3, 4])
        names = ["y_pred", "eps", "pi"] if labels else list(INPUTS)
        lines = []
        for i in range(r.choice([0, 0, 1, 1, 2, 3, 4])):
            name = self.name_for(i)
            if r.random() < 0.4:
                sign = r.choice(["", "", "-", "+"])
                lines.append(f"param {name} = {sign}{self.number()}")
                self.params.append(name)
            else:
                lines.append(f"{name} = {self.expression(names, 3)}")
            names.append(name)
        loss = self.expression(names)
        if not re.search(r"\b(y_pred|e)\b", loss) and r.random() < 0.8:
            loss = f"({loss}) * {r.choice(['y_pred', 'abs(e)', 'sigmoid(y_pred)'])}"
        lines.append(loss)
        separator = r.choice(["\n", "\n", "; ", "\n\n", " ;\n", "\r\n", ";", "\n  "])
        comment = r.choice(["", "", "", "  # a comment", " #", " # ' \" ` \\"])
        body = separator.join(lines) + comment
        return r.choice(DESCRIPTIONS) + body

    # -------------------------------------------------------------- edits of valid programs

    def tokens(self, source: str) -> list[str]:
        return _TOKEN.findall(source)

    def near_valid(self) -> str:
        r = self.rng
        tokens = self.tokens(self.valid())
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            if not tokens:
                break
            i = r.randrange(len(tokens))
            action = r.choice(["drop", "drop", "double", "swap", "operator", "operator", "misspell", "bracket",
                               "truncate", "insert"])  # fmt: skip
            if action == "drop":
                del tokens[i]
            elif action == "double":
                tokens.insert(i, tokens[i])
            elif action == "swap" and i + 1 < len(tokens):
                tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
            elif action == "operator":
                ops = [k for k, t in enumerate(tokens) if t.strip() in OPERATOR_TOKENS]
                k = r.choice(ops) if ops else i
                tokens[k] = f" {r.choice(OPERATOR_TOKENS)} "
            elif action == "misspell":
                words = [k for k, t in enumerate(tokens) if t[:1].isalpha()]
                if words:
                    k = r.choice(words)
                    word = tokens[k]
                    j = r.randrange(len(word))
                    tokens[k] = r.choice([word[:j] + word[j + 1 :], word[:j] + word[j] * 2 + word[j + 1 :],
                                          word.upper(), word + "_", word[::-1]])  # fmt: skip
            elif action == "bracket":
                brackets = [k for k, t in enumerate(tokens) if t in "()[]"]
                if brackets:
                    k = r.choice(brackets)
                    tokens[k] = r.choice(["", "(", ")", "[", "]", "((", "))"])
            elif action == "truncate":
                tokens = tokens[:i]
            else:
                tokens.insert(i, r.choice(SOUP_TOKENS))
        return "".join(tokens)

    def hostile(self) -> str:
        r = self.rng
        tokens = self.tokens(self.valid())
        fragment = r.choice(
            [LOOKALIKES, INVISIBLE, CONTROL, INJECTIONS, INJECTIONS, INJECTIONS]
        )
        piece = r.choice(fragment)
        how = r.choice(
            ["insert", "insert", "replace", "wrap", "append", "line", "name"]
        )
        i = r.randrange(len(tokens) + 1)
        if how == "insert":
            tokens.insert(i, piece)
        elif how == "replace" and tokens:
            tokens[min(i, len(tokens) - 1)] = piece
        elif how == "wrap":
            return r.choice(
                ["{0}({1})", "({1}){0}", "{1}.{0}", "{0} + {1}", "{1}; {0}", "{1}\n{0}"]
            ).format(piece, "".join(tokens))
        elif how == "append":
            tokens.append(piece)
        elif how == "line":
            tokens.insert(0, f"x = {piece}\n")
        else:  # inside a name
            words = [k for k, t in enumerate(tokens) if t[:1].isalpha()]
            if words:
                k = r.choice(words)
                j = r.randrange(len(tokens[k]) + 1)
                tokens[k] = tokens[k][:j] + piece + tokens[k][j:]
        return "".join(tokens)

    # -------------------------------------------------------------- limits

    def extreme(self) -> str:
        r = self.rng
        n = r.choice([r.randint(1, 60), r.randint(150, 215), r.randint(190, 202)])
        kind = r.choice(["parens", "calls", "unary", "power", "tower", "where", "not", "lists", "binding-chain",
                         "doubling", "flat", "list", "bindings", "params", "length", "number", "mixed", "minmax",
                         "conditions", "wheres", "reuse"])  # fmt: skip
        term = r.choice(
            [
                "y_pred*{k}",
                "e^{k}",
                "sin(y_pred+{k})",
                "y_pred + {k}",
                "exp(-y_pred*{k})",
            ]
        )
        count = r.choice([r.randint(2, 12), r.randint(20, 100), 2_000])
        if kind == "parens":
            return "(" * n + r.choice(["y_pred", "e", "1"]) + ")" * n
        if kind == "calls":
            f = r.choice(SMOOTH + ["relu", "softmax", "normalize", "sum"])
            return f"{f}(" * n + "y_pred" + ")" * n
        if kind == "unary":
            return r.choice(["-", "+", "- ", "-+"]) * n + "y_pred"
        if kind == "power":
            return "y_pred" + r.choice(
                ["^y_pred", "^-y_pred", "**2", "^0.5", "^e"]
            ) * r.choice([n, r.randint(5, 12)])
        if kind == "tower":
            base = r.choice(["2", "9", "10", "1.0001", "0.5", "y_pred", "e"])
            return "y_pred * " + "^".join([base] * r.randint(2, 12))
        if kind == "where":
            return "where(y_pred > y_true, y_pred, " * n + "y_pred" + ")" * n
        if kind == "not":
            return "where(" + "not " * n + "y_pred > 0, y_pred, 0)"
        if kind == "lists":
            return "[" * n + "1" + "]" * n + " * y_pred"
        if kind == "binding-chain":
            f = r.choice(SMOOTH)
            lines = ["a0 = y_pred"] + [f"a{k} = {f}(a{k - 1})" for k in range(1, n)]
            return "\n".join(lines + [f"a{n - 1}"])
        if kind == "doubling":
            op = r.choice(["*", "+", "-", "/"])
            m = r.randint(5, 45)
            lines = ["a1 = y_pred + y_true"] + [
                f"a{k} = a{k - 1} {op} a{k - 1}" for k in range(2, m + 1)
            ]
            return "\n".join(lines + [f"a{m}"])
        if kind == "flat":
            term = r.choice(
                [
                    "y_pred",
                    "y_pred*y_true/2",
                    "sin(y_pred)",
                    "where(y_pred > 0, y_pred, -y_pred)",
                ]
            )
            op = r.choice(["+", "-", "*"])
            count = r.randint(10, 10_000 // len(term))
            return op.join([term] * count)
        if kind == "list":
            count = r.choice(
                [r.randint(1, 50), r.randint(1000, 3400), r.randint(3300, 3400)]
            )
            item = r.choice(["1", "0.5", "2", "eps", "pi"])
            return (
                "["
                + ",".join([item] * count)
                + "] * "
                + r.choice(["y_pred", "e^2", "softmax(y_pred)"])
            )
        if kind == "bindings":
            count = r.randint(10, 900)
            lines = [f"b{k} = y_pred * {k}" for k in range(count)]
            return "\n".join(
                lines
                + [" + ".join(f"b{k}" for k in range(0, count, max(1, count // 50)))]
            )
        if kind == "params":
            count = r.randint(10, 900)
            return "\n".join(
                [f"param p{k} = {k}" for k in range(count)] + [f"y_pred * p{count - 1}"]
            )
        if kind == "length":
            size = r.choice([9_999, 10_000, 10_001, r.randint(9_000, 12_000)])
            loss = "abs(e)"
            filler = r.choice([" ", "\n", ";", "# c\n", "\t"])
            return (filler * size)[: max(0, size - len(loss))] + loss
        if kind == "number":
            digits = r.choice(["9", "1", "0", "3"]) * r.randint(300, 9_000)
            return r.choice(
                [
                    "{0} * y_pred",
                    "0.{0} * y_pred",
                    "y_pred / 0.{0}",
                    "y_pred^{0}",
                    "y_pred * 1e-{0}",
                ]
            ).format(digits[:9_900])
        if kind == "minmax":
            return _within(r.choice(["max(", "min(", "maximum(", "minimum("]), [term.format(k=k) for k in range(count)],
                           ", ", ")")  # fmt: skip
        if kind == "conditions":
            join = r.choice([" or ", " and ", " or not "])
            items = [
                f"{term.format(k=k)} {r.choice(COMPARE_OPS)} {k}" for k in range(count)
            ]
            return _within("where(", items, join, ", y_pred, -y_pred)")
        if kind == "wheres":
            items = [
                f"where({term.format(k=k)} > {k}, {r.choice(['y_pred', 'e^2'])}, {k})"
                for k in range(count)
            ]
            return _within("", items, r.choice([" + ", " * ", " - "]), "")
        if kind == "reuse":
            shared = _within(
                "a = ",
                [term.format(k=k) for k in range(r.randint(10, 300))],
                " + ",
                "\n",
            )
            uses = [f"where(a > {k}, y_pred, {k})" for k in range(count)]
            return _within(shared, uses, " + ", "")
        parts = [
            r.choice(["(", "-", "abs(", "[", "sum(", "exp(", "-("]) for _ in range(n)
        ]
        closing = {
            "(": ")",
            "-": "",
            "abs(": ")",
            "[": "]",
            "sum(": ")",
            "exp(": ")",
            "-(": ")",
        }
        return "".join(parts) + "y_pred" + "".join(closing[p] for p in reversed(parts))

    # -------------------------------------------------------------- noise

    def text(self) -> str:
        r = self.rng
        alphabet = "".join(r.sample(_ALPHABETS, r.randint(1, 4)))
        return "".join(r.choice(alphabet) for _ in range(r.randint(0, 80)))

    def soup(self) -> str:
        r = self.rng
        return "".join(r.choice(SOUP_TOKENS) for _ in range(r.randint(0, 30)))


def _within(
    head: str, items: list[str], separator: str, tail: str, limit: int = 9_990
) -> str:
    """`head + separator.join(items) + tail`, with as many items as keep it within `limit` characters."""
    text = ""
    for item in items:
        candidate = f"{text}{separator}{item}" if text else item
        if len(head) + len(candidate) + len(tail) > limit:
            break
        text = candidate
    return head + text + tail


FAMILIES = ("valid", "near_valid", "hostile", "extreme", "text", "soup")
