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
"""

from __future__ import annotations

import numpy as np
import pytest

import lossdsl
from lossdsl.library.counterparts import (
    COUNTERPARTS,
    NO_COUNTERPART,
    binary,
    library_name,
    logits,
    one_hot,
    probabilities,
    real,
    soft,
)

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

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


@pytest.mark.parametrize("key", sorted(COUNTERPARTS))
def test_library_loss_matches_keras(key):
    case = COUNTERPARTS[key]
    reference = getattr(L, case.keras_name)
    rng = _rng()
    y_true, y_pred = case.make_true(rng, B, C), case.make_pred(rng, B, C)
    ours = lossdsl.library.compile(library_name(key)).keras_loss(**case.params)
    assert_parity(ours.call, lambda t, p: reference(t, p, **case.keras_kwargs), y_true, y_pred)


def test_reduction_and_sample_weight_match_keras_classes():
    rng = _rng()
    y_true, y_pred = real(rng, B, C), real(rng, B, C)
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
    y_true, y_pred = labels(rng, B, C), logits(rng, B, C)
    assert np.abs(y_pred).max() == 200.0
    ours = lossdsl.compile(NAIVE_BCE).keras_loss()
    assert_parity(ours.call, lambda t, p: L.binary_crossentropy(t, p, from_logits=True), y_true, y_pred)


@pytest.mark.parametrize("labels", [one_hot, probabilities])
def test_naive_categorical_crossentropy_on_logits_is_stable(labels):
    rng = _rng()
    y_true, y_pred = labels(rng, B, C), logits(rng, B, C)
    ours = lossdsl.compile(NAIVE_CCE).keras_loss()
    assert_parity(ours.call, lambda t, p: L.categorical_crossentropy(t, p, from_logits=True), y_true, y_pred)


def test_losses_without_counterpart_follow_their_formulas():
    rng = _rng()
    y_true, y_pred = real(rng, B, C), real(rng, B, C)
    e = y_true - y_pred
    penalized = lossdsl.library.compile("penalized_absolute_error").keras_loss().call(y_true, y_pred)
    np.testing.assert_allclose(penalized, np.mean(np.abs(e) * 0.5 * (1 + np.abs(e)), axis=-1), rtol=1e-5)
    two_true, two_pred = y_true[:, :2], y_pred[:, :2]
    weighted = lossdsl.library.compile("weighted_mean_squared_error").keras_loss().call(two_true, two_pred)
    expected = 0.3 * (two_true[:, 0] - two_pred[:, 0]) ** 2 + 0.7 * (two_true[:, 1] - two_pred[:, 1]) ** 2
    np.testing.assert_allclose(weighted, expected, rtol=1e-5)
    labels, scores = one_hot(rng, B, C), logits(rng, B, C)
    poly = lossdsl.library.compile("poly1").keras_loss(epsilon=2.0)
    ce = L.categorical_crossentropy(labels, scores, from_logits=True).numpy()
    p_t = np.sum(labels * tf.nn.softmax(scores).numpy(), axis=-1)
    np.testing.assert_allclose(poly.call(labels, scores), ce + 2.0 * (1 - p_t), rtol=RTOL, atol=ATOL)
