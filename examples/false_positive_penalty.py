"""Seed 003: penalizing false positives, and why counting them cannot train.

The first attempt adds `alpha * sum(where(y_pred > y_true, 1, 0))`: a count
of over-predictions. Its gradient is zero almost everywhere, so the compiler
rejects it and suggests a smooth surrogate. The second program uses that
surrogate (a sigmoid step) and trains.
"""

from _common import options, report

import lossdsl

COUNTING = """\
param alpha = 0.5
mean(e^2) + alpha * sum(where(y_pred > y_true, 1, 0))
"""

SOFT = """\
# Squared error plus a soft fraction of over-predictions.
param alpha = 0.5
param tau = 0.1
mean(e^2) + alpha * mean(sigmoid((y_pred - y_true) / tau))
"""


def main() -> None:
    args = options(__doc__)
    try:
        lossdsl.compile(COUNTING)
        raise SystemExit("the counting penalty was accepted; it should not be")
    except lossdsl.NotDifferentiableError as err:
        print("rejected, as it should be:")
        print(err)

    import keras
    import numpy as np

    spec = lossdsl.compile(SOFT, name="SoftFalsePositivePenalty")
    print("compiled the soft version:", spec.expr)

    n, epochs = (256, 3) if args.quick else (2048, 40)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, :1] * 2 + x[:, 1:2] + 0.3 * rng.normal(size=(n, 1))).astype("float32")

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=spec.keras_loss(alpha=0.5)
    )
    first, last = report(model.fit(x, y, epochs=epochs, batch_size=64, verbose=0))
    over = float(np.mean(model.predict(x, verbose=0) > y))
    print(f"share of over-predictions after training: {over:.2f}")
    print("ok" if last < first else "loss did not fall")


if __name__ == "__main__":
    main()
