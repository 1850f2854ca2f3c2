"""Shared bits of the example scripts: quick mode and quiet TensorFlow."""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def options(description: str) -> argparse.Namespace:
    """Parse the examples' one option, --quick (few epochs, small data: for tests)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a fast run with little data"
    )
    return parser.parse_args()


def report(history, key: str = "loss") -> tuple[float, float]:
    """Print the first and last value of a training curve and return them."""
    values = [float(v) for v in history.history[key]]
    print(f"{key}: {values[0]:.4f} -> {values[-1]:.4f} over {len(values)} epochs")
    return values[0], values[-1]
