"""Parity: every bundled loss with a Keras counterpart against that Keras function.

The pairs and their data come from `lossdsl.library.counterparts` (shared with the
benchmark, so what is benchmarked is what is proven equal).

Each loss is compared on data from its domain (probabilities including values
at and beyond 0 and 1, one-hot and soft labels, integer class ids, {-1, 1} and
{0, 1} labels, logits up to +-200, regression targets near 0): per-sample
values and gradients with respect to y_pred, in float32, plus every output
finite wherever Keras's is. Overridden parameters are compared too, and the
naive logits forms of LANGUAGE.md must match Keras's `from_logits=True`.

Tolerances: values rtol 2e-5, gradients rtol 2e-4. The absolute tolerances
(1e-6 for values, 1e-5 for gradients) cover results near zero: float32's
spacing at 1 is 1.2e-7, and lossdsl orders some operations differently from
Keras (and computes log(1 + x) as log1p(x), which is more accurate), so two
correct float32 results that cancel down to ~1e-7 differ by a few ulps of 1.

Backends: the module runs unchanged on every Keras 3 backend (TensorFlow, JAX,
PyTorch; `KERAS_BACKEND`, fixed per process: tests/test_backends.py runs it
under the backends other than the main run's). Values and gradients are taken
with the active backend's own autodiff (tests/backend_autodiff.py) and compared
with Keras's built-in ON THAT BACKEND, with the same tolerances everywhere.
Where Keras's built-in is itself a different formula on a backend
(`BACKEND_DIFFERENCES`: sparse_categorical_crossentropy on probabilities under
JAX and PyTorch renormalises before it clips), the bundled loss is compared
there with a NumPy reference of its own formula, values and gradients, and
with Keras's built-in on data where the two formulas agree. Gradients at kinks
are each backend's convention (JAX: abs'(0) = 1); the generated code writes
`abs(e)` in Keras's orientation, `abs(y_true - y_pred)`, so they agree there.
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_autodiff import compiled_modes, to_numpy, values_and_gradients

import lossdsl
from lossdsl.library.counterparts import (
    COUNTERPARTS,
    NO_COUNTERPART,
    binary,
    class_ids,
    library_name,
    logits,
    one_hot,
    probabilities,
    real,
    soft,
)

keras = pytest.importorskip("keras")

L = keras.losses
RTOL, ATOL = 2e-5, 1e-6
GRAD_RTOL, GRAD_ATOL = 2e-4, 1e-5
B, C = 48, 5


def _rng():
    return np.random.default_rng(20240611)


def test_every_library_loss_is_compared():
    compared = {library_name(key) for key in COUNTERPARTS}
    assert compared | NO_COUNTERPART == set(lossdsl.library.names())
    assert not compared & NO_COUNTERPART


def assert_parity(ours, reference, y_true, y_pred):
    values, gradients = values_and_gradients(ours, y_true, y_pred)
    expected, expected_gradients = values_and_gradients(reference, y_true, y_pred)
    assert values.shape == expected.shape
    assert np.isfinite(values)[np.isfinite(expected)].all(), "not finite where Keras is"
    assert np.isfinite(gradients)[np.isfinite(expected_gradients)].all(), (
        "gradient not finite where Keras's is"
    )
    np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        gradients, expected_gradients, rtol=GRAD_RTOL, atol=GRAD_ATOL
    )


# Keras built-ins that compute a different formula on some backend (keras/src/backend/<name>/nn.py),
# so that a bundled loss, which follows the TensorFlow backend's, cannot match them everywhere:
# backend -> COUNTERPARTS key -> why. There the bundled loss is compared with a NumPy reference of
# its own formula on the full data (edges included), and with Keras's built-in on data where the
# two formulas agree; `test_backend_differences_table_is_exact` keeps this table from going stale.
RENORMALISES_FIRST = (
    "from_logits=False: Keras's JAX and PyTorch backends compute -log(clip(p_t / sum(p), eps, 1 - eps));"
    " its TensorFlow backend (and lossdsl's library file) -log(clip(p_t)) + log(sum(clip(p))):"
    " the same wherever no probability is below eps or above 1 - eps, different values and gradients"
    " where one is (there the JAX/PyTorch gradient also reaches the clipped entries, through sum(p))"
)
BACKEND_DIFFERENCES: dict[str, dict[str, str]] = {
    "jax": {"sparse_categorical_crossentropy": RENORMALISES_FIRST},
    "torch": {"sparse_categorical_crossentropy": RENORMALISES_FIRST},
}


def backend_difference(key: str) -> str | None:
    return BACKEND_DIFFERENCES.get(keras.backend.backend(), {}).get(key)


def unclipped_probabilities(rng, b: int, c: int) -> np.ndarray:
    """Rows summing to 1, every entry well inside [eps, 1 - eps]."""
    p = probabilities(rng, b, c, extreme=False)
    p = np.clip(p, 1e-4, 1.0)
    return (p / p.sum(axis=-1, keepdims=True)).astype("float32")


def sparse_categorical_crossentropy_reference(
    ids: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The library formula -log(c_t) + log(sum(c)), c = clip(p, eps, 1 - eps), and its gradient, in float64.

    The gradient is (1 / sum(c) - [j == t] / c_t) where eps < p_j < 1 - eps, 0 where p_j is clipped
    (the bounds as float32 holds them: the data has no entry exactly on one).
    """
    lo, hi = np.float32(1e-7), np.float32(1 - 1e-7)
    assert not np.isin(p, [lo, hi]).any(), (
        "an entry on a clipping bound: the gradient there is a convention"
    )
    inside = (p > lo) & (p < hi)
    c = np.clip(p.astype("float64"), float(lo), float(hi))
    total = c.sum(axis=-1, keepdims=True)
    target = np.eye(p.shape[-1])[ids]
    c_t = np.sum(target * c, axis=-1, keepdims=True)
    values = -np.log(c_t[:, 0]) + np.log(total[:, 0])
    gradients = inside * (1.0 / total - target / c_t)
    return values, gradients


