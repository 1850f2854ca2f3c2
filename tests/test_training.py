"""Training under stress: threads, mixed precision, MirroredStrategy, and saved configs that were tampered with.

* Threads: the library, hostile and broken programs compiled from 8 threads at
  once, with every cache cleared and the parser not built yet, give exactly
  what a serial run gives: the expression, the diagnostics and the generated
  module, or the same error class, place, message and diagnostics.
* Mixed precision: under `mixed_float16` a model trained with a generated loss
  (and with `FormulaLoss`) follows the float32 run within 1e-3 per epoch; the
  policy is restored afterwards, whatever happens. A loss asked for float16
  computes in float16 and stays close to float32.
* MirroredStrategy: in a fresh process whose one CPU is split into two logical
  devices before TensorFlow starts, training under `MirroredStrategy` over both
  gives the per-epoch losses and weights of one device (a subprocess, so the
  rest of the suite keeps its devices).
* Tampered configs: a saved `FormulaLoss` whose formula was replaced by Python
  (`__import__('os').system(...)`), by another valid loss that does not declare
  the saved parameter, or whose config gained an unknown key, a non-numeric
  parameter or a formula that is not text, fails to load with a `LossError` and
  runs nothing (the command it holds would have created a file).

Reloading generated modules and `FormulaLoss` models in a fresh process is
tested in tests/test_saving.py.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from sympy.core.cache import clear_cache
from tamper import tampered_copy

import lossdsl
from lossdsl import parse, pipeline

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------------------------------- threads

THREADS = 8
BROKEN = [
    "abs(e",
    "lgo(y_pred)",
    "y_true^2",
    "sign(y_pred)",
    "where(y_pred > 0, 1, 0)",
    "param lambda = 1\ny_pred * lambda",
    "1e309 * y_pred",
    "y_pred * 10^10^10",
    "(" * 201 + "y_pred" + ")" * 201,
    "__import__('os').system('x')",
    "y_pred.__class__",
    "[1, 2] + [1, 2, 3] * y_pred",
    "where(y_pred - e != where(e != 1e-7, e, y_true), 2, y_true) * y_pred",
    "x = y_pred\nx = 2\nx",
    "param __x = 1\ny_pred * __x",
]
COMPILING = [
    "y_pred * pi^2 + where(y_pred > y_true, e^2, abs(e))",
    "max(" + ", ".join(f"e^{k}" for k in range(1, 30)) + ")",
    "a = y_pred\n"
    + "\n".join(f"a{k} = sin(a{k - 1 if k > 1 else ''})" for k in range(1, 60))
    + "\na59",
    "param _init = 2\n__class__ = y_pred\n__class__ * _init",
    "log(y_pred)",
]


def _programs() -> list[str]:
    return (
        [lossdsl.library.source(name) for name in lossdsl.library.names()]
        + BROKEN
        + COMPILING
    )


def _result(source: str):
    """What compiling `source` gives, as comparable values."""
    try:
        spec = lossdsl.compile(source)
    except lossdsl.LossError as err:
        return (
            "error",
            type(err).__name__,
            err.line,
            err.column,
            err.message,
            tuple(lossdsl.check(source)),
        )
    return (
        "compiled",
        sp.srepr(spec.expr),
        tuple(spec.diagnostics),
        spec.python_source(),
    )


def _clear_caches() -> None:
    pipeline._front_end_cached.cache_clear()
    clear_cache()
    parse._parser = None  # the threads race to build the parser, behind its lock


def test_compiling_from_many_threads_gives_the_serial_results():
    programs = _programs()
    _clear_caches()
    serial = {source: _result(source) for source in programs}
    assert {r[0] for r in serial.values()} == {"error", "compiled"}
    _clear_caches()  # the threads start from nothing: no parser, no cached analyses
    barrier = threading.Barrier(THREADS)
    results: list[dict | BaseException] = [{} for _ in range(THREADS)]

    def work(index: int) -> None:
        order = list(programs)
        random.Random(index).shuffle(
            order
        )  # each thread meets the programs in its own order
        try:
            barrier.wait()
            results[index] = {source: _result(source) for source in order}
        except BaseException as err:  # noqa: BLE001 - reported below
            results[index] = err

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    for index, result in enumerate(results):
        assert not isinstance(result, BaseException), f"thread {index}: {result!r}"
        for source in programs:
            assert result[source] == serial[source], (index, source[:80])


# ------------------------------------------------------------------------------------ mixed precision


def _data(kind: str):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    if kind == "ids":
        return x, rng.integers(0, 4, 64).astype("int32")
    return x, rng.normal(size=(64, 4)).astype("float32")


def _train(loss, kind: str) -> tuple[list[float], str]:
    x, y = _data(kind)
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                4, kernel_initializer=keras.initializers.GlorotUniform(seed=3)
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    return history.history["loss"], model.layers[0].compute_dtype


@pytest.fixture
def mixed_precision():
    """The global policy `mixed_float16` for one test, restored afterwards whatever happens."""
    before = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
    assert keras.mixed_precision.global_policy().name == before


MIXED = [
    ("huber", "real"),
    ("sparse_categorical_crossentropy_from_logits", "ids"),
    ("log_cosh", "real"),
]


@pytest.fixture(scope="module")
def float32_runs():
    """Per-epoch losses in float32 of each loss of MIXED, trained with the generated class."""
    assert keras.mixed_precision.global_policy().name == "float32"
    return {
        name: _train(lossdsl.library.compile(name).keras_loss(), kind)
        for name, kind in MIXED
    }


@pytest.mark.parametrize("name, kind", MIXED)
def test_mixed_float16_training_follows_float32(
    float32_runs, mixed_precision, name, kind
):
    expected, dtype = float32_runs[name]
    assert dtype == "float32"
    spec = lossdsl.library.compile(name)
    for loss in (spec.keras_loss(), lossdsl.FormulaLoss(formula=spec.source)):
        losses, dtype = _train(loss, kind)
        assert dtype == "float16"  # the layers compute in float16: the policy is on
        assert np.all(np.isfinite(losses))
        np.testing.assert_allclose(losses, expected, rtol=1e-3)


def test_the_policy_is_float32_again():
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.parametrize(
    "name", ["huber", "binary_crossentropy_from_logits", "categorical_crossentropy"]
)
def test_a_loss_asked_for_float16_computes_in_float16(name):
    rng = np.random.default_rng(1)
    if name == "categorical_crossentropy":
        y_true = np.eye(4, dtype="float32")[rng.integers(0, 4, 32)]
        y_pred = rng.dirichlet(np.ones(4), 32).astype("float32")
    else:
        y_true = rng.integers(0, 2, (32, 4)).astype("float32")
        y_pred = rng.normal(size=(32, 4)).astype("float32") * 3
    spec = lossdsl.library.compile(name)
    low = spec.keras_loss(dtype="float16", reduction=None)
    full = spec.keras_loss(reduction=None)
    values = low(y_true, y_pred.astype("float16"))
    assert keras.backend.standardize_dtype(values.dtype) == "float16"
    values = keras.ops.convert_to_numpy(values).astype("float32")
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(
        values, keras.ops.convert_to_numpy(full(y_true, y_pred)), rtol=2e-2, atol=2e-3
    )


# ------------------------------------------------------------------------------------ MirroredStrategy

MIRRORED = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
import tensorflow as tf

# Before TensorFlow initializes its devices: one CPU becomes two logical devices.
cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
import lossdsl

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 3)).astype("float32")
cases = {
    "huber": (lambda: lossdsl.library.compile("huber").keras_loss(delta=0.5), rng.normal(size=(64, 4))),
    "sparse_categorical_crossentropy_from_logits": (
        lambda: lossdsl.library.compile("sparse_categorical_crossentropy_from_logits").keras_loss(),
        rng.integers(0, 4, 64),
    ),
    "formula": (lambda: lossdsl.FormulaLoss(formula="param k = 2\nk * log(cosh(e))"), rng.normal(size=(64, 4))),
}


def train(strategy, make_loss, y):
    with strategy.scope():
        keras.utils.set_random_seed(3)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(seed=3))]
        )
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=make_loss())
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"], [w.tolist() for w in model.get_weights()]


mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
one = tf.distribute.OneDeviceStrategy("/cpu:0")
out = {"replicas": mirrored.num_replicas_in_sync, "devices": len(tf.config.list_logical_devices("CPU"))}
for name, (make_loss, y) in cases.items():
    y = y.astype("int32" if y.dtype.kind == "i" else "float32")
    out[name] = {"mirrored": train(mirrored, make_loss, y), "single": train(one, make_loss, y)}
print(json.dumps(out))
"""


