"""Plots of compiled losses: the loss and its gradient with respect to y_pred.

Input: one or more `CompiledLoss` objects. Output: one PNG or SVG file (by
the output's extension) with two panels, the loss and its gradient, one
colour per loss. The values come from the generated Keras loss itself
(`keras_loss().call` on small float32 tensors, gradients by the active Keras
backend's own autodiff: `tf.GradientTape`, `jax.value_and_grad`, `torch.autograd`), so
the picture shows what users ship.

The x axis depends on the kind of loss (`infer_kind` decides; `kind=`
overrides):

* "regression": against the error `e = y - y_hat` in [-3, 3], with y = 0
  (so y_pred = -e); one curve per loss. A parameter that sets a larger scale
  widens it to twice the largest parameter (at most 1000).
* "positive": against y_pred in (0, 4], for y = 1 (solid) and y = 2
  (dashed): losses on positive targets (rates, percentages, logarithms),
  where y = 0 is a degenerate case.
* "probability": against y_pred = p in (0, 1), for y = 1 (solid) and y = 0
  (dashed). Programs over the last axis (reductions, vector functions,
  `onehot`) get two classes: y_pred = [p, 1 - p], y_true one-hot (or class
  ids for `onehot` programs), and "y = 1" means the first class is the true
  one (labelled "y = 1 (class id 0)" where a loss reads class ids); the
  gradient is then the derivative along p.
* "logits": against the logit z in [-6, 6], for y = 1 and y = 0; with two
  classes y_pred = [z, 0] (so softmax gives sigmoid(z)).

Non-finite values are left out of the curves; each panel's y range is
clipped to the bulk of the values, so a gradient that blows up near 0 or 1
runs off the panel instead of flattening the rest. Each legend entry shows
the formula (`spec.latex(inline=True)` in mathtext), or the name when
mathtext cannot parse it or it is too wide for the figure. SVG output is
deterministic (fixed hash salt, no date), so it can be compared in tests.

Limits: needs a Keras backend with autodiff (TensorFlow, JAX or PyTorch);
losses of different kinds share a figure only with `kind=` given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp

from lossdsl import nodes, rebuild
from lossdsl.functions import kind_of
from lossdsl.outputs import write_atomically
from lossdsl.semantics import SAMPLE

__all__ = [
    "FORMATS",
    "KINDS",
    "Curve",
    "evaluate",
    "infer_kind",
    "legend_text",
    "plot_losses",
    "robust_limits",
]

KINDS = ("regression", "positive", "probability", "logits")
FORMATS = (".png", ".svg")

# Functions that read y_pred as logits (or scores) when applied to it directly.
LOGIT_FUNCTIONS = frozenset(
    {"sigmoid", "softmax", "log_softmax", "logsumexp", "softplus"}
)
# Bundled losses whose program carries no signal `infer_kind` reads; keyed by name,
# used only while the program text is the bundled one.
BUNDLED_KINDS = {
    "categorical_hinge": "logits",  # scores against one-hot labels
    "cosine_similarity": "probability",  # a smooth curve on [p, 1 - p]; a step on [z, 0]
    "dice": "probability",
}

# x grids: odd sizes, so that 0 (regression, logits) and 0.5 (probability) are on them.
_POINTS = 201
_GRIDS = {
    "regression": (-3.0, 3.0),
    "positive": (1e-3, 4.0),
    "probability": (0.005, 0.995),
    "logits": (-6.0, 6.0),
}
# The labels of the curves, and the y_true value each one stands for.
_TARGETS = {
    "regression": ((None, 0.0),),
    "positive": (("$y = 1$", 1.0), ("$y = 2$", 2.0)),
    "probability": (("$y = 1$", 1.0), ("$y = 0$", 0.0)),
    "logits": (("$y = 1$", 1.0), ("$y = 0$", 0.0)),
}
_STYLES = ("-", "--")
_X_LIMITS = {"probability": (0.0, 1.0), "positive": (0.0, 4.0)}
_FIGSIZE = (10.0, 3.6)  # inches; each loss adds a legend line of _LEGEND_LINE
_LEGEND_LINE = 0.4
_LEGEND_SIZES = (
    9.0,
    7.0,
)  # points: the formula's size, and a smaller one for long formulas
# A formula this long in LaTeX fits no legend at a readable size, and mathtext's parse grows with
# its length: 390 KB (fourteen nested `erf(x) + x`, from a program of 300 characters) took two
# minutes (a review). The longest bundled loss's is 468 characters.
_LEGEND_TEX_CHARS = 4000
_RC = {
    "svg.hashsalt": "lossdsl",
    "svg.fonttype": "path",
    "path.simplify": False,  # which points survive simplification must not hang on rounding noise
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10.0,
}


@dataclass(frozen=True)
class Curve:
    """One curve of one loss: x values, the loss, the gradient, and which y_true it is for."""

    x: np.ndarray
    loss: np.ndarray
    gradient: np.ndarray
    target: str | None


class NeedsAutodiff(RuntimeError):
    """Plotting under a Keras backend whose gradients lossdsl cannot take (not TensorFlow, JAX or
    PyTorch: OpenVINO, say)."""


class KindRefused(ValueError):
    """A loss the chosen kind of x axis cannot plot where another kind can (class ids, or a softmax
    across classes, plotted against e): with `plot --kind`, the command line's choice."""


