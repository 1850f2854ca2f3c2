"""Questions about a SymPy tree asked of each distinct subtree once.

A binding read in many places is one object, shared wherever it is inlined; SymPy's `atoms`
and `free_symbols` walk it again at each place. A binding of 240 terms read by 59 `where`s
is a tree of some 14,000 nodes for them, and of some 300 here (a fuzzed program took 2 s to
compile, most of it in such walks). Each walk is iterative (no recursion on deep trees).
"""

from __future__ import annotations

from collections.abc import Iterator

import sympy as sp


def atoms(expr: sp.Basic, *types: type) -> set:
    """`expr.atoms(*types)`: the subexpressions of `expr` that are instances of `types`."""
    found: set = set()
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, types):
            found.add(node)
        # in SymPy's preorder (Max, Min, And and Or by their argument sets, as SymPy walks them),
        # so that the sets are built in the same order, and iterate alike
        stack.extend(reversed(list(getattr(node, "_argset", node.args))))
    return found


def free_symbols(expr: sp.Basic) -> set:
    """`expr.free_symbols` of a tree that binds no variable (lossdsl's trees bind none): the same
    set, not in the same order (SymPy unites its arguments' sets), so for membership and set
    algebra, not for a loop whose order matters."""
    return atoms(expr, sp.Symbol)


def outside(expr: sp.Basic, stop: tuple[type, ...], follow: dict | None = None) -> Iterator[sp.Basic]:
    """The distinct subexpressions of `expr` that lie outside every node of the types `stop`
    (those nodes themselves left out), in no set order; with `follow`, each symbol of it is read
    through to its value as well (a binding's symbol and its value)."""
    seen: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, stop):
            continue
        seen.add(id(node))
        yield node
        if follow and node in follow:
            stack.append(follow[node])
        stack.extend(node.args)


def preorder(expr: sp.Basic, descend=None) -> Iterator[sp.Basic]:
    """The distinct subexpressions of `expr`, each once, in preorder along `.args` (an order that
    reads no hash); with `descend`, below only the nodes for which it is true."""
    seen: set = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        yield node
        if descend is None or descend(node):
            stack.extend(reversed(node.args))
