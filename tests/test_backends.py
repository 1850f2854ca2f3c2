"""Every Keras 3 backend: TensorFlow, JAX and PyTorch.

Keras fixes its backend when it is first imported (`KERAS_BACKEND`), so each
backend needs a process of its own. From the main run (TensorFlow, unless
`KERAS_BACKEND` says otherwise) this module:

* runs the backend-neutral tests (`BACKEND_NEUTRAL`: the parity suite against
  Keras's built-ins, values and gradients through each backend's own autodiff,
  and the training smoke tests) in a `python -m pytest` subprocess under each
  OTHER backend, and fails with that run's output if it fails;
* saves models compiled with a generated loss and with `lossdsl.FormulaLoss`
  (and a lossdsl metric) on the main run's backend, then reloads them in a
  subprocess under each other backend, checks the reloaded loss evaluates to
  the same value and trains (the loss falls over a few steps).

A backend whose package is not installed is skipped with the reason (install
the extras: `pip install ".[test,jax,torch]"`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lossdsl

keras = pytest.importorskip("keras")

# Keras on NumPy 2 warns about its own `__array__` use while evaluating; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)

ROOT = Path(__file__).resolve().parent.parent
BACKEND_NEUTRAL = [
    "tests/test_parity.py",
    "tests/test_backend_training.py",
    "tests/test_fused.py",
]
# Backend name -> the package it needs, and the extra that installs it.
PACKAGES = {
    "tensorflow": ("tensorflow", ""),
    "jax": ("jax", "jax"),
    "torch": ("torch", "torch"),
}
OTHER_BACKENDS = [name for name in PACKAGES if name != keras.backend.backend()]
TIMEOUT_S = 600


def require(backend: str) -> None:
    """Skip (with the reason) when `backend`'s package is not importable."""
    package, extra = PACKAGES[backend]
    if importlib.util.find_spec(package) is None:
        how = f'pip install ".[{extra}]"' if extra else "pip install tensorflow"
        pytest.skip(
            f"{package} is not installed, so the {backend} backend is not tested ({how})"
        )


