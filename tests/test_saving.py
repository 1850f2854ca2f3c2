"""Saving: models compiled with generated losses (and with FormulaLoss) reload in a fresh process.

* Every bundled loss: its generated module is written to a temporary directory
  and imported from there; a small model compiled with the loss is evaluated
  and saved as `.keras`; ONE fresh Python process imports the modules from
  that directory (and never `lossdsl`), loads every model and evaluates it to
  the same loss.
* `FormulaLoss` (and a lossdsl metric): the same, in a fresh process that
  imports only `lossdsl` besides Keras and NumPy.
* A saved FormulaLoss whose formula was tampered with fails to load with the
  formula's `LossError`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tamper import tampered_copy

import lossdsl

keras = pytest.importorskip("keras")

# Keras on NumPy 2 warns about its own `__array__` use while evaluating; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation:DeprecationWarning"
)

# The fresh interpreter must import the package from this checkout even when it is not installed.
ROOT = Path(__file__).resolve().parent.parent

SOFTMAX = {
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "kl_divergence",
    "sparse_categorical_crossentropy",
    "categorical_generalized_cross_entropy",
}
SIGMOID = {"binary_crossentropy", "binary_focal_crossentropy", "dice", "tversky"}
SOFTPLUS = {"poisson", "mean_squared_logarithmic_error"}
ONE_HOT = {
    "categorical_crossentropy",
    "categorical_crossentropy_from_logits",
    "categorical_focal_crossentropy",
    "categorical_hinge",
    "poly1",
}
IDS = {
    "sparse_categorical_crossentropy",
    "sparse_categorical_crossentropy_from_logits",
    "categorical_generalized_cross_entropy",
}
BINARY = {
    "binary_crossentropy",
    "binary_crossentropy_from_logits",
    "binary_focal_crossentropy",
    "dice",
    "tversky",
    "hinge",
    "squared_hinge",
}


def data(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Inputs, targets and the output activation suited to the loss `name`."""
    rng = np.random.default_rng(7)
    width = 2 if name == "weighted_mean_squared_error" else 4
    x = rng.normal(size=(16, 3)).astype("float32")
    if name in ONE_HOT:
        y = np.eye(width, dtype="float32")[rng.integers(0, width, 16)]
    elif name in IDS:
        y = rng.integers(0, width, 16).astype("int32")
    elif name in BINARY:
        y = rng.integers(0, 2, (16, width)).astype("float32")
    elif name == "kl_divergence":
        y = rng.dirichlet(np.ones(width), 16).astype("float32")
    elif name in SOFTPLUS:
        y = rng.uniform(0, 3, (16, width)).astype("float32")
    else:
        y = (rng.normal(size=(16, width)) + 2.0).astype("float32")
    activation = (
        "softmax"
        if name in SOFTMAX
        else "sigmoid"
        if name in SIGMOID
        else "softplus"
        if name in SOFTPLUS
        else None
    )
    return x, y, activation


def model_with(loss, width: int, activation, metrics=()):
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                width,
                activation=activation,
                kernel_initializer=keras.initializers.GlorotUniform(seed=3),
            ),
        ]
    )
    model.compile(optimizer="sgd", loss=loss, metrics=list(metrics))
    return model