def assert_matches_reference(ours, reference, y_true, y_pred):
    values, gradients = values_and_gradients(ours, y_true, y_pred)
    expected, expected_gradients = reference(y_true, y_pred)
    assert values.shape == expected.shape
    assert np.isfinite(values).all() and np.isfinite(gradients).all()
    np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        gradients, expected_gradients, rtol=GRAD_RTOL, atol=GRAD_ATOL
    )


@pytest.mark.parametrize("key", sorted(COUNTERPARTS))
def test_library_loss_matches_keras(key):
    case = COUNTERPARTS[key]
    reference = getattr(L, case.keras_name)
    rng = _rng()
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    ours = lossdsl.library.compile(library_name(key)).keras_loss(**case.params)
    theirs = lambda t, p: reference(t, p, **case.keras_kwargs)  # noqa: E731
    if backend_difference(key) is None:
        assert_parity(ours.call, theirs, y_true, y_pred)
        return
    assert key == "sparse_categorical_crossentropy", (
        "a new backend difference needs its NumPy reference"
    )
    assert_matches_reference(
        ours.call, sparse_categorical_crossentropy_reference, y_true, y_pred
    )
    assert_parity(ours.call, theirs, y_true, unclipped_probabilities(rng, B, C))


def test_sparse_categorical_crossentropy_reference():
    """The NumPy reference of the library formula, on every backend (on TensorFlow it is also Keras's)."""
    rng = _rng()
    ids, p = class_ids(rng, B, C), probabilities(rng, B, C)
    assert ((p < 1e-7) | (p > 1 - 1e-7)).any(), "the data must reach the clipped region"
    ours = lossdsl.library.compile("sparse_categorical_crossentropy").keras_loss()
    assert_matches_reference(
        ours.call, sparse_categorical_crossentropy_reference, ids, p
    )


