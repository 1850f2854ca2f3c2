"""`lossdsl check`, run in process through `lossdsl.cli.main(argv)`, and once as `python -m lossdsl`.

Exit codes: 0 accepted, 1 rejected (diagnostics with a caret on stderr), 2 a
usage error or an unreadable file (named on stderr). Nothing prints a traceback.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest

from lossdsl.cli import main

HUBER = "# Huber loss.\nparam delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out and "Traceback" not in err
    return code, out, err


def test_program_on_the_command_line(capsys):
    code, out, err = run(capsys, "check", "-e", "abs(e)")
    assert code == 0
    assert out == "<-e>: ok (0 warnings)\n"
    assert "<-e>:1:1: note: `abs(e)` has a kink" in err
    assert "    abs(e)\n    ^~~~~~" in err


def test_clean_program_prints_nothing_on_stderr(capsys):
    code, out, err = run(capsys, "check", "-e", "sqrt(e^2 + eps)")
    assert (code, out, err) == (0, "<-e>: ok (0 warnings)\n", "")


def test_warnings_are_printed_and_pass(capsys):
    code, out, err = run(capsys, "check", "-e", "x = 1\nlog(y_pred) * x")
    assert code == 0
    assert out == "<-e>: ok (1 warning)\n"
    assert "<-e>:2:1: warning: `log(y_pred)`: the argument can reach 0 or below" in err
    assert "    log(y_pred) * x\n    ^~~~~~~~~~~" in err


def test_strict_rejects_warnings(capsys):
    code, out, err = run(capsys, "check", "--strict", "-e", "log(y_pred)")
    assert code == 1
    assert out == ""
    assert (
        "<-e>:1:1: error: `log(y_pred)`" in err
        and "(an error under strict=True)" in err
    )
    assert err.rstrip().endswith("<-e>: rejected (1 error)")


def test_a_file(capsys, tmp_path):
    path = tmp_path / "mae.loss"
    path.write_text(
        "# Mean absolute error.\nparam scale = 1.0\na = abs(e)\nscale * a\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, "check", str(path))
    assert code == 0
    assert out == f"{path}: ok (0 warnings)\n"
    assert f"{path}:3:5: note: `abs(e)` has a kink" in err


def test_standard_input(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(HUBER))
    code, out, err = run(capsys, "check", "-")
    assert code == 0
    assert out == "<stdin>: ok (0 warnings)\n"
    assert err == ""
    monkeypatch.setattr(sys, "stdin", io.StringIO("# MAE\n\nabs(e)\n"))
    code, out, err = run(capsys, "check", "-")
    assert (code, out) == (0, "<stdin>: ok (0 warnings)\n")
    assert "<stdin>:3:1: note: `abs(e)` has a kink" in err


def test_standard_input_with_a_rejected_program(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y_true^2\n"))
    code, out, err = run(capsys, "check", "-")
    assert code == 1
    assert "<stdin>:1:1: error: the loss does not depend on y_pred" in err


def test_a_missing_file_is_exit_2_and_named(capsys, tmp_path):
    missing = tmp_path / "nowhere.loss"
    code, out, err = run(capsys, "check", str(missing))
    assert code == 2
    assert out == ""
    assert str(missing) in err
    assert "no such file" in err


def test_a_directory_is_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "check", str(tmp_path))
    assert code == 2
    assert str(tmp_path) in err


def test_a_file_that_is_not_utf8_is_exit_2(capsys, tmp_path):
    path = tmp_path / "latin1.loss"
    path.write_bytes("abs(e) # caf\xe9".encode("latin-1"))
    code, out, err = run(capsys, "check", str(path))
    assert code == 2
    assert str(path) in err and "UTF-8" in err


REJECTED = [
    (
        "abs(e",
        "1:6: error: unexpected end of the program: expected `)` or `,`",
        "    abs(e\n         ^",
    ),
    (
        "lgo(y_pred)",
        "1:1: error: unknown function `lgo`; did you mean `log`?",
        "    lgo(y_pred)\n    ^~~",
    ),
    (
        "a = e\nb = a^2\ny_true^2",
        "3:1: error: the loss does not depend on y_pred",
        "    y_true^2\n    ^~~~~~~~",
    ),
    (
        "e^2 + sign(y_pred)",
        "1:7: error: the term `sign(y_pred)` has zero gradient",
        "    e^2 + sign(y_pred)\n          ^",
    ),
    (
        "y_pred * 10^10^10",
        "1:10: error: this constant overflows a float",
        "    y_pred * 10^10^10\n             ^~~~~~~~",
    ),
]


@pytest.mark.parametrize("program, head, caret", REJECTED)
def test_rejected_programs_exit_1_with_a_caret(capsys, program, head, caret):
    code, out, err = run(capsys, "check", "-e", program)
    assert code == 1
    assert out == ""
    assert f"<-e>:{head}" in err
    assert caret in err
    assert err.rstrip().endswith("<-e>: rejected (1 error)")


def test_several_errors_are_counted(capsys):
    code, out, err = run(capsys, "check", "-e", "lgo(y_prd)")
    assert code == 1
    assert err.count("^") == 2
    assert err.rstrip().endswith("<-e>: rejected (2 errors)")


def test_a_rejected_file(capsys, tmp_path):
    path = tmp_path / "bad.loss"
    path.write_text("# bad\nx = e\nx + \n", encoding="utf-8")
    code, out, err = run(capsys, "check", str(path))
    assert code == 1
    assert (
        f"{path}:3:4: error: unexpected end of the program: expected an expression"
        in err
    )


def test_several_files_are_checked_in_turn(capsys, tmp_path):
    good, bad, warned = (
        tmp_path / "huber.loss",
        tmp_path / "bad.loss",
        tmp_path / "root.loss",
    )
    good.write_text(HUBER, encoding="utf-8")
    bad.write_text("x = e\nx + \n", encoding="utf-8")
    warned.write_text("sqrt(y_pred)\n", encoding="utf-8")
    code, out, err = run(capsys, "check", str(good), str(bad), str(warned))
    assert code == 1
    assert out.splitlines() == [f"{good}: ok (0 warnings)", f"{warned}: ok (1 warning)"]
    assert f"{bad}:2:4: error: unexpected end of the program" in err
    assert f"{bad}: rejected (1 error)" in err
    assert f"{warned}:1:1: warning: `sqrt(y_pred)`" in err
    code, out, err = run(capsys, "check", str(good), str(warned))
    assert (code, len(out.splitlines())) == (0, 2)


def test_several_programs_are_checked_in_turn(capsys):
    code, out, err = run(
        capsys, "check", "-e", "abs(e)", "-e", "-log(y_pred)", "-e", "e^"
    )
    assert code == 1
    # numbered, as they were given (each was `<-e>`; a review)
    assert out.splitlines() == ["<-e 1>: ok (0 warnings)", "<-e 2>: ok (1 warning)"]
    assert "<-e 1>:1:1: note: `abs(e)` has a kink" in err
    assert "<-e 2>:1:2: warning: `log(y_pred)`" in err
    assert "<-e 3>:1:3: error: unexpected end of the program" in err
    assert err.rstrip().endswith("<-e 3>: rejected (1 error)")


def test_the_program_minus_e_after_e_is_a_program_not_a_second_option(capsys):
    # `-e -e`: the loss `-e` (y_pred - y_true), which argparse would read as -e without its program
    assert run(capsys, "check", "-e", "-e") == (0, "<-e>: ok (0 warnings)\n", "")
    code, out, err = run(capsys, "check", "-e", "-e", "-e", "e^")
    assert (code, out) == (1, "<-e 1>: ok (0 warnings)\n")
    assert err.startswith(
        "<-e 2>:1:3: error: unexpected end of the program: expected an expression\n"
    )


def test_a_command_of_one_program_refuses_a_second_e_in_process(capsys):
    # as test_cli.py's test of the installed script, in this process (whose code a test can change)
    assert run(capsys, "compile", "-e", "e^2", "-e", "abs(e)") == (
        2,
        "",
        "lossdsl compile: give one -e PROGRAM, not 2: `compile` takes one program\n",
    )
    assert run(capsys, "latex", "-e", "e^2", "-e", "abs(e)", "-e", "e") == (
        2,
        "",
        "lossdsl latex: give one -e PROGRAM, not 3: `latex` takes one program\n",
    )


def test_a_lone_carriage_return_in_a_program_argument_is_a_line_break(capsys):
    # `\r` alone is a line break, as in a FILE: the program compiles to the very module of its
    # `\n` spelling (the class's registered name is a hash of the program text)...
    compiled = run(capsys, "compile", "-e", "# Absolute error.\ra = e\rabs(a)\r")
    assert compiled == run(
        capsys, "compile", "-e", "# Absolute error.\na = e\nabs(a)\n"
    )
    assert compiled[0] == 0 and 'r"""Absolute error.\n' in compiled[1]
    # ... and the caret block shows line 2 as an editor does
    code, out, err = run(capsys, "check", "-e", "x = e^2\rfoo")
    assert (code, out) == (1, "")
    assert err == (
        "<-e>:2:1: error: unknown name `foo`; did you mean `e`, or a parameter, declared before its use"
        " (`param foo = 1.0`)?\n"
        "    foo\n"
        "    ^~~\n"
        "<-e>: rejected (1 error)\n"
    )


