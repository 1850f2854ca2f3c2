"""Each example script runs in its quick mode and does what it says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> lines its output must contain
EXPECTED = {
    "penalized_absolute_error.py": [
        "expr: 0.5*(Abs(y_pred - y_true) + 1)*Abs(y_pred - y_true)",
        "generated module:",
    ],
    "weighted_two_outputs.py": ["formula_mae:", "per-sample loss of 4 rows:"],
    "false_positive_penalty.py": [
        "rejected, as it should be:",
        "`where(y_pred > y_true, 1, 0)`",
        "sigmoid((y_pred - y_true) / 0.1)",
        "compiled the soft version:",
    ],
    "focal_loss.py": ["positives:", "recall on them:"],
}


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs_quickly_and_trains(script, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "ok", done.stdout
    for expected in EXPECTED[script]:
        assert expected in done.stdout, (expected, done.stdout)
    # Each script reports its training curve as "loss: first -> last over N epochs" with last < first.
    curve = next(line for line in lines if line.startswith("loss: "))
    first, last = (float(x) for x in curve.split()[1:4:2])
    assert last < first
