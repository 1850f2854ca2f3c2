"""Source audit: no way for user text to become code inside the package.

Walks every module of the package with `ast` and fails on calls to `eval`,
`exec`, the builtin `compile`, `__import__`, `sympify`/`parse_expr` (SymPy's
string parsers) and on any use of `pickle` or `marshal`. The one module that
loads generated code (lossdsl/runtime.py) may import it from a file with
importlib; nothing else may.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lossdsl"
FORBIDDEN_CALLS = {
    "eval",
    "exec",
    "compile",
    "__import__",
    "sympify",
    "parse_expr",
    "S",
    "lambdify",
}
FORBIDDEN_MODULES = {"pickle", "marshal", "shelve", "dill", "cloudpickle"}
LOADER_CALLS = {
    "spec_from_file_location",
    "exec_module",
    "module_from_spec",
    "import_module",
    "run_path",
}
LOADER_MODULE = "runtime.py"


def audit(text: str, filename: str = "<module>") -> list[str]:
    """Every forbidden construct in one module's source, as 'file:line: what'."""
    tree = ast.parse(text, filename)
    defined = {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    imported_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported_names.update(
                a.asname or a.name
                for a in node.names
                if a.name != "compile" or node.module
            )
    found = []
    loader_ok = Path(filename).name == LOADER_MODULE
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else None
            )
            if name is None:
                continue
            bare = isinstance(func, ast.Name)
            if name == "eval" and _is_super_call(func):
                continue  # `super().eval(...)`: SymPy's classmethod of that name, in a subclass of a SymPy function
            if name in (
                "eval",
                "exec",
                "__import__",
                "sympify",
                "parse_expr",
                "lambdify",
            ):
                found.append(f"{filename}:{node.lineno}: call to {name}")
            elif (
                name == "compile"
                and bare
                and "compile" not in defined
                and "compile" not in imported_names
            ):
                found.append(f"{filename}:{node.lineno}: call to the builtin compile")
            elif (
                name == "S"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append(f"{filename}:{node.lineno}: S() of a string parses it")
            elif name in LOADER_CALLS and not loader_ok:
                found.append(
                    f"{filename}:{node.lineno}: {name} outside {LOADER_MODULE}"
                )
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                if module.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{filename}:{node.lineno}: import of {module}")
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name in ("sympify", "parse_expr", "lambdify"):
                        found.append(
                            f"{filename}:{node.lineno}: import of {alias.name}"
                        )
    return found


def _is_super_call(func: ast.expr) -> bool:
    """`func` is `super().<attribute>` (zero-argument super, inside a class)."""
    value = func.value if isinstance(func, ast.Attribute) else None
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id == "super"
        and not value.args
        and not value.keywords
    )


def package_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_package_has_modules_to_audit():
    names = {p.name for p in package_modules()}
    assert {"parse.py", "semantics.py", "symbolic.py", "pipeline.py", "cli.py"} <= names


@pytest.mark.parametrize(
    "path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_module_runs_no_user_text(path: Path):
    assert audit(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "snippet, what",
    [
        ("def f(text):\n    return eval(text)\n", "call to eval"),
        ("def f(text):\n    exec(text)\n", "call to exec"),
        ("def f(text):\n    return compile(text, 'x', 'eval')\n", "builtin compile"),
        (
            "import sympy\ndef f(text):\n    return sympy.sympify(text)\n",
            "call to sympify",
        ),
        ("from sympy.parsing.sympy_parser import parse_expr\n", "import of parse_expr"),
        ("import pickle\n", "import of pickle"),
        ("def f(t):\n    return __import__(t)\n", "call to __import__"),
        (
            "import importlib.util\nimportlib.util.spec_from_file_location('m', 'p')\n",
            "outside runtime.py",
        ),
        ("import sympy\nsympy.S('x + 1')\n", "S() of a string"),
    ],
)
def test_audit_catches_an_inserted_forbidden_call(snippet: str, what: str):
    """The audit fails when a forbidden call is inserted into a real module."""
    module = PACKAGE / "semantics.py"
    text = module.read_text(encoding="utf-8") + "\n\n" + snippet
    findings = audit(text, str(module))
    assert len(findings) == 1 and what in findings[0], findings


def test_audit_allows_sympys_eval_classmethod_through_super_only():
    allowed = "class P(Piecewise):\n    @classmethod\n    def eval(cls, *args):\n        return super().eval(*args)\n"
    assert audit(allowed, "symfuncs.py") == []
    for call in ("builtins.eval('1')", "self.eval('1')", "super(x).eval('1')"):
        assert audit(f"import builtins\n{call}\n", "symfuncs.py") == [
            "symfuncs.py:2: call to eval"
        ]


def test_audit_allows_the_packages_own_compile_function():
    text = "def compile(source):\n    return source\n\ncompile('abs(e)')\n"
    assert audit(text, "pipeline.py") == []