class MixedKinds(ValueError):
    """Losses that need different x axes, plotted together without a `kind`."""

    def __init__(self, listed: str) -> None:
        self.listed = listed  # each loss with its kind: "huber (regression), formula (probability)"
        super().__init__(
            f"these losses need different x axes: {listed}; choose one with kind="
        )


def infer_kind(spec) -> str:
    """The kind of x axis that suits a compiled loss: one of KINDS.

    Reads the program: `clip` of y_pred, `log(y_pred)`, `log(1 - y_pred)` or
    `1 - y_pred` mean probabilities; `sigmoid`, `softmax`, `log_softmax`,
    `logsumexp` or `softplus` of y_pred mean logits; `onehot` labels
    without logits mean probabilities; a comparison of y_true with a constant
    (labels such as `y_true == 0`) means scores, plotted as logits; a loss
    that is a function of `e` alone is a regression loss; anything else is
    plotted against positive y_pred.
    """
    from lossdsl import library

    for name, kind in BUNDLED_KINDS.items():
        if spec.source == library.source(name):
            return kind
    r = spec.resolved
    every = list(nodes.walk(r.program))
    calls = [n for n in every if isinstance(n, nodes.Call)]

    def pred_only(node: nodes.Node) -> bool:
        info = r.of(node)
        return info.pred and not info.true

    if (
        any(c.func == "clip" and c.args and pred_only(c.args[0]) for c in calls)
        or any(
            c.func == "log" and c.args and _probability_like(r, c.args[0])
            for c in calls
        )
        or any(_one_minus_pred(r, n) for n in every)
    ):
        return "probability"
    if any(
        c.func in LOGIT_FUNCTIONS and c.args and pred_only(c.args[0]) for c in calls
    ):
        return "logits"
    if r.uses_onehot:
        return "probability"
    if any(isinstance(n, nodes.Compare) and _label_test(r, n) for n in every):
        return "logits"
    if _function_of_e(spec.expr):
        return "regression"
    return "positive"


def _deref(r, node: nodes.Node) -> nodes.Node:
    """The value a binding reference stands for (followed through chains of bindings)."""
    seen = 0
    while isinstance(node, nodes.Name) and seen < 1000:
        value = r.binding_value(node)
        if value is None:
            return node
        node, seen = value, seen + 1
    return node


def _is_pred(r, node: nodes.Node) -> bool:
    node = _deref(r, node)
    return isinstance(node, nodes.Name) and r.refs.get(id(node)) == ("input", "y_pred")


def _one_minus_pred(r, node: nodes.Node) -> bool:
    """`1 - y_pred`, exactly."""
    node = _deref(r, node)
    return (
        isinstance(node, nodes.Chain)
        and node.kind == "add"
        and node.ops == ("-",)
        and isinstance(node.operands[0], nodes.Number)
        and node.operands[0].value == 1
        and _is_pred(r, node.operands[1])
    )


def _probability_like(r, node: nodes.Node) -> bool:
    """y_pred, 1 - y_pred, or a clip of something that depends on y_pred alone."""
    node = _deref(r, node)
    if _is_pred(r, node) or _one_minus_pred(r, node):
        return True
    if isinstance(node, nodes.Call) and node.func == "clip" and node.args:
        info = r.of(node.args[0])
        return info.pred and not info.true
    return False


