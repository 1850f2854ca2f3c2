"""LaTeX emitter: exact strings, golden files, and rendering in KaTeX and mathtext.

Golden files (tests/golden/<case>.tex, tests/golden/library/<name>.tex) hold
the inline, display and gradient forms of every program in tests/cases and
in the bundled library. `pytest --update-golden` rewrites them; review the diff.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import lossdsl
from lossdsl import nodes, rebuild
from lossdsl import symfuncs as sf
from lossdsl.emit.katex_budget import KATEX_MAX_EXPAND, katex_expansions
from lossdsl.emit.latex import LatexWriter, emit_latex
from lossdsl.emit.latex_gradient import GradientPrinter, tidy
from lossdsl.emit.mathtext import (
    MATHTEXT_MAX_DEPTH,
    nesting_depth,
    within_mathtext_depth,
)
from lossdsl.emit.tex_names import NamePolicy, preferred_name
from lossdsl.errors import LossError
from lossdsl.functions import FUNCTIONS as FUNCTIONS_TABLE
from lossdsl.span import Span
from lossdsl.symbolic import Y_PRED, Y_TRUE

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
GOLDEN = HERE / "golden"
GRAD = r"\frac{\partial L}{\partial \hat{y}} = "
# ... of an elementwise loss whose element reads a reduction of y_pred: of the sum over the last axis
SUMMED = r"\frac{\partial}{\partial \hat{y}} \sum_{c} L(y, \hat{y})_{c} = "

# `\operatorname{...}` names the printers may produce; anything else is a SymPy class name leaking through.
OPERATOR_NAMES = {
    "erf",
    "softplus",
    "relu",
    "clip",
    "sign",
    "round",
    "softmax",
    "normalize",
    "onehot",
    "sigmoid",
    "H",
    "step",
}


@functools.cache
def forms(source: str) -> dict[str, str]:
    """Every LaTeX form of a program, by title (the gradient's inline form only where it differs)."""
    spec = lossdsl.compile(source)
    result = {
        "inline": spec.latex(display=False),
        "display": spec.latex(display=True),
        "gradient": spec.latex(gradient=True, display=True),
    }
    gradient_inline = spec.latex(gradient=True, display=False)
    if gradient_inline != result["gradient"]:
        result["gradient, inline"] = gradient_inline
    return result


def inline(source: str) -> str:
    return forms(source)["inline"]


# ---------------------------------------------------------------- exact strings

OPERATORS = [
    ("(y_true - y_pred)^2", r"\left(y - \hat{y}\right)^{2}"),
    ("-y_pred^2", r"-\hat{y}^{2}"),
    ("(-y_pred)^2", r"\left(-\hat{y}\right)^{2}"),
    ("y_true - (y_pred - 1)", r"y - \left(\hat{y} - 1\right)"),
    ("y_true - (y_pred + 1)", r"y - \left(\hat{y} + 1\right)"),
    ("y_true + (y_pred - 1)", r"y + \hat{y} - 1"),
    ("y_true - y_pred - 1", r"y - \hat{y} - 1"),
    ("y_true/(y_pred*2)", r"\frac{y}{\hat{y} \cdot 2}"),
    ("(y_true + y_pred)*y_pred", r"\left(y + \hat{y}\right) \hat{y}"),
    ("y_true*y_pred/2", r"\frac{y \hat{y}}{2}"),
    ("y_pred/2*y_true", r"\frac{\hat{y}}{2} y"),
    ("y_pred/2/y_true", r"\frac{\hat{y}}{2 y}"),
    ("y_true*y_pred/3*y_true/4", r"\frac{y \hat{y}}{3} \frac{y}{4}"),
    ("(y_pred + 1)/(y_true - 1)", r"\frac{\hat{y} + 1}{y - 1}"),
    ("2^-1*y_pred", r"2^{-1} \hat{y}"),
    ("y_pred^2^3", r"\hat{y}^{2^{3}}"),
    ("y_pred**2**3", r"\hat{y}^{2^{3}}"),
    ("(y_pred^2)^3", r"\left(\hat{y}^{2}\right)^{3}"),
    ("(y_pred/2)^2", r"\left(\frac{\hat{y}}{2}\right)^{2}"),
    ("y_pred^(1/2)", r"\hat{y}^{\frac{1}{2}}"),
    ("y_pred * -y_true", r"\hat{y} \left(-y\right)"),
    ("-y_pred * y_true", r"-\hat{y} y"),
    ("y_true - -y_pred", r"y - \left(-\hat{y}\right)"),
    ("y_true + -y_pred", r"y + \left(-\hat{y}\right)"),
    ("y_true + +y_pred", r"y + \left(+\hat{y}\right)"),
    ("-(-y_pred)", r"-\left(-\hat{y}\right)"),
    ("-(y_pred*y_true)", r"-\hat{y} y"),
    ("-(y_pred + y_true)", r"-\left(\hat{y} + y\right)"),
    ("y_pred * (y_true * 2)", r"\hat{y} y \cdot 2"),
    ("y_pred * (-y_true * 2)", r"\hat{y} \left(-y \cdot 2\right)"),
    ("y_true + (-y_pred + 1)", r"y + \left(-\hat{y} + 1\right)"),
    ("2 * 3 * y_pred", r"2 \cdot 3 \hat{y}"),
    ("y_pred * 2", r"\hat{y} \cdot 2"),
    ("2 * (1/y_pred)", r"2 \cdot \frac{1}{\hat{y}}"),
]

BUILTINS_AND_NUMBERS = [
    ("e^2", r"\left(y - \hat{y}\right)^{2}"),
    ("2*e", r"2 \left(y - \hat{y}\right)"),
    ("e + 1", r"y - \hat{y} + 1"),
    ("1 - e", r"1 - \left(y - \hat{y}\right)"),
    ("-e", r"-\left(y - \hat{y}\right)"),
    ("pi*y_pred", r"\pi \hat{y}"),
    ("eps + y_pred", r"\epsilon + \hat{y}"),
    ("0.5*y_pred", r"0.5 \hat{y}"),
    (".5*y_pred", r"0.5 \hat{y}"),
    ("3.*y_pred", r"3 \hat{y}"),
    # leading zeros dropped, as `.5` gains one (they were printed: `007 \hat{y}`; a review)
    ("007*y_pred", r"7 \hat{y}"),
    ("00.5*y_pred", r"0.5 \hat{y}"),
    ("y_pred*007.50", r"\hat{y} \cdot 7.50"),
    ("y_pred + 00e1", r"\hat{y} + 0 \times 10^{1}"),
    ("1e-3*y_pred", r"10^{-3} \hat{y}"),
    ("y_pred*1e-3", r"\hat{y} \cdot 10^{-3}"),
    ("2.5E+2*y_pred", r"2.5 \times 10^{2} \hat{y}"),
    ("1e-3^y_pred", r"\left(10^{-3}\right)^{\hat{y}}"),
]

FUNCTIONS = [
    ("abs(e)", r"\left|y - \hat{y}\right|"),
    ("abs(e)^2", r"\left|y - \hat{y}\right|^{2}"),
    ("sqrt(y_pred^2 + 1)", r"\sqrt{\hat{y}^{2} + 1}"),
    ("square(e)", r"\left(y - \hat{y}\right)^{2}"),
    ("pow(y_pred, 3)", r"\hat{y}^{3}"),
    ("exp(-y_pred)", r"\exp\left(-\hat{y}\right)"),
    # a leading sign stands before the fraction it heads, as an author writes it (it was inside)
    ("exp(-y_pred^2/2)", r"\exp\left(-\frac{\hat{y}^{2}}{2}\right)"),
    ("-(y_true + y_pred)/2*y_true", r"-\frac{y + \hat{y}}{2} y"),
    ("y_pred^(-1/2)", r"\hat{y}^{-\frac{1}{2}}"),
    ("e - -y_pred/2", r"y - \hat{y} - \left(-\frac{\hat{y}}{2}\right)"),
    ("log(y_pred)", r"\log\left(\hat{y}\right)"),
    ("log1p(y_pred^2)", r"\log\left(1 + \hat{y}^{2}\right)"),
    ("log1p(-y_pred)", r"\log\left(1 - \hat{y}\right)"),
    ("log1p(-y_true*y_pred)", r"\log\left(1 - y \hat{y}\right)"),
    ("log1p(-y_pred + 1)", r"\log\left(1 - \hat{y} + 1\right)"),
    ("log1p(-y_pred - y_true)", r"\log\left(1 - \hat{y} - y\right)"),
    ("log1p(+y_pred)", r"\log\left(1 + \hat{y}\right)"),
    ("expm1(y_pred)*2", r"\left(\exp\left(\hat{y}\right) - 1\right) \cdot 2"),
    (
        "sin(y_pred) + cos(y_pred)",
        r"\sin\left(\hat{y}\right) + \cos\left(\hat{y}\right)",
    ),
    ("tanh(e)^2", r"\tanh\left(y - \hat{y}\right)^{2}"),
    ("arctan(y_pred)", r"\arctan\left(\hat{y}\right)"),
    ("erf(y_pred)", r"\operatorname{erf}\left(\hat{y}\right)"),
    ("sigmoid(y_pred)", r"\sigma\left(\hat{y}\right)"),
    ("softplus(y_pred)", r"\operatorname{softplus}\left(\hat{y}\right)"),
    ("relu(1 - y_true*y_pred)", r"\operatorname{relu}\left(1 - y \hat{y}\right)"),
    (
        "clip(y_pred, eps, 1 - eps)",
        r"\operatorname{clip}\left(\hat{y}, \epsilon, 1 - \epsilon\right)",
    ),
    ("maximum(y_pred, 0)", r"\max\left(\hat{y}, 0\right)"),
    ("minimum(y_pred, y_true)", r"\min\left(\hat{y}, y\right)"),
    ("max(y_pred, y_true, 0)", r"\max\left(\hat{y}, y, 0\right)"),
    (
        "sign(e)*e",
        r"\operatorname{sign}\left(y - \hat{y}\right) \left(y - \hat{y}\right)",
    ),
    ("floor(y_true)*y_pred", r"\left\lfloor y \right\rfloor \hat{y}"),
]

REDUCTIONS = [
    ("sum(e^2)", r"\sum_{c} \left(y_{c} - \hat{y}_{c}\right)^{2}"),
    ("mean(abs(e))", r"\frac{1}{C}\sum_{c} \left|y_{c} - \hat{y}_{c}\right|"),
    ("max(abs(e))", r"\max_{c} \left|y_{c} - \hat{y}_{c}\right|"),
    ("min(y_pred)", r"\min_{c} \hat{y}_{c}"),
    ("logsumexp(y_pred)", r"\log\sum_{c}\exp\left(\hat{y}_{c}\right)"),
    # `\log` runs to the right: a factor after the log-sum-exp would read as inside the log
    (
        "logsumexp(y_pred) * mean(y_true)",
        r"\left(\log\sum_{c}\exp\left(\hat{y}_{c}\right)\right) \frac{1}{C}\sum_{c} y_{c}",
    ),
    ("sum(y_pred)^2", r"\left(\sum_{c} \hat{y}_{c}\right)^{2}"),
    ("sum(y_pred)*2", r"\left(\sum_{c} \hat{y}_{c}\right) \cdot 2"),
    ("2*sum(y_pred)", r"2 \sum_{c} \hat{y}_{c}"),
    ("sum(y_pred) + 1", r"\sum_{c} \hat{y}_{c} + 1"),
    ("1 - sum(y_pred)", r"1 - \sum_{c} \hat{y}_{c}"),
    ("sum(y_pred + 1)", r"\sum_{c} \left(\hat{y}_{c} + 1\right)"),
    ("sum(-y_pred)", r"\sum_{c} \left(-\hat{y}_{c}\right)"),
    ("sum(y_pred)/2", r"\frac{\sum_{c} \hat{y}_{c}}{2}"),
    (
        "mean((y_pred - mean(y_pred))^2)",
        r"\frac{1}{C}\sum_{c} \left(\hat{y}_{c} - \frac{1}{C}\sum_{c'} \hat{y}_{c'}\right)^{2}",
    ),
    (
        "-sum(y_true * log(softmax(y_pred)))",
        r"-\sum_{c} y_{c} \log\left(\operatorname{softmax}\left(\hat{y}\right)_{c}\right)",
    ),
    ("softmax(y_pred) * y_true", r"\operatorname{softmax}\left(\hat{y}\right) y"),
    (
        "-sum(onehot(y_true) * log_softmax(y_pred))",
        r"-\sum_{c} \operatorname{onehot}\left(y\right)_{c} \log\operatorname{softmax}\left(\hat{y}\right)_{c}",
    ),
    (
        "sum(normalize(y_pred) * y_true)",
        r"\sum_{c} \operatorname{normalize}\left(\hat{y}\right)_{c} y_{c}",
    ),
    # `\log` runs to the right: a factor after log_softmax would read as inside the log
    (
        "sum(log_softmax(y_pred) * y_true)",
        r"\sum_{c} \left(\log\operatorname{softmax}\left(\hat{y}\right)_{c}\right) y_{c}",
    ),
    (
        "log_softmax(y_pred)*y_true",
        r"\left(\log\operatorname{softmax}\left(\hat{y}\right)\right) y",
    ),
    ("sum([0.3, 0.7] * y_pred)", r"\sum_{c} \left[0.3, 0.7\right]_{c} \hat{y}_{c}"),
    ("[1, 2] * y_pred", r"\left[1, 2\right] \hat{y}"),
]

CONDITIONS = [
    (
        "where(y_pred > 0, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} > 0 \;\mathrm{else}\; 0\right]",
    ),
    (
        "where(y_pred >= 0 and y_true <= 1, y_pred, -y_pred)",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} \geq 0 \wedge y \leq 1 \;\mathrm{else}\; -\hat{y}\right]",
    ),
    (
        "where(y_pred == 1 or y_pred != 2, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} = 1 \vee \hat{y} \neq 2 \;\mathrm{else}\; 0\right]",
    ),
    (
        "where((y_pred > 0 or y_true > 0) and y_pred < 1, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \left(\hat{y} > 0 \vee y > 0\right) \wedge \hat{y} < 1"
        r" \;\mathrm{else}\; 0\right]",
    ),
    (
        "where(y_pred > 0 or y_true > 0 and y_pred < 1, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} > 0 \vee \left(y > 0 \wedge \hat{y} < 1\right)"
        r" \;\mathrm{else}\; 0\right]",
    ),
    (
        "where(not y_pred > 0, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \neg \left(\hat{y} > 0\right) \;\mathrm{else}\; 0\right]",
    ),
    (
        "where(not not y_pred > 0, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \neg \neg \left(\hat{y} > 0\right) \;\mathrm{else}\; 0\right]",
    ),
    (
        "where(e > 1, e, where(e < -1, -e, e^2))",
        r"\left[y - \hat{y} \;\mathrm{if}\; y - \hat{y} > 1 \;\mathrm{else}\; -\left(y - \hat{y}\right)"
        r" \;\mathrm{if}\; y - \hat{y} < -1 \;\mathrm{else}\; \left(y - \hat{y}\right)^{2}\right]",
    ),
    (
        "where(y_pred > 0, y_pred, 0)^2",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} > 0 \;\mathrm{else}\; 0\right]^{2}",
    ),
]

