"""Splitting a question into the parts it asks, and naming a part in "The documents don't say …"."""

from __future__ import annotations

import pytest

from knowledge.question_parts import indirect, split_question


@pytest.mark.parametrize(
    "question, parts",
    [
        (
            "On a domestic business trip, what is the daily meal allowance, and how long do I have to submit the expense claim?",
            ["On a domestic business trip, what is the daily meal allowance", "how long do I have to submit the expense claim"],
        ),
        ("What is the meal allowance? Also, where can I park?", ["What is the meal allowance", "where can I park"]),
        ("Who approves flights; what time does the office open?", ["Who approves flights", "what time does the office open"]),
        ("How many days of leave do I get and is it pro rata?", ["How many days of leave do I get", "is it pro rata"]),
        ("What is the hotel limit and also how do I book?", ["What is the hotel limit", "how do I book"]),
        # "and" inside one clause is not a boundary:
        ("What do I do if I'm sick and have a fever?", ["What do I do if I'm sick and have a fever"]),
        ("Are meals and hotels reimbursed?", ["Are meals and hotels reimbursed"]),
        ("Where and when is the all-hands meeting?", ["Where and when is the all-hands meeting"]),
    ],
)
def test_parts_are_the_clauses_that_ask_on_their_own(question, parts):
    assert [p.text for p in split_question(question).parts] == parts


def test_statements_are_context_shared_by_the_parts():
    split = split_question("I typed my password into a phishing page. What should I do now?")
    [part] = split.parts
    assert part.text == "What should I do now" and part.terms == frozenset()
    assert {"password", "phish"} <= split.context_terms
    assert {"password", "phish"} <= split.other_terms(part)


def test_a_part_knows_what_kind_of_value_it_asks_for_without_the_question_phrase_as_topic():
    first, second = split_question(
        "How many unused vacation days can I carry over, and until when can I use them?"
    ).parts
    assert first.kind == "number" and second.kind == "date"
    assert second.terms == frozenset()  # "them" is the first part's days
    how_long = split_question("How long do I have to submit the claim?").parts[0]
    assert how_long.kind == "duration" and "long" not in how_long.terms and "claim" in how_long.terms


@pytest.mark.parametrize(
    "part, clause",
    [
        ("how long do I have to submit the expense claim", "how long you have to submit the expense claim"),
        ("can I bring my dog to the hotel", "whether you can bring your dog to the hotel"),
        ("where can I park my car", "where you can park your car"),
        ("On a domestic business trip, what is the daily meal allowance",
         "what the daily meal allowance is on a domestic business trip"),
        ("until when can I use them", "until when you can use them"),
        ("who approves business class flights", "who approves business class flights"),
        ("who is responsible for approving leave", "who is responsible for approving leave"),
        ("Am I allowed to expense alcohol", "whether you are allowed to expense alcohol"),
        ("do I need a receipt", "whether you need a receipt"),
    ],
)
def test_a_part_becomes_an_embedded_clause_in_the_second_person(part, clause):
    assert indirect(part) == clause


@pytest.mark.parametrize("part", ["what time does the office open", "how long did the review take", "does the policy cover taxis"])
def test_a_part_that_would_need_its_verb_changed_is_not_rephrased(part):
    assert indirect(part) is None
