"""Seed 000: regression with the penalized absolute error abs(e)*0.5*(1+abs(e)).

Large errors cost |e| + e^2/2, small ones about |e|: robust like MAE near the
target, pushing hard on outliers. Compiles the formula, prints its checks and
its LaTeX, trains a small dense model on synthetic data, and writes the
generated Keras module to a fresh temporary folder (the path is printed).
"""

import tempfile
from pathlib import Path

from _common import options, report

import lossdsl


def main() -> None:
    args = options(__doc__)
    import keras
    import numpy as np

    spec = lossdsl.compile("abs(e)*0.5*(1+abs(e))", name="PenalizedAbsoluteError")
    print("expr:", spec.expr)
    print("latex:", spec.latex())
    for d in spec.diagnostics:
        print(d.level, d.message)

    n, epochs = (256, 3) if args.quick else (2048, 40)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (
        x @ np.array([[2.0], [-1.0], [0.5]]) + 0.2 * rng.standard_t(3, size=(n, 1))
    ).astype("float32")

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=spec.keras_loss(), metrics=["mae"]
    )
    first, last = report(model.fit(x, y, epochs=epochs, batch_size=64, verbose=0))

    out = Path(tempfile.mkdtemp()) / "penalized_absolute_error.py"
    out.write_text(spec.python_source())
    print(f"generated module: {out}")
    print("ok" if last < first else "loss did not fall")


if __name__ == "__main__":
    main()