def test_a_diagnostic_without_a_place_follows_the_label_after_a_space(
    capsys, tmp_path, monkeypatch
):
    from lossdsl.cli import _print_diagnostics
    from lossdsl.errors import Diagnostic

    _print_diagnostics(
        [Diagnostic("note", "m", None, None), Diagnostic("note", "n", 1, 1)],
        "abs(e)",
        "x.loss",
    )
    assert capsys.readouterr() == (
        "",
        "x.loss: note: m\nx.loss:1:1: note: n\n    abs(e)\n    ^\n",
    )
    # as `latex` prints a limit of the LaTeX, which has no place in the program
    chain = (
        "a0 = y_pred\n"
        + "\n".join(f"a{i} = erf(a{i - 1})" for i in range(1, 145))
        # (in `cases`: a gradient of one line takes the flat spelling, whose groups are small)
        + "\nwhere(y_true > 0, a144, -a144)"
    )
    (tmp_path / "erf.loss").write_text(chain, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "latex", "erf.loss", "--gradient") == (
        1,
        "",
        "erf.loss: error: this LaTeX would hold a group of 125,756 tokens; the limit is 100,000 (KaTeX overflows its"
        " stack reading a \\frac argument of about 125,000)\nerf.loss: rejected (1 error)\n",
    )