NAMES = [
    ("param alpha = 0.5\nalpha*e^2", r"\alpha \left(y - \hat{y}\right)^{2}"),
    ("param Delta = 0.5\nDelta*y_pred", r"\Delta \hat{y}"),
    # the variant forms are Greek too (a review: `\mathrm{varphi}`); `\varphi`, `\vartheta` and
    # `\varsigma` name functions as their plain forms do, so a `\cdot` before parentheses
    (
        "param varepsilon = 0.5\nvarepsilon*(1 - y_pred)",
        r"\varepsilon \left(1 - \hat{y}\right)",
    ),
    (
        "param varepsilon = 0.5\nvarepsilon*clip(y_pred, eps, 1)",
        r"\varepsilon \operatorname{clip}\left(\hat{y}, 10^{-7}, 1\right)",
    ),
    (
        "param varkappa = 0.5\nvarkappa*y_pred + varkappa",
        r"\varkappa \hat{y} + \varkappa",
    ),
    (
        "param varpi = 0.5\nparam varrho = 2\nvarpi*varrho*y_pred",
        r"\varpi \varrho \hat{y}",
    ),
    (
        "param varphi = 0.5\nvarphi*(1 - y_pred)",
        r"\varphi \cdot \left(1 - \hat{y}\right)",
    ),
    (
        "param vartheta = 0.5\nvartheta*(1 - y_pred)",
        r"\vartheta \cdot \left(1 - \hat{y}\right)",
    ),
    (
        "param varsigma_1 = 0.5\nvarsigma_1*(1 - y_pred)",
        r"\varsigma_{1} \cdot \left(1 - \hat{y}\right)",
    ),
    ("param w_1 = 1\nw_1*y_pred", r"w_{1} \hat{y}"),
    ("param w2 = 1\nw2*y_pred", r"w_{2} \hat{y}"),
    ("param lambda_ = 1\nlambda_*y_pred", r"\lambda \hat{y}"),
    ("param gamma_pos = 1\ngamma_pos*y_pred", r"\gamma_{\mathrm{pos}} \hat{y}"),
    ("param scale = 2\nscale*y_pred", r"\mathrm{scale}\,\hat{y}"),
    ("param eps = 0.1\neps*y_pred", r"\epsilon \hat{y}"),
    (
        "param epsilon = 0.1\nepsilon*clip(y_pred, eps, 1)",
        r"\epsilon \operatorname{clip}\left(\hat{y}, 10^{-7}, 1\right)",
    ),
    (
        "param sigma = 2\nsigmoid(y_pred/sigma)",
        r"\operatorname{sigmoid}\left(\frac{\hat{y}}{\sigma}\right)",
    ),
    ("a = abs(e)\na^2", r"\left|y - \hat{y}\right|^{2}"),
    (
        "d = y_true - y_pred\nd^2 + 2*d",
        r"\left(y - \hat{y}\right)^{2} + 2 \left(y - \hat{y}\right)",
    ),
    (
        "big = y_pred > 1\nwhere(big, y_pred, 0)",
        r"\left[\hat{y} \;\mathrm{if}\; \hat{y} > 1 \;\mathrm{else}\; 0\right]",
    ),
    # a name that would print like an element of y prints upright, as `y` itself does
    (
        "param y_c = 2\ny_c * sum(y_true * y_pred)",
        r"\mathrm{y\_c}\,\sum_{c} y_{c} \hat{y}_{c}",
    ),
    ("param y_1 = 1\ny_1*y_pred", r"\mathrm{y\_1}\,\hat{y}"),
    ("param y2 = 1\ny2*y_pred", r"\mathrm{y2}\,\hat{y}"),
]

EXACT = OPERATORS + BUILTINS_AND_NUMBERS + FUNCTIONS + REDUCTIONS + CONDITIONS + NAMES


@pytest.mark.parametrize(("source", "expected"), EXACT, ids=[s for s, _ in EXACT])
def test_inline(source, expected):
    assert inline(source) == expected


