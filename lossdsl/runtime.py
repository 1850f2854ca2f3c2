"""Live Keras objects from compiled programs; the one place that runs generated code.

Input: a `CompiledLoss` (or program text). Output: the generated loss class,
metrics that average the same formula, and `FormulaLoss`.

* `loss_class(spec)` writes `spec.python_source()` to a module file in a
  private temporary directory (`module_folder`: made with `tempfile.mkdtemp`,
  removed at exit) and imports it with `importlib`; nothing is passed to `exec` or
  `eval`. Classes are cached by source text, behind a lock.
* Generated classes are registered with Keras under the package
  "lossdsl_generated" (and a name that carries a digest of the program);
  `FormulaLoss` and `FormulaMetric` are registered under "lossdsl". The
  two never collide, although a generated class is called "FormulaLoss"
  when no name is given. Several class objects can carry one registered
  name (another import of the same module file); `loss_class` makes the
  registry map the name to the class it returns, so that a config round
  trip gives back that class.
* `FormulaLoss(formula=..., **params)` keeps the formula text and the
  parameters in its Keras config and compiles the formula again when a model
  is loaded; a formula that no longer compiles raises its `LossError` then.
  A saved config is read strictly (`from_config`): a key that is neither a
  base argument nor a parameter the formula declares, a formula that is not
  text, or a parameter that is not a number is a `LossTypeError` (a
  `ValueError`: Keras rewraps a `TypeError` from `from_config` into a generic
  message), raised before anything is built. Nothing in a config is ever run.

Limits: a generated class lives as long as the process; a model saved with
an instance of it loads in another process only where its module is imported
again (use `FormulaLoss` for models that travel). A pickled instance does
travel: it is rebuilt from its program and its config (`_unpickled`).
"""

from __future__ import annotations

import contextlib
import contextvars
import copyreg
import hashlib
import importlib.util
import keyword
import math
import re
import sys
import threading

import keras

from lossdsl import module_folder
from lossdsl.api_arguments import checked_arguments
from lossdsl.emit.names import camel_case, snake_case
from lossdsl.errors import LossArgumentError, LossTypeError, warn_of
from lossdsl.forking import hold_across_fork

__all__ = [
    "FormulaLoss",
    "FormulaMetric",
    "build_loss",
    "build_metric",
    "loss_class",
    "make_metric",
]


def _compile(source: str, name: str | None = None, kwargs: dict | None = None):
    """`lossdsl.compile`, imported on first use: keras_hook imports this module as soon as Keras is
    imported, and the compiler (SymPy, Lark) would add half a second to that. `kwargs`, the
    shortcuts' keywords: a `strict` is taken from them for compile() unless the program declares
    a parameter of that name (`loss(source, strict=True)`, a shortcut for `compile(...)` and
    `keras_loss(...)`, was an unknown parameter; a contract review)."""
    from lossdsl.pipeline import compile as compile_source

    spec = compile_source(source, name)
    if kwargs is not None and "strict" in kwargs and "strict" not in spec.params:
        strict = kwargs.pop("strict")
        spec = compile_source(source, name, strict=strict)
    if not _QUIET.get():
        warn_of(
            spec.diagnostics
        )  # (a Keras object is made of it: nobody reads its diagnostics)
    return spec


def _warn_of_values(spec, values: dict[str, float]) -> None:
    """The checks' warnings of `spec`'s program with `values` as its parameters' defaults, those its
    own defaults do not give: the checks judge a parameter at its default, and Barron's loss with
    `alpha=0.0` given to `loss()` was NaN, unwarned, where a default of 0.0 is warned of (a review).
    The program is checked again with the values written in (`check` never raises; its cache holds
    it). Errors of that program are not reported: the object is made of the program as compiled.
    Under `strict=True` the warnings are the error they would be with those defaults."""
    changed = {
        key: value
        for key, value in values.items()
        if value != spec.params.get(key, value)
    }
    if _QUIET.get() or not changed:
        return
    from lossdsl.nodes import Param
    from lossdsl.pipeline import check

    text = spec.source
    params = [
        st
        for st in spec.resolved.program.statements
        if isinstance(st, Param) and st.name in changed
    ]
    for statement in sorted(params, key=lambda st: st.value_span.start, reverse=True):
        span = statement.value_span
        text = text[: span.start] + repr(changed[statement.name]) + text[span.end :]
    # A warning the defaults give at the same place is not repeated: its message may hold the
    # value's interval (`log(clip(y_pred, lo, 1))` warned twice; the change review).
    known = {
        (d.code, d.line, d.column) for d in spec.diagnostics if d.level == "warning"
    }
    given = ", ".join(f"{key}={value!r}" for key, value in changed.items())
    fresh = [
        d
        for d in check(text)
        if d.level == "warning" and (d.code, d.line, d.column) not in known
    ]
    if fresh and spec.strict:
        # `loss(source, strict=True, gamma=0.0)` is refused as the program with that default is
        # (it made the object, with a Python warning; the change review)
        from lossdsl.pipeline import refused

        raise refused(fresh, text)
    warn_of(fresh, f"with {given}: ")