@pytest.mark.parametrize(
    "key", sorted({k for table in BACKEND_DIFFERENCES.values() for k in table})
)
def test_backend_differences_table_is_exact(key):
    """Keras's built-in differs from the bundled loss on its own data where the table says so, and only there."""
    case = COUNTERPARTS[key]
    rng = _rng()
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    ours = lossdsl.library.compile(library_name(key)).keras_loss(**case.params)
    values, gradients = values_and_gradients(ours.call, y_true, y_pred)
    reference = getattr(L, case.keras_name)
    expected, expected_gradients = values_and_gradients(
        lambda t, p: reference(t, p, **case.keras_kwargs), y_true, y_pred
    )
    same_values = np.allclose(values, expected, rtol=RTOL, atol=ATOL)
    same_gradients = np.allclose(
        gradients, expected_gradients, rtol=GRAD_RTOL, atol=GRAD_ATOL
    )
    listed = backend_difference(key) is not None
    now = f"{key} on {keras.backend.backend()} {'now matches' if listed else 'differs'}"
    assert (same_values and same_gradients) != listed, (
        f"{now}: update BACKEND_DIFFERENCES"
    )


def test_reduction_and_sample_weight_match_keras_classes():
    rng = _rng()
    y_true, y_pred = real(rng, B, C), real(rng, B, C)
    weights = rng.uniform(0, 2, B).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", None):
        ours = lossdsl.library.compile("huber").keras_loss(
            delta=2.5, reduction=reduction
        )
        theirs = L.Huber(delta=2.5, reduction=reduction)
        np.testing.assert_allclose(
            to_numpy(ours(y_true, y_pred, weights)),
            to_numpy(theirs(y_true, y_pred, weights)),
            rtol=RTOL,
        )


NAIVE_BCE = "-(y_true*log(sigmoid(y_pred)) + (1-y_true)*log(1-sigmoid(y_pred)))"
NAIVE_CCE = "-sum(y_true*log(softmax(y_pred)))"


@pytest.mark.parametrize("labels", [binary, soft])
def test_naive_binary_crossentropy_on_logits_is_stable(labels):
    rng = _rng()
    y_true, y_pred = labels(rng, B, C), logits(rng, B, C)
    assert np.abs(y_pred).max() == 200.0
    ours = lossdsl.compile(NAIVE_BCE).keras_loss()
    assert_parity(
        ours.call,
        lambda t, p: L.binary_crossentropy(t, p, from_logits=True),
        y_true,
        y_pred,
    )


@pytest.mark.parametrize(
    "source", [NAIVE_BCE, lossdsl.library.source("binary_crossentropy_from_logits")]
)
@pytest.mark.parametrize("fast", [True, False], ids=["fused", "autodiff"])
def test_binary_crossentropy_on_logits_keeps_its_digits_where_the_prediction_is_right(
    source, fast
):
    # `softplus(x) - y x` (the one-softplus rewrite until 2026-12-01) cancelled at y = 1 and a large
    # logit: 0 for 3.1e-7 at x = 15 in float32, 4.58e-5 for 4.54e-5 at 10, the gradient 2.6% off
    # (found by a differential review). Keras's TensorFlow formula, `(relu(x) - y x) +
    # log1p(exp(-|x|))`, keeps them: compared in relative terms with it in float64 (Keras's own
    # built-in loses them on PyTorch), the gradient too, at 0 (the kink of relu and abs) included.
    from lossdsl.runtime import loss_class

    x = np.array([[-40.0, -15.0, -5.0, 0.0, 5.0, 10.0, 15.0, 30.0]], dtype="float32").T
    ours = loss_class(lossdsl.compile(source), fast=fast)(reduction=None)
    exact = x.astype("float64")
    low = 1 / (1 + np.exp(np.abs(exact)))  # sigmoid(-|x|)
    for y in (0.0, 1.0, 0.25):
        y_true = np.full_like(x, y)
        values, gradients = values_and_gradients(ours, y_true, x)
        expected = np.maximum(exact, 0) - exact * y + np.log1p(np.exp(-np.abs(exact)))
        up, down = (
            np.where(exact >= 0, 1 - low, low),
            np.where(exact >= 0, low, 1 - low),
        )  # sigmoid(x), sigmoid(-x)
        np.testing.assert_allclose(values, expected.ravel(), rtol=2e-6, atol=0)
        np.testing.assert_allclose(
            gradients, (1 - y) * up - y * down, rtol=2e-6, atol=0
        )