DISPLAY = [
    (
        "(y_true - y_pred)^2",
        "\\begin{aligned}\nL(y, \\hat{y}) &= \\left(y - \\hat{y}\\right)^{2}\n\\end{aligned}",
    ),
    (
        "d = y_true - y_pred\nd^2",
        "\\begin{aligned}\nd &= y - \\hat{y} \\\\\nL(y, \\hat{y}) &= d^{2}\n\\end{aligned}",
    ),
    (
        "param delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))",
        "\\begin{aligned}\n"
        "a &= \\left|y - \\hat{y}\\right| \\\\\n"
        "L(y, \\hat{y}) &= \\begin{cases}\n"
        "0.5 a^{2} & \\text{if } a \\leq \\delta \\\\\n"
        "\\delta \\left(a - 0.5 \\delta\\right) & \\text{otherwise}\n"
        "\\end{cases}\n"
        "\\end{aligned}",
    ),
    (
        "big = y_pred > 1\nwhere(big, y_pred, 0) + 1",
        "\\begin{aligned}\n"
        "\\mathrm{big} &\\iff \\hat{y} > 1 \\\\\n"
        "L(y, \\hat{y}) &= \\left(\\begin{cases}\n"
        "\\hat{y} & \\text{if } \\mathrm{big} \\\\\n"
        "0 & \\text{otherwise}\n"
        "\\end{cases}\\right) + 1\n"
        "\\end{aligned}",
    ),
    (  # a `cases` block at the end of a reduction keeps its brackets: nothing may follow it
        "sum(where(y_pred > 0, y_pred, 0)) + 1",
        "\\begin{aligned}\n"
        "L(y, \\hat{y}) &= \\left(\\sum_{c} \\begin{cases}\n"
        "\\hat{y}_{c} & \\text{if } \\hat{y}_{c} > 0 \\\\\n"
        "0 & \\text{otherwise}\n"
        "\\end{cases}\\right) + 1\n"
        "\\end{aligned}",
    ),
    (
        "a = abs(e)\nmean(a^2) + a",
        "\\begin{aligned}\na &= \\left|y - \\hat{y}\\right| \\\\\n"
        "L(y, \\hat{y}) &= \\frac{1}{C}\\sum_{c} a_{c}^{2} + a\n\\end{aligned}",
    ),
    (  # the notation's own letters print upright; `e`, as `\tilde{e}` (upright, it is Euler's number)
        "y = y_pred^2\ne = y - y_true\nc = e\nL = c\nL",
        "\\begin{aligned}\n\\mathrm{y} &= \\hat{y}^{2} \\\\\n\\tilde{e} &= \\mathrm{y} - y \\\\\n"
        "\\mathrm{c} &= \\tilde{e} \\\\\n\\mathrm{L} &= \\mathrm{c} \\\\\n"
        "L(y, \\hat{y}) &= \\mathrm{L}\n\\end{aligned}",
    ),
    (
        "y_c = y_pred^2\nsum(y_c*y_true)",
        "\\begin{aligned}\n\\mathrm{y\\_c} &= \\hat{y}^{2} \\\\\n"
        "L(y, \\hat{y}) &= \\sum_{c} \\mathrm{y\\_c}_{c} y_{c}\n\\end{aligned}",
    ),
]


@pytest.mark.parametrize(("source", "expected"), DISPLAY, ids=[s for s, _ in DISPLAY])
def test_display(source, expected):
    assert forms(source)["display"] == expected


GRADIENTS = [
    ("(y_true - y_pred)^2", GRAD + r"2 \left(\hat{y} - y\right)"),
    # a factor that begins with a digit takes a `\cdot`, as in the loss (`\hat{y}_{c} 3^{...}` read
    # as a subscript c3, `\log{\left(2\right)} 2^{x}` as a log of 22; a review)
    ("2^-y_pred", GRAD + r"- \log{\left(2\right)} \cdot 2^{- \hat{y}}"),
    ("y_true*10^y_pred", GRAD + r"y \log{\left(10\right)} \cdot 10^{\hat{y}}"),
    # a symbolic power over a whole power of its base is one power (it read `\frac{k \hat{y}^{k}}{\hat{y}}`)
    ("param k = 2.0\ny_pred^k", GRAD + r"k \hat{y}^{k - 1}"),
    (
        "param k = 2.0\ny_true*y_pred^k/y_pred^2",
        GRAD + r"y \left(k - 2\right) \hat{y}^{k - 3}",
    ),
    # ... and sinh over cosh a tanh (the log-cosh loss's read `\frac{\sinh(...)}{\cosh(...)}`)
    ("log(cosh(e))*y_true", GRAD + r"y \tanh{\left(\hat{y} - y\right)}"),
    # a decimal base needs no brackets (it had them; a LaTeX review), a negative one does
    ("y_true*0.5^y_pred", GRAD + r"- 0.693147180559945 y \cdot 0.5^{\hat{y}}"),
    (
        "y_true*(-0.5)^y_pred",
        GRAD
        + r"y \left(\mathrm{i}\,\pi - 0.693147180559945\right) \left(-0.5\right)^{\hat{y}}",
    ),
    (
        "sum(y_pred * 3^y_pred)",
        GRAD + r"\left(\hat{y} \log{\left(3\right)} + 1\right) \cdot 3^{\hat{y}}",
    ),
    ("mean(e^2)", GRAD + r"\frac{2 \left(\hat{y} - y\right)}{C}"),
    ("param alpha = 0.5\nalpha*y_pred^2", GRAD + r"2 \alpha \hat{y}"),
    ("log(y_pred)", GRAD + r"\frac{1}{\hat{y}}"),
    ("relu(y_pred)", GRAD + r"\theta\left(\hat{y}\right)"),
    (
        "param theta = 1\ntheta*relu(y_pred)",
        GRAD + r"\theta \operatorname{H}\left(\hat{y}\right)",
    ),
    (
        "param theta = 1\nparam H = 2\nH*relu(y_pred)*theta",
        GRAD + r"H \theta \operatorname{step}\left(\hat{y}\right)",
    ),
    ("arcsin(y_pred/2)", GRAD + r"\frac{1}{2 \sqrt{1 - \frac{\hat{y}^{2}}{4}}}"),
    ("param w_1 = 1\nw_1 * y_pred^2", GRAD + r"2 w_{1} \hat{y}"),
    (
        "param tau = 0.9\nmaximum(tau * e, (tau - 1) * e)",
        GRAD
        + r"\left(1 - \tau\right) \theta\left(\hat{y} - y\right) - \tau \theta\left(y - \hat{y}\right)",
    ),
    (
        "param delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))",
        GRAD
        + "\\begin{cases}\n\\hat{y} - y & \\text{if } \\delta \\geq \\left|{\\hat{y} - y}\\right| \\\\\n"
        "\\delta \\operatorname{sign}\\left(\\hat{y} - y\\right) & \\text{otherwise}\n\\end{cases}",
    ),
    (
        "sigmoid(y_pred)*log_softmax(y_pred)",
        SUMMED + r"\left(1 - \sigma\left(\hat{y}\right)\right)"
        r" \left(\log\operatorname{softmax}\left(\hat{y}\right)\right) \sigma\left(\hat{y}\right)"
        r" + \sigma\left(\hat{y}\right)"
        r" - \left(\sum_{c} \sigma\left(\hat{y}_{c}\right)\right) \operatorname{softmax}\left(\hat{y}\right)",
    ),
    # |u|' is sign(u) u' (not SymPy's formula in re, im and atan2 for a u not known to be real)
    (
        "abs(y_pred^0.5)",
        GRAD
        + r"\frac{0.5 \operatorname{sign}\left(\hat{y}^{0.5}\right)}{\hat{y}^{0.5}}",
    ),
    (
        "abs(sqrt(y_pred))",
        GRAD
        + r"\frac{\operatorname{sign}\left(\sqrt{\hat{y}}\right)}{2 \sqrt{\hat{y}}}",
    ),
    (
        "abs(log(y_pred))",
        GRAD
        + r"\frac{\operatorname{sign}\left(\log{\left(\hat{y}\right)}\right)}{\hat{y}}",
    ),
    # SymPy folds a `where` inside a condition into ITE(c, a, b): printed as (c and a) or (not c and b)
    (
        "where(where(y_pred > 0, y_pred, y_true) > 1, y_pred, 0)",
        GRAD
        + "\\begin{cases}\n1 & \\text{if } \\left(\\hat{y} \\leq 0 \\wedge y > 1\\right)"
        " \\vee \\left(\\hat{y} > 0 \\wedge \\hat{y} > 1\\right) \\\\\n0 & \\text{otherwise}\n\\end{cases}",
    ),
    (
        "where(where(1e-3 >= y_true, 0.5, y_pred) >= 1, 3*y_pred, y_pred)",
        GRAD
        + "\\begin{cases}\n3 & \\text{if } \\hat{y} \\geq 1 \\wedge y > 0.001 \\\\\n"
        "1 & \\text{otherwise}\n\\end{cases}",
    ),
    # log1p of a sum prints `1 + x` as one sum (it printed `1 - \hat{y} - 1` for `log1p(1 - y_pred)`)
    (
        "log1p(1 - y_pred)^2",
        GRAD + r"- \frac{2 \log\left(2 - \hat{y}\right)}{2 - \hat{y}}",
    ),
    (
        "log1p(e)^2",
        GRAD + r"- \frac{2 \log\left(y + 1 - \hat{y}\right)}{y + 1 - \hat{y}}",
    ),
    (
        "y_pred*log1p(-y_pred - y_true)",
        GRAD + r"\log\left(1 - \hat{y} - y\right) - \frac{\hat{y}}{1 - \hat{y} - y}",
    ),
    (
        "y_pred*log1p(-2*y_pred)",
        GRAD + r"\log\left(1 - 2 \hat{y}\right) - \frac{2 \hat{y}}{1 - 2 \hat{y}}",
    ),
]


@pytest.mark.parametrize(
    ("source", "expected"), GRADIENTS, ids=[s for s, _ in GRADIENTS]
)
def test_gradient(source, expected):
    assert forms(source)["gradient"] == expected


