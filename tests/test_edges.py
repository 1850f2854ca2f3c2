"""The edge of the domain: every bundled loss stays finite, in value and gradient, wherever Keras's does.

Each bundled loss with a Keras counterpart (lossdsl.library.counterparts, every
case of the table) is fed the edges of its domain, in float32: for
probabilities 0, 1, eps, 1 - eps, 1e-8, 1 - 1e-8 and 1e-30; for logits and
regression values 0, +-eps, +-1e4 and +-200; for rates and positive values 0,
eps, 1e4 and 1e-30; rows that hold one value throughout (all-zero rows among
them) and rows that mix them; labels as the counterpart makes them, labels
at the edges of their own domain, and all-zero label rows. Per-sample values
and gradients with respect to y_pred come from `tf.GradientTape`; wherever
Keras's built-in gives a finite value (or gradient element), the generated
loss must too. The three bundled losses without a counterpart are finite
everywhere on sensible inputs, edges included.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossdsl
from lossdsl.library import counterparts as cp

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

pytestmark = [
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="gradients through tf.GradientTape",
    ),
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

EPS = 1e-7
C = 4
EDGES = {
    "probability": [0.0, 1.0, EPS, 1 - EPS, 0.5, 1e-30, 1e-8, 1 - 1e-8],
    "real": [0.0, EPS, -EPS, 1e4, -1e4, 200.0, -200.0, 1.0],
    "positive": [0.0, EPS, 1.0, 1e4, 1e-30, 200.0],
}
DOMAIN = {
    cp.probabilities: "probability",
    cp.smooth_probabilities: "probability",
    cp.unit_interval: "probability",
    cp.soft: "probability",
    cp.logits: "real",
    cp.real: "real",
    cp.positive: "positive",
    cp.rates: "positive",
}
KEYS = sorted(cp.COUNTERPARTS)


def edge_rows(edges: list[float], rows: int | None = None) -> np.ndarray:
    """Rows of one edge value throughout (0 gives an all-zero row), then rows that cycle through them."""
    k = len(edges)
    grid = [[v] * C for v in edges] + [
        [edges[(i + j) % k] for j in range(C)] for i in range(k)
    ]
    grid = np.array(grid, dtype="float32")
    return grid if rows is None else np.resize(grid, (rows, C))


def labels(case: cp.Counterpart, rows: int) -> list[tuple[str, np.ndarray]]:
    """(what, y_true) pairs for a counterpart: its own labels, edge labels, all-zero label rows."""
    rng = np.random.default_rng(11)
    found = [("labels", case.make_true(rng, rows, C))]
    if case.make_true in DOMAIN:
        found.append(("edge labels", edge_rows(EDGES[DOMAIN[case.make_true]], rows)))
    if case.make_true in (cp.binary, cp.one_hot, cp.probabilities):
        found.append(("all-zero labels", np.zeros((rows, C), dtype="float32")))
    if case.make_true is cp.class_ids:
        found.append(("edge ids", np.resize(np.array([0, C - 1], dtype="int64"), rows)))
    return found


def values_and_gradients(fn, y_true, y_pred):
    y_true, y_pred = tf.constant(y_true), tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        values = fn(y_true, y_pred)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, y_pred).numpy()


def test_every_bundled_loss_is_covered():
    covered = {cp.library_name(key) for key in KEYS} | cp.NO_COUNTERPART
    assert covered == set(lossdsl.library.names())
    assert all(cp.COUNTERPARTS[key].make_pred in DOMAIN for key in KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_finite_at_the_edges_wherever_keras_is(key):
    case = cp.COUNTERPARTS[key]
    ours = lossdsl.library.compile(cp.library_name(key)).keras_loss(
        reduction=None, **case.params
    )
    builtin = getattr(keras.losses, case.keras_name)

    def reference(y_true, y_pred):
        return builtin(y_true, y_pred, **case.keras_kwargs)

    y_pred = edge_rows(EDGES[DOMAIN[case.make_pred]])
    for what, y_true in labels(case, len(y_pred)):
        values, gradients = values_and_gradients(ours, y_true, y_pred)
        expected, expected_gradients = values_and_gradients(reference, y_true, y_pred)
        assert values.shape == expected.shape and gradients.shape == y_pred.shape
        bad = np.isfinite(expected) & ~np.isfinite(values)
        assert not bad.any(), (
            what,
            y_true[bad][:2],
            y_pred[bad][:2],
            values[bad][:2],
            expected[bad][:2],
        )
        bad = np.isfinite(expected_gradients) & ~np.isfinite(gradients)
        rows = bad.any(axis=-1)
        assert not bad.any(), (
            what,
            y_true[rows][:2],
            y_pred[rows][:2],
            gradients[rows][:2],
        )
        # The edges Keras handles are most of them: the test is not vacuous.
        assert np.isfinite(expected).mean() > 0.9


def _no_counterpart_data(name: str):
    edges = EDGES["real"]
    if name == "weighted_mean_squared_error":
        y_pred = np.resize(np.array(edges, dtype="float32"), (len(edges) * 2, 2))
        y_pred[0] = 0.0
        y_true = np.flip(y_pred, axis=0).copy()
        return [("edges", y_true, y_pred)]
    if name == "poly1":
        y_pred = edge_rows(edges)
        one_hot = cp.one_hot(np.random.default_rng(3), len(y_pred), C)
        return [
            ("one-hot", one_hot, y_pred),
            ("all-zero labels", np.zeros_like(y_pred), y_pred),
        ]
    y_pred = edge_rows(edges)
    return [
        ("edges", np.flip(y_pred, axis=0).copy(), y_pred),
        ("zeros", np.zeros_like(y_pred), y_pred),
    ]


@pytest.mark.parametrize("name", sorted(cp.NO_COUNTERPART))
def test_losses_without_a_counterpart_are_finite_at_the_edges(name):
    ours = lossdsl.library.compile(name).keras_loss(reduction=None)
    for what, y_true, y_pred in _no_counterpart_data(name):
        values, gradients = values_and_gradients(ours, y_true, y_pred)
        assert values.shape == y_pred.shape[:1], what
        assert np.isfinite(values).all() and np.isfinite(gradients).all(), (
            what,
            values,
            gradients,
        )


def test_the_focal_spelling_the_domain_warning_offers_keeps_a_gradient_at_any_logit():
    # The warning on `log(pt)` (tests/test_checks.py) offers this spelling in place of eps: a
    # confidently wrong logit gets the full loss and a gradient, where `log(pt + eps)` had
    # the value log(eps) and a gradient of 0 (a user test).
    offered = lossdsl.loss(
        "p = sigmoid(y_pred)\npt = y_true * p + (1 - y_true) * (1 - p)\n"
        "-(1 - pt)^2 * (y_true * log(p) + (1 - y_true) * log(1 - p))",
        reduction=None,
    )
    with_eps = lossdsl.loss(
        "p = sigmoid(y_pred)\npt = y_true * p + (1 - y_true) * (1 - p)\n-(1 - pt)^2 * log(pt + eps)",
        reduction=None,
    )
    y_true = np.array([[0.0, 1.0]], dtype="float32")
    y_pred = np.array(
        [[100.0, -100.0]], dtype="float32"
    )  # both wrong, by a logit of 100
    values, gradients = values_and_gradients(offered, y_true, y_pred)
    np.testing.assert_allclose(
        values, [100.0], rtol=1e-6
    )  # (1 - pt)^2 = 1, -log(p) = 100: the mean of two
    np.testing.assert_allclose(
        gradients, [[0.5, -0.5]], rtol=1e-6
    )  # d/dx of softplus(x) / 2, saturated
    values, gradients = values_and_gradients(with_eps, y_true, y_pred)
    np.testing.assert_allclose(values, [-np.log(np.float32(1e-7))], rtol=1e-5)
    assert (gradients == 0).all()


@pytest.mark.parametrize(
    "source",
    [
        "exp(y_pred) / (1 + exp(y_pred))^1.5",
        "x = y_pred - y_true\nmean(exp(x) / (1 + exp(x))^1.5)",
        "y_pred^20 / (1 + y_pred^20)",
        "cosh(y_pred) / (1 + cosh(y_pred))",
        "s = exp(e)\n(s^2 - 1) / (s^2 + 1)",
        "sinh(e) / cosh(e)",
        "param k = 5\nexp(k * y_pred) / (1 + exp(k * y_pred))^1.5",
        "sqrt(exp(y_pred)) * sigmoid(-y_pred)",
    ],
)
def test_an_overflow_warning_names_a_point_where_keras_computes_no_number_in_float32_and_one_in_float64(
    source,
):
    import re

    (warning,) = [d for d in lossdsl.check(source) if d.code == "float32-overflow"]
    point = re.search(
        r"at y_true=(\[.*?\]|[^,]+), y_pred=(\[.*?\]|[^;]+);", warning.message
    )
    y_true, y_pred = (
        [[float(v) for v in text.strip("[]").split(",")]] for text in point.groups()
    )
    stated = float(
        re.search(r"though its value is about (\S+);", warning.message).group(1)
    )
    in_float32 = lossdsl.loss(source, reduction=None)(
        np.array(y_true, "float32"), np.array(y_pred, "float32")
    )
    in_float64 = lossdsl.loss(source, reduction=None, dtype="float64")(
        np.array(y_true, "float64"), np.array(y_pred, "float64")
    )
    assert not np.isfinite(np.asarray(in_float32)).all()
    np.testing.assert_allclose(np.mean(np.asarray(in_float64)), stated, rtol=0.05)
