"""A saved `.keras` model with its loss's config edited, as an attacker would: used by
tests/test_saving.py and tests/test_training.py. Not a test module."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path


def tampered_copy(path: Path, out: Path, **loss_config) -> Path:
    """A copy of the saved model at `path`, written to `out`, whose loss config has `loss_config` set."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(content)
                config["compile_config"]["loss"]["config"].update(loss_config)
                content = json.dumps(config).encode()
            target.writestr(item, content)
    return out