@pytest.mark.parametrize(
    "source, expected",
    [
        ("e^2", GRAD + r"2 \left(\hat{y} - y\right)"),
        (
            "mean(e^2)",
            GRAD + r"\frac{2 \left(\hat{y} - y\right)}{C}",
        ),  # one value per sample: L is it
        (
            "e^2 * sum(y_true)",
            GRAD + r"2 \left(\hat{y} - y\right) \sum_{c} y_{c}",
        ),  # no reduction of y_pred
        # the element reads a reduction of y_pred: the gradient is of the sum over the last axis, which
        # the plain head read as the element's own derivative (`\sum_{c} \hat{y}_{c} + \hat{y}` here)
        ("y_pred * sum(y_pred)", SUMMED + r"2 \sum_{c} \hat{y}_{c}"),
        ("e^2 + mean(y_pred)", SUMMED + r"2 \hat{y} + 1 - 2 y"),
    ],
)
def test_the_gradient_head_says_what_it_differentiates(source, expected):
    assert lossdsl.compile(source).latex(gradient=True) == expected
    # ... and the flat spelling past mathtext's depth keeps it as written
    deep = lossdsl.compile("sin(" * 14 + source + ")" * 14).latex(
        gradient=True, inline=True
    )
    assert (
        deep.startswith(expected[: expected.index(" = ") + 3])
        and nesting_depth(deep) <= MATHTEXT_MAX_DEPTH
    )


def test_gradient_inline_has_no_environment():
    source = "param delta = 1.0\na = abs(e)\nwhere(a <= delta, 0.5 * a^2, delta * (a - 0.5 * delta))"
    expected = GRAD + (
        r"\left[\hat{y} - y \;\mathrm{if}\; \delta \geq \left|{\hat{y} - y}\right|"
        r" \;\mathrm{else}\; \delta \operatorname{sign}\left(\hat{y} - y\right)\right]"
    )
    assert forms(source)["gradient, inline"] == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alpha", r"\alpha"),
        ("Delta", r"\Delta"),
        ("eps", r"\epsilon"),
        ("w_1", "w_{1}"),
        ("w2", "w_{2}"),
        ("x", "x"),
        ("y_hat", r"y_{\mathrm{hat}}"),
        ("lambda_", r"\lambda"),
        ("gamma_pos", r"\gamma_{\mathrm{pos}}"),
        ("w_a_b", r"w_{a,b}"),
        ("scale", r"\mathrm{scale}"),
        ("_x", r"\mathrm{\_x}"),
        ("a__b", r"\mathrm{a\_\_b}"),
        # a trailing underscore stays where the rest is a function's name: `\mathrm{sin}` reads as sin()
        ("sin_", r"\mathrm{sin\_}"),
        ("exp__", r"\mathrm{exp\_\_}"),
        ("max_", r"\mathrm{max\_}"),
        ("softplus_", r"\mathrm{softplus\_}"),
        ("beta_", r"\beta"),
    ],
)
def test_preferred_name(name, expected):
    assert preferred_name(name).tex() == expected


def test_names_the_notation_uses_print_upright():
    spec = lossdsl.compile("param w_1 = 1\nw1 = 2*y_pred\nC = w1 + w_1\nC")
    policy = NamePolicy(spec.resolved)
    assert {k: v.tex() for k, v in policy.names.items()} == {
        "w_1": "w_{1}",
        "w1": r"\mathrm{w1}",
        "C": r"\mathrm{C}",
    }


def test_a_name_e_does_not_print_as_eulers_number():
    # upright, `\mathrm{e}^{\hat{y}}` of a parameter e = 2 read as exp(y_pred), and its gradient's
    # `\log(\mathrm{e})` as 1 (a review); Euler's number keeps `e`
    spec = lossdsl.compile("param e = 2.0\ne^y_pred - y_true*y_pred + exp(y_pred)")
    assert spec.latex() == r"\tilde{e}^{\hat{y}} - y \hat{y} + \exp\left(\hat{y}\right)"
    assert spec.latex(gradient=True) == (
        r"\frac{\partial L}{\partial \hat{y}} = \log{\left(\tilde{e}\right)} \tilde{e}^{\hat{y}} + e^{\hat{y}} - y"
    )


def test_names_that_print_like_an_element_of_y_print_upright():
    spec = lossdsl.compile(
        "param y_c = 1\nparam y_hat = 1\nparam c_1 = 1\ny_c*y_hat*c_1*y_pred"
    )
    policy = NamePolicy(spec.resolved)
    names = {k: v.tex() for k, v in policy.names.items()}
    assert names == {
        "y_c": r"\mathrm{y\_c}",
        "y_hat": r"\mathrm{y\_hat}",
        "c_1": r"\mathrm{c\_1}",
    }


def test_a_name_subscripted_with_the_axis_length_prints_upright():
    # `x_{C}` reads as the last element of x (a review); `x_{D}` is a subscript
    spec = lossdsl.compile("param x_C = 1\nparam x_D = 2\nsum(x_C * x_D * y_pred)")
    assert spec.latex() == r"\sum_{c} \mathrm{x\_C}\,x_{D} \hat{y}_{c}"


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("exact", "respelled", "upright"),
    [
        ("alpha", "alpha_", r"\mathrm{alpha\_}"),
        ("x", "x_", r"\mathrm{x\_}"),
        ("w_1", "w1", r"\mathrm{w1}"),
    ],
)
def test_a_name_spelled_as_its_form_takes_it_in_either_order(
    exact, respelled, upright, reverse
):
    # `alpha_` prints `\alpha` and `w1` `w_{1}` when nothing else claims the form; beside `alpha` or
    # `w_1`, in either order, those take it (a review: the first declared took it, and a parameter
    # named `alpha` printed upright)
    first, second = (respelled, exact) if reverse else (exact, respelled)
    spec = lossdsl.compile(
        f"param {first} = 1\nparam {second} = 2\n{first} * {second} * y_pred"
    )
    names = NamePolicy(spec.resolved).names
    assert list(names) == [first, second]
    assert (
        names[exact].tex()
        == preferred_name(exact).tex()
        == preferred_name(respelled).tex()
    )
    assert names[respelled].tex() == upright
    latex = spec.latex()
    assert (
        latex.startswith(names[first].tex() + r"\,")
        and latex.index(names[second].tex()) > 0
    ), latex


@pytest.mark.parametrize("first", ["a", "a_c"])
def test_names_that_print_like_an_element_of_another_name_print_upright(first):
    # `a_c` beside `a`, read in a sum: `\sum_{c} a_{c} + a_{c}` (a review); in either order
    statements = {"a": "a = e^2", "a_c": "a_c = y_pred"}
    second = "a_c" if first == "a" else "a"
    spec = lossdsl.compile(
        f"{statements[first]}\n{statements[second]}\nw_x = e\nw_x_c = 1\nsum(a * w_x) + a_c * w_x_c"
    )
    names = {k: v.tex() for k, v in NamePolicy(spec.resolved).names.items()}
    assert names == {
        "a": "a",
        "a_c": r"\mathrm{a\_c}",
        "w_x": "w_{x}",
        "w_x_c": r"\mathrm{w\_x\_c}",
    }
    assert spec.latex().endswith(
        r"L(y, \hat{y}) &= \sum_{c} a_{c} w_{x,c} + \mathrm{a\_c}\,\mathrm{w\_x\_c}"
        "\n\\end{aligned}"
    )
    # alone too: `a_{c}` in a sum over c reads as an element, `a_{c,c}` as a diagonal (a review)
    assert (
        NamePolicy(lossdsl.compile("a_c = y_pred\nsum(a_c^2)").resolved)
        .names["a_c"]
        .tex()
        == r"\mathrm{a\_c}"
    )
    assert (
        NamePolicy(lossdsl.compile("a_x = y_pred\nsum(a_x^2)").resolved)
        .names["a_x"]
        .tex()
        == "a_{x}"
    )


def test_gradient_with_every_dummy_name_taken():
    # The point of a `Subs` is named u, v, s, t or xi; with all five taken by parameters it printed
    # nothing (StopIteration) even where no `Subs` appears.
    source = (
        "param u = 1; param v = 1; param s = 1; param t = 1; param xi = 1; y_pred^2"
    )
    spec = lossdsl.compile(source)
    assert spec.latex(gradient=True) == GRAD + r"2 \hat{y}"
    printer = GradientPrinter(
        NamePolicy(spec.resolved), spec.symbolic.params, display=False
    )
    x = sp.Symbol("x")
    subs = sp.Subs(sp.Function("f")(x).diff(x), x, Y_PRED)
    assert (
        printer.doprint(subs)
        == r"\left. \frac{d}{d u'} f{\left(u' \right)} \right|_{u' = \hat{y}}"
    )


def test_compiled_latex_defaults():
    assert lossdsl.compile("abs(e)").latex() == r"\left|y - \hat{y}\right|"
    with_binding = lossdsl.compile("a = abs(e)\na")
    assert with_binding.latex().startswith("\\begin{aligned}")
    assert with_binding.latex(inline=True) == r"\left|y - \hat{y}\right|"
    assert (
        with_binding.latex(gradient=True)
        == GRAD + r"\operatorname{sign}\left(\hat{y} - y\right)"
    )
    assert with_binding.latex(display=False, inline=True) == with_binding.latex(
        inline=True
    )
    assert with_binding.latex(display=True, inline=False) == with_binding.latex()
    for both in (
        True,
        False,
    ):  # opposites that agree contradict (found by fuzzing: one was ignored)
        with pytest.raises(
            lossdsl.LossArgumentError,
            match=f"display={both} and inline={both} contradict",
        ):
            with_binding.latex(display=both, inline=both)


def test_strict_takes_true_or_false_and_belongs_to_compile():
    # `strict="no"` was taken as True (bool() of it); check() returns it as its one diagnostic
    with pytest.raises(
        lossdsl.LossArgumentError, match="strict= takes True or False, not str"
    ):
        lossdsl.compile("log(y_pred)", strict="no")
    [diagnostic] = lossdsl.check("log(y_pred)", strict="no")
    assert (diagnostic.level, diagnostic.message) == (
        "error",
        "strict= takes True or False, not str",
    )
    assert lossdsl.compile("log(y_pred)", strict=np.bool_(False)).strict is False
    # a NumPy integer is taken as an int is
    assert lossdsl.compile("abs(e)", strict=np.int64(1)).strict is True
    assert lossdsl.compile("log(y_pred)", strict=np.int64(0)).strict is False
    with pytest.raises(lossdsl.LossArgumentError) as raised:
        lossdsl.compile("abs(e)", strict=np.float64(1))
    assert raised.value.message == "strict= takes True or False, not float64"
    assert [d.level for d in lossdsl.check("log(y_pred)", strict=1)] == [
        "error"
    ]  # the domain warning, strict
    # keras_loss() and keras_metric() take the loss object's keywords: the error says where strict= goes
    spec = lossdsl.compile("abs(e)")
    for method in (spec.keras_loss, spec.keras_metric):
        with pytest.raises(
            lossdsl.LossArgumentError,
            match=r"unknown parameter\(s\) strict; .*; strict= is compile",
        ):
            method(strict=True)