# Whether `_compile` keeps the checks' warnings to itself: while a saved config is read (the
# formula was accepted when it was saved; under `-W error` the model would no longer load), and
# while `spec.keras_metric()` builds its metric (a spec's diagnostics are at hand, as for
# `keras_loss()`, and `metric()` has warned already).
_QUIET = contextvars.ContextVar("lossdsl_quiet", default=False)


@contextlib.contextmanager
def _quietly():
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


_LOCK = threading.RLock()
hold_across_fork("classes", _LOCK)
_CLASSES: dict[str, type] = {}


def loss_class(spec, fast: bool = True, xla: bool = False) -> type:
    """The generated `keras.losses.Loss` subclass of `spec`, imported from its module file.

    `fast=False`: the class as `spec.python_source(fast=False)` writes it (autodiff gradients);
    `xla=True`: as `spec.python_source(xla=True)` writes it (spelled for XLA).
    """
    source = spec.python_source(fast=fast, xla=xla)
    with _LOCK:
        cls = _CLASSES.get(source)
        if cls is None:
            cls = _import(source, spec.name)
            _CLASSES[source] = cls
            made = (spec.source, spec.name, fast, xla)
            copyreg.pickle(cls, lambda loss: (_unpickled, (*made, loss.get_config())))
        _claim(cls)
        return cls


def _unpickled(formula: str, class_name: str, fast: bool, xla: bool, config: dict):
    """A generated loss from its pickle: its program compiled again, its class made again, the
    object built from its config. (Pickled, it was an object of a module that only the process
    that made it had imported: another process, a `multiprocessing` or Ray worker, could not
    load it; a review.) The formula is compiled as `FormulaLoss` compiles a saved one."""
    with _quietly():
        spec = _compile(_text(formula), class_name)
    return loss_class(spec, fast=fast, xla=xla).from_config(config)


def _claim(cls: type) -> None:
    """Make Keras's registry map the name `cls` was registered under to `cls` (again).

    Other class objects can carry the same registered name: any other import of the same
    module file (the saving tests import the files themselves), or another variant of the
    program that the emitter names alike. Whichever was imported last held the name, so a
    config round trip of an object made earlier came back as an object of another class,
    depending on the order of earlier calls. Now the class `loss_class` hands out holds it.
    """
    package, _, name = keras.saving.get_registered_name(cls).partition(">")
    if name and keras.saving.get_custom_objects().get(f"{package}>{name}") is not cls:
        keras.saving.register_keras_serializable(package=package, name=name)(cls)


def make_metric(spec, /, **kwargs) -> FormulaMetric:
    """A `keras.metrics.Metric` averaging the per-sample values of `spec`'s formula.

    Args:
        spec: a `CompiledLoss`.
        **kwargs: parameters of the formula, and the metric's `name` (default: the
            snake_case of the class name) and `dtype`.
    """
    unknown_arguments(spec, kwargs, ("name", "dtype"))
    name = kwargs.pop("name", None)
    dtype = kwargs.pop("dtype", None)
    with _quietly():  # (FormulaMetric checks the name and dtype)
        return FormulaMetric(
            formula=spec.source, class_name=spec.name, name=name, dtype=dtype, **kwargs
        )


