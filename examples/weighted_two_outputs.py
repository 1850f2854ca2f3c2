"""Seed 001: a two-output regression whose outputs matter 0.3 and 0.7, with a formula metric.

The loss weights the squared error of each output along the last axis,
`sum([0.3, 0.7] * e^2)`, and a custom mean-absolute-error metric is written
as a formula too (`abs(e)`).
"""

from _common import options, report

import lossdsl


def main() -> None:
    args = options(__doc__)
    import keras
    import numpy as np

    loss = lossdsl.loss("sum([0.3, 0.7] * e^2)", name="WeightedMSE")
    mae = lossdsl.metric("abs(e)", name="formula_mae")

    n, epochs = (256, 3) if args.quick else (2048, 40)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = np.stack([x[:, 0] - x[:, 1], np.tanh(x[:, 2]) + 0.5 * x[:, 3]], axis=-1).astype(
        "float32"
    )

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=[mae])
    history = model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    first, last = report(history)
    report(history, "formula_mae")

    pred = model.predict(x[:4], verbose=0)
    per_sample = np.asarray(loss.call(y[:4], pred), dtype="float64")
    print("per-sample loss of 4 rows:", ", ".join(f"{v:.3g}" for v in per_sample))
    print("ok" if last < first else "loss did not fall")


if __name__ == "__main__":
    main()