def test_the_shortcuts_take_strict_as_compile_does():
    # loss() and metric() are compile(...) then keras_loss(...): strict= was an unknown parameter (a
    # contract review). A program that declares a parameter `strict` gets its value there.
    for shortcut in (lossdsl.loss, lossdsl.metric):
        assert shortcut("e^2", strict=True).name == "formula_loss"
        assert shortcut("log(y_pred)", strict=False).name == "formula_loss"
        with pytest.raises(lossdsl.LossDomainError) as raised:
            shortcut("e^2 + log(y_pred)", name="my_loss", strict=True)
        assert (raised.value.line, raised.value.column) == (1, 7)
        with pytest.raises(
            lossdsl.LossArgumentError, match="strict= takes True or False, not str"
        ):
            shortcut("e^2", strict="yes")
        made = shortcut("param strict = 1.0\nstrict * e^2", strict=3.0)
        assert made.get_config()["strict"] == 3.0
        # ... and a parameter's value given beside it is judged as a default would be (it made the
        # object with a Python warning; the change review)
        program = (
            "param gamma = 2.0\np = softmax(y_pred)\n-sum(y_true*(1 - p)^gamma*log(p))"
        )
        with pytest.raises(
            lossdsl.LossDomainError, match="exponent's value 0 is NaN"
        ) as raised:
            shortcut(program, gamma=0.0, strict=True)
        assert (raised.value.line, raised.value.column) == (3, 13)


@pytest.mark.parametrize(
    "call, message",
    [
        # arguments the methods do not take were a LossInternalError, "a gap in lossdsl" (fuzzing)
        (
            lambda spec: spec.latex(foo=1),
            r"latex\(\): got an unexpected keyword argument 'foo'",
        ),
        (
            lambda spec: spec.latex(True, 2, 3),
            r"latex\(\): too many positional arguments",
        ),
        (
            lambda spec: spec.python_source(bad=1),
            r"python_source\(\): got an unexpected keyword argument 'bad'",
        ),
        (
            lambda spec: spec.latex(display=np.array([1, 2])),
            r"display= takes True or False, not ndarray",
        ),
        (
            lambda spec: spec.latex(gradient="no"),
            r"gradient= takes True or False, not str",
        ),
        (
            lambda spec: spec.python_source(xla="yes"),
            r"xla= takes True or False, not str",
        ),
        (
            lambda spec: spec.latex(self=1),
            r"latex\(\): multiple values for argument 'self'",
        ),
        (
            lambda spec: spec.keras_loss(1),
            r"keras_loss\(\) takes keyword arguments only \(parameters, reduction, name, dtype\), not 1 positional",
        ),
        (
            lambda spec: spec.keras_metric(1, 2),
            r"keras_metric\(\) takes keyword arguments only .*, not 2 positional",
        ),
        # and to the entry points, Python's bare TypeError (a third fuzzing round)
        (lambda spec: spec.gradient(1), r"gradient\(\): too many positional arguments"),
        (
            lambda spec: lossdsl.compile(spec.source, foo=1),
            r"compile\(\): got an unexpected keyword argument 'foo'",
        ),
        (
            lambda spec: lossdsl.compile(spec.source, "X", True),
            r"compile\(\): too many positional arguments",
        ),
        (
            lambda spec: lossdsl.compile(),
            r"compile\(\): missing a required argument: 'source'",
        ),
        (
            lambda spec: lossdsl.check(spec.source, True),
            r"check\(\): too many positional arguments",
        ),
        (
            lambda spec: lossdsl.check(spec.source, foo=1),
            r"check\(\): got an unexpected keyword argument 'foo'",
        ),
        (
            lambda spec: lossdsl.loss(spec.source, "X", 1),
            r"loss\(\) takes 2 positional arguments \(source, name\), not 3",
        ),
        (
            lambda spec: lossdsl.metric(spec.source, "X", 1, 2),
            r"metric\(\) takes 2 positional arguments .*, not 4",
        ),
        # and the shortcuts, constructors and library functions past the positional count (a review)
        (
            lambda spec: lossdsl.loss(),
            r"loss\(\): missing a required argument: 'source'",
        ),
        (
            lambda spec: lossdsl.loss(name="X"),
            r"loss\(\): missing a required argument: 'source'",
        ),
        (
            lambda spec: lossdsl.metric(spec.source, "A", name="B"),
            r"metric\(\): multiple values for argument 'name'",
        ),
        (
            lambda spec: lossdsl.FormulaLoss(),
            r"FormulaLoss\(\): missing a required argument: 'formula'",
        ),
        (
            lambda spec: lossdsl.FormulaLoss(spec.source, 1, 2, 3, 4),
            r"FormulaLoss\(\): too many positional arguments",
        ),
        (
            lambda spec: importlib.import_module("lossdsl.runtime").FormulaMetric(),
            r"FormulaMetric\(\): missing a required argument: 'formula'",
        ),
        (
            lambda spec: lossdsl.library.source(),
            r"source\(\): missing a required argument: 'name'",
        ),
        (
            lambda spec: lossdsl.library.names(1),
            r"names\(\): too many positional arguments",
        ),
        (
            lambda spec: lossdsl.library.compile(),
            r"compile\(\): missing a required argument: 'loss'",
        ),
        (
            lambda spec: lossdsl.library.description("huber", 1),
            r"description\(\): too many positional arguments",
        ),
    ],
)
def test_arguments_the_outputs_do_not_take_are_argument_errors(call, message):
    spec = lossdsl.compile("a = abs(e)\na")
    with pytest.raises(lossdsl.LossArgumentError, match=message) as caught:
        call(spec)
    assert isinstance(caught.value, TypeError)
    # the library's cached names keep their cache's methods under the check (a review)
    assert lossdsl.library.names.cache_info().maxsize is None
    # flags that are ints or NumPy booleans are taken as Python takes them
    assert spec.latex(np.bool_(True), display=0) == spec.latex(
        gradient=True, inline=True
    )


def test_a_scaled_mean_in_the_gradient_prints_as_a_sum():
    # d/dy of log(mean(exp(y))) is exp(y) / (C mean(exp(y))): it read `C \frac{1}{C}\sum_{c}`.
    spec = lossdsl.compile("log(mean(exp(y_pred)))")
    assert (
        spec.latex(gradient=True)
        == GRAD + r"\frac{e^{\hat{y}}}{\sum_{c} e^{\hat{y}_{c}}}"
    )
    # a power of C against another power of the mean stays as it is
    assert spec.gradient().has(lossdsl.symfuncs.C)
    expected = GRAD + r"\frac{2 \cdot \frac{1}{C}\sum_{c} \hat{y}_{c}}{C}"
    assert lossdsl.compile("mean(y_pred)^2").latex(gradient=True) == expected


def test_unknown_node_raises_with_its_span():
    @dataclass(frozen=True)
    class Strange(nodes.Node):
        span: Span = field(default=Span(4, 7, 1, 5, 1, 8), compare=False)

    spec = lossdsl.compile("abs(e)")
    with pytest.raises(LossError, match="cannot print a Strange node") as info:
        LatexWriter(spec.resolved, display=False).visit(Strange())
    assert (info.value.line, info.value.column) == (1, 5)


def test_options_are_keyword_only():
    spec = lossdsl.compile("abs(e)")
    with pytest.raises(TypeError):
        emit_latex(spec.resolved, spec.symbolic, True)  # noqa: FBT003


def test_gradient_with_huge_constants_prints_at_once():
    # SymPy's Mul printer would simplify `-cosh(10^7 / e)^2` to place `exp(...)` in a fraction: minutes.
    text = lossdsl.compile("erf(cosh(1e7 / e))").latex(gradient=True)
    assert r"e^{- \cosh^{2}{\left(\frac{10000000}{y - \hat{y}}\right)}}" in text


def test_shared_bindings_expand_inline():
    # Each binding doubles the expanded tree, up to the semantic size limit.
    lines = ["a0 = y_pred"] + [f"a{i} = a{i - 1} * a{i - 1}" for i in range(1, 14)]
    spec = lossdsl.compile("\n".join(lines) + "\na13")
    text = spec.latex(inline=True)
    assert text.count(r"\hat{y}") == 2**13
    assert spec.latex(display=True).count("\n") == 16


# ---------------------------------------------------------------- the golden corpus


@dataclass(frozen=True)
class Case:
    """One program of the golden corpus."""

    id: str
    label: str
    source: str
    golden: Path


def library_cases() -> list[Case]:
    """The bundled library's programs, if `lossdsl.library` exists yet."""
    try:
        library = importlib.import_module("lossdsl.library")
    except ImportError:
        return []
    names, source = getattr(library, "names", None), getattr(library, "source", None)
    if not callable(names) or not callable(source):
        return []
    return [
        Case(
            f"library/{n}",
            f"lossdsl.library: {n}",
            source(n),
            GOLDEN / "library" / f"{n}.tex",
        )
        for n in names()
    ]


def corpus() -> list[Case]:
    """tests/cases/*.loss, then the library."""
    cases = [
        Case(
            p.stem,
            f"tests/cases/{p.name}",
            p.read_text(encoding="utf-8"),
            GOLDEN / f"{p.stem}.tex",
        )
        for p in sorted(CASES.glob("*.loss"))
    ]
    return cases + library_cases()


CORPUS = corpus()


