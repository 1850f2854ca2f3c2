"""Binary focal loss on an imbalanced classification problem (5% positives).

The library's `binary_focal_crossentropy` matches Keras's built-in; here it
trains a small network (one hidden layer, a sigmoid output: the bundled focal
loss takes probabilities, as Keras's does by default) and the example prints
recall on the rare class.
"""

from _common import options, report

import lossdsl


def main() -> None:
    args = options(__doc__)
    import keras
    import numpy as np

    spec = lossdsl.library.compile("binary_focal_crossentropy")
    print(spec.description)
    print("latex:", spec.latex())

    n, epochs = (512, 3) if args.quick else (8192, 30)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(n, 6)).astype("float32")
    score = x[:, 0] + 0.8 * x[:, 1] - 0.5 * x[:, 2]
    y = (score > np.quantile(score, 0.95)).astype("float32")[:, None]

    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=spec.keras_loss(gamma=2.0)
    )
    first, last = report(model.fit(x, y, epochs=epochs, batch_size=128, verbose=0))
    pred = model.predict(x, verbose=0) > 0.5
    recall = float((pred & (y > 0.5)).sum() / max(1, (y > 0.5).sum()))
    print(f"positives: {int(y.sum())} of {n}; recall on them: {recall:.2f}")
    print("ok" if last < first else "loss did not fall")


if __name__ == "__main__":
    main()
