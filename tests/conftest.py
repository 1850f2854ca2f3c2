"""Shared test helpers.

`marked(text)` reads an input whose expected span is marked with `«` and `»`
(STYLE.md section 8: `<` and `>` are lossdsl operators) and returns the clean
source with the offsets and the 1-based line and column of the span.

`--update-golden` rewrites the golden files instead of comparing with them
(review the diff afterwards); the `update_golden` fixture says whether it is on.
`katex` renders LaTeX strings with KaTeX under node (installed on first use
into .cache/katex; the tests that need it skip only when node is missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KATEX_PREFIX = ROOT / ".cache" / "katex"
KATEX_SCRIPT = Path(__file__).resolve().parent / "katex_render.js"


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden from the current output",
    )


@pytest.fixture
def update_golden(request) -> bool:
    """True when the run was asked to rewrite the golden files."""
    return bool(request.config.getoption("--update-golden"))


def install_katex(npm: str) -> None:
    """`npm install --prefix .cache/katex katex`, unless it is there already."""
    if (KATEX_PREFIX / "node_modules" / "katex" / "package.json").is_file():
        return
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(KATEX_PREFIX),
            "katex",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"could not install KaTeX into {KATEX_PREFIX}:\n{proc.stderr[-2000:]}"
        )


@pytest.fixture(scope="session")
def katex():
    """A function: list of (tex, display) -> list of KaTeX error messages (None where it renders)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: KaTeX rendering is not checked")
    npm = shutil.which("npm")
    if npm is None and not (KATEX_PREFIX / "node_modules" / "katex").is_dir():
        pytest.fail("npm is needed once to install KaTeX into .cache/katex")
    if npm is not None:
        install_katex(npm)

    def render(items: list[tuple[str, bool]]) -> list[str | None]:
        payload = json.dumps(
            [{"tex": tex, "display": display} for tex, display in items]
        )
        proc = subprocess.run(
            [node, str(KATEX_SCRIPT), str(KATEX_PREFIX)],
            input=payload,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return render


OPEN, CLOSE = "«", "»"


@dataclass(frozen=True)
class Marked:
    """A source with the span its markers pointed at."""

    source: str
    start: int
    end: int
    line: int
    column: int


def parse_marks(text: str) -> Marked:
    """Strip one `«...»` pair from `text`; the span lies between them."""
    assert text.count(OPEN) == 1 and text.count(CLOSE) == 1, (
        f"one «» pair expected in {text!r}"
    )
    start = text.index(OPEN)
    end = text.index(CLOSE) - 1
    source = text.replace(OPEN, "", 1).replace(CLOSE, "", 1)
    line = source.count("\n", 0, start) + 1
    column = start - (source.rfind("\n", 0, start) + 1) + 1
    return Marked(source, start, end, line, column)


@pytest.fixture
def marked():
    """The `parse_marks` helper, as a fixture."""
    return parse_marks


# ---------------------------------------------------------------- Keras emission
# (tests/test_emit_keras.py, test_parity.py, test_saving.py)

# TensorFlow reads this when it is first imported, so it is set before any test module imports Keras.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def library_modules(tmp_path_factory) -> dict[str, Path]:
    """The generated module of every bundled loss, written to one session directory: name -> file."""
    import lossdsl

    directory = tmp_path_factory.mktemp("generated")
    files = {}
    for name in lossdsl.library.names():
        path = directory / f"gen_{name}.py"
        path.write_text(lossdsl.library.compile(name).python_source(), encoding="utf-8")
        files[name] = path
    return files
