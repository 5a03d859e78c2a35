"""Shared by the loader tests: the real sample files and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loaders import load_document
from knowledge.types import LoadedDocument

MB = 1024 * 1024
LIMIT = 25 * MB


@pytest.fixture(scope="session")
def samples(shared_dir: Path) -> Path:
    path = shared_dir / "corpora" / "samples"
    if not path.is_dir():
        pytest.skip(f"no samples at {path}")
    return path


def load_sample(samples: Path, name: str) -> LoadedDocument:
    return load_document(name, (samples / name).read_bytes(), max_bytes=LIMIT)


def full_text(doc: LoadedDocument) -> str:
    return "\n".join(s.text for s in doc.sections)