def build_loss(source: str, name: str | None = None, **kwargs) -> keras.losses.Loss:
    """`compile(source, class name).keras_loss(...)`; `name` names the class (CamelCase) and the object."""
    class_name, object_name = _names(name)
    if object_name is not None:
        kwargs["name"] = object_name
    spec = _compile(source, class_name, kwargs)
    return _warned(spec, spec.keras_loss(**kwargs))


def build_metric(source: str, name: str | None = None, **kwargs) -> FormulaMetric:
    """`compile(source, class name).keras_metric(...)`; `name` names the class (CamelCase) and the object."""
    class_name, object_name = _names(name)
    if object_name is not None:
        kwargs["name"] = object_name
    spec = _compile(source, class_name, kwargs)
    return _warned(spec, spec.keras_metric(**kwargs))


def _warned(spec, made):
    """`made`, a loss or metric of `spec`, once the warnings its parameters' values add are given."""
    config = made.get_config()  # (each parameter under its own name)
    _warn_of_values(spec, {key: config[key] for key in spec.params})
    return made


@keras.saving.register_keras_serializable(package="lossdsl")
class FormulaLoss(keras.losses.Loss):
    """A Keras loss whose config holds its lossdsl formula, compiled again when a model loads.

    Args:
        formula: the lossdsl program.
        reduction: the batch reduction, as in `keras.losses.Loss`.
        name: the name of the loss object (default "formula_loss").
        dtype: the dtype the loss computes in.
        **params: values for the parameters the formula declares.

    Raises:
        LossError: the formula does not compile.
        LossArgumentError: a parameter the formula does not declare (a LossTypeError and a TypeError).
    """

    @checked_arguments
    def __init__(
        self, formula, reduction="sum_over_batch_size", name=None, dtype=None, **params
    ):
        spec = _compile(_text(formula))
        values = _parameters(spec, params)
        keras_arguments(reduction, name, dtype)
        _warn_of_values(spec, values)
        super().__init__(name=name or "formula_loss", reduction=reduction, dtype=dtype)
        self.formula = spec.source
        self._values = values
        self._loss = loss_class(spec)(reduction=reduction, dtype=dtype, **values)

    def call(self, y_true, y_pred):
        """Per-sample values of the formula."""
        return self._loss.call(y_true, y_pred)

    def get_config(self):
        """The base config, the formula, each parameter under its own name, and the dtype."""
        config = super().get_config()
        config.update({"formula": self.formula, "dtype": self.dtype, **self._values})
        return config

    @classmethod
    def from_config(cls, config):
        """A FormulaLoss from a saved config, read strictly (see the module docstring)."""
        with _quietly():
            return cls(**_checked_config(config, ("name", "reduction", "dtype")))


@keras.saving.register_keras_serializable(package="lossdsl")
class FormulaMetric(keras.metrics.MeanMetricWrapper):
    """A Keras metric: the mean of a lossdsl formula's per-sample values over everything seen.

    Args:
        formula: the lossdsl program.
        name: the name of the metric (default: the snake_case of `class_name`).
        dtype: the dtype of the metric's result.
        class_name: the name of the generated loss class (default "FormulaLoss").
        **params: values for the parameters the formula declares.
    """

    @checked_arguments
    def __init__(self, formula, name=None, dtype=None, class_name=None, **params):
        spec = _compile(_text(formula), class_name)
        values = _parameters(spec, params)
        _warn_of_values(spec, values)
        # Here, for `keras_metric()` and a saved config alike (checked in `make_metric` only, a
        # config's int dtype averaged in integers, 0 for a mean of 0.25, and a name that is not
        # text was Keras's AttributeError; fuzzing).
        keras_arguments(name=name, dtype=dtype, loss=False)
        loss = loss_class(spec)(**values)
        super().__init__(fn=loss.call, name=name or snake_case(spec.name), dtype=dtype)
        self._direction = "down"  # a loss: smaller is better
        self._lossdsl = (spec.source, spec.name, values)
        self._compute_dtype = loss.dtype

    def update_state(self, y_true, y_pred, sample_weight=None):
        """The formula's per-sample values of this batch, added to the mean.

        Predictions of an integer or bool dtype are cast to the loss's float dtype first, as the
        loss object's own `__call__` casts them: a metric calls the loss's `call()` directly, and
        `log(cosh(e))` of integers was TensorFlow's "Cannot convert -2.0 to EagerTensor of dtype
        int64" where the loss gave its value (a float prediction keeps its dtype, and its mask).
        """
        if not hasattr(y_pred, "dtype"):  # a list, a Python number
            y_pred = keras.ops.convert_to_tensor(y_pred)
        if not keras.backend.is_float_dtype(y_pred.dtype):
            y_pred = keras.ops.cast(y_pred, self._compute_dtype)
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        """Name, dtype, the formula, the class name and each parameter under its own name."""
        formula, class_name, values = self._lossdsl
        return {
            "name": self.name,
            "dtype": self.dtype,
            "formula": formula,
            "class_name": class_name,
            **values,
        }

    @classmethod
    def from_config(cls, config):
        """A FormulaMetric from a saved config, read strictly (see the module docstring)."""
        with _quietly():
            return cls(**_checked_config(config, ("name", "dtype", "class_name")))


