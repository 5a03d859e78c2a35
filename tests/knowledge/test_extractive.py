"""The offline extractive answerer on realistic text: picks the right sentences, answers every
part of a multi-part question it can and names the parts it can't, streams."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge.chain import build_messages, parse_citations
from knowledge.edge_store import EdgeChunkStore
from knowledge.embeddings import HashEmbeddings, as_embedder
from knowledge.extractive import ABSTAIN_TEXT, INTRO, ExtractiveChatModel, split_sentences
from knowledge.ingest import KnowledgeBase
from knowledge.retriever import HybridRetriever
from knowledge.types import Chunk, Hit, Scope

SAMPLES = Path(__file__).resolve().parents[2] / "knowledge" / "samples"


def make_hit(title: str, text: str, headings: tuple[str, ...] = ()) -> Hit:
    chunk = Chunk(
        doc_id=f"doc-{title}", title=title, source=f"{title}.md", text=text, chunk_index=0, page=None,
        heading_path=headings, scope=Scope("T1"), content_hash="h", ingested_at=0.0,
    )
    return Hit(chunk=chunk, score=0.5)


HANDBOOK = make_hit(
    "Employee handbook",
    """## Annual leave
Full-time employees receive 25 days of paid annual leave per calendar year, in addition to
public holidays. Part-time employees receive leave pro rata to their contracted hours.

Unused leave can be carried over into the next year, up to a maximum of five days. Carried-over
days must be used by 31 March or they are lost. Requests for leave should be submitted through
the HR portal at least two weeks in advance.

## Sick leave
If you are ill, tell your manager before 10:00 on the first day of absence. A doctor's note is
required for absences longer than three consecutive working days.""",
    ("People", "Leave"),
)
EXPENSES = make_hit(
    "Travel and expenses",
    """Travel must be booked through the company travel agent so that our duty of care applies.
Economy class is required for flights under six hours; business class needs director approval.

- Meals are reimbursed up to 40 EUR per day when travelling.
- Receipts must be uploaded to the expense tool within 30 days of the trip.
- Alcohol is never reimbursed.""",
)
SECURITY = make_hit(
    "Security policy",
    """All laptops use full-disk encryption, which IT enables before handing a laptop over.
