"""`docent bench slack|discord` drive the bots against the loopback platform fakes that the tests
use (`tests/fakes/`). Those live in the source checkout, not in the installed package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType


def load_fake(name: str) -> ModuleType:
    """`tests.fakes.<name>` of this source checkout (the `docent` script doesn't put it on sys.path)."""
    try:
        return importlib.import_module(f"tests.fakes.{name}")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[1]
        if not (root / "tests" / "fakes" / f"{name}.py").is_file():
            raise RuntimeError(f"this benchmark runs from a source checkout: it needs tests/fakes/{name}.py") from None
        sys.path.insert(0, str(root))
        return importlib.import_module(f"tests.fakes.{name}")
