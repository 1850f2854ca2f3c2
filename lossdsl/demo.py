"""`lossdsl demo`: the main job, end to end, on the seed formula.

Compiles `abs(e)*0.5*(1+abs(e))`, prints the check report, the LaTeX and the
generated Keras class, then trains a small regression model with it on
synthetic data and shows the loss falling. Returns 0 when the final epoch's
loss is below the first's.
"""

from __future__ import annotations

import os
import sys

import lossdsl

SEED_SOURCE = "# Penalized absolute error: |e| grows into |e| + e^2 / 2 for large errors.\nabs(e)*0.5*(1+abs(e))\n"


def _section(title: str, out) -> None:
    print(f"\n== {title}", file=out)


def run_demo(epochs: int = 30, out=None) -> int:
    """Run the demo, printing to `out` (standard output by default); returns an exit code.

    Raises ValueError for fewer than 2 epochs (the demo compares the first epoch's loss with the last).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 2:
        raise ValueError(
            f"the demo needs a whole number of epochs, at least 2, not {epochs!r}"
        )
    out = out or sys.stdout
    spec = lossdsl.compile(SEED_SOURCE, name="PenalizedAbsoluteError")

    _section("program", out)
    print(spec.source.rstrip(), file=out)

    _section("check report", out)
    if spec.diagnostics:
        for d in spec.diagnostics:
            print(d.format(spec.source), file=out)
    print(
        f"depends on y_pred: yes; dead terms: none; errors: 0; warnings: "
        f"{sum(d.level == 'warning' for d in spec.diagnostics)}",
        file=out,
    )
    print(f"SymPy:    L = {spec.expr}", file=out)
    print(f"gradient: dL/dy_pred = {spec.gradient()}", file=out)

    _section("LaTeX", out)
    print(spec.latex(), file=out)

    _section(f"generated Keras class ({spec.name})", out)
    print(spec.python_source().rstrip(), file=out)

    _section("training a small model with it", out)
    losses = _train(spec, epochs, out)
    first, last = losses[0], losses[-1]
    falling = last < first
    print(
        f"loss fell from {first:.4f} to {last:.4f} over {len(losses)} epochs"
        f" ({'falling' if falling else 'NOT falling'})",
        file=out,
    )
    return 0 if falling else 1


def _train(spec, epochs: int, out) -> list[float]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1024, 4)).astype("float32")
    weights = np.array([[1.5], [-2.0], [0.5], [3.0]], dtype="float32")
    y = (
        x @ weights + 0.5 * np.sin(3 * x[:, :1]) + 0.1 * rng.normal(size=(1024, 1))
    ).astype("float32")

    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss=spec.keras_loss(),
        metrics=[lossdsl.metric("abs(e)", name="mae")],
    )
    history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    losses = [float(v) for v in history.history["loss"]]
    maes = [float(v) for v in history.history["mae"]]
    shown = sorted(
        {0, 1, 2, len(losses) // 2, len(losses) - 2, len(losses) - 1}
        & set(range(len(losses)))
    )
    for i in shown:
        print(f"  epoch {i + 1:3d}  loss {losses[i]:.4f}  mae {maes[i]:.4f}", file=out)
    return losses
