"""Parity: every bundled loss with a Keras counterpart against that Keras function.

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
"""

from __future__ import annotations

import numpy as np
import pytest

import lossdsl

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

L = keras.losses
RTOL, ATOL = 2e-5, 1e-6
GRAD_RTOL, GRAD_ATOL = 2e-4, 1e-5
B, C = 48, 5


def _rng():
    return np.random.default_rng(20240611)


def probabilities(rng, extreme=True):
    """Rows that sum to 1; some are sharp enough that entries fall below eps or above 1 - eps."""
    scale = rng.choice([0.5, 3.0, 40.0], size=(B, 1))
    p = tf.nn.softmax(rng.normal(size=(B, C)) * scale).numpy()
    if extreme:
        p[0] = [1.0, 0.0, 0.0, 0.0, 0.0]
        p[1] = [1 - 4e-8, 1e-8, 1e-8, 1e-8, 1e-8]
    return p.astype("float32")


def unit_interval(rng):
    """Values in [0, 1], with 0, 1 and values within 1e-8 of them."""
    p = rng.uniform(0, 1, (B, C))
    p[0] = [0.0, 1.0, 1e-8, 1 - 1e-8, 0.5]
    p[1] = [1e-6, 1 - 1e-6, 1e-3, 0.999, 1e-30]
    return p.astype("float32")


def one_hot(rng):
    return np.eye(C, dtype="float32")[rng.integers(0, C, B)]


def binary(rng):
    return rng.integers(0, 2, (B, C)).astype("float32")


def signs(rng):
    return 2 * binary(rng) - 1


def class_ids(rng):
    return rng.integers(0, C, B).astype("int64")


def logits(rng):
    x = rng.normal(size=(B, C)) * rng.choice([0.1, 3.0, 60.0], size=(B, 1))
    x[0] = [200.0, -200.0, 0.25, 150.0, -150.0]
    x[1] = [-200.0, -200.0, -200.0, 200.0, 200.0]
    return x.astype("float32")


def real(rng):
    x = rng.normal(size=(B, C)) * rng.choice([1e-4, 1.0, 30.0], size=(B, 1))
    x[0] = [0.0, 1e-7, -1e-7, 5.0, -5.0]
    return x.astype("float32")


def positive(rng):
    x = rng.uniform(0, 5, (B, C))
    x[0] = [0.0, 1e-7, 1e-3, 100.0, 3.0]
    return x.astype("float32")


def rates(rng):
    x = rng.uniform(1e-3, 5, (B, C))
    x[0] = [1e-6, 1e-3, 0.0, 50.0, 3.0]
    return x.astype("float32")


def soft(rng):
    return rng.uniform(0, 1, (B, C)).astype("float32")


# name in the library -> (Keras function, y_true maker, y_pred maker, lossdsl params, Keras kwargs)
CASES = {
    "mean_squared_error": (L.mean_squared_error, real, real),
    "mean_absolute_error": (L.mean_absolute_error, real, real),
    "mean_absolute_percentage_error": (L.mean_absolute_percentage_error, real, real),
    "mean_squared_logarithmic_error": (L.mean_squared_logarithmic_error, positive, positive),
    "hinge/signs": (L.hinge, signs, real),
    "hinge/binary": (L.hinge, binary, real),
    "squared_hinge/signs": (L.squared_hinge, signs, real),
    "squared_hinge/binary": (L.squared_hinge, binary, real),
    "categorical_hinge": (L.categorical_hinge, one_hot, real),
    "log_cosh": (L.log_cosh, real, real),
    "huber": (L.huber, real, real),
    "huber/delta": (L.huber, real, real, {"delta": 2.5}, {"delta": 2.5}),
    "categorical_crossentropy": (L.categorical_crossentropy, one_hot, probabilities),
    "categorical_crossentropy/soft": (L.categorical_crossentropy, probabilities, probabilities),
    "categorical_crossentropy_from_logits": (L.categorical_crossentropy, one_hot, logits, {}, {"from_logits": True}),
    "sparse_categorical_crossentropy": (L.sparse_categorical_crossentropy, class_ids, probabilities),
    "sparse_categorical_crossentropy_from_logits": (
        L.sparse_categorical_crossentropy,
        class_ids,
        logits,
        {},
        {"from_logits": True},
    ),
    "binary_crossentropy": (L.binary_crossentropy, binary, unit_interval),
    "binary_crossentropy/soft": (L.binary_crossentropy, soft, unit_interval),
    "binary_crossentropy_from_logits": (L.binary_crossentropy, binary, logits, {}, {"from_logits": True}),
    "binary_crossentropy_from_logits/soft": (L.binary_crossentropy, soft, logits, {}, {"from_logits": True}),
    "binary_focal_crossentropy": (L.binary_focal_crossentropy, binary, unit_interval),
    "binary_focal_crossentropy/params": (
        L.binary_focal_crossentropy,
        binary,
        unit_interval,
        {"gamma": 3.0, "alpha": 0.3, "apply_class_balancing": 1.0},
        {"gamma": 3.0, "alpha": 0.3, "apply_class_balancing": True},
    ),
    "categorical_focal_crossentropy": (L.categorical_focal_crossentropy, one_hot, probabilities),
    "categorical_focal_crossentropy/params": (
        L.categorical_focal_crossentropy,
        one_hot,
        probabilities,
        {"gamma": 3.0, "alpha": 0.3},
        {"gamma": 3.0, "alpha": 0.3},
    ),
    "kl_divergence": (L.kl_divergence, probabilities, probabilities),
    "poisson": (L.poisson, positive, rates),
    "cosine_similarity": (L.cosine_similarity, real, real),
    "dice": (L.dice, binary, unit_interval, {}, {"axis": -1}),
    "tversky": (L.tversky, binary, unit_interval, {}, {"axis": -1}),
    "tversky/params": (
        L.tversky,
        binary,
        unit_interval,
        {"alpha": 0.3, "beta": 0.7},
        {"alpha": 0.3, "beta": 0.7, "axis": -1},
    ),
    "categorical_generalized_cross_entropy": (
        L.categorical_generalized_cross_entropy,
        class_ids,
        lambda rng: probabilities(rng, extreme=False),
        {},
        {"q": 0.5},
    ),
    "categorical_generalized_cross_entropy/q": (
        L.categorical_generalized_cross_entropy,
        class_ids,
        lambda rng: probabilities(rng, extreme=False),
        {"q": 0.7},
        {"q": 0.7},
    ),
}