def _checked_config(config, base_keys: tuple[str, ...]) -> dict:
    """A saved config of FormulaLoss or FormulaMetric, once its keys and values are what one holds.

    Raises:
        LossTypeError: not a dict, no formula or one that is not text, a key that is neither in
            `base_keys` nor a parameter of the formula, or a parameter that is not a number.
        LossError: the formula does not compile.
    """
    if not isinstance(config, dict):
        raise LossTypeError(
            f"a saved lossdsl config is a dict, not {type(config).__name__}"
        )
    formula = config.get("formula")
    if not isinstance(formula, str):
        raise LossTypeError(
            f"the saved config holds no formula text (formula={formula!r:.80})"
        )
    spec = _compile(
        formula, config.get("class_name") if "class_name" in base_keys else None
    )
    unknown = sorted(
        str(key) for key in set(config) - {"formula", *base_keys, *spec.params}
    )
    if unknown:
        declared = ", ".join(spec.params) or "none"
        raise LossTypeError(
            f"the saved config has unknown key(s) {', '.join(unknown)[:200]}; the formula declares the"
            f" parameters: {declared}"
        )
    for key in spec.params:
        value = config.get(key, spec.params[key])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LossTypeError(
                f"the saved parameter {key!r} is not a number: {value!r:.80}"
            )
    # The reduction, name and dtype too, here and as a LossTypeError: from the constructor they are
    # a LossArgumentError, a TypeError, which Keras's deserialization replaced with its own
    # "could not be deserialized properly" (a tampered config; fuzzing).
    keyword = {
        key: config[key]
        for key in ("reduction", "name", "dtype")
        if key in base_keys and key in config
    }
    try:
        keras_arguments(**keyword, loss="reduction" in base_keys)
    except LossArgumentError as err:
        raise LossTypeError(f"the saved config: {err.message}") from None
    return dict(config)


def _text(formula) -> str:
    if not isinstance(formula, str):
        raise LossArgumentError(
            f"formula must be lossdsl program text (str), not {type(formula).__name__}"
        )
    return formula


def _parameters(spec, given: dict) -> dict[str, float]:
    """The formula's parameters with the given values in place of the defaults, as floats."""
    unknown_arguments(spec, given)
    return {
        key: parameter_value(key, given.get(key, default))
        for key, default in spec.params.items()
    }


def unknown_arguments(spec, given: dict, takes: tuple[str, ...] = ()) -> None:
    """LossArgumentError for a keyword in `given` that is neither a parameter nor in `takes`."""
    unknown = sorted(str(key) for key in set(given) - set(spec.params) - set(takes))
    if unknown:
        declared = ", ".join(spec.params) or "none"
        also = f"; and {', '.join(takes)}" if takes else ""
        if "strict" in unknown:  # compile()'s flag, not the loss object's
            also += "; strict= is compile()'s: lossdsl.compile(source, strict=True).keras_loss()"
        raise LossArgumentError(
            f"unknown parameter(s) {', '.join(unknown)[:200]}; the formula declares: {declared}{also}"
        )


# The batch reductions of keras.losses.Loss (Keras 3's `standardize_reduction`).
_REDUCTIONS = (
    None,
    "none",
    "sum",
    "sum_over_batch_size",
    "mean",
    "mean_with_sample_weight",
)


