"""Training smoke tests that run unchanged on every Keras 3 backend.

Every bundled loss (the generated class that `keras_loss()` returns), a
`FormulaLoss` with a lossdsl metric, and a loss with integer class ids train a
small model for a few full-batch steps through `model.fit` on the active
backend (`KERAS_BACKEND`: TensorFlow in the main run; tests/test_backends.py
runs this module under JAX and PyTorch too): the loss is finite and falls.
Targets come from each loss's domain (the data makers of
lossdsl/library/counterparts.py), the output activation from its input domain.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossdsl
from lossdsl.library import counterparts as cp

keras = pytest.importorskip("keras")

# Keras (on NumPy 2; PyTorch's tensors in particular) warns about its own `__array__` use; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)

SAMPLES, FEATURES, WIDTH, EPOCHS = 32, 3, 4, 6

# The output activation that puts predictions in a loss's input domain.
ACTIVATIONS = {
    cp.probabilities: "softmax",
    cp.smooth_probabilities: "softmax",
    cp.unit_interval: "sigmoid",
    cp.positive: "softplus",
    cp.rates: "softplus",
    cp.real: None,
    cp.logits: None,
}

# Bundled loss -> (target maker, activation, width): from the counterpart table, plus the losses without one.
CASES = {
    cp.library_name(key): (case.make_true, ACTIVATIONS[case.make_pred], WIDTH)
    for key, case in cp.COUNTERPARTS.items()
    if "/" not in key
}
CASES.update(
    {
        "penalized_absolute_error": (cp.real, None, WIDTH),
        "weighted_mean_squared_error": (cp.real, None, 2),
        "poly1": (cp.one_hot, None, WIDTH),
    }
)


def test_every_bundled_loss_has_a_case():
    assert set(CASES) == set(lossdsl.library.names())


def train(
    loss, make_true, activation, width: int, metrics=()
) -> dict[str, list[float]]:
    """Fit a one-layer model with `loss` for EPOCHS full-batch steps; the history."""
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(SAMPLES, FEATURES)).astype("float32")
    y = make_true(rng, SAMPLES, width)
    if y.dtype.kind == "f":
        y = np.clip(
            y, -10.0, 10.0
        )  # the makers' edges (targets of 100) only slow a smoke test down
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=3),
            ),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.05),
        loss=loss,
        metrics=list(metrics),
    )
    history = model.fit(
        x, y, epochs=EPOCHS, batch_size=SAMPLES, verbose=0, shuffle=False
    )
    return history.history


def assert_falls(values: list[float], what: str) -> None:
    assert np.isfinite(values).all(), (
        f"{what}: not finite on {keras.backend.backend()}: {values}"
    )
    assert values[-1] < values[0], (
        f"{what}: did not fall on {keras.backend.backend()}: {values}"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_bundled_loss_trains(name):
    make_true, activation, width = CASES[name]
    history = train(
        lossdsl.library.compile(name).keras_loss(), make_true, activation, width
    )
    assert_falls(history["loss"], name)


def test_formula_loss_and_metric_train():
    loss = lossdsl.FormulaLoss(formula=lossdsl.library.source("huber"), delta=0.5)
    metric = lossdsl.metric("abs(e)", name="formula_mae")
    history = train(loss, cp.real, None, WIDTH, metrics=[metric])
    assert_falls(history["loss"], "FormulaLoss")
    assert_falls(history["formula_mae"], "the lossdsl metric")


@pytest.mark.parametrize(
    "program",
    ["log(cosh(e))", "abs(e)^1.5", "-sum(onehot(y_true) * log_softmax(y_pred))"],
)
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_a_metric_takes_integer_predictions_as_the_loss_does(program, dtype):
    # The loss object casts integer predictions to its float dtype; the metric calls the loss's
    # call() and cast none (log cosh of int64 was TensorFlow's "Cannot convert -2.0 to EagerTensor").
    y_true = (
        np.array([0, 1, 2])
        if "onehot" in program
        else np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    )
    y_pred = np.array([[1, 3, 0], [2, 4, 1], [0, 0, 5]][: len(y_true)]).astype(dtype)
    exact = np.asarray(y_pred, dtype="float64")
    if "onehot" in program:
        logits = exact - exact.max(axis=-1, keepdims=True)
        per_sample = -(logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True)))[
            np.arange(3), y_true
        ]
    else:
        e = exact - y_true
        per_sample = (
            np.log(np.cosh(e)) if "cosh" in program else np.abs(e) ** 1.5
        ).mean(axis=-1)
    metric = lossdsl.metric(program)
    metric.update_state(y_true, y_pred)
    metric.update_state(y_true, y_pred.tolist())  # a nested list of ints as well
    assert float(metric.result()) == pytest.approx(per_sample.mean(), rel=1e-6)
    assert float(lossdsl.loss(program)(y_true, y_pred)) == pytest.approx(
        per_sample.mean(), rel=1e-6
    )


def test_integer_class_ids_train():
    loss = lossdsl.loss(
        "-sum(onehot(y_true) * log_softmax(y_pred))", name="sparse_from_logits"
    )
    history = train(
        loss, lambda rng, b, c: cp.class_ids(rng, b, c).astype("int32"), None, WIDTH
    )
    assert_falls(history["loss"], "onehot of integer class ids")


@pytest.mark.parametrize(
    "name, ids",
    [
        ("mean_absolute_error", False),
        ("huber", False),
        ("categorical_crossentropy_from_logits", False),
        ("sparse_categorical_crossentropy_from_logits", True),
    ],
)
def test_a_loss_takes_symbolic_inputs_in_a_functional_model(name, ids):
    # As Keras's own losses do: called on `keras.Input`s it gives a symbolic per-sample loss, and a
    # model with it as output computes the values a direct call does. (On TensorFlow the custom
    # gradient refused symbolic tensors and the broadcast read their unknown batch; the class ids'
    # reshape recorded that unknown batch, (None,), and the model then failed on every backend; a
    # review.)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 4)).astype("float32")
    y_true = (
        rng.integers(0, 3, size=(5, 1))
        if ids
        else rng.normal(size=(5, 3)).astype("float32")
    )
    if name.startswith("categorical"):
        y_true = np.eye(3, dtype="float32")[rng.integers(0, 3, size=5)]
    loss = lossdsl.library.compile(name).keras_loss(reduction=None)
    inputs, target = keras.Input((4,)), keras.Input(y_true.shape[1:])
    output = keras.layers.Dense(3, kernel_initializer="glorot_uniform")(inputs)
    per_sample = loss(target, output)
    assert isinstance(per_sample, keras.KerasTensor)
    assert tuple(per_sample.shape) == (None,)
    model = keras.Model([inputs, target], per_sample)
    values = model.predict([x, y_true], verbose=0)
    direct = keras.ops.convert_to_numpy(
        loss(y_true, keras.Model(inputs, output).predict(x, verbose=0))
    )
    np.testing.assert_allclose(values, direct, rtol=1e-5, atol=1e-6)