MIRRORED_BCE = [
    "(1 - y_true) * softplus(-y_pred) + y_true * softplus(y_pred)",
    "-((1 - y_true) * log(sigmoid(y_pred)) + y_true * log(1 - sigmoid(y_pred)))",
]


@pytest.mark.parametrize("source", MIRRORED_BCE)
@pytest.mark.parametrize("fast", [True, False], ids=["fused", "autodiff"])
def test_binary_crossentropy_with_the_labels_the_other_way_round_keeps_small_labels(
    source, fast
):
    # With a = 1 - y on softplus(-x), the coefficient of x written `step(x) - (1 - y)` printed
    # `t0 + y_true - 1.0`, which lost a label of 1e-8 in 1 (0 for 1e-4 at x = 1e4; found by a
    # review): it stays the selection `where(x >= 0, y, y - 1)`.
    from lossdsl.runtime import loss_class

    x = np.array([[-40.0, -15.0, 0.0, 15.0, 40.0, 1e4]], dtype="float32").T
    ours = loss_class(lossdsl.compile(source), fast=fast)(reduction=None)
    exact = x.astype("float64")

    def softplus(z):
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    for y in (0.0, 1.0, 0.25, 1e-3, 1e-8):
        y_true = np.full_like(x, y)
        values, gradients = values_and_gradients(ours, y_true, x)
        expected = (1 - y) * softplus(-exact) + y * softplus(exact)
        slope = -(1 - y) / (1 + np.exp(np.minimum(exact, 700))) + y / (
            1 + np.exp(-exact)
        )
        np.testing.assert_allclose(
            values, expected.ravel(), rtol=2e-6, atol=0, err_msg=f"y = {y}"
        )
        np.testing.assert_allclose(
            gradients, slope, rtol=2e-6, atol=1e-30, err_msg=f"y = {y}"
        )


@pytest.mark.parametrize("labels", [one_hot, probabilities])
def test_naive_categorical_crossentropy_on_logits_is_stable(labels):
    rng = _rng()
    y_true, y_pred = labels(rng, B, C), logits(rng, B, C)
    ours = lossdsl.compile(NAIVE_CCE).keras_loss()
    assert_parity(
        ours.call,
        lambda t, p: L.categorical_crossentropy(t, p, from_logits=True),
        y_true,
        y_pred,
    )


def test_losses_without_counterpart_follow_their_formulas():
    rng = _rng()
    y_true, y_pred = real(rng, B, C), real(rng, B, C)
    e = y_true - y_pred
    penalized = to_numpy(
        lossdsl.library.compile("penalized_absolute_error")
        .keras_loss()
        .call(y_true, y_pred)
    )
    np.testing.assert_allclose(
        penalized, np.mean(np.abs(e) * 0.5 * (1 + np.abs(e)), axis=-1), rtol=1e-5
    )
    two_true, two_pred = y_true[:, :2], y_pred[:, :2]
    weighted = to_numpy(
        lossdsl.library.compile("weighted_mean_squared_error")
        .keras_loss()
        .call(two_true, two_pred)
    )
    expected = (
        0.3 * (two_true[:, 0] - two_pred[:, 0]) ** 2
        + 0.7 * (two_true[:, 1] - two_pred[:, 1]) ** 2
    )
    np.testing.assert_allclose(weighted, expected, rtol=1e-5)
    labels, scores = one_hot(rng, B, C), logits(rng, B, C)
    poly = lossdsl.library.compile("poly1").keras_loss(epsilon=2.0)
    ce = to_numpy(L.categorical_crossentropy(labels, scores, from_logits=True))
    p_t = np.sum(labels * to_numpy(keras.ops.softmax(scores, axis=-1)), axis=-1)
    np.testing.assert_allclose(
        to_numpy(poly.call(labels, scores)), ce + 2.0 * (1 - p_t), rtol=RTOL, atol=ATOL
    )