def golden_text(case: Case) -> str:
    """The golden file: the source as comments, then each form under a `% title` line."""
    lines = [f"% {case.label}"]
    lines += [f"%   {line}".rstrip() for line in case.source.rstrip("\n").splitlines()]
    for title, tex in forms(case.source).items():
        lines += ["", f"% {title}", tex]
    return "\n".join(lines) + "\n"


def compiles(case: Case) -> bool:
    try:
        forms(case.source)
    except lossdsl.LossError:
        return False
    return True


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_golden(case, update_golden):
    if not compiles(case) and not case.golden.exists():
        pytest.skip(f"{case.label} does not compile (an error case for another test)")
    text = golden_text(case)
    if update_golden:
        case.golden.parent.mkdir(parents=True, exist_ok=True)
        case.golden.write_text(text, encoding="utf-8")
        return
    assert case.golden.exists(), (
        f"no golden file {case.golden}; run `pytest tests/test_latex.py --update-golden`"
    )
    assert text == case.golden.read_text(encoding="utf-8")


def test_corpus_uses_every_function():
    used = set()
    for case in CORPUS:
        used |= set(re.findall(r"([a-z_0-9]+)\(", case.source))
    assert set(FUNCTIONS_TABLE) - used == set()


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_printed_gradient_is_the_gradient(case):
    """The LaTeX gradient differentiates the loss with its heads kept whole; it must equal `spec.gradient()`."""
    if not compiles(case):
        pytest.skip(f"{case.label} does not compile")
    spec = lossdsl.compile(case.source)
    symbolic = spec.symbolic
    printed = rebuild.plain(tidy(symbolic.derivative()))
    difference = printed - symbolic.gradient()
    if difference.has(sf.TensorFunction):
        # (a power over a whole power of its base is printed as one: `sum(x)^q / sum(x)` as
        # `sum(x)^(q - 1)`, which SymPy takes apart again here; and a number before a sum,
        # `2 sum(x)`, goes back in, `sum(2 x)`)
        def pushed(e):
            coefficient, rest = e.as_coeff_Mul()
            sums = [
                f
                for f in sp.Mul.make_args(rest)
                if isinstance(f, (sf.ReduceSum, sf.ReduceMean))
            ]
            if coefficient == 1 or len(sums) != 1:
                return e
            (one,) = sums
            return rest.xreplace({one: type(one)(coefficient * one.args[0])})

        difference = sp.powsimp(difference)
        difference = sp.Add(
            *(pushed(term) for term in sp.Add.make_args(sp.expand(difference)))
        )
    if difference.has(sf.TensorFunction, sf.Vector, sp.Derivative, sp.Subs):
        pytest.skip("tensor functions have no numeric value per element")
    values = {symbol: spec.params[name] for name, symbol in symbolic.params.items()}
    for y_true, y_pred in [(0.3, 0.7), (1.0, -0.4), (0.0, 2.5)]:
        point = {**values, Y_TRUE: y_true, Y_PRED: y_pred}
        assert abs(complex(difference.xreplace(point).evalf())) < 1e-9, (y_true, y_pred)


@dataclass(frozen=True)
class Rendered:
    """One LaTeX string to render: where it comes from, and in which modes."""

    where: str
    tex: str
    display: bool  # KaTeX display mode (the `aligned` and `cases` forms)
    inline: bool  # must also render in mathtext


def strings_of(where: str, source: str) -> list[Rendered]:
    found = forms(source)
    items = [
        Rendered(f"{where}: inline", found["inline"], False, True),
        Rendered(f"{where}: display", found["display"], True, False),
    ]
    # A gradient of one line is an inline string too, display or not (with a binding, the display
    # gradient of 70 nested `sin`s was one line past mathtext's depth; a review).
    gradient = found["gradient"]
    single_line = "\n" not in gradient and r"\begin{" not in gradient
    items.append(Rendered(f"{where}: gradient", gradient, True, single_line))
    if "gradient, inline" in found:
        items.append(
            Rendered(
                f"{where}: gradient, inline", found["gradient, inline"], False, True
            )
        )
    return items


@functools.cache
def all_strings() -> tuple[Rendered, ...]:
    """Every string the corpus and the tables above produce."""
    items = []
    for case in CORPUS:
        if compiles(case):
            items += strings_of(case.id, case.source)
    for source, _ in EXACT + DISPLAY + GRADIENTS:
        items += strings_of(repr(source), source)
    return tuple(items)


def leaks(items) -> list[str]:
    """The strings that show an input's code name, a SymPy class or a truth value."""
    found = []
    for item in items:
        names = set(re.findall(r"\\operatorname\{([^{}]*)\}", item.tex))
        sympy_words = (
            "Dummy" in item.tex
            or r"\text{True}" in item.tex
            or r"\text{False}" in item.tex
        )
        if (
            "y_true" in item.tex
            or "y_pred" in item.tex
            or names - OPERATOR_NAMES
            or sympy_words
        ):
            found.append(f"{item.where}: {item.tex}")
    return found


def katex_failures(items, katex) -> list[str]:
    errors = katex([(item.tex, item.display) for item in items])
    return [
        f"{item.where}: {error}\n  {item.tex}"
        for item, error in zip(items, errors, strict=True)
        if error
    ]


def mathtext_failures(items) -> list[str]:
    """The inline strings that matplotlib's mathtext cannot parse (each asserted to be one line)."""
    mathtext = pytest.importorskip("matplotlib.mathtext")
    parser = mathtext.MathTextParser("path")
    failures = []
    for item in items:
        if not item.inline:
            continue
        assert "\n" not in item.tex, item.where
        try:
            parser.parse(f"${item.tex}$")
        except ValueError as err:
            failures.append(f"{item.where}: {str(err).splitlines()[-1]}\n  {item.tex}")
    return failures


def test_no_input_names_or_sympy_classes_leak():
    found = leaks(all_strings())
    assert not found, "\n".join(found)


def test_katex_renders_everything(katex):
    failures = katex_failures(all_strings(), katex)
    assert not failures, "\n".join(failures)


def test_mathtext_renders_every_inline_string():
    failures = mathtext_failures(all_strings())
    assert not failures, "\n".join(failures)


FUZZED_PROGRAMS = 150


@functools.cache
def fuzzed_strings() -> tuple[Rendered, ...]:
    """Every LaTeX string of FUZZED_PROGRAMS programs of the fuzzer's `valid` family that compile
    (hostile names, comments, odd spacing, every function; tests/fuzzgen.py), its seed fixed."""
    from fuzzgen import Fuzzer

    fuzzer, items, found = Fuzzer(2026), [], 0
    while found < FUZZED_PROGRAMS:
        source = fuzzer.draw("valid")
        try:
            items += strings_of(f"fuzzed program {source!r:.300}", source)
        except LossError:
            continue
        found += 1
    return tuple(items)


def test_fuzzed_programs_leak_no_names_and_parse_in_mathtext():
    failures = leaks(fuzzed_strings()) + mathtext_failures(fuzzed_strings())
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:20])


def test_fuzzed_programs_render_in_katex(katex):
    failures = katex_failures(fuzzed_strings(), katex)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:20])


# KaTeX expands at most 1,000 macros per string; `\operatorname` costs 3 of them (found by a
# LaTeX review: 334 relus, or bindings that double, failed with "Too many expansions").
LARGE_FOR_KATEX = {
    "relu-333": " + ".join(
        ["relu(y_pred)"] * 333
    ),  # 999 expansions: the usual spelling still fits
    "relu-334": " + ".join(["relu(y_pred)"] * 334),
    "doubling-bindings": "a = relu(y_pred)\n"
    + "\n".join(f"a{k} = a{k - 1 or ''}*a{k - 1 or ''}" for k in range(1, 10))
    + "\na9",
    "not-equal-300": "+".join(f"where(e!={k},e,0)" for k in range(300)),
    "erf-and-where": " + ".join(
        f"where(y_pred > {k}, erf(y_pred), softplus(e))" for k in range(120)
    ),
    # a condition binding prints `k \iff ...` in the display form: 8 expansions each
    "condition-bindings": "\n".join(f"k{i} = y_pred > {i}" for i in range(130))
    + "\n"
    + " + ".join(f"where(k{i}, y_pred, 0)" for i in range(130)),
    # each `where` in a condition folds into an ITE in the gradient's conditions
    "where-in-conditions-30": "where(" * 30 + "e>0" + ",e,-e)>0" * 29 + ",e,-e)",
}


def rendered_in_katex(where: str, source: str, katex) -> list[Rendered]:
    """Every LaTeX string of `source`, each asserted to render in KaTeX."""
    items = strings_of(where, source)
    failures = katex_failures(items, katex)
    assert not failures, failures[:1]
    return items


@pytest.mark.parametrize(
    "source", list(LARGE_FOR_KATEX.values()), ids=list(LARGE_FOR_KATEX)
)
def test_large_programs_render_in_katex_and_mathtext(source, katex):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    items = rendered_in_katex("large", source, katex)
    for item in items:
        assert katex_expansions(item.tex) <= KATEX_MAX_EXPAND
        if item.inline:
            mathtext.MathTextParser("path").parse(f"${item.tex}$")