def _label_test(r, node: nodes.Compare) -> bool:
    """A comparison of y_true with a constant (`y_true == 0`): y_true holds labels."""
    left, right = r.of(node.left), r.of(node.right)
    sides = ((left, right), (right, left))
    return any(a.true and not a.pred and not b.pred and not b.true for a, b in sides)


def _function_of_e(expr: sp.Expr) -> bool:
    """True when the loss depends on y_true and y_pred only through y_true - y_pred."""
    symbols = {s.name: s for s in expr.free_symbols if isinstance(s, sp.Symbol)}
    y_true, y_pred = symbols.get("y_true"), symbols.get("y_pred")
    if y_pred is None or y_true is None:
        return False
    error = sp.Dummy("e")
    # Built bottom-up, each shared part once, a max, min or `where` as it stands: `xreplace` rebuilt
    # a shared part wherever it is read and compared each max's arguments again (a 335-character
    # chain of `maximum(a, 1 - a)` on y_true took `lossdsl plot` 100 s; a review)
    return y_pred not in rebuild.inlined(expr, {y_true: y_pred + error}).free_symbols


def _over_last_axis(spec) -> bool:
    """True when the program works across the last axis (reductions, vector functions, onehot)."""
    r = spec.resolved
    for node in nodes.walk(r.program):
        if isinstance(node, nodes.Call) and kind_of(node.func, len(node.args)) in (
            "reduction",
            "vector",
            "labels",
        ):
            return True
        if (isinstance(node, nodes.Vector) and len(node.items) > 1) or r.of(
            node
        ).shape == SAMPLE:
            return True
    return False


# ---------------------------------------------------------------- evaluation


# A regression loss's parameters may set a scale past [-3, 3] (a Wing loss with w = 10 changes
# branch at |e| = 10: a user test saw one branch only): the axis reaches twice the largest, up to this.
_MAX_REACH = 1000.0


def x_range(specs, kind: str) -> tuple[float, float]:
    """The x axis's range for `specs` drawn together: the kind's, and for regression losses, wide
    enough for twice their largest parameter (at most `_MAX_REACH`)."""
    lo, hi = _GRIDS[kind]
    if kind != "regression":
        return lo, hi
    scale = max(
        (abs(value) for spec in specs for value in spec.params.values()), default=0.0
    )
    reach = min(max(hi, 2 * scale), _MAX_REACH)
    return -reach, reach


def evaluate(
    spec, kind: str, span: tuple[float, float] | None = None, label: str | None = None
) -> list[Curve]:
    """The curves of one loss for a kind of x axis, computed with its generated Keras loss
    (`span`: the axis's range; default `x_range([spec], kind)`; `label`: as `plot_losses`'s,
    the name an error gives the loss: a file's stem, as the legend shows it, or `<-e>`)."""
    name = _display_name(spec, label) or label
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() not in _AUTODIFF:
        raise NeedsAutodiff(
            "plotting needs a Keras backend with gradients: tensorflow, jax or torch"
            f" (KERAS_BACKEND={keras.backend.backend()} is set)"
        )

    loss = spec.keras_loss()
    lo, hi = span or x_range([spec], kind)
    x = np.linspace(lo, hi, _POINTS)
    # Two classes per row, unless a list sets another width (`[0, 1, 0.5] != y_true`: a column
    # of y_pred is broadcast against it instead; found by a review).
    # (A list of one value broadcasts along any row: it sets no width.)
    widths = {
        len(node.items)
        for node in nodes.walk(spec.resolved.program)
        if isinstance(node, nodes.Vector)
    } - {1}
    two_classes = (
        kind in ("probability", "logits") and _over_last_axis(spec) and widths <= {2}
    )
    ids = spec.resolved.uses_onehot
    if ids and not two_classes:
        if not widths <= {2}:
            raise ValueError(
                f"{name} reads class ids (onehot) and a list of {max(widths)} values: it has no two-class plot"
            )
        raise KindRefused(
            f"{name} reads class ids (onehot): plot it as probability or logits"
        )
    across = None if two_classes else _across_one_column(spec)
    if across is not None:
        # One column of y_pred: a softmax of it is 1 everywhere, a normalize its sign (a flat curve,
        # and Keras's warning of a softmax over an axis of 1; a review).
        where = (
            "classes: plot it as probability or logits"
            if widths <= {2}
            else (f"a list of {max(widths)} values: it has no two-class plot")
        )
        refused = KindRefused if widths <= {2} else ValueError
        raise refused(f"{name} takes {across} across {where}")
    curves = []
    for target_label, target in _TARGETS[kind]:
        # The variable differentiated: y_pred itself, or p / z of the two-class y_pred.
        along = (-x if kind == "regression" else x).astype("float32")
        if two_classes:
            first = 0 if target == 1.0 else 1
            y_true = (
                np.full(len(x), first, "int32")
                if ids
                else np.eye(2, dtype="float32")[[first] * len(x)]
            )
        else:
            y_true = np.full((len(x), 1), target, "float32")
        labels = keras.ops.convert_to_tensor(y_true)

        def per_sample(var, labels=labels):
            if not two_classes:
                y_pred = var[:, None]
            elif kind == "probability":
                y_pred = keras.ops.stack([var, 1.0 - var], axis=-1)
            else:
                y_pred = keras.ops.stack([var, keras.ops.zeros_like(var)], axis=-1)
            return keras.ops.reshape(loss.call(labels, y_pred), [-1])

        values, grads = _AUTODIFF[keras.backend.backend()](per_sample, along)
        curves.append(Curve(x, _finite(values), _finite(grads), target_label))
    return curves


