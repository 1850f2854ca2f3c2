"""Every stage that dispatches on the syntax tree's node kinds handles every expression kind.

The stages look their method up by name (`visit_<Kind>`, `range_<Kind>`), as SymPy's printers do;
a kind added to `lossdsl.nodes` without a method in one of them would fail only on a program that
uses it. This lists, for each stage, the kinds it misses.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from lossdsl import nodes
from lossdsl.checks.domain import _Ranges
from lossdsl.emit.latex import LatexWriter
from lossdsl.semantics import _Analyzer
from lossdsl.symbolic import _Translator

# The statements and the program are walked by each stage itself, not dispatched by kind.
_NOT_EXPRESSIONS = {"Node", "Assign", "Param", "Program"}


def _expression_kinds() -> list[str]:
    return sorted(
        name
        for name, cls in inspect.getmembers(nodes, inspect.isclass)
        if issubclass(cls, nodes.Node)
        and cls.__module__ == nodes.__name__
        and name not in _NOT_EXPRESSIONS
    )


def test_the_expression_kinds_are_the_ones_the_language_has():
    # (a new kind makes this fail first, with a reminder of the stages below)
    assert _expression_kinds() == [
        "BoolOp",
        "Call",
        "Chain",
        "Compare",
        "Name",
        "Not",
        "Number",
        "Power",
        "Unary",
        "Vector",
    ]
    assert all(
        dataclasses.is_dataclass(getattr(nodes, kind)) for kind in _expression_kinds()
    )


@pytest.mark.parametrize(
    "stage, prefix",
    [
        (_Analyzer, "visit_"),
        (_Translator, "visit_"),
        (LatexWriter, "visit_"),
        (_Ranges, "range_"),
    ],
    ids=["semantics", "symbolic", "latex", "domain ranges"],
)
def test_each_stage_has_a_method_for_every_expression_kind(stage, prefix):
    missing = [
        kind
        for kind in _expression_kinds()
        if not callable(getattr(stage, prefix + kind, None))
    ]
    assert missing == []
