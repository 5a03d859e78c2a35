"""The ONNX Runtime backends of all-MiniLM-L6-v2: torch's vectors (fp32) or close to them (int8),
exported once even when processes race, nothing half-written, and no torch at run time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bot.settings import Settings
from knowledge.embeddings import DEFAULT_BACKEND, default_model_path, make_embedder
from knowledge.onnx_embedder import OnnxExportFailed, ensure_onnx_model

PROJECT = Path(__file__).resolve().parents[2]
TEXTS = [
    "How many vacation days do I get?",
    "Employees accrue four hours of paid vacation for every two weeks worked.",
    "Leave policy › Carry-over\n\nUp to 5 unused days carry over into the next year.",
    "ok",
    "Naïve café résumé — 東京 🚀 ÉTÉ",
    " ".join(["Production releases happen on Tuesdays after review."] * 60),  # > 256 word pieces
]


def test_settings_and_make_embedder_know_the_backends():
    assert Settings(_env_file=None).embedding_backend == DEFAULT_BACKEND
    with pytest.raises(ValidationError):
        Settings(embedding_backend="tensorrt", _env_file=None)
    with pytest.raises(ValueError, match="torch, onnx, onnx-int8"):
        make_embedder(backend="tensorrt")


@pytest.mark.realmodel
class TestRealModel:
    @pytest.fixture(scope="class")
    def torch_embedder(self):
        return make_embedder(backend="torch")

    @pytest.fixture(scope="class")
    def fp32(self, onnx_cache_dir):
        return make_embedder(backend="onnx", cache_dir=onnx_cache_dir)

    @pytest.fixture(scope="class")
    def int8(self, onnx_cache_dir):
        return make_embedder(backend="onnx-int8", cache_dir=onnx_cache_dir)

    def test_fp32_gives_torchs_vectors_from_the_same_token_ids(self, torch_embedder, fp32):
        reference = torch_embedder.embed_array(TEXTS)
        vectors = fp32.embed_array(TEXTS)
        assert vectors.shape == (len(TEXTS), 384) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        assert (vectors * reference).sum(axis=1).min() > 0.99999
        st_tokenizer = torch_embedder._model.tokenizer
        for text in TEXTS:
            expected = st_tokenizer(text, truncation=True, max_length=256)["input_ids"]
            assert fp32._tokenizer.encode(text).ids == expected
        # A query alone (its own padding width) and inside a batch give the same vector.
        assert np.allclose(fp32.embed_array([TEXTS[0]])[0], vectors[0], atol=1e-5)

    def test_int8_stays_close_to_torch_and_names_its_space(self, torch_embedder, int8):
        vectors = int8.embed_array(TEXTS)
        cosines = (vectors * torch_embedder.embed_array(TEXTS)).sum(axis=1)
        assert cosines.min() > 0.95 and cosines.mean() > 0.98
        # A text's vector doesn't depend on what it is embedded with (int8 scales per input).
        for i in (0, 3, 5):
            assert np.array_equal(int8.embed_array([TEXTS[i]])[0], vectors[i])
        assert int8.model_name == torch_embedder.model_name == "all-MiniLM-L6-v2"  # the classifier checks it
        assert (torch_embedder.vector_space, int8.vector_space) == ("all-MiniLM-L6-v2/torch", "all-MiniLM-L6-v2/onnx-int8")
        assert int8.embed_array([]).shape == (0, 384)

    def test_int8_spreads_a_batch_over_cores_with_each_text_its_own_vector(self, onnx_cache_dir):
        from knowledge.onnx_embedder import _PARALLEL_MIN_TEXTS, OnnxMiniLMEmbeddings

        two_cores = OnnxMiniLMEmbeddings(backend="onnx-int8", cache_dir=onnx_cache_dir, threads=2)
        texts = [f"{t} (copy {k})" for k in range(2) for t in TEXTS][: max(_PARALLEL_MIN_TEXTS, 2 * len(TEXTS))]
        assert len(texts) >= _PARALLEL_MIN_TEXTS  # the parallel path
        vectors = two_cores.embed_array(texts)
        for i, text in enumerate(texts):  # alone = the one-session path
            assert np.array_equal(two_cores.embed_array([text])[0], vectors[i])


def _seeded_cache(tmp_path: Path, onnx_cache_dir: Path) -> Path:
    """A cache holding only the fp32 export, as after a first `onnx` run: int8 is still missing."""
    fp32 = ensure_onnx_model(default_model_path(), "onnx", onnx_cache_dir)
    cache = tmp_path / "cache"
    (cache / fp32.parent.name).mkdir(parents=True)
    shutil.copy(fp32, cache / fp32.parent.name / fp32.name)
    return cache


@pytest.mark.realmodel
def test_two_processes_starting_at_once_export_once_and_see_whole_files(tmp_path, onnx_cache_dir):
    cache = _seeded_cache(tmp_path, onnx_cache_dir)
    script = textwrap.dedent(f"""
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
        from knowledge.embeddings import default_model_path
        from knowledge.onnx_embedder import ensure_onnx_model
        print(ensure_onnx_model(default_model_path(), "onnx-int8", {str(cache)!r}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    exports = sum(err.count("exporting all-MiniLM-L6-v2") for _, err in outputs)
    assert exports == 1  # the second process waited on the lock and found the file
    folder = Path(paths.pop()).parent
    assert sorted(p.name for p in folder.iterdir()) == [".export.lock", "model-int8.onnx", "model.onnx"]
    expected = ensure_onnx_model(default_model_path(), "onnx-int8", onnx_cache_dir)
    assert (folder / "model-int8.onnx").read_bytes() == expected.read_bytes()


def test_a_failed_export_leaves_nothing_behind_and_says_what_to_do(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "not-a-model"}))
    with pytest.raises(OnnxExportFailed, match="DOCENT_EMBEDDING_BACKEND=torch"):
        ensure_onnx_model(broken, "onnx-int8", tmp_path / "cache")
    leftovers = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() or p.name.startswith(".export-")]
    assert leftovers == [".export.lock"]  # no model file, no half-written temp folder


@pytest.mark.realmodel
def test_the_bot_on_an_onnx_backend_never_imports_torch(tmp_path, onnx_cache_dir):
    ensure_onnx_model(default_model_path(), "onnx-int8", onnx_cache_dir)  # the export may use torch
    script = textwrap.dedent(f"""
        import sys
        from admin.types import Actor
        from bot.core import Docent
        from bot.settings import Settings
        from bot.types import Question
        from knowledge.types import Scope
        settings = Settings(data_dir={str(tmp_path / "data")!r}, embedding_backend="onnx-int8",
                            embedding_cache_dir={str(onnx_cache_dir)!r}, _env_file=None)
        with Docent.from_settings(settings) as docent:
            docent.admin.upload(Actor("cli", "T1", "admin", is_platform_admin=True), "leave.md",
                                b"# Leave\\n\\nEmployees get 25 vacation days per year.", Scope("T1", "C1"))
            answer = docent.ask(Question(platform="cli", workspace="T1", channel="C1", user="U1",
                                         text="How many vacation days do employees get?"))
        print(answer.outcome.value)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sentence_transformers", "transformers")))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "REDIS_URL", "DATABASE_URL", "QDRANT_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    outcome, modules = done.stdout.strip().splitlines()[-2:]
    assert outcome == "answered"
    assert modules == "[]"