def _tensorflow_autodiff(function, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`function(x)` (one value per element of `x`) and the gradient of their sum, as NumPy
    arrays, by TensorFlow's tape (a loss that does not read `x` has the gradient 0)."""
    import tensorflow as tf

    var = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(var)
        values = function(var)
    grads = tape.gradient(values, var)
    return values.numpy(), (np.zeros_like(x) if grads is None else grads.numpy())


def _jax_autodiff(function, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As `_tensorflow_autodiff`, by `jax.value_and_grad` of the sum (the values carried along)."""
    import jax
    import jax.numpy as jnp

    def total(var):
        values = function(var)
        return jnp.sum(values), values

    (_, values), grads = jax.value_and_grad(total, has_aux=True)(jnp.asarray(x))
    return np.asarray(values), np.asarray(grads)


def _torch_autodiff(function, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As `_tensorflow_autodiff`, by `torch.autograd.grad` of the sum (on Keras's device)."""
    import keras
    import torch

    var = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
    values = function(var)
    (grads,) = torch.autograd.grad(values.sum(), var, allow_unused=True)
    grads = torch.zeros_like(var) if grads is None else grads
    return values.detach().cpu().numpy(), grads.detach().cpu().numpy()


# Each Keras backend's autodiff, by `keras.backend.backend()`.
_AUTODIFF = {
    "tensorflow": _tensorflow_autodiff,
    "jax": _jax_autodiff,
    "torch": _torch_autodiff,
}


def _across_one_column(spec) -> str | None:
    """The first vector function (`softmax`, `log_softmax`, `normalize`) that the loss reads,
    of y_pred and of no list, through bindings: in a plot of one column of y_pred it is taken
    across that column (and is flat). One of y_true alone, or in a binding the loss does not
    read, is plotted as it was (a review)."""
    r = spec.resolved
    for node in _read(r, r.program.result):
        if (
            isinstance(node, nodes.Call)
            and kind_of(node.func, len(node.args)) == "vector"
        ):
            if any(r.of(arg).pred for arg in node.args) and not any(
                isinstance(part, nodes.Vector) and len(part.items) > 1
                for arg in node.args
                for part in _read(r, arg)
            ):
                return node.func
    return None


def _read(r, node: nodes.Node):
    """Every node under `node`, and under the values of the bindings it reads, each value once."""
    stack, seen = [node], set()
    while stack:
        for part in nodes.walk(stack.pop()):
            yield part
            value = r.binding_value(part) if isinstance(part, nodes.Name) else None
            if value is not None and id(value) not in seen:
                seen.add(id(value))
                stack.append(value)


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    return np.where(np.isfinite(values), values, np.nan)


def robust_limits(arrays: list[np.ndarray]) -> tuple[float, float] | None:
    """A y range that holds the bulk of the values: the full range, unless a few values dwarf the rest.

    Returns None when there is nothing finite to show.
    """
    values = (
        np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.array([])
    )
    if values.size == 0:
        return None
    full_lo, full_hi = float(values.min()), float(values.max())
    lo, hi = (float(v) for v in np.quantile(values, [0.04, 0.96]))
    span = hi - lo
    if full_hi - full_lo <= 2.0 * span or span == 0.0:
        lo, hi = full_lo, full_hi
    else:
        # Keep the whole side that does not run away.
        if lo - full_lo <= 0.5 * span:
            lo = full_lo
        if full_hi - hi <= 0.5 * span:
            hi = full_hi
    if hi - lo < 1e-9 * max(1.0, abs(hi), abs(lo)):
        pad = max(1.0, abs(hi)) * 0.1
        return lo - pad, hi + pad
    pad = 0.06 * (hi - lo)
    return lo - pad, hi + pad


# ---------------------------------------------------------------- drawing


def _display_name(spec, label: str | None) -> str | None:
    """The name shown for a loss: a file's stem, None for programs given inline (`<-e>`, `<stdin>`)."""
    if label is None:
        return spec.name
    if label.startswith("<") and label.endswith(">"):
        return None
    return Path(label).stem or label


def legend_text(spec, label: str | None, max_width: float) -> tuple[str, float]:
    """(text, font size) of a legend entry: `name: $formula$` in the largest of _LEGEND_SIZES that fits
    within max_width points, or the name alone when mathtext cannot parse the formula or it fits in none.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    name = _display_name(spec, label)
    if (
        name is not None
    ):  # a file's `$`, as text: `$\frac{$.loss` made mathtext fail the plot (a review)
        name = name.replace("$", r"\$")
    fallback = (name or spec.name, _LEGEND_SIZES[0])
    try:
        tex = spec.latex(inline=True)
    except Exception:  # noqa: BLE001 - a name is always a usable label
        return fallback
    if len(tex) > _LEGEND_TEX_CHARS:
        return fallback
    text = f"{name}: ${tex}$" if name else f"${tex}$"
    parser = MathTextParser("path")
    for size in _LEGEND_SIZES:
        try:
            width = parser.parse(text, dpi=72, prop=FontProperties(size=size)).width
        except (
            ValueError,
            RecursionError,
        ):  # mathtext's parser recurses into every group
            return fallback
        if width <= max_width:
            return text, size
    return fallback


_X_LABELS = {
    "regression": r"error $e = y - \hat{y}$  (with $y = 0$)",
    "positive": r"prediction $\hat{y}$",
    "probability": r"probability $p$",
    "logits": r"logit $z$",
}


def _x_label(kind: str, binary: bool, two_classes: bool) -> str:
    if kind == "probability":
        forms = ([r"$\hat{y} = p$"] if binary else []) + (
            [r"$\hat{y} = [p, 1 - p]$"] if two_classes else []
        )
        return _X_LABELS[kind] + "  (" + " or ".join(forms) + ")"
    if kind == "logits":
        forms = ([r"$\hat{y} = z$"] if binary else []) + (
            [r"$\hat{y} = [z, 0]$"] if two_classes else []
        )
        return _X_LABELS[kind] + "  (" + " or ".join(forms) + ")"
    return _X_LABELS[kind]


def _gradient_label(kind: str, binary: bool, two_classes: bool) -> str:
    forms = [r"$\partial L / \partial \hat{y}$"] if binary else []
    if two_classes:
        forms.append({"probability": "$dL/dp$", "logits": "$dL/dz$"}[kind])
    return " or ".join(forms)


def plot_losses(specs, output, labels=None, *, kind: str | None = None) -> Path:
    """Write a figure of the losses and their gradients with respect to y_pred.

    Args:
        specs: CompiledLoss objects (one or more), drawn in one figure.
        output: the file to write; its extension picks the format (.png or .svg).
        labels: one label per loss (a file name shows as its stem; `<-e>` or
            `<stdin>` shows the formula alone); default: the class names.
        kind: the x axis, one of KINDS; default: `infer_kind` of each loss
            (they must agree).

    Returns:
        The path written (whole: through a temporary file beside it; missing
        folders are created, which `lossdsl plot` refuses before it gets here).

    Raises:
        ValueError: an unknown format or kind, no losses, labels that do not
            match, or losses of different kinds without `kind=`.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot write a plot as {output.name!r}: give a file name ending in .png or .svg"
        )
    specs = list(specs)
    if not specs:
        raise ValueError("nothing to plot: give at least one loss")
    labels = [None] * len(specs) if labels is None else list(labels)
    if len(labels) != len(specs):
        raise ValueError(f"{len(labels)} labels for {len(specs)} losses")
    if kind is None:
        kinds = [infer_kind(s) for s in specs]
        if len(set(kinds)) > 1:
            listed = ", ".join(
                # (a program given inline by its label, `<-e 2>`: each was `formula`; a review)
                f"{_display_name(s, lab) or lab or 'formula'} ({k})"
                for s, lab, k in zip(specs, labels, kinds, strict=True)
            )
            raise MixedKinds(listed)
        kind = kinds[0]
    elif kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")

    span = x_range(specs, kind)
    curves = [
        evaluate(s, kind, span, label) for s, label in zip(specs, labels, strict=True)
    ]
    over_axis = [
        kind in ("probability", "logits") and _over_last_axis(s) for s in specs
    ]
    _draw(
        specs,
        labels,
        curves,
        kind,
        binary=not all(over_axis),
        two_classes=any(over_axis),
        output=output,
    )
    return output


def target_labels(specs, curves, two_classes: bool) -> list[str]:
    """The labels of the line styles: what y_true each stands for. With two classes "y = 1" is
    the first class's, which is class id 0 where a loss reads class ids, and says so (the bare
    label read as class id 1; a review)."""
    targets = [c.target for c in curves[0] if c.target]
    if two_classes and any(spec.resolved.uses_onehot for spec in specs):
        targets = [f"{t} (class id {i})" for i, t in enumerate(targets)]
    return targets


def _draw(specs, labels, curves, kind, *, binary, two_classes, output: Path) -> None:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    with matplotlib.rc_context(_RC):
        fig = Figure(
            figsize=(_FIGSIZE[0], _FIGSIZE[1] + _LEGEND_LINE * len(specs)),
            layout="constrained",
        )
        FigureCanvasAgg(fig)
        ax_loss, ax_grad = fig.subplots(1, 2)
        handles, sizes = [], []
        max_width = _FIGSIZE[0] * 72 - 40
        for i, (spec, label, loss_curves) in enumerate(
            zip(specs, labels, curves, strict=True)
        ):
            color = f"C{i % 10}"
            for style, curve in zip(_STYLES, loss_curves, strict=False):
                ax_loss.plot(
                    curve.x, curve.loss, color=color, linestyle=style, linewidth=1.6
                )
                ax_grad.plot(
                    curve.x, curve.gradient, color=color, linestyle=style, linewidth=1.6
                )
            text, size = legend_text(spec, label, max_width)
            handles.append(Line2D([], [], color=color, linewidth=1.6, label=text))
            sizes.append(size)
        targets = target_labels(specs, curves, two_classes)
        for ax, attr, title in (
            (ax_loss, "loss", "loss"),
            (ax_grad, "gradient", "gradient"),
        ):
            limits = robust_limits([getattr(c, attr) for cs in curves for c in cs])
            if limits is not None:
                ax.set_ylim(*limits)
            else:
                # (`log(y_pred - 10)` over [0, 4]: an empty panel beside a finite gradient, said
                # nothing; a review)
                ax.text(
                    0.5,
                    0.5,
                    f"the {title} is not a finite number\nanywhere on this range",
                    transform=ax.transAxes,
                    ha="center",
                    va="center",
                    color="0.3",
                )
                ax.set_yticks([])
            ax.set_xlim(*_X_LIMITS.get(kind, (curves[0][0].x[0], curves[0][0].x[-1])))
            ax.set_xlabel(_x_label(kind, binary, two_classes))
            ax.set_title(title)
            ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=0)
        ax_loss.set_ylabel("$L$")
        ax_grad.set_ylabel(_gradient_label(kind, binary, two_classes))
        if targets:
            keys = [
                Line2D([], [], color="0.25", linestyle=s, linewidth=1.6, label=t)
                for s, t in zip(_STYLES, targets, strict=False)
            ]
            fig.legend(
                handles=keys, loc="outside upper center", ncols=len(keys), frameon=False
            )
        legend = fig.legend(
            handles=handles,
            loc="outside lower center",
            ncols=1,
            frameon=False,
            fontsize=sizes[0],
        )
        for text, size in zip(legend.get_texts(), sizes, strict=True):
            text.set_fontsize(size)
        output.parent.mkdir(
            parents=True, exist_ok=True
        )  # `lossdsl plot` checks the folder exists first
        _save(fig, output)


def _save(fig, output: Path) -> None:
    """Save the figure whole or not at all: never a partial image."""

    def write(handle) -> None:
        if output.suffix.lower() == ".svg":
            fig.savefig(handle, format="svg", metadata={"Date": None})
        else:
            fig.savefig(handle, format="png", dpi=100, metadata={"Software": None})

    write_atomically(output, write, binary=True)
