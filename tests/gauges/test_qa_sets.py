"""The committed QA sets (eval/qa): well-formed rows, gold pages that exist, and dev and test
files that never share a topic — the split every reported figure rests on."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from gauges.qa import channel_of, load_links, load_questions

QA = Path(__file__).resolve().parents[2] / "eval" / "qa"
KINDS = {"answerable", "near_miss", "false_premise", "absent_entity", "out_of_scope", "underspecified", "other_channel"}
SETS = {"handbook": "18f-handbook", "sec10q": "sec-10q/docs"}


def _files(corpus: str, split: str) -> list[Path]:
    return sorted(QA.glob(f"{corpus}-{split}*.jsonl"))


def _gold_topic(corpus: str, gold: str) -> str:
    if corpus == "sec10q":
        return gold.rsplit(" ", 1)[-1].removesuffix(".pdf")  # "2023 Q2 MSFT.pdf" → MSFT
    parts = PurePosixPath(gold).parts
    return parts[0] if len(parts) > 1 else "root"


@pytest.mark.parametrize("corpus", sorted(SETS))
def test_every_row_is_well_formed_and_its_gold_pages_exist(corpus, shared_dir):
    docs = shared_dir / "corpora" / SETS[corpus]
    if not docs.is_dir():
        pytest.skip(f"no corpus at {docs}")
    links = load_links(QA / f"{corpus}-links.json")
    ids: set[str] = set()
    for path in _files(corpus, "dev") + _files(corpus, "test"):
        split = "dev" if "-dev" in path.stem else "test"
        for row in load_questions(path):
            where = f"{path.name}:{row.get('id')}"
            assert row["id"] not in ids, f"{where}: id used twice"
            ids.add(row["id"])
            assert row["split"] == split and row["kind"] in KINDS and row["question"].strip(), where
            assert row["answerable"] == (row["kind"] == "answerable") == bool(row["gold"]), where
            assert all((docs / g).is_file() for g in row["gold"]), f"{where}: a gold page is missing"
            if not row["answerable"]:
                assert row["note"].strip(), f"{where}: an unanswerable row says why"
            linked = {g for g in row["gold"] if channel_of(g, links)}
            if linked:  # an answerable question about a linked document is asked in its channel
                assert {channel_of(g, links) for g in linked} == {row["channel"]}, where
            if row["kind"] == "other_channel":  # ...and one it alone answers, from elsewhere
                assert row["channel"] not in links, where


@pytest.mark.parametrize("corpus", sorted(SETS))
def test_dev_and_test_files_never_share_a_topic(corpus):
    # A row's topic is the folder (handbook) or company (10-Q) it asks about; its gold pages may
    # also lie elsewhere (every page that states the fact), but one of them is in its topic.
    topics: dict[str, set[str]] = {"dev": set(), "test": set()}
    for split in topics:
        for path in _files(corpus, split):
            for row in load_questions(path):
                topics[split].add(row["topic"])
                if row["gold"]:
                    assert row["topic"] in {_gold_topic(corpus, g) for g in row["gold"]}, f"{path.name}:{row['id']}"
    dev, test = topics["dev"] - {"none"}, topics["test"] - {"none"}  # "none": out of scope, no topic
    assert len(dev) >= 2 and len(test) >= 2
    assert not dev & test, f"dev and test files share {sorted(dev & test)}"