Passwords must be at least 14 characters long and are stored in the company password manager.
Report a lost or stolen device to security@example.com within one hour.""",
)
HITS = [HANDBOOK, EXPENSES, SECURITY]


def answer(question: str, hits=HITS) -> str:
    return ExtractiveChatModel().invoke(build_messages(question, hits)).content


def test_sentence_splitting_respects_headings_lists_and_wrapped_lines():
    sentences = split_sentences(EXPENSES.chunk.text)
    assert "Meals are reimbursed up to 40 EUR per day when travelling." in sentences
    assert "Alcohol is never reimbursed." in sentences
    assert any(s.startswith("Travel must be booked through the company travel agent so that our duty") for s in sentences)
    assert "Annual leave" in split_sentences(HANDBOOK.chunk.text)  # a heading is its own unit


def test_picks_the_supporting_sentence_and_cites_its_source():
    text = answer("How many days of paid annual leave do full-time employees get?")
    assert text.startswith("According to the documents:")
    assert "25 days of paid annual leave" in text
    assert "[1]" in text
    assert "40 EUR" not in text and "14 characters" not in text


def test_cites_the_right_source_number_for_a_lower_ranked_document():
    text = answer("What is the minimum password length?")
    assert "at least 14 characters" in text
    _, cited = parse_citations(text, 3)
    assert cited == [3]


def test_uses_list_items_and_word_variants():
    text = answer("Up to what amount are meals reimbursed while travelling?")
    assert "Meals are reimbursed up to 40 EUR per day when travelling [2]." in text
    text = answer("Can unused leave be carried over into the next year?")
    assert "maximum of five days [1]." in text


def test_behind_the_gate_a_question_sharing_no_words_with_its_answer_is_answered():
    """The gate decided the passages answer; the extractive model no longer refuses on word
    overlap of its own (that refusal caused most false abstentions on held-out questions)."""
    parental = make_hit(
        "Parental leave",
        "Primary caregivers receive 16 weeks of parental leave at full pay. Secondary caregivers "
        "receive 6 weeks at full pay.",
    )
    text = answer("How long can I stay home after my baby is born?", [parental, SECURITY])
    assert text.startswith(INTRO) and "16 weeks of parental leave at full pay [1]." in text
    assert "don't say" not in text  # one part: whether it is answered at all was the gate's call


def test_only_nothing_to_quote_abstains():
    assert answer("How many days of leave?", []) == ABSTAIN_TEXT
    headings_only = make_hit("Contents", "## Leave\n\n## Expenses\n\n## Security")
    assert answer("How many days of leave?", [headings_only]) == ABSTAIN_TEXT
    assert "couldn't find" in ABSTAIN_TEXT


def test_answer_is_short_and_every_sentence_cited():
    text = answer("What are the rules for sick leave and doctor's notes?")
    body = text.removeprefix("According to the documents:").strip()
    assert "doctor's note is required" in body
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", body) if s]
    assert 1 <= len(sentences) <= 4
    assert all(re.search(r"\[\d+\]", s) for s in sentences)


def test_streaming_yields_pieces_that_add_up_to_the_invoke_answer_with_usage():
    model = ExtractiveChatModel()
    messages = build_messages("How long do I have to upload receipts?", HITS)
    chunks = list(model.stream(messages))
    assert len(chunks) > 3
    assert "".join(c.content for c in chunks) == model.invoke(messages).content
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert len(usage) == 1 and usage[0]["input_tokens"] > 100 and usage[0]["output_tokens"] > 5


def test_invoke_reports_usage_and_model_name():
    message = ExtractiveChatModel().invoke(build_messages("How long do I have to upload receipts?", HITS))
    assert "within 30 days" in message.content
    assert message.response_metadata["model_name"] == "extractive"
    assert message.usage_metadata["output_tokens"] == (len(message.content) + 3) // 4


def test_real_handbook_page(shared_dir):
    """A real Markdown page (18F handbook, read in place), cut into paragraph chunks like ingest does."""
    page = (shared_dir / "corpora/18f-handbook/travel-and-leave/paid-parental-leave.md").read_text()
    body = page.split("---", 2)[2]
    paragraphs = [p for p in body.split("\n## ") if p.strip()]
    hits = [make_hit("Paid parental leave", p) for p in paragraphs]
    hits += [make_hit("Security policy", SECURITY.chunk.text)]

    text = answer("How many weeks of paid parental leave am I entitled to?", hits)
    assert "12 weeks of paid time off" in text
    text = answer("How long must I return to work after my final day of parental leave?", hits)
    assert "return to work for at least 12 weeks" in text
    assert answer("Which password manager do we use for storing passwords?", hits).count("[") >= 1


def test_markdown_links_templates_and_headings_are_cleaned_from_answers():
    hit = make_hit(
        "Out of office",
        """Checklist for going out of office

Mark your time off in [HR Links]({% page "/tools/hrlinks/" %}) and on the team calendar before you leave.
See the [leave guide](https://example.com/leave) for the types of leave\\.""",
    )
    text = answer("Where do I mark my time off before going out of office?", [hit])
    assert "Mark your time off in HR Links and on the team calendar before you leave [1]." in text
    assert "{%" not in text and "](" not in text
    assert "Checklist" not in text


