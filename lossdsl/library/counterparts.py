"""Which Keras built-in each bundled loss matches, and the data it is defined on.

Input: nothing (a table). Output: `COUNTERPARTS`, bundled-loss name ->
`Counterpart` (the `keras.losses` function name, keyword arguments for it
and for the lossdsl class, and the makers of `y_true`/`y_pred` data from the
loss's domain). The parity tests and the benchmark both read this table, so
what is benchmarked is what is proven equal; `lossdsl docs` reads it for the
Keras counterpart it names. Data makers use NumPy only and
take `(rng, batch, classes)`; they include the edges of each domain (0 and 1
for probabilities, logits of +-200, tiny and large regression errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["COUNTERPARTS", "NO_COUNTERPART", "Counterpart"]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def probabilities(rng, b: int, c: int, extreme: bool = True) -> np.ndarray:
    """Rows summing to 1; some sharp enough to fall below eps or above 1 - eps."""
    scale = rng.choice([0.5, 3.0, 40.0], size=(b, 1))
    p = _softmax(rng.normal(size=(b, c)) * scale)
    if extreme and b >= 2:
        p[0] = 0.0
        p[0, 0] = 1.0
        p[1] = 1e-8
        p[1, 0] = 1 - 1e-8 * (c - 1)
    return p.astype("float32")


def smooth_probabilities(rng, b: int, c: int) -> np.ndarray:
    """Rows summing to 1, none at the edges."""
    return probabilities(rng, b, c, extreme=False)


def unit_interval(rng, b: int, c: int) -> np.ndarray:
    """Values in [0, 1], with 0, 1 and values within 1e-8 of them."""
    p = rng.uniform(0, 1, (b, c))
    edges = [0.0, 1.0, 1e-8, 1 - 1e-8, 0.5, 1e-6, 1 - 1e-6, 1e-30]
    p.flat[: len(edges)] = edges[: p.size]
    return p.astype("float32")


def one_hot(rng, b: int, c: int) -> np.ndarray:
    return np.eye(c, dtype="float32")[rng.integers(0, c, b)]


def binary(rng, b: int, c: int) -> np.ndarray:
    return rng.integers(0, 2, (b, c)).astype("float32")


def signs(rng, b: int, c: int) -> np.ndarray:
    return 2 * binary(rng, b, c) - 1


def class_ids(rng, b: int, c: int) -> np.ndarray:
    return rng.integers(0, c, b).astype("int64")


def logits(rng, b: int, c: int) -> np.ndarray:
    x = rng.normal(size=(b, c)) * rng.choice([0.1, 3.0, 60.0], size=(b, 1))
    edges = [200.0, -200.0, 0.25, 150.0, -150.0]
    x.flat[: len(edges)] = edges[: x.size]
    return x.astype("float32")


def real(rng, b: int, c: int) -> np.ndarray:
    x = rng.normal(size=(b, c)) * rng.choice([1e-4, 1.0, 30.0], size=(b, 1))
    edges = [0.0, 1e-7, -1e-7, 5.0, -5.0]
    x.flat[: len(edges)] = edges[: x.size]
    return x.astype("float32")


def positive(rng, b: int, c: int) -> np.ndarray:
    x = rng.uniform(0, 5, (b, c))
    edges = [0.0, 1e-7, 1e-3, 100.0, 3.0]
    x.flat[: len(edges)] = edges[: x.size]
    return x.astype("float32")


def rates(rng, b: int, c: int) -> np.ndarray:
    x = rng.uniform(1e-3, 5, (b, c))
    edges = [1e-6, 1e-3, 0.0, 50.0, 3.0]
    x.flat[: len(edges)] = edges[: x.size]
    return x.astype("float32")


def soft(rng, b: int, c: int) -> np.ndarray:
    return rng.uniform(0, 1, (b, c)).astype("float32")


Maker = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Counterpart:
    """A Keras built-in loss a bundled loss matches, and data to compare them on."""

    keras_name: str
    make_true: Maker
    make_pred: Maker
    params: dict = field(default_factory=dict)
    keras_kwargs: dict = field(default_factory=dict)


_LOGITS = {"from_logits": True}

# "name" or "name/variant" -> Counterpart. The plain name is the default case.
COUNTERPARTS: dict[str, Counterpart] = {
    "mean_squared_error": Counterpart("mean_squared_error", real, real),
    "mean_absolute_error": Counterpart("mean_absolute_error", real, real),
    "mean_absolute_percentage_error": Counterpart(
        "mean_absolute_percentage_error", real, real
    ),
    "mean_squared_logarithmic_error": Counterpart(
        "mean_squared_logarithmic_error", positive, positive
    ),
    "hinge": Counterpart("hinge", signs, real),
    "hinge/binary": Counterpart("hinge", binary, real),
    "squared_hinge": Counterpart("squared_hinge", signs, real),
    "squared_hinge/binary": Counterpart("squared_hinge", binary, real),
    "categorical_hinge": Counterpart("categorical_hinge", one_hot, real),
    "log_cosh": Counterpart("log_cosh", real, real),
    "huber": Counterpart("huber", real, real),
    "huber/delta": Counterpart("huber", real, real, {"delta": 2.5}, {"delta": 2.5}),
    "categorical_crossentropy": Counterpart(
        "categorical_crossentropy", one_hot, probabilities
    ),
    "categorical_crossentropy/soft": Counterpart(
        "categorical_crossentropy", probabilities, probabilities
    ),
    "categorical_crossentropy_from_logits": Counterpart(
        "categorical_crossentropy", one_hot, logits, {}, _LOGITS
    ),
    "sparse_categorical_crossentropy": Counterpart(
        "sparse_categorical_crossentropy", class_ids, probabilities
    ),
    "sparse_categorical_crossentropy_from_logits": Counterpart(
        "sparse_categorical_crossentropy", class_ids, logits, {}, _LOGITS
    ),
    "binary_crossentropy": Counterpart("binary_crossentropy", binary, unit_interval),
    "binary_crossentropy/soft": Counterpart("binary_crossentropy", soft, unit_interval),
    "binary_crossentropy_from_logits": Counterpart(
        "binary_crossentropy", binary, logits, {}, _LOGITS
    ),
    "binary_crossentropy_from_logits/soft": Counterpart(
        "binary_crossentropy", soft, logits, {}, _LOGITS
    ),
    "binary_focal_crossentropy": Counterpart(
        "binary_focal_crossentropy", binary, unit_interval
    ),
    "binary_focal_crossentropy/params": Counterpart(
        "binary_focal_crossentropy",
        binary,
        unit_interval,
        {"gamma": 3.0, "alpha": 0.3, "apply_class_balancing": 1.0},
        {"gamma": 3.0, "alpha": 0.3, "apply_class_balancing": True},
    ),
    "categorical_focal_crossentropy": Counterpart(
        "categorical_focal_crossentropy", one_hot, probabilities
    ),
    "categorical_focal_crossentropy/params": Counterpart(
        "categorical_focal_crossentropy",
        one_hot,
        probabilities,
        {"gamma": 3.0, "alpha": 0.3},
        {"gamma": 3.0, "alpha": 0.3},
    ),
    "kl_divergence": Counterpart("kl_divergence", probabilities, probabilities),
    "poisson": Counterpart("poisson", positive, rates),
    "cosine_similarity": Counterpart("cosine_similarity", real, real),
    "dice": Counterpart("dice", binary, unit_interval, {}, {"axis": -1}),
    "tversky": Counterpart("tversky", binary, unit_interval, {}, {"axis": -1}),
    "tversky/params": Counterpart(
        "tversky",
        binary,
        unit_interval,
        {"alpha": 0.3, "beta": 0.7},
        {"alpha": 0.3, "beta": 0.7, "axis": -1},
    ),
    "categorical_generalized_cross_entropy": Counterpart(
        "categorical_generalized_cross_entropy",
        class_ids,
        smooth_probabilities,
        {},
        {"q": 0.5},
    ),
    "categorical_generalized_cross_entropy/q": Counterpart(
        "categorical_generalized_cross_entropy",
        class_ids,
        smooth_probabilities,
        {"q": 0.7},
        {"q": 0.7},
    ),
}

# Bundled losses with no Keras built-in to compare with.
NO_COUNTERPART = frozenset(
    {"penalized_absolute_error", "weighted_mean_squared_error", "poly1"}
)


def library_name(key: str) -> str:
    """The bundled-loss name of a COUNTERPARTS key ("huber/delta" -> "huber")."""
    return key.split("/")[0]