def test_an_unreadable_file_among_several_is_said_and_the_others_are_checked(
    capsys, tmp_path
):
    # as linters go on past a missing file (a user test: one typo hid every other file's result)
    good, bad = tmp_path / "huber.loss", tmp_path / "bad.loss"
    good.write_text(HUBER, encoding="utf-8")
    bad.write_text("e^\n", encoding="utf-8")
    missing = tmp_path / "missing.loss"
    code, out, err = run(
        capsys, "check", str(missing), str(good), str(tmp_path), str(bad)
    )
    assert (
        code == 2
    )  # a file that cannot be read is a usage error, before a rejected program's 1
    assert out == f"{good}: ok (0 warnings)\n"
    lines = [
        line
        for line in err.splitlines()
        if line.startswith("lossdsl check:") or "rejected" in line
    ]
    assert lines == [
        f"lossdsl check: no such file: {missing}",
        f"lossdsl check: {tmp_path} is a directory, not a .loss file",
        f"{bad}: rejected (1 error)",
    ]
    code, out, err = run(capsys, "check", str(good), str(bad))
    assert code == 1


def test_a_file_named_with_a_trailing_slash_is_not_read(capsys, tmp_path):
    # `good.loss/` names a folder: the shell's `cat` refuses it, and so does check (pathlib drops
    # the slash, and the file was read and passed; a review)
    good = tmp_path / "good.loss"
    good.write_text("abs(e)\n", encoding="utf-8")
    code, out, err = run(capsys, "check", f"{good}/")
    assert (code, out) == (2, "")
    assert err == f"lossdsl check: cannot read {good}/: Not a directory\n"


USAGE = [
    [],
    ["check"],
    ["check", "-e"],
    ["check", "-e", "abs(e)", "extra.loss"],
    ["check", "--frobnicate", "-e", "abs(e)"],
    ["chekc", "-e", "abs(e)"],
    ["check", "-", "-"],
]


@pytest.mark.parametrize("argv", USAGE, ids=[" ".join(a) or "<nothing>" for a in USAGE])
def test_usage_errors_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.strip()
    assert out == ""


