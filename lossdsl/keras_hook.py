"""Register lossdsl's Keras classes with Keras as soon as Keras is imported.

Input: nothing; `install()` is called by `import lossdsl`, and
`install_at_startup()` by the installed wheel's `lossdsl.pth` at every
interpreter start-up (unless LOSSDSL_NO_KERAS_HOOK is set), which then takes
back the exit handler that `import lossdsl` registers (`_sweep_at_exit`). Output: when `keras`
is (or becomes) imported in a process that has imported lossdsl,
`lossdsl.runtime` is loaded, whose decorators register `FormulaLoss` and
`FormulaMetric` under the package `lossdsl`. In a process that has not (one
that only runs a generated module, or loads a saved model), two stand-ins take
their registered names (`_Deferred`), and lossdsl is imported only when a
saved config asks for one of them: so `keras.models.load_model` rebuilds a
saved `FormulaLoss` with no `import lossdsl` at all (INTERFACE.md: "reloads
wherever lossdsl is importable"), while `import keras` alone leaves lossdsl out
of `sys.modules` (INTERFACE.md: a generated module "does not import lossdsl").
`import lossdsl` alone imports neither Keras (seconds) nor the compiler (SymPy
and Lark, half a second), so start-up pays about 2 ms. An error while
registering is a warning: `import keras` never fails for lossdsl's sake.

Limits: it wraps only Keras's own module loader (the `keras` package), once;
it imports nothing named by users.
"""

from __future__ import annotations

import _thread
import sys

_lock = (
    _thread.allocate_lock()
)  # not `threading`: this module is imported at every start-up (lossdsl.pth)


# The installed lossdsl modules that `install_at_startup` imported, then set aside.
_set_aside: dict[str, object] = {}


def _register() -> None:
    if "lossdsl" not in sys.modules:
        _defer()  # (a process that has not imported lossdsl: stand-ins until one is asked for)
        return
    if sys.modules["lossdsl"] is None:
        return  # import blocked on purpose (`sys.modules["lossdsl"] = None`): no word
    try:
        from lossdsl import runtime  # noqa: F401 - importing it registers the classes
    except Exception as err:  # noqa: BLE001 - never break `import keras` for lossdsl's sake
        import warnings

        warnings.warn(
            f"lossdsl could not register FormulaLoss with Keras: {err!r}", stacklevel=2
        )


def _defer() -> None:
    """Put a `_Deferred` under each of lossdsl's registered names that Keras does not hold yet."""
    try:
        import keras

        objects = keras.saving.get_custom_objects()
    except Exception as err:  # noqa: BLE001 - never break `import keras` for lossdsl's sake
        import warnings

        warnings.warn(
            f"lossdsl could not register FormulaLoss with Keras: {err!r}", stacklevel=2
        )
        return
    for name in ("FormulaLoss", "FormulaMetric"):
        objects.setdefault(f"lossdsl>{name}", _Deferred(name))


class _Deferred:
    """A stand-in for `lossdsl.runtime.<name>` in Keras's registry of custom objects, where Keras
    was imported by a process that has not imported lossdsl: Keras's deserialization calls its
    `from_config`, which imports lossdsl's runtime (whose classes then take their names
    themselves) and builds the object from the real class. Importing Keras put lossdsl's
    runtime in every such process before (a generated module's, which "does not import
    lossdsl": a conformance review)."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<lossdsl's {self.__name__}, imported when a saved config asks for it>"

    def resolve(self) -> type:
        # The installed copy that start-up found, never a folder named lossdsl that happens to
        # be on the path by then (a plain `import keras` would have run it).
        if "lossdsl" not in sys.modules:
            for name, module in _set_aside.items():
                sys.modules.setdefault(name, module)
            package = sys.modules.get("lossdsl")
            if hasattr(package, "_sweep_at_exit"):
                import atexit

                # (what `import lossdsl` registers, and start-up took back: a review)
                atexit.register(package._sweep_at_exit)
        from lossdsl import runtime

        return getattr(runtime, self.__name__)

    def from_config(self, config: dict):
        return self.resolve().from_config(config)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)


class _AfterKerasImport:
    """A meta-path finder that lets Keras's own finder load `keras`, then registers lossdsl's classes."""

    registers_lossdsl = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # Stay installed until Keras has really been loaded: a probe such as
        # importlib.util.find_spec("keras") asks for a spec and discards it.
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        load = getattr(loader, "exec_module", None)
        if load is None:
            return spec

        def load_then_register(module):
            load(module)
            with _lock:
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
            _register()

        loader.exec_module = load_then_register
        return spec


def install() -> None:
    """Register now if Keras is loaded; otherwise as soon as it is."""
    if "keras" in sys.modules:
        _register()
        return
    with _lock:
        # By a mark, not the class: the finder set at start-up is another import's class.
        if not any(getattr(f, "registers_lossdsl", False) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterKerasImport())


def install_at_startup() -> None:
    """What lossdsl.pth runs: install, then set aside the modules imported to do it.

    So a later `import lossdsl` by the script finds whichever lossdsl comes first on `sys.path`
    by then, as it would with no hook: a checkout in the current directory, not the installed
    copy that start-up found before the script's folder was on the path. Keras loaded first
    gets the installed copy back (`_register`).
    """
    install()
    package = sys.modules.get("lossdsl")
    if package is not None and hasattr(package, "_sweep_at_exit"):
        import atexit

        atexit.unregister(
            package._sweep_at_exit
        )  # (a process that imports lossdsl registers it)
    for name in ("lossdsl.keras_hook", "lossdsl"):
        if name in sys.modules:
            _set_aside[name] = sys.modules.pop(name)
