"""The README: its opening commands, and every program in it is compiled and has golden LaTeX."""

from __future__ import annotations

import re
from pathlib import Path

import lossdsl

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CASES = ROOT / "tests" / "cases"


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_commands():
    first, second = fenced("sh")[:2]
    assert README.index(first) < README.index("## ")
    assert "pip install ." in first and "lossdsl demo" in first
    assert 'pip install ".[test' in second and "pytest" in second


def test_every_readme_program_compiles_and_is_a_golden_case():
    programs = fenced("lossdsl")
    assert len(programs) >= 3
    cases = {p.read_text(encoding="utf-8").strip() for p in CASES.glob("readme_*.loss")}
    for program in programs:
        spec = lossdsl.compile(program)
        assert spec.expr.has(*[s for s in spec.expr.free_symbols if s.name == "y_pred"])
        assert program.strip() in cases, (
            f"add this README program to tests/cases/readme_*.loss:\n{program}"
        )


def test_readme_command_line_programs_are_golden_cases():
    inline = re.findall(r"-e '([^']+)'", README)
    cases = {p.read_text(encoding="utf-8").strip() for p in CASES.glob("readme_*.loss")}
    accepted = [
        p
        for p in inline
        if not lossdsl.check(p) or all(d.level != "error" for d in lossdsl.check(p))
    ]
    assert accepted, "the README shows command-line programs"
    for program in accepted:
        assert program in cases, (
            f"add this README program to tests/cases/readme_*.loss: {program}"
        )


def test_the_python_block_runs_and_shows_what_it_prints(tmp_path):
    # The "From Python" block as a user pastes it, in a fresh interpreter; then its comments'
    # values are compared with what the objects hold.
    import subprocess
    import sys

    block = re.search(
        r"## From Python\n.*?```python\n(.*?)```", README, flags=re.S
    ).group(1)
    shown = dict(
        re.findall(
            r"^(spec\.expr|spec\.latex\(\))  # (.*?)(?:  \(SymPy\))?$",
            block,
            flags=re.M,
        )
    )
    script = tmp_path / "readme_block.py"
    script.write_text(
        block
        + "\nprint(repr(str(spec.expr)))\nprint(repr(spec.latex()))\nprint(type(model.loss).__name__)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expr, latex, loss_class = done.stdout.strip().splitlines()[-3:]
    assert expr == repr(shown["spec.expr"])
    assert latex == repr(shown["spec.latex()"])
    assert loss_class == "PenalizedMAE"