def test_softmax_cross_entropy_in_a_larger_loss_matches_keras():
    """A sum of softmax cross-entropies with other terms: on PyTorch the generated code reads the class
    ids (the sparse kernel), elsewhere the one-hot labels; both are Keras's sparse cross-entropy."""
    rng = _rng()
    ids, scores = class_ids(rng, B, C), logits(rng, B, C) / 20
    # elementwise: the per-sample loss is the mean of `0.5 * cross-entropy + 0.1 * y_pred^2` over the classes
    ours = lossdsl.compile(
        "0.5 * -sum(onehot(y_true) * log_softmax(2 * y_pred)) + 0.1 * y_pred^2"
    ).keras_loss()

    def theirs(t, p):
        cross_entropy = L.sparse_categorical_crossentropy(t, 2 * p, from_logits=True)
        return 0.5 * cross_entropy + 0.1 * keras.ops.mean(keras.ops.square(p), axis=-1)

    assert_parity(ours.call, theirs, ids, scores)


# A softmax cross-entropy of probabilities: the program, and what its y_pred is made of.
OF_PROBABILITIES = {
    "softmax in the program": ("log_softmax(softmax(y_pred))", None),
    "sigmoid in the program": ("log_softmax(sigmoid(y_pred))", None),
    "a softmax layer's output": ("log_softmax(y_pred)", "softmax"),
}


@pytest.mark.parametrize("labels", ["class ids", "one-hot"])
@pytest.mark.parametrize("case", sorted(OF_PROBABILITIES))
def test_a_softmax_cross_entropy_of_probabilities_computes_its_formula(case, labels):
    """The formula's value and gradient where the logits are themselves a softmax or a sigmoid, in
    the program or made by the model: Keras's TensorFlow kernel computed from the input of that
    softmax or sigmoid instead (Keras keeps it on the tensor), the value of `log_softmax(y_pred)`
    (found by a differential review). Eager and compiled alike."""
    rng = _rng()
    ids, scores = class_ids(rng, B, C), logits(rng, B, C) / 20
    logits_of, activation = OF_PROBABILITIES[case]
    read = "onehot(y_true)" if labels == "class ids" else "y_true"
    ours = lossdsl.compile(f"-sum({read} * {logits_of})").keras_loss()
    target = ids if labels == "class ids" else np.eye(C, dtype="float32")[ids]
    inner = {"softmax": keras.ops.softmax, "sigmoid": keras.ops.sigmoid}

    def made(p):  # what the model hands the loss
        return p if activation is None else keras.ops.softmax(p, axis=-1)

    def formula(t, p):
        q = made(p)
        if activation is None:
            q = inner[logits_of.split("(")[1]](q)
        rows = keras.ops.one_hot(t, C) if labels == "class ids" else t
        return -keras.ops.sum(rows * keras.ops.log_softmax(q, axis=-1), axis=-1)

    for mode in ["eager", *compiled_modes()]:
        values, gradients = values_and_gradients(
            lambda t, p: ours.call(t, made(p)), target, scores, mode
        )
        expected, expected_gradients = values_and_gradients(
            formula, target, scores, mode
        )
        np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL, err_msg=mode)
        np.testing.assert_allclose(
            gradients, expected_gradients, rtol=GRAD_RTOL, atol=GRAD_ATOL, err_msg=mode
        )


@pytest.mark.parametrize(
    "name", ["sparse_categorical_crossentropy_from_logits", "softmax_in_a_larger_loss"]
)
def test_sparse_cross_entropy_with_classes_masked_by_minus_infinity_matches_keras(name):
    """Logits of -inf on classes other than the true one (a mask): Keras's sparse cross-entropy reads
    the true class's column only on TensorFlow and PyTorch, a finite loss; the generated code's dense
    form there was NaN (`0 * -inf`; found by a parity review). On JAX Keras's is NaN as well."""
    rng = _rng()
    ids, scores = class_ids(rng, B, C), logits(rng, B, C) / 20
    masked = np.where(np.arange(C) == (ids[:, None] + 1) % C, -np.inf, scores).astype(
        "float32"
    )
    if name == "sparse_categorical_crossentropy_from_logits":
        ours = lossdsl.library.compile(name).keras_loss()

        def theirs(t, p):
            return L.sparse_categorical_crossentropy(t, p, from_logits=True)
    else:
        ours = lossdsl.compile(
            "0.5 * -sum(onehot(y_true) * log_softmax(y_pred)) + 0.1 * sigmoid(y_pred)"
        ).keras_loss()

        def theirs(t, p):
            cross_entropy = L.sparse_categorical_crossentropy(t, p, from_logits=True)
            return 0.5 * cross_entropy + 0.1 * keras.ops.mean(
                keras.ops.sigmoid(p), axis=-1
            )

    expected, _ = values_and_gradients(theirs, ids, masked)
    if keras.backend.backend() != "jax":
        assert np.isfinite(expected).all()
    assert_parity(ours.call, theirs, ids, masked)