# A name TensorFlow's graph takes as a root name scope, as a loss called in a user's own
# `tf.function` opens one (`a b`, `a:b`, `é`, `a\b`, and `_x` and `>x` at the root, fail).
_TF_SCOPE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.>-]*")


def keras_arguments(
    reduction="sum_over_batch_size", name=None, dtype=None, *, loss: bool = True
) -> None:
    """LossArgumentError for a `reduction`, `name` or `dtype` Keras would refuse, or (an integer or
    boolean dtype, a loss's name with a `/`) that would fail at the first call: one error type for
    every bad argument. `loss=False`: a metric's (whose name may hold a `/`)."""
    # (type first: `in` compares with `==`, which an array or a tensor answers elementwise)
    if (
        not (reduction is None or isinstance(reduction, str))
        or reduction not in _REDUCTIONS
    ):
        allowed = ", ".join(repr(r) for r in _REDUCTIONS)
        raise LossArgumentError(
            f"reduction must be one of {allowed}, not {reduction!r:.80}"
        )
    if name is not None and not isinstance(name, str):
        raise LossArgumentError(f"name must be a str, not {type(name).__name__}")
    if name is not None and not _encodable(name):
        # a lone surrogate (`"\ud800"`) was TensorFlow's UnicodeEncodeError when a metric made its
        # variables (fuzzing); a loss's name met it at its first call
        raise LossArgumentError(
            f"name must be text that UTF-8 can encode: {name!r:.80}"
        )
    if loss and name is not None and "/" in name:
        # Keras's Loss takes it and refuses it in its name scope at the first call (fuzzing)
        raise LossArgumentError(
            f"a loss's name cannot contain `/` (Keras's name scopes refuse it): {name!r:.80}"
        )
    if (
        loss
        and name
        and keras.backend.backend() == "tensorflow"
        and not _TF_SCOPE_NAME.fullmatch(name)
    ):
        # TensorFlow's name scopes refuse them at the first call, as for Keras's own losses (a review)
        raise LossArgumentError(
            "on the TensorFlow backend a loss's name begins with an ASCII letter, a digit or `.`, and holds"
            f" only those, `_`, `-` and `>` (its name scopes refuse others at the first call): {name!r:.80}"
        )
    if dtype is None:
        return
    try:
        # A dtype's name, or a dtype policy's ("mixed_float16" computes in float16); a DTypePolicy,
        # or one serialized as a dict (a saved config's): what Keras's Loss reads it with.
        standard = keras.dtype_policies.get(dtype).compute_dtype
    except (ValueError, TypeError, KeyError, AttributeError):
        standard = None
    if not isinstance(standard, str) or not standard.startswith(("float", "bfloat")):
        raise LossArgumentError(
            f"dtype must be a float type (float32, float16, bfloat16, float64), not {dtype!r:.80}"
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Classes of values that change in place: keras.Variable, tf.Variable (and Keras's TensorFlow
# Variable), a torch Parameter (Keras's torch Variable's value, which `assign` changes in place).
_VARIABLES = {("keras", "Variable"), ("tensorflow", "Variable"), ("torch", "Parameter")}


def _variable(value) -> bool:
    return any(
        (cls.__module__.split(".")[0], cls.__name__) in _VARIABLES
        for cls in type(value).__mro__
    )


def parameter_value(key: str, value) -> float:
    """`value` as the float a parameter holds; LossTypeError for what is not a real number."""
    if isinstance(
        value, (str, bytes)
    ):  # float("1.5") would pass: a parameter is a number, not text
        raise LossTypeError(f"parameter {key!r} must be a number, not {_shown(value)}")
    if _variable(value):
        # Read once, it was frozen silently: an annealing callback's `assign` changed nothing (a review)
        raise LossTypeError(
            f"parameter {key!r} must be a number, not a variable: a parameter is read once, when the loss"
            " is built, so a later assign() would not reach it (give float(v) to freeze its value)"
        )
    axes = _axes(value)
    if axes:
        # PyTorch's float() took a tensor of one element, NumPy's, TensorFlow's and JAX's did
        # not; every backend's array now has the same answer (a Keras review)
        raise LossTypeError(
            f"parameter {key!r} must be one number, not an array of shape {axes}"
            f" ({_shown(value)}); give float(x[0]) for its one element"
        )
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        value = value.detach()  # (a tensor that requires a gradient warns at float())
    dtype = _dtype_name(value)
    if isinstance(value, bool) or "bool" in dtype:  # numpy, TensorFlow, torch
        # True would pass as 1.0, where a saved config holding it is rejected: one rule for both
        raise LossTypeError(
            f"parameter {key!r} must be a number, not a boolean ({_shown(value)})"
        )
    if any(kind in dtype for kind in _NOT_REAL_DTYPES):
        # float() of a complex NumPy scalar or TensorFlow tensor dropped its imaginary part with a
        # ComplexWarning, and of a NumPy array of text read the text (a review of bad input)
        raise LossTypeError(
            f"parameter {key!r} must be a real number, not one of dtype {dtype} ({_shown(value)})"
        )
    try:
        number = float(value)
    except Exception:
        # (whatever an object's own __float__ raises, its own error leaked; a review of bad input)
        raise LossTypeError(
            f"parameter {key!r} must be a real number, not {_shown(value)}"
        ) from None
    if not isinstance(number, float):
        # A graph tensor inside the user's `tf.function`: autograph turns this `float()` into a
        # cast, which returns a tensor (math.isfinite raised TypeError on it; a Keras review)
        number = math.nan
    if not math.isfinite(
        number
    ):  # NaN made every value NaN; inf, NaN where a where unselects it
        raise LossTypeError(
            f"parameter {key!r} must be a real number within float range, not {_shown(value)}"
        )
    return number


# Parts of the names of dtypes that hold no real number (NumPy's `str32`, `bytes8`, `object`;
# TensorFlow's `string`; every library's `complex64`).
_NOT_REAL_DTYPES = ("complex", "str", "bytes", "object", "void")


def _dtype_name(value) -> str:
    """The name of `value`'s dtype (NumPy, a backend's tensor), or "" where it has none."""
    try:
        dtype = getattr(value, "dtype", None)
        if dtype is None or isinstance(value, type):
            return ""
        # (torch's dtypes have no name)
        return str(getattr(dtype, "name", None) or dtype)
    except Exception:  # (an object whose `dtype` raises: none)
        return ""


def _shown(value) -> str:
    """`repr(value)` cut to 80 characters, as the messages show a value; an object whose repr
    raises is named by its type."""
    try:
        return f"{value!r:.80}"
    except Exception:
        return f"a {type(value).__name__} object"


def _axes(value) -> tuple | None:
    """The shape of an array of one axis or more (NumPy, a backend's tensor), else None."""
    shape = getattr(value, "shape", None)
    if shape is None or isinstance(value, type):
        return None
    try:
        axes = tuple(shape)
    except (TypeError, ValueError):  # (a graph tensor of unknown rank)
        return None
    return axes or None


def _names(name) -> tuple[str | None, str | None]:
    """(class name, Keras object name) for a user's `name`: `my_mae` -> (`MyMae`, `my_mae`)."""
    if name is None:
        return None, None
    keras_arguments(name=name, loss=False)  # a loss's name is checked by keras_loss()
    class_name = camel_case(name)
    if (
        not class_name
    ):  # `_`, `__`, `-`, `üüü`: no ASCII letters or digits to make a class name of
        raise LossTypeError(
            f"{name!r} cannot name a loss or a metric: it needs an ASCII letter or digit for its class name"
        )
    if class_name[
        0
    ].isdigit():  # `2fast`: said as a class name's fault, it read as if `name` were one
        raise LossTypeError(
            f"{name!r} cannot name a loss or a metric: its class name, {class_name!r}, would begin with a digit"
        )
    if keyword.iskeyword(
        class_name
    ):  # `none` -> `None`: the message named only the class name
        raise LossTypeError(
            f"{name!r} cannot name a loss or a metric: its class name, {class_name!r}, is a Python keyword"
        )
    return class_name, name


def _import(source: str, class_name: str) -> type:
    """Write `source` to a module file and import it; the class it defines."""
    module_name = (
        "lossdsl_generated_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
    )
    module = sys.modules.get(module_name)
    if module is None:
        path = module_folder.write(module_name + ".py", source)
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return getattr(module, class_name)