@pytest.mark.parametrize("argv", [["--help"], ["check", "--help"], ["--version"]])
def test_help_and_version_exit_0(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert "lossdsl" in out


@pytest.mark.parametrize(
    "program", ["\x00", "у_pred", "(" * 300, "9^9^9^9", "y_pred" * 2000, "'; rm -rf /"]
)
def test_hostile_programs_never_print_a_traceback(capsys, program):
    code, out, err = run(capsys, "check", "-e", program)
    assert code == 1
    assert "rejected" in err


def test_installed_module_runs_from_any_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-m", "lossdsl", "check", "-e", "abs(e)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "<-e>: ok (0 warnings)\n"
    assert "note: `abs(e)` has a kink" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv", [["library"], ["library", "huber"], ["check", "-e", "e^2"]]
)
def test_a_reader_that_closes_the_pipe_ends_the_command_quietly(tmp_path, argv):
    # `lossdsl library | head -1`: the reader goes; exit as SIGPIPE ends `cat` (141), without a
    # message (was `failed: BrokenPipeError`, exit 1, found by a user test).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "lossdsl", *argv],
            cwd=tmp_path,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def _run_with_standard_output_closed(
    tmp_path, argv: list[str]
) -> subprocess.CompletedProcess:
    """`lossdsl ARGV >&-`: the command in a child whose descriptor 1 is closed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "lossdsl", *argv],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=env,
        preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - closes the child's descriptor 1 only
    )


@pytest.mark.parametrize(
    ("argv", "wrote"),
    [
        (["latex", "-e", "abs(e)"], False),
        (["compile", "-e", "abs(e)", "-o", "out.py"], True),
    ],
)
def test_a_closed_standard_output_is_an_error_without_a_traceback(
    tmp_path, argv, wrote
):
    # `lossdsl latex -e X >&-`: Python's sys.stdout is None; it was `failed: AttributeError` and a
    # traceback from the last flush (found by fuzzing). As `cat` says "write error", exit 1.
    proc = _run_with_standard_output_closed(tmp_path, argv)
    assert (proc.returncode, proc.stderr) == (
        1,
        f"lossdsl {argv[0]}: cannot write to standard output: it is closed\n",
    )
    assert (
        tmp_path / "out.py"
    ).exists() == wrote  # -o was written before the closing line failed


@pytest.mark.parametrize("argv", [["--help"], ["latex", "--help"], ["--version"]])
def test_help_to_a_closed_standard_output_prints_no_traceback(tmp_path, argv):
    # argparse passes over an OSError from its write; the closed-output error is one (a review).
    proc = _run_with_standard_output_closed(tmp_path, argv)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_utf8_program_under_a_c_locale_is_read_as_given(tmp_path):
    # LANG=C without Python's UTF-8 mode: Python escapes every byte past ASCII in the arguments, and
    # `-e "abs(é)"` was "not UTF-8 text", exit 2 (found by fuzzing). Bytes that are not UTF-8 still are.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0")
    run = [sys.executable, "-m", "lossdsl", "check", "-e"]
    given = subprocess.run(
        [*run, "abs(\u00e9)"], cwd=tmp_path, capture_output=True, timeout=120, env=env
    )
    assert given.returncode == 1
    assert (
        b"unexpected character U+00E9 LATIN SMALL LETTER E WITH ACUTE" in given.stderr
    )
    broken = subprocess.run(
        [*run, b"abs(\xff)"], cwd=tmp_path, capture_output=True, timeout=120, env=env
    )
    assert (broken.returncode, broken.stderr) == (
        2,
        b"lossdsl check: -e PROGRAM is not UTF-8 text\n",
    )


def test_a_non_ascii_description_compiles_to_an_ascii_standard_output(tmp_path):
    # `lossdsl compile x.loss > x.py` under LC_ALL=C: the module's docstring holds the description,
    # which the locale's ASCII could not encode ("failed: UnicodeEncodeError", exit 1). The module
    # is UTF-8, as the file -o writes.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0", PYTHONIOENCODING="ascii")
    program = tmp_path / "u.loss"
    program.write_text(
        "# Pseudo-Huber \u03b4 loss, d\u00e9j\u00e0 vu\nabs(y_pred - y_true)\n",
        encoding="utf-8",
    )
    run = [sys.executable, "-m", "lossdsl", "compile", "u.loss"]
    proc = subprocess.run(run, cwd=tmp_path, capture_output=True, timeout=120, env=env)
    assert (proc.returncode, proc.stderr) == (0, b"")
    subprocess.run(
        [*run, "-o", "written.py"], cwd=tmp_path, check=True, timeout=120, env=env
    )
    assert proc.stdout == (tmp_path / "written.py").read_bytes()
    assert "Pseudo-Huber \u03b4 loss, d\u00e9j\u00e0 vu" in proc.stdout.decode("utf-8")


@pytest.mark.parametrize(
    "argv, usage, unknown",
    [
        (
            ["latex", "-e", "abs(e)", "-o", "f.tex"],
            "usage: lossdsl latex ",
            "option: -o",
        ),
        (
            ["check", "-e", "abs(e)", "--frob"],
            "usage: lossdsl check ",
            "option: --frob",
        ),
        (
            ["check", "--frob", "--zap"],
            "usage: lossdsl check ",
            "options: --frob --zap",
        ),
        # argparse takes `f.tex` for FILE and leaves `-o huber.loss`: the option alone is named
        # (it named the real input as the option's value; a review)
        (["latex", "-o", "f.tex", "huber.loss"], "usage: lossdsl latex ", "option: -o"),
        # ... and where no option is left, what is
        (["latex", "a.loss", "b.loss"], "usage: lossdsl latex ", "arguments: b.loss"),
    ],
)
def test_an_unknown_option_shows_the_subcommand_s_usage(capsys, argv, usage, unknown):
    # The top level's usage came with it (`usage: lossdsl [-h] [--version] COMMAND ...`; fuzzing).
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(usage)
    assert err.rstrip().endswith(f"lossdsl {argv[0]}: error: unrecognized {unknown}")


def test_compile_to_an_empty_file_name_is_a_usage_error(capsys):
    # `-o ""` wrote the code to standard output with no word (found by fuzzing).
    assert run(capsys, "compile", "-e", "abs(e)", "-o", "") == (
        2,
        "",
        "lossdsl compile: -o takes a file name (without -o, the code goes to standard output)\n",
    )


def test_compile_to_a_dash_writes_standard_output(capsys, tmp_path, monkeypatch):
    # `-o -` wrote a file named "-" (a spec review); `-` is standard output, as FILE `-` is input.
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "compile", "-e", "abs(e)", "--name", "Dash", "-o", "-")
    assert (code, err) == (0, "")
    assert (
        out.startswith('"""A Keras loss generated by lossdsl')
        and "class Dash(keras.losses.Loss)" in out
    )
    assert list(tmp_path.iterdir()) == []