# Ranks that differ by a last axis of 1, as Keras's own losses match them (squeeze_or_expand_to_same_rank):
# a flat target against a Dense(1) output broadcast to (N, N) and trained towards the mean (found by a
# parity review: a linear regression ended at MSE 5.08 against Keras's 1e-5).
RANKS = [((B,), (B, 1)), ((B, 1), (B,)), ((B, C), (B, C, 1)), ((B, C, 1), (B, C))]
ELEMENTWISE = sorted(
    key
    for key, case in COUNTERPARTS.items()
    if case.make_true in (real, binary, soft)
    or case.keras_name in ("hinge", "squared_hinge", "log_cosh")
)


@pytest.mark.parametrize("key", ELEMENTWISE)
@pytest.mark.parametrize(
    "true_shape, pred_shape", RANKS, ids=[f"{t}-vs-{p}" for t, p in RANKS]
)
def test_ranks_that_differ_by_a_last_axis_of_one_match_keras(
    key, true_shape, pred_shape
):
    case = COUNTERPARTS[key]
    rng = _rng()
    y_true = case.make_true(rng, B, C)[:, : true_shape[1] if len(true_shape) > 1 else 1]
    y_pred = case.make_pred(rng, B, C)[:, : pred_shape[1] if len(pred_shape) > 1 else 1]
    y_true, y_pred = y_true.reshape(true_shape), y_pred.reshape(pred_shape)
    for fast in (True, False):
        spec = lossdsl.library.compile(library_name(key))
        ours = lossdsl.runtime.loss_class(spec, fast=fast)(**case.params)
        # Keras's loss classes match the ranks (LossFunctionWrapper.call); some functions do not.
        theirs = getattr(L, case.keras_name.title().replace("_", ""))(
            reduction=None, **case.keras_kwargs
        )
        assert_parity(ours.call, theirs.call, y_true, y_pred)


# ... also where the loss does not read y_true: its shape still tells the layout, as in Keras's
# losses (a (N, 1) target made a (N,) prediction's per-sample mean one mean over the batch, a
# scalar; found by a numeric review).
@pytest.mark.parametrize(
    "source, reference",
    [
        ("y_pred^2", lambda p: keras.ops.mean(keras.ops.square(p), axis=-1)),
        (
            "logsumexp(y_pred) - y_pred",
            lambda p: keras.ops.logsumexp(p, axis=-1) - keras.ops.mean(p, axis=-1),
        ),
    ],
)
@pytest.mark.parametrize(
    "true_shape, pred_shape", RANKS, ids=[f"{t}-vs-{p}" for t, p in RANKS]
)
def test_ranks_are_matched_for_losses_that_do_not_read_y_true(
    source, reference, true_shape, pred_shape
):
    rng = _rng()
    y_true = rng.normal(size=true_shape).astype("float32")
    y_pred = rng.normal(size=pred_shape).astype("float32")
    # squeeze_or_expand_to_same_rank: a rank-1 prediction grows a last axis; a prediction one rank
    # above the target loses its last axis of 1 (unless the target has rank 1, which grows one)
    if len(pred_shape) == 1 and len(true_shape) == 2:
        expected_pred = y_pred[..., None]
    elif len(pred_shape) == len(true_shape) + 1 and len(true_shape) > 1:
        expected_pred = y_pred[..., 0]
    else:
        expected_pred = y_pred

    def theirs(t, p):
        return reference(keras.ops.reshape(p, expected_pred.shape))

    for fast in (True, False):
        ours = lossdsl.runtime.loss_class(lossdsl.compile(source), fast=fast)()
        assert_parity(ours.call, theirs, y_true, y_pred)