# Library losses without a Keras counterpart.
NO_COUNTERPART = {"penalized_absolute_error", "weighted_mean_squared_error", "poly1"}


def test_every_library_loss_is_compared():
    compared = {key.split("/")[0] for key in CASES}
    assert compared | NO_COUNTERPART == set(lossdsl.library.names())


def values_and_gradients(fn, y_true, y_pred):
    y_true = tf.constant(y_true)
    y_pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        values = fn(y_true, y_pred)
        total = tf.reduce_sum(values)
    return values.numpy(), tape.gradient(total, y_pred).numpy()


def assert_parity(ours, reference, y_true, y_pred):
    values, gradients = values_and_gradients(ours, y_true, y_pred)
    expected, expected_gradients = values_and_gradients(reference, y_true, y_pred)
    assert values.shape == expected.shape
    assert np.isfinite(values)[np.isfinite(expected)].all(), "not finite where Keras is"
    assert np.isfinite(gradients)[np.isfinite(expected_gradients)].all(), "gradient not finite where Keras's is"
    np.testing.assert_allclose(values, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gradients, expected_gradients, rtol=GRAD_RTOL, atol=GRAD_ATOL)


@pytest.mark.parametrize("key", sorted(CASES))
def test_library_loss_matches_keras(key):
    reference, make_true, make_pred, *rest = CASES[key]
    params, keras_kwargs = (rest + [{}, {}])[:2] if rest else ({}, {})
    rng = _rng()
    y_true, y_pred = make_true(rng), make_pred(rng)
    ours = lossdsl.library.compile(key.split("/")[0]).keras_loss(**params)
    assert_parity(ours.call, lambda t, p: reference(t, p, **keras_kwargs), y_true, y_pred)


def test_reduction_and_sample_weight_match_keras_classes():
    rng = _rng()
    y_true, y_pred = real(rng), real(rng)
    weights = rng.uniform(0, 2, B).astype("float32")
    for reduction in ("sum_over_batch_size", "sum", None):
        ours = lossdsl.library.compile("huber").keras_loss(delta=2.5, reduction=reduction)
        theirs = L.Huber(delta=2.5, reduction=reduction)
        np.testing.assert_allclose(ours(y_true, y_pred, weights), theirs(y_true, y_pred, weights), rtol=RTOL)


NAIVE_BCE = "-(y_true*log(sigmoid(y_pred)) + (1-y_true)*log(1-sigmoid(y_pred)))"
NAIVE_CCE = "-sum(y_true*log(softmax(y_pred)))"


@pytest.mark.parametrize("labels", [binary, soft])
def test_naive_binary_crossentropy_on_logits_is_stable(labels):
    rng = _rng()
    y_true, y_pred = labels(rng), logits(rng)
    assert np.abs(y_pred).max() == 200.0
    ours = lossdsl.compile(NAIVE_BCE).keras_loss()
    assert_parity(ours.call, lambda t, p: L.binary_crossentropy(t, p, from_logits=True), y_true, y_pred)


@pytest.mark.parametrize("labels", [one_hot, probabilities])
def test_naive_categorical_crossentropy_on_logits_is_stable(labels):
    rng = _rng()
    y_true, y_pred = labels(rng), logits(rng)
    ours = lossdsl.compile(NAIVE_CCE).keras_loss()
    assert_parity(ours.call, lambda t, p: L.categorical_crossentropy(t, p, from_logits=True), y_true, y_pred)


def test_losses_without_counterpart_follow_their_formulas():
    rng = _rng()
    y_true, y_pred = real(rng), real(rng)
    e = y_true - y_pred
    penalized = lossdsl.library.compile("penalized_absolute_error").keras_loss().call(y_true, y_pred)
    np.testing.assert_allclose(penalized, np.mean(np.abs(e) * 0.5 * (1 + np.abs(e)), axis=-1), rtol=1e-5)
    two_true, two_pred = y_true[:, :2], y_pred[:, :2]
    weighted = lossdsl.library.compile("weighted_mean_squared_error").keras_loss().call(two_true, two_pred)
    expected = 0.3 * (two_true[:, 0] - two_pred[:, 0]) ** 2 + 0.7 * (two_true[:, 1] - two_pred[:, 1]) ** 2
    np.testing.assert_allclose(weighted, expected, rtol=1e-5)
    labels, scores = one_hot(rng), logits(rng)
    poly = lossdsl.library.compile("poly1").keras_loss(epsilon=2.0)
    ce = L.categorical_crossentropy(labels, scores, from_logits=True).numpy()
    p_t = np.sum(labels * tf.nn.softmax(scores).numpy(), axis=-1)
    np.testing.assert_allclose(poly.call(labels, scores), ce + 2.0 * (1 - p_t), rtol=RTOL, atol=ATOL)