def _lossdsl(tmp_path, argv, **options) -> subprocess.CompletedProcess:
    """`python -m lossdsl ARGV` in tmp_path, its output as bytes."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(options.pop("env", {}))
    return subprocess.run(
        [sys.executable, "-m", "lossdsl", *argv],
        cwd=tmp_path,
        timeout=120,
        env=env,
        **options,
    )


def test_a_file_name_past_ascii_is_escaped_in_the_status_lines_of_an_ascii_output(
    tmp_path,
):
    # Under PYTHONIOENCODING=ascii the `ok` and `wrote` lines could not encode the name: "failed:
    # UnicodeEncodeError", exit 1, after the file was written, and `check` stopped at it (a review).
    (tmp_path / "\u00e9.loss").write_text("abs(e)\n", encoding="utf-8")
    (tmp_path / "mse.loss").write_text("e^2\n", encoding="utf-8")
    ascii_out = {"env": {"PYTHONIOENCODING": "ascii"}, "capture_output": True}
    proc = _lossdsl(tmp_path, ["check", "\u00e9.loss", "mse.loss"], **ascii_out)
    assert (proc.returncode, proc.stdout) == (
        0,
        b"\\xe9.loss: ok (0 warnings)\nmse.loss: ok (0 warnings)\n",
    )
    proc = _lossdsl(
        tmp_path, ["compile", "mse.loss", "-o", "out_\u00e9.py"], **ascii_out
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        b"wrote out_\\xe9.py (class FormulaLoss)\n",
        b"",
    )
    assert "class FormulaLoss(keras.losses.Loss)" in (
        tmp_path / "out_\u00e9.py"
    ).read_text(encoding="utf-8")


# Standard output and error buffered (a file's), and not (PYTHONUNBUFFERED=1): where a write fails differs.
BUFFERING = pytest.mark.parametrize(
    "unbuffered", ["", "1"], ids=["buffered", "unbuffered"]
)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@BUFFERING
@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["frob"], 2),
        (["check"], 2),
        (["check", "-e", "lgo(e)"], 1),
        (["check", "-e", "mean(y_true)"], 1),
        (["check", "-e", "e^2"], 0),
    ],
)
def test_a_standard_error_that_cannot_be_written_keeps_the_exit_status(
    tmp_path, argv, code, unbuffered
):
    # `lossdsl check 2>/dev/full` (or a closed pipe): printing the usage error raised, and exit 2 was
    # 1; buffered, what stayed in the buffer failed again at exit, which made the status 120 (a review)
    with open("/dev/full", "w") as full:
        proc = _lossdsl(
            tmp_path,
            argv,
            stdout=subprocess.DEVNULL,
            stderr=full,
            env={"PYTHONUNBUFFERED": unbuffered},
        )
    assert proc.returncode == code


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["compile", "mse.loss"], "compile"),
        (["latex", "-e", "abs(e)"], "latex"),
        (["library"], "library"),
        (["check", "mse.loss"], "check"),
    ],
)
@BUFFERING
def test_a_full_disk_on_standard_output_is_said_so(tmp_path, argv, command, unbuffered):
    # `lossdsl compile x.loss > /dev/full` was the catch-all's "failed: OSError: [Errno 28] ..." (a
    # review); buffered, it is found by the flush after the command, which still names it
    (tmp_path / "mse.loss").write_text("e^2\n", encoding="utf-8")
    with open("/dev/full", "w") as full:
        proc = _lossdsl(
            tmp_path,
            argv,
            stdout=full,
            stderr=subprocess.PIPE,
            env={"PYTHONUNBUFFERED": unbuffered},
        )
    message = (
        f"lossdsl {command}: cannot write to standard output: No space left on device\n"
    )
    assert (proc.returncode, proc.stderr.decode()) == (1, message)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@BUFFERING
def test_a_full_disk_under_an_ascii_locale_is_said_so(tmp_path, unbuffered):
    # The module of a program with text past ASCII is written to the stream's buffer in UTF-8, which
    # failed past the wrapper: "failed: OSError" (the change review)
    (tmp_path / "caf\u00e9.loss").write_text(
        "# caf\u00e9 \u00e0 la carte\ne^2\n", encoding="utf-8"
    )
    env = {"PYTHONIOENCODING": "ascii", "PYTHONUNBUFFERED": unbuffered}
    with open("/dev/full", "w") as full:
        proc = _lossdsl(
            tmp_path,
            ["compile", "caf\u00e9.loss"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
        )
    message = (
        "lossdsl compile: cannot write to standard output: No space left on device\n"
    )
    assert (proc.returncode, proc.stderr.decode()) == (1, message)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@BUFFERING
@pytest.mark.parametrize("argv", [["--help"], ["compile", "--help"], ["--version"]])
def test_help_to_a_full_disk_is_lost_as_argparse_loses_it(tmp_path, argv, unbuffered):
    with open("/dev/full", "w") as full:
        proc = _lossdsl(
            tmp_path,
            argv,
            stdout=full,
            stderr=subprocess.PIPE,
            env={"PYTHONUNBUFFERED": unbuffered},
        )
    assert (proc.returncode, proc.stderr) == (0, b"")


def test_a_full_disk_found_by_the_last_flush_is_said_so(monkeypatch, capsys):
    # What stays buffered to the end is written by entry()'s flush: a full disk then is exit 1, said once.
    import errno

    from lossdsl import cli

    class Full(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(sys, "stdout", Full())
    with pytest.raises(SystemExit) as exit_:
        cli.entry()
    assert exit_.value.code == 1
    assert (
        capsys.readouterr().err
        == "lossdsl: cannot write to standard output: No space left on device\n"
    )


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["demo"], "demo"), (["plot", "-e", "abs(e)", "-o", "p.png"], "plot")],
)
def test_a_keras_backend_that_cannot_start_is_said_so(tmp_path, argv, command):
    # KERAS_BACKEND=bogus was the catch-all's "failed: ValueError: ..." (a review of robustness)
    proc = _lossdsl(tmp_path, argv, env={"KERAS_BACKEND": "bogus"}, capture_output=True)
    message = (
        f"lossdsl {command}: cannot start Keras (KERAS_BACKEND=bogus):"
        " ValueError: Unable to import backend : bogus\n"
    )
    assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (1, b"", message)
    assert not (tmp_path / "p.png").exists()


def test_a_non_blocking_standard_input_is_read_to_its_end(tmp_path):
    # A descriptor left O_NONBLOCK by the process that started lossdsl: a read gave None (an internal
    # TypeError) or the part written so far (`abs(e` checked as the whole program; a review).
    read, write = os.pipe()
    os.set_blocking(read, False)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "lossdsl", "check", "-"],
            cwd=tmp_path,
            stdin=read,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    finally:
        os.close(read)
    with os.fdopen(write, "wb", buffering=0) as writer:
        writer.write(b"abs(e")
        threading.Event().wait(1.0)  # the child is reading by now; the rest comes later
        writer.write(b") + e^2\n")
    out, err = child.communicate(timeout=120)
    assert (child.returncode, out) == (0, b"<stdin>: ok (0 warnings)\n"), err
    assert b"1:1: note: `abs(e)` has a kink" in err


def test_a_file_over_the_size_limit_among_several_is_rejected_and_the_others_checked(
    capsys, tmp_path
):
    # It stopped the command, unlabelled, and the files after it went unchecked (a review).
    (tmp_path / "good.loss").write_text("e^2\n", encoding="utf-8")
    (tmp_path / "big.loss").write_bytes(b"e+" * 50_000 + b"e")
    files = [
        str(tmp_path / name)
        for name in ("good.loss", "big.loss", "missing.loss", "good.loss")
    ]
    code, out, err = run(capsys, "check", *files)
    assert code == 2  # the missing file
    assert out == f"{files[0]}: ok (0 warnings)\n" * 2
    big = files[1]
    assert err == (
        f"{big}: error: {big} holds more than 40,003 bytes; the limit is 10,000 characters\n"
        f"{big}: rejected (1 error)\n"
        f"lossdsl check: no such file: {files[2]}\n"
    )
    code, out, err = run(capsys, "check", big)
    assert (code, out) == (1, "") and err.endswith(f"{big}: rejected (1 error)\n")


def test_an_output_name_over_the_system_s_limit_is_said_and_one_within_it_written(
    capsys, tmp_path
):
    # 300 characters: `is_dir`'s "File name too long" was "failed: OSError"; 245: the temporary file
    # beside it took the name and ran past 255 bytes (a review).
    program = tmp_path / "mse.loss"
    program.write_text("e^2\n", encoding="utf-8")
    too_long = str(tmp_path / ("a" * 300 + ".py"))
    code, out, err = run(capsys, "compile", str(program), "-o", too_long)
    assert (code, out, err) == (
        1,
        "",
        f"lossdsl compile: cannot write {too_long}: File name too long\n",
    )
    within = tmp_path / ("b" * 245 + ".py")
    code, out, err = run(capsys, "compile", str(program), "-o", str(within))
    assert (code, out) == (0, f"wrote {within} (class FormulaLoss)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["mse.loss", within.name]
    )


def test_control_characters_in_a_file_name_are_escaped_in_messages(
    tmp_path, capsys, monkeypatch
):
    # A file named `a<ESC>[2J.loss` cleared the terminal when `check` named it; `\r` overwrote the
    # line, U+202E reversed what follows. Messages show them as Python escapes them; the file is
    # still found and written under its own name.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a\x1b[2J.loss").write_text("abs(e\n", encoding="utf-8")
    (tmp_path / "b\r.loss").write_text("e^2\n", encoding="utf-8")
    code, out, err = run(capsys, "check", "b\r.loss", "a\x1b[2J.loss")
    assert code == 1
    assert out == "b\\r.loss: ok (0 warnings)\n"
    assert err.startswith("a\\x1b[2J.loss:1:6: error: unexpected end of the program")
    assert err.endswith("a\\x1b[2J.loss: rejected (1 error)\n")
    code, out, err = run(capsys, "compile", "b\r.loss", "-o", "c\u202e.py")
    assert (code, out, err) == (0, "wrote c\\u202e.py (class FormulaLoss)\n", "")
    assert "class FormulaLoss" in (tmp_path / "c\u202e.py").read_text(encoding="utf-8")
    code, out, err = run(capsys, "check", "gone\x07.loss")
    assert (code, out, err) == (2, "", "lossdsl check: no such file: gone\\x07.loss\n")
