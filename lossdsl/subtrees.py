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
        key = id(node)
        if key in seen:
            continue
        seen.add(key)
        if isinstance(node, types):
            found.add(node)
        # in SymPy's preorder (Max, Min, And and Or by their argument sets, as SymPy walks them),
        # so that the sets are built in the same order, and iterate alike (`args` is not asked of
        # those: an And's sorts its set)
        argset = getattr(node, "_argset", None)
        if argset is None:
            args = node.args
            if args:
                stack.extend(args[::-1])
        else:
            stack.extend(list(argset)[::-1])
    return found


def free_symbols(expr: sp.Basic) -> set:
    """`expr.free_symbols` of a tree that binds no variable (lossdsl's trees bind none): the same
    set, not in the same order (SymPy unites its arguments' sets), so for membership and set
    algebra, not for a loop whose order matters."""
    return atoms(expr, sp.Symbol)


def size(expr: sp.Basic, limit: int) -> int:
    """The number of nodes `sympy.preorder_traversal(expr)` visits (a part shared by several places
    once at each), counted up to `limit` + 1, where it stops; without recursion (SymPy's nested
    generators cost the depth at each node)."""
    count, stack = 0, [expr]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        argset = getattr(node, "_argset", None)
        stack.extend(node.args if argset is None else argset)
    return count


def known_free_symbols(expr: sp.Basic, memo: dict) -> frozenset:
    """`expr.free_symbols`, as a frozenset, each distinct part's found once and kept in `memo` (a
    dict a caller keeps for questions about many parts of one tree: SymPy's walks the whole part
    at each question). A part whose free symbols are its arguments' (SymPy's `Basic.free_symbols`)
    unites theirs; any other (an atom, a part that binds a variable) is asked itself."""
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in memo:
            continue
        if not node.args or not _union_of_arguments(type(node)):
            memo[node] = frozenset(node.free_symbols)
        elif ready:
            memo[node] = frozenset().union(*(memo[a] for a in node.args))
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in memo)
    return memo[expr]


def _union_of_arguments(cls: type) -> bool:
    """The free symbols of an instance of `cls` are its arguments' (its `free_symbols` is `Basic`'s)."""
    found = _FREE_SYMBOLS_OF.get(cls)
    if found is None:
        owner = next((k for k in cls.__mro__ if "free_symbols" in vars(k)), None)
        found = _FREE_SYMBOLS_OF[cls] = owner is sp.Basic
    return found


_FREE_SYMBOLS_OF: dict[type, bool] = {}


def outside(
    expr: sp.Basic, stop: tuple[type, ...], follow: dict | None = None
) -> Iterator[sp.Basic]:
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