def test_quality_floor_on_scifact_claims(shared_dir):
    """Regression gate on real scientific text (BEIR SciFact test split, read in place).

    Each claim gets its gold abstract at a random rank among 3 random abstracts: the answerer
    answers every claim (the gate, not this model, decides whether to answer) and must cite the
    gold abstract. Measured at 100% answered, 96% citing the gold one (seeded, 300 claims); with
    the old word-coverage refusal 69% were answered. Telling unrelated abstracts apart is the
    answerability gate's job (tests/knowledge/test_answerability.py).
    """
    base = shared_dir / "eval/retrieval/scifact"
    corpus = {d["_id"]: d for d in map(json.loads, (base / "corpus.jsonl").open())}
    claims = {q["_id"]: q["text"] for q in map(json.loads, (base / "queries.jsonl").open())}
    gold: dict[str, list[str]] = {}
    for line in (base / "qrels/test.tsv").read_text().splitlines()[1:]:
        qid, cid, _ = line.split("\t")
        gold.setdefault(qid, []).append(cid)

    def hit(cid: str) -> Hit:
        return make_hit(corpus[cid]["title"], corpus[cid]["text"])

    import random

    rng = random.Random(0)
    ids = list(corpus)
    model = ExtractiveChatModel()
    answered = gold_cited = 0
    for qid, cids in gold.items():
        sources = [hit(c) for c in rng.sample(ids, 8) if c not in cids][:3]
        position = rng.randrange(4)
        sources.insert(position, hit(cids[0]))
        text = model.invoke(build_messages(claims[qid], sources)).content
        answered += text.startswith(INTRO)
        gold_cited += (position + 1) in parse_citations(text, 4)[1]
    n = len(gold)
    assert answered == n
    assert gold_cited / n >= 0.93


# --- multi-part questions over docent's own sample documents --------------------------------


@pytest.fixture(scope="module")
def sample_retriever(tmp_path_factory):
    """knowledge/samples ingested for real (loaders, chunking, Qdrant Edge; hash embedder + BM25)."""
    store = EdgeChunkStore(tmp_path_factory.mktemp("samples") / "edge")
    embedder = as_embedder(HashEmbeddings())
    kb = KnowledgeBase(store, embedder)
    scope = Scope("demo")
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix != ".json":
            kb.ingest_path(path, scope)
    yield HybridRetriever(store=store, embedder=embedder, scope=scope, k=5, relevance_threshold=0.0)
    store.close()


def sample_answer(retriever: HybridRetriever, question: str) -> str:
    return answer(question, retriever.search(question))


def test_the_demo_two_part_question_gets_both_parts_answered(sample_retriever):
    demo = json.loads((SAMPLES / "demo_questions.json").read_text())["questions"]
    [question] = [q for q in demo if "daily meal allowance" in q]
    text = sample_answer(sample_retriever, question)
    assert "daily meal allowance of $75 on domestic trips" in text  # part one
    assert "within **30 days** of the purchase" in text  # part two (used to be dropped)
    assert "don't say" not in text and "don't answer" not in text
    body = text.removeprefix(INTRO)
    assert all(re.search(r"\[\d\]", s) for s in re.split(r"(?<=[.!?])\s+", body.strip()))


def test_a_follow_up_part_with_a_pronoun_is_answered_too(sample_retriever):
    text = sample_answer(
        sample_retriever, "How many unused vacation days can I carry over into next year, and until when can I use them?"
    )
    assert "at most **5 unused days**" in text and "by **31 March**" in text


def test_a_part_the_documents_do_not_cover_is_named_in_one_plain_sentence(sample_retriever):
    text = sample_answer(
        sample_retriever, "What is the daily meal allowance on domestic trips, and can I bring my dog to the hotel?"
    )
    assert "daily meal allowance of $75 on domestic trips" in text
    assert text.endswith("The documents don't say whether you can bring your dog to the hotel.")
    assert text.count("don't say") == 1 and "dog" not in text.split("The documents don't say")[0]


def test_parts_that_cannot_be_rephrased_are_quoted():
    text = answer("What is the minimum password length; what time does the cafeteria open?")
    assert "at least 14 characters" in text
    assert text.endswith("The documents don't answer this part of the question: “what time does the cafeteria open?”")
