"""`docent eval qa`: the trade-off metrics, document links to channels, and a run end to end."""

from __future__ import annotations

import json

import pytest

from gauges.qa import abstention_at_false_abstention, channel_of, evaluate_qa, roc_auc


def test_roc_auc_counts_pairs_and_half_ties():
    assert roc_auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert roc_auc([0.1, 0.9], [True, False]) == 0.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5
    assert roc_auc([0.5], [True]) is None


def test_abstention_at_a_false_abstention_budget_takes_the_best_threshold():
    # 20 answerable scored 0.50 … 0.69, 4 unanswerable at 0.1, 0.2, 0.55, 0.95.
    scores = [0.50 + i / 100 for i in range(20)] + [0.1, 0.2, 0.55, 0.95]
    labels = [True] * 20 + [False] * 4
    at0 = abstention_at_false_abstention(scores, labels, 0.0)
    assert at0["abstain"] == 0.5 and at0["false_abstain"] == 0.0  # t just above 0.2 … 0.50
    at05 = abstention_at_false_abstention(scores, labels, 0.05)
    assert at05["false_abstain"] <= 0.05 and at05["abstain"] == 0.5  # one more answerable lost buys nothing
    at30 = abstention_at_false_abstention(scores, labels, 0.30)
    assert at30["abstain"] == 0.75 and at30["false_abstain"] <= 0.30


def test_documents_match_their_channel_by_path_or_file_name():
    links = {"hiring": ["hiring/**"], "nvidia-desk": ["*NVDA*"]}
    assert channel_of("hiring/promotions.md", links) == "hiring"
    assert channel_of("2023 Q3 NVDA.pdf", links) == "nvidia-desk"
    assert channel_of("travel/leave.md", links) is None


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    (docs / "travel").mkdir(parents=True)
    (docs / "hiring").mkdir()
    (docs / "travel" / "trains.md").write_text("# Trains\n\nTrain tickets are booked in second class through the travel desk.\n")
    (docs / "hiring" / "interviews.md").write_text("# Interviews\n\nEvery candidate meets three interviewers and a panel lead.\n")
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "a1", "question": "which class are train tickets booked in?", "gold": ["travel/trains.md"], "answerable": True},
        {"id": "a2", "question": "how many interviewers does every candidate meet?", "gold": ["hiring/interviews.md"],
         "answerable": True, "channel": "hiring"},
        {"id": "u1", "question": "how many interviewers does every candidate meet?", "gold": [], "answerable": False,
         "kind": "other_channel"},
        {"id": "u2", "question": "what is the capital of mongolia", "gold": [], "answerable": False, "kind": "out_of_scope"},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    links = tmp_path / "links.json"
    links.write_text(json.dumps({"hiring": ["hiring/**"]}))
    return docs, questions, links


def test_a_run_scopes_documents_and_questions_and_reports_every_key(settings, corpus):
    docs, questions, links = corpus
    result = evaluate_qa(docs, questions, settings=settings, links_path=links)
    rows = {r["id"]: r for r in result["questions"]}
    assert rows["a1"]["outcome"] == rows["a2"]["outcome"] == "answered"
    assert rows["a2"]["gold_rank"] == 1 and rows["a1"]["gold_rank"] == 1
    # The hiring page is linked to #hiring only: asked elsewhere, the same question finds nothing.
    assert rows["u1"]["outcome"] == "abstained" and "hiring/interviews.md" not in rows["u1"]["top_docs"]
    assert result["recall@5"] == result["hit@1"] == 1.0
    assert result["abstain_rate_unanswerable"] == 1.0 and result["false_abstain_rate"] == 0.0
    assert result["answerability_auroc"] == 1.0 and result["abstain_at_fa05"] == 1.0
    assert result["abstain_by_kind"] == {"other_channel": 1.0, "out_of_scope": 1.0}
    for key in ("n_questions", "n_answerable", "n_unanswerable", "n_documents", "ingest_errors", "model",
                "relevance_threshold", "recall@1", "recall@3", "latency_p50_ms", "latency_p95_ms",
                "abstain_at_fa10", "blocked"):
        assert key in result


def test_a_follow_up_row_is_asked_after_its_thread(settings, corpus, tmp_path):
    docs, _, links = corpus
    questions = tmp_path / "followups.jsonl"
    rows = [
        {"id": "f1", "history": ["which class are train tickets booked in?"], "question": "who books them?",
         "gold": ["travel/trains.md"], "answerable": True, "kind": "dependent"},
        {"id": "f2", "question": "who books them?", "gold": ["travel/trains.md"], "answerable": True},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = evaluate_qa(docs, questions, settings=settings, links_path=links)
    by_id = {r["id"]: r for r in result["questions"]}
    # In its thread the follow-up is searched with the first question and found; alone it isn't.
    assert by_id["f1"]["outcome"] == "answered" and by_id["f1"]["gold_rank"] == 1
    assert by_id["f1"]["cited"] == ["travel/trains.md"]
    assert by_id["f2"]["outcome"] == "abstained"


def test_a_follow_up_row_may_follow_another_persons_question(settings, corpus, tmp_path):
    docs, _, links = corpus
    questions = tmp_path / "followups.jsonl"
    row = {"id": "f1", "history": ["which class are train tickets booked in?"], "question": "who books them?",
           "gold": ["travel/trains.md"], "answerable": True, "kind": "dependent"}
    questions.write_text(json.dumps(row) + "\n")
    result = evaluate_qa(docs, questions, settings=settings, links_path=links, history_author="Ana")
    (only,) = result["questions"]
    assert result["history_author"] == "Ana"
    assert only["outcome"] == "answered" and only["gold_rank"] == 1 and only["cited"] == ["travel/trains.md"]
