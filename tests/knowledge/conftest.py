from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def onnx_cache_dir() -> Path:
    """Where the real model's ONNX exports are kept: the product's own cache (or
    DOCENT_EMBEDDING_CACHE_DIR), so the one-off export is paid once per machine, not per run."""
    from knowledge.onnx_embedder import default_cache_dir

    return Path(os.environ.get("DOCENT_EMBEDDING_CACHE_DIR") or default_cache_dir())
