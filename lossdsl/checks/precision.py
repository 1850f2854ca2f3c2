"""Numbers a float32 loss cannot hold: a warning at each one.

Input: a resolved program. Output: a `float32` warning at every number written
(or parameter default) beyond float32's range, which a float32 loss (Keras's
default dtype) reads as inf, and at every nonzero one so small that it reads as
0. The compile itself is exact in float64, where `1e39` is an ordinary number;
the generated code converts each number to the loss's dtype (docs/decisions.md).
"""

from __future__ import annotations

from lossdsl import nodes
from lossdsl.errors import Diagnostic
from lossdsl.semantics import Resolved

# float32's largest number plus half a unit in its last place: anything larger rounds to inf.
FLOAT32_INF_FROM = 3.4028235677973366e38
# Half of float32's smallest subnormal (1.4e-45): anything nonzero below it rounds to 0.
FLOAT32_ZERO_BELOW = 7.006492321624085e-46


def check_float32(resolved: Resolved) -> list[Diagnostic]:
    """A warning at each number of the program that float32 reads as inf or as 0."""
    found = []
    for node in nodes.walk(resolved.program):
        if isinstance(node, nodes.Number):
            value, text = node.value, node.text
        elif isinstance(node, nodes.Param):
            value, text = node.default, node.text
        else:
            continue
        if abs(value) >= FLOAT32_INF_FROM:
            message = (
                f"`{text}` is beyond float32's range (about 3.4e38): a float32 loss, Keras's default, reads it as inf"
            )
        elif 0 < abs(value) < FLOAT32_ZERO_BELOW:
            message = f"`{text}` is below float32's smallest number (about 1.4e-45): a float32 loss reads it as 0"
        else:
            continue
        span = node.span
        found.append(Diagnostic("warning", message, span.line, span.column, "float32", span, resolved.source))
    return found
