"""`python -m gauges.train_answerability`: near misses made from the corpus, the prior correction
they need, and the ablation scored on the written questions only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gauges.train_answerability import (
    CANDIDATES, MADE_SUFFIX, SHIPPED, ablation, collect, fit_logistic, main, prior_shift, topic_groups, transfer,
)
from tests.gauges.test_qa import corpus  # noqa: F401  (the fixture: two pages, one linked to #hiring)


def test_each_answerable_question_is_also_asked_without_its_gold_documents(settings, corpus):  # noqa: F811
    docs, questions, links = corpus
    rows = collect([f"{docs}:{questions}:{links}"], settings)
    written = {r["id"]: r for r in rows if not r["made"]}
    made = {r["id"]: r for r in rows if r["made"]}
    assert set(written) == {"a1", "a2", "u1", "u2"}
    assert set(made) == {"a1~without-gold", "a2~without-gold"}  # only answerable rows with gold pages
    assert not any(r["answerable"] for r in made.values())
    # Without its page the train question's evidence is the interviews page (or nothing): its
    # words are no longer covered the way the train page covered them.
    assert made["a1~without-gold"]["features"]["lex_cov1"] < written["a1"]["features"]["lex_cov1"]
    assert made["a1~without-gold"]["topic"] == written["a1"]["topic"]


def test_a_topic_asked_by_two_question_files_over_one_corpus_is_left_out_of_both(settings, corpus, tmp_path):  # noqa: F811
    docs, questions, links = corpus
    second = tmp_path / "dev2.jsonl"
    second.write_text(questions.read_text())
    rows = collect([f"{docs}:{questions}:{links}", f"{docs}:{second}:{links}"], settings)
    groups = dict(zip((f"{r['set']}/{r['id']}" for r in rows), topic_groups(rows)))
    first_set, second_set = questions.stem, second.stem
    # The same question's topic in either file is one fold: a model scoring it never saw that
    # topic through the other file.
    assert groups[f"{first_set}/a1"] == groups[f"{second_set}/a1"] == groups[f"{second_set}/a1~without-gold"]
    assert len(set(groups.values())) == len({r["topic"] for r in rows})
    # Rows saved before the corpus was recorded keep their set as the group.
    assert topic_groups([{"set": "old", "topic": "t"}]) == ["old:t"]


def test_the_prior_correction_calibrates_scores_to_the_written_questions():
    rng = np.random.default_rng(0)
    # Written: 70 % answerable; made rows: 100 more unanswerable ones.
    x_written = np.r_[rng.normal(1, 1, 700), rng.normal(-1, 1, 300)]
    y_written = np.r_[np.ones(700), np.zeros(300)]
    x = np.r_[x_written, rng.normal(-1, 1, 1000)][:, None]
    y = np.r_[y_written, np.zeros(1000)]
    written = np.r_[np.ones(1000, dtype=bool), np.zeros(1000, dtype=bool)]
    w, b = fit_logistic(x, y, l2=0.0)
    p_raw = 1 / (1 + np.exp(-(x[written] @ w + b)))
    p_fixed = 1 / (1 + np.exp(-(x[written] @ w + b + prior_shift(y, written))))
    assert p_raw.mean() < 0.55  # pulled down by the made negatives
    assert p_fixed.mean() == pytest.approx(0.70, abs=0.04)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_a_fit_on_a_few_rows_converges_instead_of_blowing_up(n):
    # With few rows the penalty's curvature (l2 / rows) is large: a fixed step oscillated to NaN.
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 4))
    y = (np.arange(n) % 2).astype(float)
    with np.errstate(all="raise"):
        w, b = fit_logistic(x, y, l2=10.0)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    # At the optimum the penalised gradient is zero.
    assert np.allclose((x.T @ (p - y) + 10.0 * w) / n, 0, atol=1e-6)
    assert abs(float(np.mean(p - y))) < 1e-6


def _rows(n_topics: int = 4, per_topic: int = 20, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_topics):
        for i in range(per_topic):
            answerable = i % 3 != 0
            base = {k: float(rng.normal(0.6 if answerable else 0.3, 0.15)) for k in
                    {n for names in CANDIDATES.values() for n in names}}
            rows.append({"set": "s", "id": f"{t}-{i}", "topic": f"t{t}", "answerable": answerable,
                         "features": base, "made": False})
            if answerable:
                made = {k: v - 0.25 for k, v in base.items()}
                rows.append({"set": "s", "id": f"{t}-{i}~without-gold", "topic": f"t{t}", "answerable": False,
                             "features": made, "made": True})
    return rows


def test_the_ablation_has_every_candidate_with_and_without_made_rows_scored_on_written_ones():
    table = ablation(_rows())
    assert set(table) == set(CANDIDATES) | {name + MADE_SUFFIX for name in CANDIDATES}
    for m in table.values():
        assert 0.5 < m["auroc"] <= 1.0 and 0.0 <= m["abstain_at_fa05"] <= m["abstain_at_fa10"] <= 1.0


def test_transfer_scores_each_corpus_model_on_the_other_corpora_only():
    same = [dict(r, corpus="/a") for r in _rows(seed=1)] + [dict(r, corpus="/b") for r in _rows(seed=2)]
    table = transfer(same, CANDIDATES[SHIPPED])
    assert set(table) == {f"{c} → others{suffix}" for c in ("a", "b") for suffix in (MADE_SUFFIX, "")}
    assert all(m["auroc"] > 0.8 and 0.0 <= m["false_abstain"] <= 1.0 and 0.0 <= m["abstain"] <= 1.0 for m in table.values())
    # A corpus whose answerable questions score low: models fit elsewhere rank its rows backwards.
    flipped = [dict(r, corpus="/b", answerable=not r["answerable"]) for r in _rows(seed=2) if not r["made"]]
    table = transfer([dict(r, corpus="/a") for r in _rows(seed=1)] + flipped, CANDIDATES[SHIPPED])
    assert table["a → others" + MADE_SUFFIX]["auroc"] < 0.2


def test_training_refuses_test_splits_and_writes_weights_that_load(tmp_path, settings, corpus, monkeypatch):  # noqa: F811
    docs, questions, links = corpus
    test_file = tmp_path / "handbook-test.jsonl"
    test_file.write_text(questions.read_text())
    with pytest.raises(SystemExit):
        main([f"{docs}:{test_file}:{links}"])
    monkeypatch.setenv("DOCENT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    with pytest.raises(SystemExit):  # leave-one-topic-out needs two topics; these rows have none
        main([f"{docs}:{questions}:{links}"])
    topical = tmp_path / "dev.jsonl"
    topical.write_text("".join(json.dumps({**json.loads(line), "topic": "travel" if i % 2 else "hiring"}) + "\n"
                               for i, line in enumerate(questions.read_text().splitlines())))
    out, rows = tmp_path / "w.json", tmp_path / "rows.json"
    assert main([f"{docs}:{topical}:{links}", "--out", str(out), "--rows", str(rows)]) == 0
    weights = json.loads(out.read_text())
    assert weights["n_made_rows"] == 2 and weights["n_rows"] == 6
    assert set(weights["ablation_dev_out_of_fold"]) == set(CANDIDATES) | {n + MADE_SUFFIX for n in CANDIDATES}
    saved = json.loads(rows.read_text())
    assert len(saved) == 6
    # A later run reads the saved features instead of asking again (here: one changed feature
    # moves the weights' mean), and without made rows fits the written ones only.
    saved[0]["features"]["sent_top"] += 10.0
    rows.write_text(json.dumps(saved))
    out2 = tmp_path / "w2.json"
    assert main([f"{docs}:{topical}:{links}", "--rows", str(rows), "--no-made", "--out", str(out2)]) == 0
    again = json.loads(out2.read_text())
    assert again["n_made_rows"] == 0 and again["n_rows"] == 4
    assert again["mean"] != weights["mean"]