# mathtext recurses into every group and ran out of Python's recursion limit at about 30 nested
# `\left(` pairs and 22 nested fractions: 32 nested calls, which the language allows up to 200,
# raised RecursionError, and `lossdsl plot` failed on them (found by a conformance review).
DEEP_FOR_MATHTEXT = {
    "sin-150": "sin(" * 150 + "y_pred" + ")" * 150,
    "sin-32": "sin(" * 32 + "e" + ")" * 32,
    "negation-150": "-" * 150 + "y_pred",
    "abs-150": "abs(" * 150 + "e" + ")" * 150,
    "sqrt-60": "sqrt(" * 60 + "abs(e)" + ")" * 60,
    "fraction-40": "1/(2*cosh(" * 40
    + "abs(y_pred)"
    + "))" * 40,  # (fractions of sums nest at most 8 deep)
    "exp-40": "exp(" * 40 + "y_pred" + ")" * 40,
    "softmax-6": "sum(y_true * " + "softmax(" * 6 + "y_pred" + ")" * 6 + ")",
    # SymPy's `\operatorname{erf}{(x)}`, past the KaTeX budget `\mathrm{erf}{(x)}`, and
    # `\sin^{2}{(x)}`; a power of a root, `(x^{1/2})^{3}` (a review found all three)
    "erf-14": "erf(" * 14 + "y_pred" + ")" * 14,
    "erf-40": "erf(" * 40 + "y_pred" + ")" * 40,
    "sin-squared-14": "sin(" * 14 + "y_pred^2" + ")" * 14 + "^2",
    "root-power-13": "sin(" * 13 + "sqrt(abs(y_pred))^3" + ")" * 13,
    "abs-of-products-14": "y_true*abs(" * 14 + "y_pred" + ")" * 14,
    # ... spelled `\mathrm{abs}`: 333 `\operatorname`s exhaust KaTeX's 1,000 macro expansions (the change review)
    "clip-abs-12": "clip(abs(" * 12 + "y_pred" + "), 0, 1)*y_true" * 12,
    # a binding makes the gradient's default display, still one line without a `where`
    "binding-sin-70": "x = y_pred\n" + "sin(" * 70 + "x" + ")" * 70,
}


def _parse_with_frames_taken(parser, tex: str, frames: int) -> None:
    """mathtext's parse of `tex`, called `frames` calls deep (a figure's draw calls it so)."""
    if frames:
        return _parse_with_frames_taken(parser, tex, frames - 1)
    parser.parse(f"${tex}$")


@pytest.mark.parametrize(
    "source", list(DEEP_FOR_MATHTEXT.values()), ids=list(DEEP_FOR_MATHTEXT)
)
def test_deeply_nested_programs_render_in_katex_and_mathtext(source, katex):
    mathtext = pytest.importorskip("matplotlib.mathtext")
    items = rendered_in_katex("deep", source, katex)
    for item in items:
        if item.inline:
            assert nesting_depth(item.tex) <= MATHTEXT_MAX_DEPTH, item.where
            _parse_with_frames_taken(mathtext.MathTextParser("path"), item.tex, 100)


def test_a_where_folded_into_a_condition_prints_once():
    # Printed as `(c and a) or (not c and b)`, each ITE printed its condition twice: 2^n copies.
    for n in (2, 15, 30):
        spec = lossdsl.compile("where(" * n + "e>0" + ",e,-e)>0" * (n - 1) + ",e,-e)")
        tex = spec.latex(gradient=True)
        assert 2 * n - 1 <= tex.count(r"\hat{y} - y") <= 3 * n and len(tex) < 120 * n, (
            tex[:300]
        )
        assert r"\text{False}" not in tex and r"\text{True}" not in tex
    spec = lossdsl.compile("where(where(where(e > 0, e, -e) > 1, e, 0) > 2, e, 0)")
    assert spec.latex(gradient=True, inline=True) == (
        r"\frac{\partial L}{\partial \hat{y}} = \left[-1 \;\mathrm{if}\; \left(\left(\hat{y} - y \geq 0 \wedge"
        r" \hat{y} - y > 1\right) \vee \left(\hat{y} - y < -1 \wedge \hat{y} - y < 0\right)\right) \wedge"
        r" \hat{y} - y < -2 \;\mathrm{else}\; 0\right]"
    )


def test_a_gradient_too_long_to_write_out_is_a_limit_error_at_the_result():
    # Its parts are shared; written out, 13 links of this chain made 9 MB of LaTeX in 28 s.
    links = "".join(f"a{i} = tanh(a{i - 1})*a{i - 1}\n" for i in range(1, 11))
    spec = lossdsl.compile("a0 = y_pred\n" + links + "a10")
    with pytest.raises(lossdsl.LossLimitError) as raised:
        spec.latex(gradient=True)
    assert (
        raised.value.message
        == "the gradient's LaTeX would write out 90,109 operations; the limit is 50,000"
    )
    assert (raised.value.line, raised.value.column) == (12, 1)
    links = "".join(f"a{i} = tanh(a{i - 1})*a{i - 1}\n" for i in range(1, 9))
    assert (
        lossdsl.compile("a0 = y_pred\n" + links + "a8")
        .latex(gradient=True)
        .count(r"\tanh")
        > 100
    )


def test_deep_strings_are_spelled_flat():
    assert (
        inline("sin(" * 40 + "y_pred" + ")" * 40)
        == "\\sin(" * 40 + "\\hat{y}" + ")" * 40
    )
    assert inline("-" * 20 + "y_pred") == "-(" * 19 + "-\\hat{y}" + ")" * 19
    # an absolute value is a call: plain bars nest ambiguously, `y |y |\hat{y}||` (a review)
    assert (
        inline("abs(" * 20 + "e" + ")" * 20)
        == "\\mathrm{abs}(" * 20 + "y - \\hat{y}" + ")" * 20
    )
    nested = inline("y_true*abs(" * 14 + "y_pred" + ")" * 14)
    assert nested == "y \\mathrm{abs}(" * 14 + "\\hat{y}" + ")" * 14
    # (a fraction of a product, parenthesized; fractions of sums nest at most 8 deep:
    # symbolic.MAX_NESTED_POWERS)
    fractions = inline("1/(2*cosh(" * 20 + "y_pred" + "))" * 20)
    assert fractions == "1/(2 \\cosh(" * 20 + "\\hat{y}" + "))" * 20
    gradient = lossdsl.compile("sin(" * 20 + "y_pred" + ")" * 20).latex(gradient=True)
    assert gradient.startswith(
        r"\frac{\partial L}{\partial \hat{y}} = \cos(\hat{y}) \cos(\sin(\hat{y}))"
    )
    # ... and what fits keeps its usual spelling
    assert (
        inline("sin(" * 5 + "y_pred" + ")" * 5)
        == r"\sin\left(" * 5 + r"\hat{y}" + r"\right)" * 5
    )


def test_flat_spelling_of_fractions_and_roots():
    deep = r"\left(" * MATHTEXT_MAX_DEPTH
    closing = r"\right)" * MATHTEXT_MAX_DEPTH
    tex = (
        deep
        + r"\frac{\sqrt{x + 1}}{2 \frac{a}{b}} + \sqrt{\frac{1}{y}} + \cos{\left(x\right)}"
        + closing
    )
    flat = (
        "(" * MATHTEXT_MAX_DEPTH
        + "(x + 1)^{1/2}/(2 a/b) + (1/y)^{1/2} + \\cos(x)"
        + ")" * MATHTEXT_MAX_DEPTH
    )
    assert within_mathtext_depth(tex) == flat
    within = r"\left(" * 10 + r"\frac{\sqrt{x + 1}}{2}" + r"\right)" * 10
    assert nesting_depth(within) == MATHTEXT_MAX_DEPTH
    assert within_mathtext_depth(within) == within
    assert (
        within_mathtext_depth(deep + r"e^{e^{x}} + \hat{e}^{2}" + closing)
        == "(" * 12 + r"\exp(\exp(x)) + \hat{e}^{2}" + ")" * 12
    )
    # a root's braces are its argument, not a function's parenthesised one
    assert within_mathtext_depth(deep + r"\sqrt{\left(x\right)}" + closing).endswith(
        "(x)^{1/2}" + ")" * 12
    )
    # fractions inside fractions and roots, side by side, and a power of a root: each operand is
    # spelled flat before its fraction is, and what follows a fraction is read as written (a
    # fraction's head there is a factor, as its flat spelling is)
    tex = (
        deep
        + r"\frac{\frac{a}{b} + 1}{\sqrt{\frac{c}{d}}}\frac{x}{y} + \sqrt{\frac{1}{z}}^{2}"
        + closing
    )
    flat = "(" * 12 + "((a/b + 1)/(c/d)^{1/2})x/y + ((1/z)^{1/2})^{2}" + ")" * 12
    assert within_mathtext_depth(tex) == flat


DEEP = "sin(" * 13 + "y_pred" + ")" * 13


@pytest.mark.parametrize(
    "program, flat",
    [
        # products of upright names run on (`\,`), as do `\log\sum` and `\log\operatorname`: as an
        # operand each was written bare, `\hat{y}/\mathrm{foo}\,\mathrm{bar}` for y_pred / (foo * bar)
        (
            "param foo = 2\nparam bar = 3\ny_pred / (foo * bar) + " + DEEP,
            r"\hat{y}/(\mathrm{foo}\,\mathrm{bar})",
        ),
        (
            "param foo = 2\nsqrt(foo * y_pred) + " + DEEP,
            r"(\mathrm{foo}\,\hat{y})^{1/2}",
        ),
        (
            "sqrt(logsumexp(y_pred)) + sum(" + DEEP + ")",
            r"(\log\sum_{c}\exp(\hat{y}_{c}))^{1/2}",
        ),
        (
            "logsumexp(y_pred) / 2 + sum(" + DEEP + ")",
            r"(\log\sum_{c}\exp(\hat{y}_{c}))/2",
        ),
        (
            "log_softmax(y_pred) / 2 + " + DEEP,
            r"(\log\operatorname{softmax}(\hat{y}))/2",
        ),
        # a factor after a flat fraction would read as part of its denominator
        ("y_true * mean(y_pred) + " + DEEP, r"y (1/C)\sum_{c} \hat{y}_{c}"),
        ("y_true / y_pred * y_true + " + DEEP, r"(y/\hat{y}) y + "),
        # atoms stay bare
        ("y_true / y_pred + " + DEEP, r"y/\hat{y} + "),
        ("exp(y_pred) / y_true + " + DEEP, r"\exp(\hat{y})/y + "),
    ],
)
def test_the_flat_spelling_keeps_what_each_operand_groups(program, flat):
    tex = lossdsl.compile(program).latex()
    assert nesting_depth(tex) <= MATHTEXT_MAX_DEPTH and flat in tex, tex