def run_fresh(script: str, *args: str, startup_hook: bool = True) -> dict:
    """Run `script` in a fresh interpreter (cwd outside the checkout); its last stdout line is JSON.

    `startup_hook=False`: without the installed lossdsl.pth's `import lossdsl` at start-up (as
    where lossdsl is not installed), by its switch LOSSDSL_NO_KERAS_HOOK."""
    env_path = str(ROOT)
    env = (
        {**os.environ, "LOSSDSL_NO_KERAS_HOOK": ""}
        if startup_hook
        else {**os.environ, "LOSSDSL_NO_KERAS_HOOK": "1"}
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, env_path, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(args[0]) if args else None,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


LOAD_GENERATED = r"""
import importlib, json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
generated, saved = sys.argv[2], sys.argv[3]
sys.path.insert(0, generated)
import keras
import numpy as np
results = {}
for name in json.loads(open(os.path.join(saved, "names.json")).read()):
    importlib.import_module("gen_" + name)
    model = keras.models.load_model(os.path.join(saved, name + ".keras"))
    arrays = np.load(os.path.join(saved, name + ".npz"))
    results[name] = float(model.evaluate(arrays["x"], arrays["y"], verbose=0, batch_size=16))
results["__lossdsl_imported__"] = any(m == "lossdsl" or m.startswith("lossdsl.") for m in sys.modules)
print(json.dumps(results))
"""


@pytest.fixture
def keras_registry():
    """Keras's registry of custom objects, put back as it was after the test.

    Importing a generated module file here registers a second class under the name the
    runtime's import of the same source registered: later tests in this process must find
    the registry as it was.
    """
    saved = dict(keras.saving.get_custom_objects())
    yield
    keras.saving.get_custom_objects().clear()
    keras.saving.get_custom_objects().update(saved)


def test_generated_modules_reload_in_a_fresh_process(
    library_modules, tmp_path, keras_registry
):
    saved = tmp_path / "saved"
    saved.mkdir()
    expected = {}
    for name, path in library_modules.items():
        text = path.read_text(encoding="utf-8")
        assert "import lossdsl" not in text and "from lossdsl" not in text
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        cls = getattr(module, lossdsl.library.class_name(name))
        x, y, activation = data(name)
        width = 2 if name == "weighted_mean_squared_error" else 4
        model = model_with(cls(), width, activation)
        expected[name] = float(model.evaluate(x, y, verbose=0, batch_size=16))
        assert np.isfinite(expected[name]), name
        model.save(saved / f"{name}.keras")
        np.savez(saved / f"{name}.npz", x=x, y=y)
    (saved / "names.json").write_text(json.dumps(sorted(library_modules)))
    generated = next(iter(library_modules.values())).parent
    # With the start-up hook that an installed lossdsl has: importing Keras puts stand-ins under
    # lossdsl's registered names, and nothing of lossdsl is imported (INTERFACE.md: a generated
    # module "does not import lossdsl"; `import keras` imported lossdsl's runtime: a review)
    results = run_fresh(LOAD_GENERATED, str(generated), str(saved), startup_hook=True)
    assert results.pop("__lossdsl_imported__") is False
    assert sorted(results) == sorted(library_modules)
    for name, value in results.items():
        assert np.isclose(value, expected[name], rtol=1e-6, atol=1e-7), name


LOAD_FORMULA = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, sys.argv[1])
IMPORTS
import numpy as np
saved = sys.argv[2]
model = keras.models.load_model(os.path.join(saved, "formula.keras"))
arrays = np.load(os.path.join(saved, "formula.npz"))
values = model.evaluate(arrays["x"], arrays["y"], verbose=0, batch_size=16, return_dict=True)
config = model.loss.get_config()
print(json.dumps({"values": values, "config": config, "type": type(model.loss).__name__}))
"""


def formula_model():
    program = lossdsl.library.source("huber")
    loss = lossdsl.FormulaLoss(formula=program, delta=2.0)
    metric = lossdsl.metric("abs(e)", name="formula_mae")
    x, y, _ = data("huber")
    return program, model_with(loss, 4, None, metrics=[metric]), x, y


# `import lossdsl` must be enough in any order: lossdsl registers FormulaLoss when Keras loads;
# and where lossdsl is installed, not even that (INTERFACE.md: "reloads wherever lossdsl is
# importable"): the wheel's lossdsl.pth sets the hook at start-up.
IMPORT_ORDERS = {
    "keras-only": "import keras",
    "keras-first": "import keras\nimport lossdsl",
    "lossdsl-first": "import lossdsl\nimport keras",
    "tf.keras": "import lossdsl\nimport tensorflow as tf\nkeras = tf.keras",
}


@pytest.mark.parametrize("order", sorted(IMPORT_ORDERS))
def test_formula_loss_reloads_with_only_lossdsl(tmp_path, order):
    program, model, x, y = formula_model()
    expected = model.evaluate(x, y, verbose=0, batch_size=16, return_dict=True)
    model.save(tmp_path / "formula.keras")
    np.savez(tmp_path / "formula.npz", x=x, y=y)
    results = run_fresh(
        LOAD_FORMULA.replace("IMPORTS", IMPORT_ORDERS[order]), str(tmp_path)
    )
    assert results["type"] == "FormulaLoss"
    assert results["config"]["formula"] == program and results["config"]["delta"] == 2.0
    assert set(results["values"]) == set(expected) and "formula_mae" in expected
    for key, value in expected.items():
        assert np.isclose(results["values"][key], value, rtol=1e-6), key


LEFT_AFTER_LOAD = r"""
import tempfile
left = tempfile.mkdtemp(prefix="lossdsl-")  # as a killed process leaves its folder
open(os.path.join(left, "owner-1"), "w").close()  # (an owner file that no process holds)
print(json.dumps({"left": left, "loaded": "lossdsl" in sys.modules}))
"""


def test_a_process_that_only_loads_a_saved_formula_loss_sweeps_at_exit(
    tmp_path, monkeypatch
):
    # The start-up hook takes back the exit sweep that `import lossdsl` registers; a process that
    # had lossdsl only from a saved config (the hook's stand-in) never swept (a review)
    program, model, x, y = formula_model()
    model.save(tmp_path / "formula.keras")
    np.savez(tmp_path / "formula.npz", x=x, y=y)
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    script = LOAD_FORMULA.replace("IMPORTS", "import keras") + LEFT_AFTER_LOAD
    results = run_fresh(script, str(tmp_path))
    assert results["loaded"] is True and results["left"].startswith(str(root))
    assert not os.path.exists(results["left"])


def with_startup_hook(script: str, cwd=None, flags=()) -> subprocess.CompletedProcess:
    """`script` run by a fresh interpreter with the installed lossdsl.pth's hook on."""
    env = {**os.environ, "LOSSDSL_NO_KERAS_HOOK": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, *flags, "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def test_the_startup_hook_neither_hides_nor_runs_a_lossdsl_folder_in_the_current_one(
    tmp_path,
):
    # lossdsl.pth imports lossdsl at start-up to set the hook, before the script's folder is on
    # sys.path; it forgets that import again, so a script run in a checkout's folder imports the
    # checkout's lossdsl, as it would with no hook (it imported the installed copy).
    package = tmp_path / "lossdsl"
    package.mkdir()
    (package / "__init__.py").write_text('WHERE = "checkout"\n')
    script = "import lossdsl; print(getattr(lossdsl, 'WHERE', 'installed'))"
    proc = with_startup_hook(script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "checkout"
    # ... while Keras, imported first, registers the installed lossdsl's FormulaLoss and never runs
    # the folder's (a plain `import keras` ran it, and then warned that it had no runtime).
    (package / "__init__.py").write_text('print("the folder\'s lossdsl ran")\n')
    script = (
        "import sys, keras\n"
        "stand_in = keras.saving.get_registered_object('lossdsl>FormulaLoss')\n"
        "print('lossdsl' in sys.modules, type(stand_in.from_config({'formula': 'abs(e)'})).__module__)"
    )
    proc = with_startup_hook(script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout.strip() == "False lossdsl.runtime"
        and "could not register" not in proc.stderr
    )


def test_keras_imported_where_lossdsl_is_blocked_says_nothing_of_it():
    # `sys.modules["lossdsl"] = None`, the usual way to show that code runs without a package:
    # the start-up hook warned "lossdsl could not register FormulaLoss" at `import keras`, an
    # error under `-W error` (a conformance review)
    script = (
        "import sys, warnings\n"
        "sys.modules['lossdsl'] = None\n"
        "import keras\n"
        "print(keras.saving.get_registered_object('lossdsl>FormulaLoss'))"
    )
    proc = with_startup_hook(script, flags=("-W", "error::UserWarning"))
    assert proc.returncode == 0, proc.stderr
    assert "lossdsl" not in proc.stderr
    assert proc.stdout.strip() == "None"


def test_tampered_formula_fails_to_load(tmp_path):
    _, model, _, _ = formula_model()
    path = tmp_path / "model.keras"
    model.save(path)
    tampered = tampered_copy(path, tmp_path / "tampered.keras", formula="abs(e")
    with pytest.raises(lossdsl.LossSyntaxError):
        keras.models.load_model(tampered)


UNPICKLE = r"""
import json, os, pickle, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
with open(os.path.join(sys.argv[2], "objects.pickle"), "rb") as handle:
    loss, fused, metric = pickle.load(handle)
y_true, y_pred = np.zeros((2, 3), "float32"), np.full((2, 3), 3.0, "float32")
metric.update_state(y_true, y_pred)
print(json.dumps({
    "class": type(loss).__name__, "delta": loss.delta, "reduction": loss.reduction, "name": loss.name,
    "value": float(loss(y_true, y_pred)), "fused": float(fused(y_true, y_pred)),
    "metric": [metric.name, float(metric.result())],
}))
"""


def test_a_pickled_generated_loss_loads_in_another_process(tmp_path):
    # Pickled, it was an object of a module only the process that made it had imported (a review):
    # a multiprocessing or Ray worker could not load it. It is rebuilt from its program and config.
    import pickle

    program = "param delta = 1.0\nwhere(abs(e) <= delta, 0.5 * e^2, delta * (abs(e) - 0.5 * delta))"
    loss = lossdsl.loss(program, name="MyHuber", delta=2.0, reduction="sum")
    fused = lossdsl.library.compile("mean_squared_error").keras_loss(name="mse_fused")
    metric = lossdsl.metric("abs(e)", name="my_mae")
    with open(tmp_path / "objects.pickle", "wb") as handle:
        pickle.dump((loss, fused, metric), handle)
    found = run_fresh(UNPICKLE, str(tmp_path))
    assert found == {
        "class": "MyHuber",
        "delta": 2.0,
        "reduction": "sum",
        "name": "MyHuber",  # (the name names the class and the object)
        "value": 8.0,  # 2 (3 - 1) per element, summed over two samples of mean 4
        "fused": 9.0,
        "metric": ["my_mae", 3.0],
    }


def test_a_copied_or_pickled_compiled_loss_is_whole():
    # The analysis keys its facts by syntax-tree nodes; a deep copy or an unpickled spec held new
    # nodes, and its latex() was a LossInternalError (a review). It is compiled again from its text.
    import copy
    import pickle

    spec = lossdsl.compile(
        "# Scaled.\nparam k = 2\na = abs(e)\nk * a", name="Scaled", strict=True
    )
    for other in (
        copy.deepcopy(spec),
        pickle.loads(pickle.dumps(spec)),
        copy.copy(spec),
    ):
        assert (other.name, other.source, other.strict, other.params) == (
            "Scaled",
            spec.source,
            True,
            {"k": 2.0},
        )
        assert other.description == "Scaled."
        assert (
            other.latex() == spec.latex()
            and other.latex(inline=True) == "k \\left|y - \\hat{y}\\right|"
        )
        assert other.latex(gradient=True) == spec.latex(gradient=True)
        assert other.python_source() == spec.python_source()
        assert other.expr == spec.expr and other.gradient() == spec.gradient()
    spec.note = "mine"  # a shallow copy is the default one, which keeps what was set on the object
    assert copy.copy(spec).note == "mine" and copy.copy(spec).resolved is spec.resolved
    # ... and a description set since goes along (it went back to the comment's; a review)
    spec.description = "Set by hand."
    for other in (copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert other.description == "Set by hand."
        assert "Set by hand." in other.python_source()
    assert lossdsl.compile(spec.source, name="Scaled").description == "Scaled."


FORKED = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import lossdsl
from lossdsl import module_folder
lossdsl.loss("abs(e)")
folder = module_folder.folder()
child = os.fork()
if child == 0:
    sys.exit(0)  # runs the exit handlers it inherited
os.waitpid(child, 0)
kept = os.path.isdir(folder)
value = float(lossdsl.loss("e^2")(np.zeros((1, 2), "float32"), np.ones((1, 2), "float32")))
print(json.dumps({"kept": kept, "value": value}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX's")
def test_a_forked_child_leaves_the_parents_generated_modules(tmp_path):
    # A child that exited normally removed the parent's folder of generated modules, and the
    # parent's next new loss was a FileNotFoundError (a review).
    assert run_fresh(FORKED, str(tmp_path)) == {"kept": True, "value": 1.0}


GONE = r"""
import json, os, shutil
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import lossdsl
from lossdsl import module_folder
lossdsl.loss("abs(e) + 0.25 * e^2")
gone = module_folder.folder()
shutil.rmtree(gone)  # as a /tmp cleaned by age would
loss = lossdsl.loss("abs(e) + 0.75 * e^2")
value = float(loss(np.zeros((1, 2), "float32"), np.full((1, 2), 2.0, "float32")))
now = module_folder.folder()
print(json.dumps({"new": now != gone and os.path.isdir(now), "value": value}))
"""


def test_generated_modules_are_written_again_where_their_folder_has_gone(tmp_path):
    # (in a process of its own: this one's generated modules stay where they were written)
    assert run_fresh(GONE, str(tmp_path)) == {"new": True, "value": 5.0}