def test_mirrored_strategy_over_two_devices_matches_one_device(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out.pop("replicas") == 2 and out.pop("devices") == 2
    for name, runs in out.items():
        (mirrored_losses, mirrored_weights), (single_losses, single_weights) = (
            runs["mirrored"],
            runs["single"],
        )
        assert np.all(np.isfinite(mirrored_losses)), name
        np.testing.assert_allclose(
            mirrored_losses, single_losses, rtol=1e-5, err_msg=name
        )
        for a, b in zip(mirrored_weights, single_weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------ tampered configs


@pytest.fixture(scope="module")
def serialized_huber():
    loss = lossdsl.FormulaLoss(formula=lossdsl.library.source("huber"), delta=2.0)
    return keras.saving.serialize_keras_object(loss)


TAMPERED = [
    (
        "python",
        {"formula": "__import__('os').system('touch {marker}')"},
        lossdsl.LossSyntaxError,
        "no strings",
    ),
    (
        "attribute",
        {"formula": "y_pred.__class__.__bases__[0].__subclasses__()"},
        lossdsl.LossSyntaxError,
        "attributes",
    ),
    (
        "other-loss",
        {"formula": "abs(e)"},
        lossdsl.LossTypeError,
        "unknown key(s) delta",
    ),
    (
        "other-params",
        {"formula": "param gamma = 2\nabs(e)^gamma"},
        lossdsl.LossTypeError,
        "unknown key(s) delta",
    ),
    (
        "unknown-key",
        {"evil": "__import__('os')"},
        lossdsl.LossTypeError,
        "unknown key(s) evil",
    ),
    (
        "string-param",
        {"delta": "__import__('os')"},
        lossdsl.LossTypeError,
        "is not a number",
    ),
    ("bool-param", {"delta": True}, lossdsl.LossTypeError, "is not a number"),
    ("list-formula", {"formula": ["abs(e)"]}, lossdsl.LossTypeError, "no formula text"),
    ("no-formula", {"formula": None}, lossdsl.LossTypeError, "no formula text"),
    ("bad-formula", {"formula": "abs(e"}, lossdsl.LossSyntaxError, "expected"),
    (
        "no-prediction",
        {"formula": "y_true^2"},
        lossdsl.NoPredictionDependenceError,
        "does not depend",
    ),
]


@pytest.mark.parametrize(
    "changes, error, message", [t[1:] for t in TAMPERED], ids=[t[0] for t in TAMPERED]
)
def test_a_tampered_config_raises_a_loss_error(
    serialized_huber, tmp_path, changes, error, message
):
    marker = tmp_path / "pwned"
    tampered = copy.deepcopy(serialized_huber)
    for key, value in changes.items():
        tampered["config"][key] = (
            value.format(marker=marker) if isinstance(value, str) else value
        )
    with pytest.raises(error) as info:
        keras.saving.deserialize_keras_object(tampered)
    assert message in info.value.message
    assert not marker.exists()


def test_a_saved_model_with_a_tampered_formula_runs_nothing(tmp_path):
    x, y = _data("real")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(
        optimizer="sgd",
        loss=lossdsl.FormulaLoss(formula=lossdsl.library.source("huber"), delta=2.0),
    )
    path = tmp_path / "model.keras"
    model.save(path)
    marker = tmp_path / "pwned"
    for formula, extra, error in [
        (f"__import__('os').system('touch {marker}')", {}, lossdsl.LossSyntaxError),
        (
            "abs(e)",
            {},
            lossdsl.LossTypeError,
        ),  # a valid loss that does not declare the saved `delta`
        (lossdsl.library.source("huber"), {"evil": 1}, lossdsl.LossTypeError),
    ]:
        tampered = tampered_copy(
            path, tmp_path / "tampered.keras", formula=formula, **extra
        )
        with pytest.raises(error):
            keras.models.load_model(tampered)
        assert not marker.exists()
    reloaded = keras.models.load_model(path)
    assert (
        isinstance(reloaded.loss, lossdsl.FormulaLoss)
        and reloaded.loss.get_config()["delta"] == 2.0
    )
    assert np.isfinite(reloaded.evaluate(x, y, verbose=0))


def test_a_tampered_metric_config_raises_a_loss_error():
    serialized = keras.saving.serialize_keras_object(
        lossdsl.metric("param k = 2\nk * abs(e)", name="m")
    )
    assert (
        keras.saving.deserialize_keras_object(copy.deepcopy(serialized)).get_config()[
            "k"
        ]
        == 2.0
    )
    for key, value, error in [
        ("evil", 1, lossdsl.LossTypeError),
        ("k", "x", lossdsl.LossTypeError),
        ("formula", "__import__('os')", lossdsl.LossSyntaxError),
        ("class_name", "not a name", lossdsl.LossTypeError),
    ]:
        tampered = copy.deepcopy(serialized)
        tampered["config"][key] = value
        with pytest.raises(error):
            keras.saving.deserialize_keras_object(tampered)


def test_building_a_formula_loss_directly_still_raises_type_errors():
    with pytest.raises(TypeError, match="unknown parameter"):
        lossdsl.FormulaLoss(formula="abs(e)", delta=1.0)


def test_formula_metric_is_exported_beside_formula_loss():
    # The README names the pair; `lossdsl.FormulaMetric` was an AttributeError (a docs review).
    assert "FormulaMetric" in lossdsl.__all__ and "FormulaMetric" in dir(lossdsl)
    metric = lossdsl.FormulaMetric(formula="param k = 2\nk * abs(e)", k=3.0)
    assert metric.get_config()["formula"] == "param k = 2\nk * abs(e)"
    metric.update_state(
        np.array([[1.0, 2.0]], "float32"), np.array([[0.0, 0.0]], "float32")
    )
    assert float(metric.result()) == pytest.approx(4.5)