def test_library_strings_keep_their_usual_spelling():
    for name in lossdsl.library.names():
        spec = lossdsl.library.compile(name)
        for tex in (spec.latex(), spec.latex(gradient=True)):
            assert nesting_depth(tex) <= MATHTEXT_MAX_DEPTH, name


def test_the_usual_spelling_is_kept_within_the_budget():
    assert inline(LARGE_FOR_KATEX["relu-333"]).count(r"\operatorname{relu}") == 333
    assert katex_expansions(inline(LARGE_FOR_KATEX["relu-333"])) == 999
    cheap = inline(LARGE_FOR_KATEX["relu-334"])
    assert r"\operatorname" not in cheap and cheap.count(r"\mathrm{relu}") == 334
    assert r"\not=" in inline(LARGE_FOR_KATEX["not-equal-300"])


def test_the_latex_of_one_program_is_written_once(monkeypatch):
    # `lossdsl docs` checks each gradient's LaTeX before starting Keras, then writes the page from
    # a loss compiled again under its class name: the same program, the same LaTeX, built once
    # (a gradient's LaTeX can take seconds).
    from lossdsl.emit import latex

    calls = []
    emit = latex.emit_latex
    monkeypatch.setattr(
        latex,
        "emit_latex",
        lambda *args, **kwargs: calls.append(kwargs) or emit(*args, **kwargs),
    )
    source = "# written once\na = log(1 + exp(-y_pred * y_true))\na^2 + 0.25 * e^2"
    first = lossdsl.compile(source).latex(gradient=True)
    second = lossdsl.compile(source, name="Named").latex(gradient=True, display=True)
    assert second == first and first.startswith(
        r"\frac{\partial L}{\partial \hat{y}} = "
    )
    assert calls == [{"gradient": True, "display": True}]
    lossdsl.compile(source).latex(inline=True)
    assert len(calls) == 2 and calls[1] == {"gradient": False, "display": False}


def test_factoring_the_gradient_leaves_no_whole_float_behind():
    # `0.5 a^2 / beta` differentiates to `0.5 (2 y_pred - 2 y_true) / beta`; factored, that was
    # `1.0 (y_pred - y_true) / beta`, printed `\frac{1 \left(\hat{y} - y\right)}{\beta}` (a user test).
    spec = lossdsl.compile(
        "param beta = 1.0\na = abs(e)\nwhere(a < beta, 0.5 * a^2 / beta, a - 0.5 * beta)"
    )
    assert spec.latex(gradient=True, display=True).split("\n")[1] == (
        r"\frac{\hat{y} - y}{\beta} & \text{if } \beta > \left|{\hat{y} - y}\right| \\"
    )


@pytest.mark.parametrize(
    "source, gradient",
    [
        # the builtin eps reads as the loss's LaTeX writes it (a new-user trial: `10^{-7}`, `0.9999999`)
        (
            "log(clip(y_pred, eps, 1 - eps))",
            r"\frac{\theta\left(\hat{y} - \epsilon\right) \theta\left(1 - \epsilon",
        ),
        (
            "1 / (y_pred^2 + eps)",
            r"- \frac{2 \hat{y}}{\left(\epsilon + \hat{y}^{2}\right)^{2}}",
        ),
        # `1 + eps`, which SymPy folds to 1.0000001 (a review)
        ("log(1 + eps - y_pred)", r"- \frac{1}{\epsilon + 1 - \hat{y}}"),
        ("-log(y_pred - 1 - eps)", r"- \frac{1}{\hat{y} - \epsilon - 1}"),
        # ... not where a user's name is epsilon (the loss writes eps's value there too)
        (
            "param epsilon = 0.5\nepsilon / (y_pred^2 + eps)",
            r"- \frac{2 \epsilon \hat{y}}{\left(\hat{y}^{2} + 10^{-7}\right)^{2}}",
        ),
        # ... where `1 + eps` and `1 - eps` read as the loss writes them, with eps's value (a review:
        # `1.0000001`)
        (
            "param epsilon = 0.1\nepsilon*abs(e) + log(1 + eps + abs(e))",
            r"\left(\epsilon + \frac{1}{10^{-7} + \left|{\hat{y} - y}\right| + 1}\right)",
        ),
        (
            "param epsilon = 0.5\nlog(clip(y_pred, eps, 1 - eps))",
            r"\frac{\theta\left(\hat{y} - 10^{-7}\right) \theta\left(1 - 10^{-7} - \hat{y}\right)}",
        ),
        # ... nor where a user's name is `\varepsilon`, which reads as the same letter (a review)
        (
            "param varepsilon = 0.2\nvarepsilon * y_pred^2 + log(y_pred + eps)",
            r"2 \varepsilon \hat{y} + \frac{1}{\hat{y} + 10^{-7}}",
        ),
        # ... nor a program that does not read the builtin eps
        (
            "1 / (y_pred^2 + 1e-7)",
            r"- \frac{2 \hat{y}}{\left(\hat{y}^{2} + 10^{-7}\right)^{2}}",
        ),
        (
            "eps = 1e-6\n1 / (y_pred^2 + eps)",
            r"- \frac{2 \hat{y}}{\left(\hat{y}^{2} + 10^{-6}\right)^{2}}",
        ),
    ],
)
def test_the_gradient_writes_the_builtin_eps_as_epsilon(source, gradient):
    assert lossdsl.compile(source).latex(gradient=True).startswith(GRAD + gradient)


@pytest.mark.parametrize(
    "source, gradient, expected",
    [
        # A name subscripted with the sum's index read as one value per class (a review)
        (
            "param w_c = 2.0\n-sum(w_c * y_true * y_pred)",
            False,
            r"-\sum_{c} \mathrm{w\_c}\,y_{c} \hat{y}_{c}",
        ),
        # a Greek letter that names a function, or an upright name, before parentheses: a product, not a call
        (
            "param sigma = 1.0\nsigma * (1 - y_pred)",
            False,
            r"\sigma \cdot \left(1 - \hat{y}\right)",
        ),
        (
            "param theta = 1.0\ntheta * (y_pred - y_true)",
            False,
            r"\theta \cdot \left(\hat{y} - y\right)",
        ),
        (
            "param scale = 1.0\nscale * (1 - y_pred)",
            False,
            r"\mathrm{scale} \cdot \left(1 - \hat{y}\right)",
        ),
        (
            "param alpha = 1.0\nalpha * (1 - y_pred)^2",
            False,
            r"\alpha \left(1 - \hat{y}\right)^{2}",
        ),
        # with an upright subscript, a power or a prime too (a second review)
        (
            "param sigma_min = 1.0\nsigma_min*(1 - y_pred)",
            False,
            r"\sigma_{\mathrm{min}} \cdot \left(1 - \hat{y}\right)",
        ),
        (
            "param sigma = 1.0\nsigma^2*(1 - y_pred)",
            False,
            r"\sigma^{2} \cdot \left(1 - \hat{y}\right)",
        ),
        (
            "param sigma = 1.0\nsigma^2*(y_pred - 1)^2",
            True,
            r"2 \sigma^{2} \cdot \left(\hat{y} - 1\right)",
        ),
        (
            "param bce_ = 1.0\nparam bce = 2.0\nbce*(1 - y_pred) + bce_*y_pred",
            False,
            r"\mathrm{bce} \cdot \left(1 - \hat{y}\right) + \mathrm{bce\_}\,\hat{y}",
        ),
        (
            "param sigma = 1.0\nsigma * (y_pred - y_true)^2",
            True,
            r"2 \sigma \cdot \left(\hat{y} - y\right)",
        ),
        # a step with its own value at 0 as the condition it tests; the imaginary unit upright
        (
            "max(y_pred)",
            True,
            r"\frac{\left[\hat{y} - \max_{c} \hat{y}_{c} \geq 0\right]}"
            r"{\sum_{c} \left[\hat{y}_{c} - \max_{c'} \hat{y}_{c'} \geq 0\right]}",
        ),
        (
            "param i = 2\ni * y_pred + (-1)^y_pred",
            True,
            r"i + \mathrm{i}\,\pi \left(-1\right)^{\hat{y}}",
        ),
        # upright words side by side take a thin space, as in the loss: `\mathrm{aa} \mathrm{bb}` read aabb
        (
            "param aa = 1\nparam bb = 2\nparam aabb = 3\naa*bb*y_pred + aabb*y_pred^2",
            True,
            r"\mathrm{aa}\,\mathrm{bb} + 2\,\mathrm{aabb}\,\hat{y}",
        ),
        (
            "param lam = 2\nlam * e^2",
            True,
            r"2\,\mathrm{lam} \cdot \left(\hat{y} - y\right)",
        ),
        # `cases` that more terms follow, in parentheses
        (
            "where(y_pred > 0, y_pred^2, y_pred) + y_pred",
            "display",
            r"\left(\begin{cases}"
            "\n"
            r"2 \hat{y} & \text{if } \hat{y} > 0 \\"
            "\n"
            r"1 & \text{otherwise}"
            "\n"
            r"\end{cases}\right) + 1",
        ),
        # a number before a mean's fraction: `2 \frac{1}{C}` read as two and 1/C (a review, 2026-12-05)
        (
            "mean(e)^2",
            True,
            r"- \frac{2 \cdot \frac{1}{C}\sum_{c} \left(y_{c} - \hat{y}_{c}\right)}{C}",
        ),
        (
            "3*mean(y_pred)*y_pred",
            True,
            # (since 2026-12-07 the 3 comes out of the sum, and then out of both terms)
            r"3 \left(\frac{1}{C}\sum_{c} \hat{y}_{c} + \frac{\sum_{c} \hat{y}_{c}}{C}\right)",
        ),
    ],
)
def test_latex_that_could_be_misread(source, gradient, expected):
    """Each was a formula a reader could take for another (a review of the LaTeX, 2026-12-04)."""
    spec = lossdsl.compile(source)
    if gradient == "display":
        text = spec.latex(gradient=True, display=True)
    else:
        text = spec.latex(gradient=True) if gradient else spec.latex()
    assert text.removeprefix(SUMMED if "mean(y_pred)*" in source else GRAD) == expected