def run_under(
    backend: str, args: list[str], cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """`python <args>` in a fresh process with KERAS_BACKEND=backend, without the installed
    lossdsl.pth's `import lossdsl` at start-up (as where lossdsl is not installed: the scripts
    import it themselves where they use it)."""
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "LOSSDSL_NO_KERAS_HOOK": "1",
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backend_neutral_tests_pass_on(backend):
    require(backend)
    proc = run_under(
        backend, ["-m", "pytest", *BACKEND_NEUTRAL, "-q", "-p", "no:cacheprovider"]
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, (
        f"KERAS_BACKEND={backend} python -m pytest {' '.join(BACKEND_NEUTRAL)}:\n"
        + output[-12000:]
    )
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert (
        passed
        and int(passed.group(1)) > 0
        and "failed" not in summary
        and "error" not in summary
    ), output[-4000:]


# --------------------------------------------------------------------- saved on one backend, trained on another

LOAD_AND_TRAIN = r"""
import json, os, sys
generated, saved = sys.argv[1], sys.argv[2]
sys.path.insert(0, generated)
import keras
import numpy as np

arrays = np.load(os.path.join(saved, "data.npz"))
results = {"backend": keras.backend.backend()}


def reload_and_train(name):
    model = keras.models.load_model(os.path.join(saved, name + ".keras"))
    before = model.evaluate(arrays["x"], arrays["y"], verbose=0, batch_size=32, return_dict=True)
    history = model.fit(arrays["x"], arrays["y"], epochs=5, batch_size=32, verbose=0, shuffle=False)
    return {"before": before, "history": history.history, "loss_type": type(model.loss).__name__}


import gen_huber  # the generated module alone, not lossdsl, registers the generated class

results["generated"] = reload_and_train("generated")
results["lossdsl_imported"] = any(m == "lossdsl" or m.startswith("lossdsl.") for m in sys.modules)
import lossdsl  # registers FormulaLoss and FormulaMetric

results["formula"] = reload_and_train("formula")
print(json.dumps(results))
"""


def regression_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x @ rng.normal(size=(3, 4)) + 1.0).astype("float32")
    return x, y


def trained_model(loss, metrics=()):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.05),
        loss=loss,
        metrics=list(metrics),
    )
    x, y = regression_data()
    model.fit(
        x, y, epochs=1, batch_size=32, verbose=0
    )  # the optimizer's state travels too
    return model


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A model with a generated loss and one with FormulaLoss, saved; the generated module written out.

    Here the generated class is `keras_loss()`'s (the runtime's import of the same source): importing
    the module file in this process too would register a second class under the same Keras name.
    """
    generated = tmp_path_factory.mktemp("generated")
    saved = tmp_path_factory.mktemp("saved")
    spec = lossdsl.library.compile("huber")
    (generated / "gen_huber.py").write_text(spec.python_source(), encoding="utf-8")
    x, y = regression_data()
    expected = {}
    models = {
        "generated": trained_model(spec.keras_loss(delta=1.5)),
        "formula": trained_model(
            lossdsl.FormulaLoss(formula=lossdsl.library.source("huber"), delta=0.5),
            metrics=[lossdsl.metric("abs(e)", name="formula_mae")],
        ),
    }
    for name, model in models.items():
        expected[name] = model.evaluate(
            x, y, verbose=0, batch_size=32, return_dict=True
        )
        model.save(saved / f"{name}.keras")
    np.savez(saved / "data.npz", x=x, y=y)
    return generated, saved, expected


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_saved_model_reloads_and_trains_on(backend, saved_models):
    require(backend)
    generated, saved, expected = saved_models
    proc = run_under(
        backend, ["-c", LOAD_AND_TRAIN, str(generated), str(saved)], cwd=saved
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-8000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["backend"] == backend
    assert results["lossdsl_imported"] is False
    assert (
        results["generated"]["loss_type"] == "Huber"
        and results["formula"]["loss_type"] == "FormulaLoss"
    )
    for name in ("generated", "formula"):
        before = results[name]["before"]
        assert set(before) == set(expected[name]), name
        for key, value in expected[name].items():
            assert np.isclose(before[key], value, rtol=1e-5), (
                name,
                key,
                before[key],
                value,
            )
        losses = results[name]["history"]["loss"]
        assert np.isfinite(losses).all() and losses[-1] < losses[0], (
            name,
            backend,
            losses,
        )
    assert "formula_mae" in results["formula"]["history"]


NUMPY_BACKEND = r"""
import json, warnings
import numpy as np
warnings.simplefilter("error")  # Keras's numpy backend warns at a custom gradient
import keras
import lossdsl
y_true = np.array([[0.0, 1.0], [2.0, -1.0]], "float32")
y_pred = np.array([[0.5, 3.0], [2.0, 1.0]], "float32")
values = {}
for name, builtin in [("huber", keras.losses.Huber()), ("mean_squared_error", keras.losses.MeanSquaredError()),
                      ("mean_absolute_error", keras.losses.MeanAbsoluteError())]:
    values[name] = [float(lossdsl.library.compile(name).keras_loss()(y_true, y_pred)), float(builtin(y_true, y_pred))]
print(json.dumps({"backend": keras.backend.backend(), "values": values}))
"""


def test_keras_s_numpy_backend_runs_the_forward_pass_without_a_warning():
    # The numpy backend computes no gradients and warns at `custom_gradient`; a generated loss
    # called it there (a review). Every backend but TensorFlow takes the forward pass.
    proc = run_under("numpy", ["-W", "ignore::DeprecationWarning", "-c", NUMPY_BACKEND])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["backend"] == "numpy"
    for name, (ours, keras_s) in results["values"].items():
        assert ours == pytest.approx(keras_s, rel=1e-6), name
    assert results["values"]["huber"][0] == pytest.approx(0.78125)
