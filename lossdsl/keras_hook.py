"""Register lossdsl's Keras classes with Keras as soon as Keras is imported.

Input: nothing; `install()` is called by `import lossdsl`, and
`install_at_startup()` by the installed wheel's `lossdsl.pth` at every
interpreter start-up (unless LOSSDSL_NO_KERAS_HOOK is set). Output: when `keras` is (or becomes) imported,
`lossdsl.runtime` is loaded, whose decorators register `FormulaLoss` and
`FormulaMetric` under the package `lossdsl`. So where lossdsl is installed,
`keras.models.load_model` rebuilds a saved `FormulaLoss` with no `import
lossdsl` at all (INTERFACE.md: "reloads wherever lossdsl is importable"), and
`import lossdsl` is enough in either import order elsewhere; `import lossdsl`
alone imports neither Keras (seconds) nor the compiler (SymPy and Lark, half a
second), so start-up pays about 2 ms. An error while
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
    # A script that has not imported lossdsl by the time Keras loads gets the installed copy that
    # start-up found, never a folder named lossdsl that happens to be on the path then (a plain
    # `import keras` would have run it); one that has imported its own keeps it.
    if "lossdsl" not in sys.modules:
        for name, module in _set_aside.items():
            sys.modules.setdefault(name, module)
    try:
        from lossdsl import runtime  # noqa: F401 - importing it registers the classes
    except Exception as err:  # noqa: BLE001 - never break `import keras` for lossdsl's sake
        import warnings

        warnings.warn(
            f"lossdsl could not register FormulaLoss with Keras: {err!r}", stacklevel=2
        )


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
    for name in ("lossdsl.keras_hook", "lossdsl"):
        if name in sys.modules:
            _set_aside[name] = sys.modules.pop(name)
